"""The one entry point for a job: a clip or photo in, the composed result out.

    >>> from app.options import RenderOptions
    >>> from app.pipeline import segment_file
    >>> result = segment_file("dance.mp4", "dance_cutout.mp4", RenderOptions(mode="cutout"))
    >>> result.frames, result.seconds

Video is streamed through four stages joined by small bounded queues, so they overlap on every core and memory
stays flat however long the clip: ffmpeg decodes, and a reader thread shrinks each frame for the network; the
caller's thread runs the matte stream (model.matte: the network on keyframes, the closer look at small people,
the matte carried to the frames between, the refinement at low resolution); a worker thread makes each matte
full size and composes in YUV (for most modes in one compiled pass, app.fused); ffmpeg encodes. Results are written under a temporary name beside `dst` and
renamed into place only when complete: a half-written file never appears under the requested name, and nothing
is left behind on error.
"""

from __future__ import annotations

import os
import queue
from contextlib import closing
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app import compose
from app.options import ALPHA_FORMATS, DEFAULT_PRESET, IMAGE_FORMATS, VIDEO_FORMATS, InputError, Limits, \
    RenderOptions, format_from_path, preset_infer_size
from app.video_io import FFmpegError, MediaInfo, open_writer, probe, read_frames
from model import Segmenter
from model.segmenter import inference_shape
from model.checkpoint import publish
from model.focus import Focus
from model.matte import Frame, MatteStream
from model.refine import Matte

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.safetensors"


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed: float

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        return (self.total - self.done) / self.fps if self.fps > 0 and self.total > self.done else 0.0


