"""Media at the edges: probe a file, stream its frames in, stream frames out (MP4, WebM, MOV, GIF, a ZIP of
PNGs) with audio, through ffmpeg; read a picture (PIL); a picture or clip to show behind the dancer.

    >>> from app.video_io import probe, read_frames, VideoWriter
    >>> info = probe("clip.mp4")
    >>> with VideoWriter("out.mp4", "mp4", info.width, info.height, info.fps_fraction, audio_from=info) as w:
    ...     for frame in read_frames(info):
    ...         w.write(frame)

Frames travel as raw rgb24/rgba through pipes: no frame ever touches the disk, and memory does not grow with
the clip's length. ffmpeg/ffprobe come from PATH, or from the `imageio-ffmpeg` wheel when none is installed.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import re
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.compose import to_i420
from app.options import InputError, Limits


class FFmpegError(RuntimeError):
    """ffmpeg itself failed (not the user's input): carries ffmpeg's last words."""


@functools.cache
def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.cache
def ffprobe_exe() -> str | None:
    """ffprobe next to ffmpeg or on PATH; None when only imageio-ffmpeg's lone ffmpeg is available."""
    exe = shutil.which("ffprobe")
    if exe:
        return exe
    sibling = Path(ffmpeg_exe()).with_name("ffprobe")
    return str(sibling) if sibling.is_file() else None


@dataclass(frozen=True)
class MediaInfo:
    """What we need to know about a clip. width/height are as displayed (rotation applied)."""

    path: Path
    name: str                  # what messages call the clip: the person's own name for it (see `probe`)
    width: int
    height: int
    fps_fraction: str          # exact frame rate, e.g. "30000/1001", as ffmpeg takes it
    frames: int                # from the container, or duration x fps when it does not say
    duration: float            # seconds
    rotation: int = 0          # degrees the player rotates the coded picture
    has_audio: bool = False
    audio_codec: str | None = None
    video_codec: str = ""
    pix_fmt: str = ""          # the decoded picture's layout, e.g. "yuv420p"
    color_space: str = ""      # the YUV matrix the file declares ("bt709", ...), "" when it does not say
    color_range: str = ""      # "tv" (limited), "pc" (full) or ""

    @property
    def fps(self) -> float:
        return float(Fraction(self.fps_fraction))

    @property
    def yuv_matrix(self) -> str | None:
        """"bt601" or "bt709" when the frames can be used as decoded, 8-bit limited-range YUV 4:2:0 at an even
        size (most phone clips), else None: then they are converted to RGB. Undeclared means BT.601, what
        ffmpeg assumes when it converts such a clip to RGB."""
        if self.pix_fmt != "yuv420p" or self.color_range not in ("", "unknown", "tv") or self.width % 2 \
                or self.height % 2:
            return None
        return {"": "bt601", "unknown": "bt601", "smpte170m": "bt601", "bt470bg": "bt601",
                "bt709": "bt709"}.get(self.color_space)


def _rate(text: str | None) -> Fraction | None:
    try:
        rate = Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate and 0 < rate <= 1000 else None


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(round(float(side["rotation"])))
    tag = (stream.get("tags") or {}).get("rotate")
    # The legacy tag is clockwise; the display matrix (above) is counter-clockwise. Normalise to the matrix.
    return -int(tag) if tag else 0


def _info_from_ffprobe(path: Path, name: str, data: dict) -> MediaInfo:
    streams = data.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        what = "an audio file" if audios else "not a video"
        raise InputError(f"{name} has no video track ({what}): upload a video or a photo")
    v = videos[0]
    fmt = data.get("format", {})
    rate = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate"))
    if rate is None:
        raise InputError(f"{name} has no usable frame rate; is it a complete video?")
    duration = 0.0
    for source in (v.get("duration"), fmt.get("duration")):
        try:
            duration = float(source)
            break
        except (TypeError, ValueError):
            continue
    try:
        frames = int(v["nb_frames"])
    except (KeyError, ValueError):
        frames = round(duration * float(rate))
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    rotation = _rotation(v)
    if rotation % 180:
        width, height = height, width
    return MediaInfo(path=path, name=name, width=width, height=height,
                     fps_fraction=f"{rate.numerator}/{rate.denominator}", frames=frames, duration=duration,
                     rotation=rotation, has_audio=bool(audios),
                     audio_codec=audios[0].get("codec_name") if audios else None,
                     video_codec=v.get("codec_name", ""), pix_fmt=v.get("pix_fmt", ""),
                     color_space=v.get("color_space", ""), color_range=v.get("color_range", ""))


def _info_from_ffmpeg_banner(path: Path, name: str) -> MediaInfo:
    """Fallback without ffprobe: parse what `ffmpeg -i` prints (imageio-ffmpeg's parser, plus rotation)."""
    from imageio_ffmpeg._parsing import parse_ffmpeg_header

    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, errors="replace", timeout=60)
    text = proc.stderr
    if "Video:" not in text:
        if "Audio:" in text:
            raise InputError(f"{name} has no video track (an audio file): upload a video or a photo")
        raise InputError(f"{name} could not be read as a video: it is empty, damaged or not a video file")
    try:
        meta = parse_ffmpeg_header(text)
    except Exception:
        raise InputError(f"{name} could not be read as a video: it is empty, damaged or not a video file")
    width, height = meta["size"]
    match = re.search(r"rotation of (-?[\d.]+) degrees", text)
    rotation = int(round(float(match.group(1)))) if match else -int(meta.get("rotate", 0))
    if rotation % 180:
        width, height = height, width
    rate = Fraction(meta["fps"]).limit_denominator(1001)
    duration = float(meta.get("duration") or 0.0)
    return MediaInfo(path=path, name=name, width=width, height=height,
                     fps_fraction=f"{rate.numerator}/{rate.denominator}", frames=round(duration * float(rate)),
                     duration=duration, rotation=rotation,
                     has_audio="audio_codec" in meta, audio_codec=meta.get("audio_codec"),
                     video_codec=meta.get("codec", ""), **_banner_picture(text))