@dataclass(frozen=True)
class Result:
    path: Path
    kind: str                   # "video" or "image"
    format: str
    frames: int
    seconds: float              # wall time of the job
    width: int
    height: int
    fps: float = 0.0            # of the clip (0 for photos)
    has_audio: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def speed(self) -> float:
        """Frames processed per wall second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


ProgressFn = Callable[[Progress], None]


def load_segmenter(weights: str | os.PathLike | None = None, *, preset: str | None = DEFAULT_PRESET,
                   **kwargs) -> Segmenter:
    """The model from `weights`, or the shipped default, at `preset`'s inference size (None: the size it was
    trained at); a clear InputError if there is none. Other arguments go to Segmenter.from_checkpoint."""
    path = Path(weights) if weights else DEFAULT_WEIGHTS
    if not path.is_file():
        if weights:
            raise InputError(f"weights file not found: {path}")
        raise InputError(f"no trained weights at {path}: pass --weights PATH to a .safetensors checkpoint, "
                         "or train one with `python -m train` (see README, 'Training')")
    kwargs.setdefault("backend", "auto")
    segmenter = Segmenter.from_checkpoint(path, **kwargs)
    return segmenter.with_infer_size(preset_infer_size(segmenter.spec.infer_size, preset)) if preset else segmenter


def _render_fn(options: RenderOptions, height: int, width: int, fmt: str, limits: Limits | None = None, *,
               source: str = "rgb", matrix: str = "bt601") -> tuple[Callable, bool, list[str]]:
    """(frame, alpha) -> output frame for these options; whether it carries alpha; notes for the user.

    Frames come in as RGB, or (`source="i420"`, MP4/WebM only) as the clip's own decoded I420 in `matrix`.
    Photos and GIFs come out as RGB(A). MP4 and WebM come out as I420, what their encoders take: composing in
    YUV is the same picture for a third of the work, and saves converting every result (see app.compose)."""
    notes: list[str] = []
    mode = options.mode
    yuv = fmt in ("mp4", "webm")
    if source == "i420" and not (yuv and height % 2 == 0 and width % 2 == 0):
        raise ValueError("I420 frames need an even size and an MP4 or WebM output")
    if yuv and (height % 2 or width % 2):      # 4:2:0 needs even sizes: repeat the last row / column
        inner, alpha, notes = _render_fn(options, height + height % 2, width + width % 2, fmt, limits,
                                         matrix=matrix)
        pad = ((0, height % 2), (0, width % 2))
        return (lambda f, a: inner(np.pad(f, pad + ((0, 0),), mode="edge"), np.pad(a, pad, mode="edge"))), \
            alpha, notes
    conv = (lambda rgb: compose.to_i420(rgb, matrix)) if yuv else np.asarray
    frame_in = np.asarray if source == "i420" or not yuv else conv     # the frame as the output's colours
    blend = compose.blend_i420 if yuv else compose.blend
    weight = compose.weight
    # Backgrounds and colours are made once per clip, in the output's colour space, rather than once per frame.
    solid = lambda colour: conv(np.full((height, width, 3), colour, np.uint8))  # noqa: E731
    if mode == "transparent" and fmt in ALPHA_FORMATS:
        if yuv:   # yuva420p: the I420 frame, then the alpha plane
            return (lambda f, a: np.concatenate([frame_in(f).reshape(-1), compose.alpha8(a).reshape(-1)])), \
                True, notes
        return compose.transparent, True, notes
    if mode in ("mask", "collage"):
        white, black = solid((255, 255, 255)), solid((0, 0, 0))
    if mode == "mask":
        return _Blend(lambda f: white, lambda f: black, 0.0, 1.0, yuv), False, notes
    if mode == "overlay":
        tint = solid(options.tint)
        return _Blend(frame_in, lambda f: tint, 1.0, -options.opacity, yuv), False, notes
    if mode == "blur":
        sigma = options.blur_sigma or max(2.0, min(height, width) / 40)
        if source == "i420":
            return _Blend(np.asarray, lambda f: compose.blurred_i420(f, sigma), 0.0, 1.0, yuv), False, notes
        return _Blend(conv, lambda f: conv(compose.blurred(f, sigma)), 0.0, 1.0, yuv), False, notes
    if mode == "replace":      # a picture, or a clip that plays behind the dancer frame by frame
        backdrop = _backdrop(Path(options.background_image), height, width, limits or Limits(), conv)
        return _Blend(frame_in, backdrop, 0.0, 1.0, yuv), False, notes
    if mode == "transparent":
        bg = conv(compose.checkerboard(height, width))
        notes.append(f"{fmt.upper()} cannot store transparency, so the background is drawn as a checkerboard; "
                     "choose MOV (ProRes 4444), WebM, a ZIP of PNGs, GIF or PNG for a truly transparent file")
    else:
        bg = solid(options.background)
    if mode == "collage":
        stack = compose.hstack_i420 if yuv else (lambda parts: np.concatenate(parts, axis=1))

        def collage(f, a):
            w, f = weight(a), frame_in(f)
            return stack([f, blend(white, black, w), blend(f, bg, w)])
        return collage, False, notes
    return _Blend(frame_in, lambda f: bg, 0.0, 1.0, yuv), False, notes


@dataclass(frozen=True)
class _Blend:
    """A mode that is one blend: fg(frame) over bg(frame), weighted per pixel by w0 + w1 * alpha. Called as
    (frame, alpha) like every render function; for I420 it can also take the matte still at low resolution
    (`fused`: enlarged and applied in the same pass as the blend, see app.fused)."""

    fg: Callable
    bg: Callable
    w0: float
    w1: float
    yuv: bool

    def __call__(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        w = compose.weight(alpha) if (self.w0, self.w1) == (0.0, 1.0) else self.w0 + self.w1 * compose.weight(alpha)
        return (compose.blend_i420 if self.yuv else compose.blend)(self.fg(frame), self.bg(frame), w)

    def fused(self, frame: np.ndarray, luma: np.ndarray, matte: Matte) -> np.ndarray:
        """The same picture from the matte still at low resolution: enlarged and applied in the blend's pass."""
        from app.fused import matte_blend_i420

        return matte_blend_i420(matte, luma, self.fg(frame), self.bg(frame), self.w0, self.w1)