def _banner_picture(text: str) -> dict[str, str]:
    """pix_fmt, color_range and color_space as ffprobe would give them, from the first video stream's line of
    `ffmpeg -i`: "Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1080x1920, ...".
    In the parentheses: the range (tv/pc), then the matrix, as "space/primaries/transfer" or one name when all
    three agree, then the field order. What it does not print is left "" (the same as ffprobe's absent keys)."""
    match = re.search(r"Stream #.*?Video: (.*)", text)
    if match is None:
        return {}
    parts, depth, part = [], 0, ""
    for ch in match.group(1):              # split at the commas outside parentheses
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(part.strip())
            part = ""
        else:
            part += ch
    parts.append(part.strip())
    if len(parts) < 2:
        return {}
    fmt = re.fullmatch(r"([0-9a-z_]+)(?:\((.*)\))?", parts[1])
    if fmt is None:
        return {}
    out = {"pix_fmt": fmt.group(1)}
    for item in (i.strip() for i in (fmt.group(2) or "").split(",")):
        if item in ("tv", "pc"):
            out["color_range"] = item
        elif re.fullmatch(r"[0-9a-z_-]+(/[0-9a-z_-]+){2}", item):
            out["color_space"] = item.split("/")[0]
        elif re.fullmatch(r"bt[0-9a-z]+|smpte[0-9a-z]+|fcc|ycgcm|gbr|unknown", item):
            out["color_space"] = item
    return out


def probe(path: str | Path, *, name: str | None = None) -> MediaInfo:
    """Describe a video file, or raise InputError with a sentence saying what is wrong with it. The sentence, and
    any later one about the clip (`MediaInfo.name`), calls it `name`: the person's own name for a file saved
    under another (an upload's random name); by default its own name."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise InputError(f"file not found: {name}")
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty")
    if ffprobe_exe() is None:
        info = _info_from_ffmpeg_banner(path, name)
    else:
        try:
            data = ffmpeg.probe(str(path), cmd=ffprobe_exe(), v="error", timeout=60)
        except ffmpeg.Error as exc:
            with path.open("rb") as f:
                looks_mp4 = f.read(12)[4:8] == b"ftyp"
            # An MP4 header without its index (moov) is the signature of an upload that stopped midway.
            hint = "the file is cut short (incomplete upload?)" if looks_mp4 and b"moov atom not found" in exc.stderr \
                else "it is damaged or not a video file"
            raise InputError(f"{name} could not be read as a video: {hint}") from None
        except subprocess.TimeoutExpired:
            raise InputError(f"{name} took too long to inspect; it may be damaged") from None
        info = _info_from_ffprobe(path, name, data)
    if info.width <= 0 or info.height <= 0:
        raise InputError(f"{name} has a video track without a picture size")
    if info.frames <= 0 and info.duration <= 0:
        raise InputError(f"{name} has no frames")
    return info


class _StderrTail(threading.Thread):
    """Drains a pipe so ffmpeg never blocks on a full stderr, keeping the last lines for error messages."""

    def __init__(self, pipe) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines: collections.deque[str] = collections.deque(maxlen=20)

    def run(self) -> None:
        for raw in iter(self.pipe.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip())
        self.pipe.close()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def read_frames(info: MediaInfo, *, pix_fmt: str = "rgb24") -> Iterator[np.ndarray]:
    """Yield the clip's frames upright (rotation honoured) as uint8 (H, W, 3) arrays, at a constant frame rate;
    with pix_fmt="yuv420p" (even sizes only) as I420 arrays (H * 3 / 2, W), decoded and never converted.

    Variable-frame-rate clips are resampled to their average rate, so frame i is shown at i / fps, the timing
    the writer and the audio track assume. A clip that ends early (truncated upload) just yields fewer frames.
    """
    if pix_fmt == "yuv420p":
        if info.width % 2 or info.height % 2:
            raise ValueError("yuv420p frames need an even width and height")
        size, shape = info.width * info.height * 3 // 2, (info.height * 3 // 2, info.width)
    else:
        channels = 4 if pix_fmt == "rgba" else 3
        size, shape = info.width * info.height * channels, (info.height, info.width, channels)
    stream = ffmpeg.input(str(info.path)).video.filter("fps", fps=info.fps_fraction)
    args = (stream.output("pipe:", format="rawvideo", pix_fmt=pix_fmt, sn=None, dn=None)
            .global_args("-nostdin", "-v", "error").compile(cmd=ffmpeg_exe()))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tail = _StderrTail(proc.stderr)
    tail.start()
    count = 0
    try:
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            count += 1
            yield np.frombuffer(buf, np.uint8).reshape(shape)
        proc.stdout.close()
        proc.wait()
        tail.join()
        if count == 0:
            raise InputError(f"{info.name} has no frames that could be decoded; it may be damaged")
    finally:
        _stop(proc)


# ------------------------------------------------------------------------------- pictures, and backgrounds

def is_still_image(path: str | Path) -> bool:
    """True for a single-picture file (by content, not by name); animated GIF/WebP count as video."""
    try:
        with Image.open(path) as im:
            return getattr(im, "n_frames", 1) == 1
    except Image.DecompressionBombError:
        return True     # a picture, just far too big: image_size and read_image say so in a sentence
    except Exception:   # anything PIL cannot open is for ffprobe to judge
        return False


@contextlib.contextmanager
def _picture(path: str | Path, limits: Limits, name: str | None) -> Iterator[Image.Image]:
    """The picture at `path` opened (PIL reads only its header until asked for pixels), refused over
    limits.max_image_pixels; whatever fails while it is open, decoding included, becomes one InputError sentence
    naming it `name` (by default the file's own name)."""
    name = name or Path(path).name
    megapixels = limits.max_image_pixels // 1_000_000
    try:
        with Image.open(path) as im:
            if im.width * im.height > limits.max_image_pixels:
                raise InputError(f"{name} is {im.width}x{im.height}; images are limited to {megapixels} megapixels")
            yield im
    except Image.DecompressionBombError:    # PIL will not even open it
        raise InputError(f"{name} is far too large: images are limited to {megapixels} megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name} could not be read as an image: it is damaged or not a picture") from None


def image_size(path: str | Path, limits: Limits, *, name: str | None = None) -> tuple[int, int]:
    """A picture's (width, height) from its header, nothing decoded; InputError as `read_image` words it."""
    with _picture(path, limits, name) as im:
        return im.size


def read_image(path: str | Path, limits: Limits, *, name: str | None = None) -> np.ndarray:
    """Any still image as upright uint8 RGB: grayscale, palette, RGBA (over white), 16-bit, CMYK, EXIF-rotated.
    InputError when it is too large or unreadable, with a sentence calling it `name` (default: its own name)."""
    with _picture(path, limits, name) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.uint32)
            # 16-bit greys: keep the top 8 bits (a plain convert("L") would clip everything to white).
            arr = (arr >> 8 if arr.max() > 255 else arr).astype(np.uint8)
            im = Image.fromarray(arr, "L")
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        return np.asarray(im.convert("RGB"))