class _ClipBackground:
    """A background clip behind the dancer: each call gives its next frame, fitted to cover the output (no bars,
    no squashing) in the output's colours; looped when shorter than the foreground, cut when longer, its audio
    ignored. Decoded as it plays (one frame at a time), so memory stays flat. Called in frame order."""

    def __init__(self, info: MediaInfo, height: int, width: int, conv: Callable) -> None:
        self.info, self.height, self.width, self.conv = info, height, width, conv
        self._frames: Iterator[np.ndarray] | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        for _ in range(2):      # at the end of the clip, start it again once
            if self._frames is None:
                self._frames = read_frames(self.info)
            nxt = next(self._frames, None)
            if nxt is not None:
                return self.conv(compose.fit_cover(nxt, self.height, self.width))
            self._frames = None
        raise InputError(f"the background {self.info.path.name} has no frames that could be decoded")

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()    # stops its ffmpeg
            self._frames = None


def _close_background(render: Callable) -> None:
    """Stop a background clip's decoder at the end of a job (or when it fails)."""
    close = getattr(getattr(render, "bg", None), "close", None)
    if close is not None:
        close()


def _backdrop(path: Path, height: int, width: int, limits: Limits, conv: Callable) -> Callable:
    """frame -> background frame for mode "replace": a picture (made once) or a clip (_ClipBackground)."""
    if is_still_image(path):
        still = conv(compose.fit_cover(_load_rgb(path, limits), height, width))
        return lambda f: still
    try:
        info = probe(path)
    except (FFmpegError, InputError):
        raise InputError(f"the background {path.name} is neither a picture nor a video that could be read") from None
    if max(info.width, info.height) > limits.max_side:
        raise InputError(f"the background {path.name} is {info.width}x{info.height}; the largest frame side "
                         f"allowed is {limits.max_side} pixels")
    return _ClipBackground(info, height, width, conv)


def _output_size(options: RenderOptions, height: int, width: int, fmt: str) -> tuple[int, int]:
    if fmt in ("mp4", "webm"):      # composed at even size (see _render_fn)
        height, width = height + height % 2, width + width % 2
    return height, width * 3 if options.mode == "collage" else width


def _temp_beside(dst: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=f".partial{dst.suffix}", dir=dst.parent)
    os.close(fd)
    return Path(name)