class Backdrop:
    """A picture or a clip to show behind the dancer (mode "replace"), as RGB at its own size: `still` is the
    picture; a clip's frames come from `next()` in order, decoded as it plays (one at a time, so memory stays
    flat), looped when shorter than the foreground, cut when longer, its audio ignored."""

    def __init__(self, still: np.ndarray | None = None, info: MediaInfo | None = None) -> None:
        self.still, self.info = still, info
        self._frames: Iterator[np.ndarray] | None = None

    def next(self) -> np.ndarray:
        for _ in range(2):      # at the end of the clip, start it again once
            if self._frames is None:
                self._frames = read_frames(self.info)
            frame = next(self._frames, None)
            if frame is not None:
                return frame
            self._frames = None
        raise InputError(f"{self.info.name} has no frames that could be decoded")

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()    # stops its ffmpeg
            self._frames = None


def open_backdrop(path: str | Path, limits: Limits, *, name: str | None = None) -> Backdrop:
    """The picture or clip at `path` as a Backdrop; InputError if it is neither, or too large, in a sentence
    calling it "the background `name`" (default: its own name)."""
    path = Path(path)
    what = f"the background {name or path.name}"
    if is_still_image(path):
        return Backdrop(still=read_image(path, limits, name=what))
    try:
        info = probe(path, name=what)
    except (FFmpegError, InputError):
        raise InputError(f"{what} is neither a picture nor a video that could be read") from None
    if max(info.width, info.height) > limits.max_side:
        raise InputError(f"{what} is {info.width}x{info.height}; the largest frame side allowed is "
                         f"{limits.max_side} pixels")
    return Backdrop(info=info)


# ------------------------------------------------------------------------------------------------- writers

def _even(n: int) -> int:
    return n + (n % 2)