def _background(iterable: Iterable, maxsize: int) -> Iterator:
    """Run an iterator in a thread, handing items over through a bounded queue (errors re-raised here)."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()
    end = object()

    def work() -> None:
        it = iter(iterable)
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            q.put(end)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


class _Sink:
    """Calls `fn(item)` on a worker thread fed by a bounded queue; its errors surface on the next put or close."""

    _END = object()

    def __init__(self, fn: Callable, maxsize: int) -> None:
        self._fn, self._q, self._error = fn, queue.Queue(maxsize), None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is self._END or self._stop.is_set():
                return
            try:
                self._fn(item)
            except BaseException as exc:
                self._error = exc
                self._stop.set()
                return

    def put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if self._error:
            raise self._error

    def close(self) -> None:
        """Wait until every item is handled; re-raise the worker's error if it had one."""
        self.put(self._END)
        self._thread.join()
        if self._error:
            raise self._error

    def abort(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:  # wake a worker waiting on an empty queue; make room if it is full
                self._q.put_nowait(self._END)
            except queue.Full:
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    pass
            self._thread.join(timeout=0.1)


def _batches(frames: Iterator, size: int) -> Iterator[list]:
    """Lists of `size` items; closing it closes `frames` (and so stops a reader's ffmpeg) at once."""
    with closing(frames):
        batch: list = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def check_video_limits(info: MediaInfo, limits: Limits) -> None:
    if max(info.width, info.height) > limits.max_side:
        raise InputError(f"{info.path.name} is {info.width}x{info.height}; the largest frame side allowed is "
                         f"{limits.max_side} pixels")
    if info.duration > limits.max_duration_s:
        raise InputError(f"{info.path.name} lasts {info.duration:.0f} s; the limit is {limits.max_duration_s:.0f} s")
    if info.frames > limits.max_frames:
        raise InputError(f"{info.path.name} has {info.frames} frames; the limit is {limits.max_frames}")


def _job(src, dst, options: RenderOptions | None, limits: Limits | None, fmt: str | None,
         allowed: tuple[str, ...], what: str) -> tuple[RenderOptions, Limits, Path, Path, str]:
    """The defaults and the output-format check that both entry points start with."""
    fmt = fmt or format_from_path(dst)
    if fmt not in allowed:
        raise InputError(f"{what} can be saved as {', '.join(allowed)}, not {fmt}")
    return options or RenderOptions(), limits or Limits(), Path(src), Path(dst), fmt


def segment_video(src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None = None,
                  on_progress: ProgressFn | None = None, *, segmenter: Segmenter | None = None,
                  fmt: str | None = None, limits: Limits | None = None) -> Result:
    """Segment every frame of a clip and write the composed video (MP4/WebM with the source's audio, or GIF)."""
    options, limits, src, dst, fmt = _job(src, dst, options, limits, fmt, VIDEO_FORMATS, "a video")
    info = probe(src)
    check_video_limits(info, limits)
    segmenter = segmenter or load_segmenter()
    # MP4/WebM from an ordinary 8-bit 4:2:0 clip: the decoded YUV is used as it is (no conversion to RGB and
    # back; only the network's small copy is made RGB). Anything else is decoded to RGB.
    matrix = info.yuv_matrix if fmt in ("mp4", "webm") else None
    source = "i420" if matrix else "rgb"
    render, alpha, notes = _render_fn(options, info.height, info.width, fmt, limits, source=source,
                                      matrix=matrix or "bt601")
    out_h, out_w = _output_size(options, info.height, info.width, fmt)
    small_h, small_w = inference_shape(info.height, info.width, segmenter.infer_size)

    focus = Focus() if options.focus else None

    def prepare(image: np.ndarray) -> Frame:
        """The frame as the matte stream needs it, made on the reader's thread."""
        if not matrix:
            return Frame.rgb(image, segmenter)
        small, grey = compose.shrink_i420(image, small_h, small_w, matrix)
        # the second look's crop is cut from the clip's own full-size planes
        return Frame(image, compose.planes(image)[0], small, grey,
                     lambda box, size: compose.crop_i420(image, box, *size, matrix))

    start = time.perf_counter()
    tmp = _temp_beside(dst)
    try:
        writer = open_writer(tmp, fmt, out_w, out_h, info.fps_fraction, alpha=alpha, audio_from=info,
                             crf=options.crf, gif_fps=options.gif_fps, gif_long_side=options.gif_long_side,
                             matrix=matrix or "bt601")
        # The common case, a clip's own YUV blended in one mode: the matte is enlarged and applied in the same
        # pass as the blend (app.fused), a fifth of the step-by-step cost on a 1080x1920 frame.
        fused = isinstance(render, _Blend) and source == "i420"

        def finish(item: tuple[Frame, Matte]) -> None:
            frame, matte = item
            if fused:
                writer.write(render.fused(frame.image, frame.guide, matte))
            else:
                writer.write(render(frame.image, matte.alpha(frame.guide)))

        def frames() -> Iterator[Frame]:
            with closing(read_frames(info, pix_fmt="yuv420p" if matrix else "rgb24")) as reader:
                yield from map(prepare, reader)

        with writer, closing(_background(_batches(frames(), options.batch_size), maxsize=2)) as batches:
            sink = _Sink(finish, maxsize=2 * options.batch_size)
            try:
                done = 0
                stream = MatteStream(segmenter, every=options.keyframe_every, refine=options.refine, focus=focus)
                for batch in batches:
                    for ready in stream.push(batch):
                        sink.put(ready)
                    done += len(batch)
                    if on_progress:
                        on_progress(Progress(done, max(info.frames, done), time.perf_counter() - start))
                for ready in stream.flush():
                    sink.put(ready)
                sink.close()
            finally:
                sink.abort()
        if writer.frames == 0:
            raise InputError(f"{src.name} has no frames that could be decoded")
        publish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        _close_background(render)
    if info.frames and abs(writer.frames - info.frames) > max(2, info.frames // 50):
        notes.append(f"the clip declared {info.frames} frames but {writer.frames} could be decoded")
    return Result(path=dst, kind="video", format=fmt, frames=writer.frames, seconds=time.perf_counter() - start,
                  width=out_w, height=out_h, fps=info.fps, has_audio=info.has_audio and fmt != "gif",
                  notes=tuple(notes))


def _load_rgb(path: Path, limits: Limits) -> np.ndarray:
    """Any still image as upright uint8 RGB: grayscale, palette, RGBA (over white), 16-bit, CMYK, EXIF-rotated."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > limits.max_image_pixels:
                raise InputError(f"{path.name} is {im.width}x{im.height}; images are limited to "
                                 f"{limits.max_image_pixels // 1_000_000} megapixels")
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
    except Image.DecompressionBombError:
        raise InputError(f"{path.name} is far too large: images are limited to "
                         f"{limits.max_image_pixels // 1_000_000} megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path.name} could not be read as an image: it is damaged or not a picture") from None


def is_still_image(path: str | os.PathLike) -> bool:
    """True for a single-picture file (by content, not by name); animated GIF/WebP count as video."""
    try:
        with Image.open(path) as im:
            return getattr(im, "n_frames", 1) == 1
    except Image.DecompressionBombError:
        return True     # a picture, just far too big: the image path says so in a sentence
    except Exception:   # anything PIL cannot open is for ffprobe to judge
        return False


def photo_matte(segmenter: Segmenter, frame: np.ndarray, options: RenderOptions) -> np.ndarray:
    """A still frame's alpha at full size, as the app makes a photo's: one network pass, the closer second look
    at small people when `options.focus`, then the refinement."""
    stream = MatteStream(segmenter, refine=options.refine, focus=Focus() if options.focus else None)
    (still, matte), = stream.push([Frame.rgb(frame, segmenter)])
    return matte.alpha(still.guide)


def segment_image(src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None = None,
                  on_progress: ProgressFn | None = None, *, segmenter: Segmenter | None = None,
                  fmt: str | None = None, limits: Limits | None = None) -> Result:
    """Segment one photo and save the composed picture (PNG, JPEG or WebP)."""
    options, limits, src, dst, fmt = _job(src, dst, options, limits, fmt, IMAGE_FORMATS, "a photo")
    start = time.perf_counter()
    frame = _load_rgb(src, limits)
    segmenter = segmenter or load_segmenter()
    h, w = frame.shape[:2]
    render, _, notes = _render_fn(options, h, w, fmt, limits)
    out = render(frame, photo_matte(segmenter, frame, options))
    tmp = _temp_beside(dst)
    try:
        Image.fromarray(out).save(tmp, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt],
                                  **({"quality": 92} if fmt != "png" else {}))
        if on_progress:     # before publishing: a stop raised here must not leave a finished file behind
            on_progress(Progress(1, 1, time.perf_counter() - start))
        publish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
        _close_background(render)
    return Result(path=dst, kind="image", format=fmt, frames=1, seconds=time.perf_counter() - start,
                  width=out.shape[1], height=out.shape[0], notes=tuple(notes))


def segment_file(src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None = None,
                 on_progress: ProgressFn | None = None, **kwargs) -> Result:
    """Photo or clip, decided by the file's content (never its name)."""
    if is_still_image(src):
        return segment_image(src, dst, options, on_progress, **kwargs)
    return segment_video(src, dst, options, on_progress, **kwargs)