class _Writer:
    """What every frame writer shares: the RGB(A) frame check, and `with`: close on success, abort on error."""

    width: int
    height: int
    alpha: bool

    def _check_rgb(self, frame: np.ndarray) -> None:
        channels = 4 if self.alpha else 3
        if frame.shape != (self.height, self.width, channels) or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.dtype}{frame.shape} does not match writer {self.height}x{self.width}x"
                             f"{channels}")

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_Writer):
    """Streams frames into an MP4 (H.264 + AAC, faststart), WebM (VP9 + Opus, alpha optional), MOV (Apple
    ProRes for editors: 4444 with alpha when `alpha`, else 422 HQ; the source's audio as AAC) or GIF.

    Frames are uint8 RGB (H, W, 3), or RGBA (H, W, 4) when `alpha=True` (WebM/MOV/GIF only). Odd sizes are
    padded to even by repeating the last row/column, since yuv420p cannot hold odd sizes. MP4/WebM also take
    I420 frames (see `write`) in `matrix` ("bt601" or "bt709"), which the file then declares.
    """

    def __init__(self, path: str | Path, fmt: str, width: int, height: int, fps_fraction: str, *,
                 alpha: bool = False, audio_from: MediaInfo | None = None, crf: int = 20,
                 gif_fps: float = 15.0, gif_long_side: int = 480, matrix: str = "bt601") -> None:
        if fmt not in ("mp4", "webm", "mov", "gif"):
            raise ValueError(f"unsupported video format {fmt}")
        if alpha and fmt == "mp4":
            raise ValueError("MP4 (H.264) has no alpha channel")
        self.path, self.fmt, self.alpha = Path(path), fmt, alpha
        self.width, self.height = width, height
        self.frames = 0
        pad = fmt != "gif"
        self.out_w, self.out_h = (_even(width), _even(height)) if pad else (width, height)
        # MP4/WebM get YUV 4:2:0 converted here (OpenCV: ~1 ms a 1080x1920 frame, a tenth of what ffmpeg's
        # RGB -> YUV scaler costs), in `matrix`, and the file says which, so every player turns it back into the
        # same RGB; GIF needs RGB for its palette anyway.
        self._yuv, self.matrix = fmt in ("mp4", "webm"), matrix
        pix_fmt = ("yuva420p" if alpha else "yuv420p") if self._yuv else ("rgba" if alpha else "rgb24")
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt=pix_fmt, s=f"{self.out_w}x{self.out_h}",
                             framerate=fps_fraction)
        if matrix not in ("bt601", "bt709"):
            raise ValueError(f"unsupported YUV matrix {matrix}")
        colour = {"colorspace": "smpte170m" if matrix == "bt601" else "bt709", "color_range": "tv",
                  "color_primaries": "bt709", "color_trc": "bt709"}
        audio = None
        if audio_from is not None and audio_from.has_audio and fmt != "gif":
            audio = ffmpeg.input(str(audio_from.path)).audio
        out_args: dict = {"format": fmt, "shortest": None} if audio is not None else {"format": fmt}
        if fmt in ("mp4", "mov") and audio is not None:
            same = audio_from.audio_codec == "aac"
            out_args.update(acodec="copy" if same else "aac", **({} if same else {"audio_bitrate": "160k"}))
        if fmt == "mp4":
            out_args.update(vcodec="libx264", pix_fmt="yuv420p", preset="ultrafast", crf=crf, movflags="+faststart",
                            **colour)
        elif fmt == "mov":
            # ProRes as Apple's encoders write it (vendor apl0): 4444 keeps the alpha (16-bit alpha plane), which
            # Premiere, Resolve, After Effects and Final Cut read as transparency; 422 HQ otherwise.
            out_args.update(vcodec="prores_ks", pix_fmt="yuva444p10le" if alpha else "yuv422p10le", vendor="apl0",
                            **{"profile:v": "4444" if alpha else "3"}, **colour)
        elif fmt == "webm":
            out_args.update(vcodec="libvpx-vp9", pix_fmt="yuva420p" if alpha else "yuv420p", crf=max(crf + 12, 30),
                            **{"b:v": 0, "deadline": "realtime", "cpu-used": 8, "row-mt": 1}, **colour)
            if audio is not None:
                out_args.update(acodec="libopus", audio_bitrate="128k")
        else:
            rate = min(Fraction(fps_fraction), Fraction(gif_fps).limit_denominator(1001))
            scale = min(1.0, gif_long_side / max(width, height))
            gw, gh = max(1, round(width * scale)), max(1, round(height * scale))
            split = video.filter("fps", fps=f"{rate.numerator}/{rate.denominator}") \
                .filter("scale", gw, gh, flags="lanczos").split()
            palette = split[0].filter("palettegen", stats_mode="diff", reserve_transparent=int(alpha))
            video = ffmpeg.filter([split[1], palette], "paletteuse", dither="bayer", bayer_scale=4,
                                  diff_mode="rectangle", alpha_threshold=128)
            out_args.update(loop=0)
        streams = [video] if audio is None else [video, audio]
        args = (ffmpeg.output(*streams, str(self.path), **out_args)
                .global_args("-nostdin", "-v", "error", "-y").compile(cmd=ffmpeg_exe()))
        if audio is not None:
            # The source's audio is optional (`?`): a stream that fails to map must not fail the job.
            args = [a + "?" if a.startswith("1:a") else a for a in args]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._tail = _StderrTail(self._proc.stderr)
        self._tail.start()

    def write(self, frame: np.ndarray) -> None:
        """One frame: RGB(A) at the writer's size, or (MP4/WebM) already YUV 4:2:0 at the even size: an I420
        array (H * 3 / 2, W), followed by an alpha plane when the writer has alpha (see app.compose)."""
        if self._yuv and frame.ndim < 3:
            size = self.out_w * self.out_h * (5 if self.alpha else 3) // 2
            if frame.dtype != np.uint8 or frame.size != size:
                raise ValueError(f"YUV frame of {frame.size} bytes does not match writer {self.out_w}x{self.out_h}")
            return self._send(frame)
        self._check_rgb(frame)
        if (self.out_h, self.out_w) != (self.height, self.width):
            frame = np.pad(frame, ((0, self.out_h - self.height), (0, self.out_w - self.width), (0, 0)), mode="edge")
        if self._yuv:
            yuv = to_i420(np.ascontiguousarray(frame[..., :3]) if self.alpha else frame, self.matrix)
            frame = np.concatenate([yuv.ravel(), frame[..., 3].ravel()]) if self.alpha else yuv
        self._send(frame)

    def _send(self, frame: np.ndarray) -> None:
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._proc.wait()
            self._tail.join()
            raise FFmpegError(f"ffmpeg stopped while writing {self.fmt}: {self._tail.text}") from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file; raises FFmpegError if ffmpeg failed."""
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        self._tail.join()
        if code != 0:
            raise FFmpegError(f"ffmpeg failed writing {self.fmt} (exit {code}): {self._tail.text}")

    def abort(self) -> None:
        """Stop ffmpeg at once; the caller deletes the partial file."""
        _stop(self._proc)
        self._tail.join()


class PngZipWriter(_Writer):
    """Streams frames into a ZIP of numbered PNGs (`frame_000001.png`, ...: RGB, or RGBA when `alpha`) that an
    editor imports as an image sequence, plus the source's audio as `audio.m4a` (copied when it is AAC, else
    re-encoded to AAC) when there is one. One PNG at a time goes into the
    archive: memory stays flat however long the clip. Same interface as VideoWriter."""

    def __init__(self, path: str | Path, width: int, height: int, *, alpha: bool = False,
                 audio_from: MediaInfo | None = None, compress_level: int = 1) -> None:
        self.path, self.fmt, self.alpha = Path(path), "zip", alpha
        self.width, self.height = width, height
        self.frames = 0
        self._audio_from = audio_from if audio_from is not None and audio_from.has_audio else None
        self._level = compress_level        # PNG's own deflate: 1 is fast and close in size to 9 on video frames
        # PNG is already compressed: the archive only stores it.
        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def write(self, frame: np.ndarray) -> None:
        self._check_rgb(frame)
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGBA2BGRA if self.alpha else cv2.COLOR_RGB2BGR)
        ok, png = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, self._level])
        if not ok:
            raise FFmpegError("could not encode a PNG frame")
        self.frames += 1
        self._zip.writestr(f"frame_{self.frames:06d}.png", png.tobytes())

    def close(self) -> None:
        """Add the audio (extracted by ffmpeg, copied when it is AAC) and finish the archive."""
        try:
            if self._audio_from is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    audio = Path(tmp) / "audio.m4a"
                    codec = ["-c:a", "copy"] if self._audio_from.audio_codec == "aac" else ["-c:a", "aac", "-b:a", "160k"]
                    run = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(self._audio_from.path),
                                          "-vn", "-map", "0:a:0", *codec, str(audio)], capture_output=True, text=True)
                    if run.returncode:
                        raise FFmpegError(f"ffmpeg could not copy the audio: {run.stderr[-500:]}")
                    self._zip.write(audio, "audio.m4a")
        finally:
            self._zip.close()

    def abort(self) -> None:
        self._zip.close()


def open_writer(path: str | Path, fmt: str, width: int, height: int, fps_fraction: str, *, alpha: bool = False,
                audio_from: MediaInfo | None = None, **kwargs) -> "VideoWriter | PngZipWriter":
    """The writer for an output format: a ZIP of PNGs, or a video file through ffmpeg (VideoWriter)."""
    if fmt == "zip":
        return PngZipWriter(path, width, height, alpha=alpha, audio_from=audio_from)
    return VideoWriter(path, fmt, width, height, fps_fraction, alpha=alpha, audio_from=audio_from, **kwargs)


def stream_info(path: str | Path) -> dict:
    """Codec facts of a written file (for tests and the UI): streams with codec, pix_fmt, frames, duration."""
    args = [ffprobe_exe() or "ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
            "-of", "json", str(path)]
    return json.loads(subprocess.run(args, capture_output=True, check=True).stdout)
