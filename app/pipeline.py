"""The one entry point for a job: a clip or photo in, the composed result out.

    >>> from app.options import PRESETS, RenderOptions
    >>> from app.pipeline import segment_file
    >>> result = segment_file("dance.mp4", "dance_cutout.mp4", RenderOptions(mode="cutout", preset=PRESETS["fast"]))
    >>> result.frames, result.seconds

Video is streamed through four stages joined by small bounded queues (app.stages), so they overlap on every core
and memory stays flat however long the clip: ffmpeg decodes, and a reader thread shrinks each frame for the
network; the caller's thread runs the matte stream (model.matte: the network on keyframes, the closer look at small
people, the matte carried to the frames between, the refinement at low resolution); a worker thread makes each
matte full size and composes in the output's colours (app.compose's mode table; for most modes over a clip's own
YUV in one compiled pass, app.fused); ffmpeg encodes. Results are written under a temporary name beside `dst` and
renamed into place only when complete: a half-written file never appears under the requested name, and nothing
is left behind on error.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app import compose
from app.options import DEFAULT_PRESET, IMAGE_FORMATS, PRESETS, VIDEO_FORMATS, YUV_FORMATS, InputError, Limits, \
    Preset, RenderOptions, format_from_path
from app.stages import Stage, batched
from app.video_io import MediaInfo, is_still_image, open_backdrop, open_writer, probe, read_frames, read_image
from model import Segmenter
from model.checkpoint import publish
from model.focus import Focus
from model.matte import Frame, MatteStream
from model.refine import RefineOptions
from model.segmenter import inference_shape

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


def load_segmenter(weights: str | os.PathLike | None = None, *, preset: Preset | None = PRESETS[DEFAULT_PRESET],
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
    return at_preset(segmenter, preset) if preset else segmenter


def at_preset(segmenter: Segmenter, preset: Preset) -> Segmenter:
    """The same network (shared, not copied) at `preset`'s inference size."""
    size = preset.infer_size(segmenter.spec.infer_size)
    return segmenter if size == segmenter.infer_size else segmenter.with_infer_size(size)


def matte_stream(segmenter: Segmenter, preset: Preset, refine: RefineOptions = RefineOptions(), *,
                 still: bool = False) -> MatteStream:
    """A clip's matte stream as `preset` runs it (its keyframe interval and second pass), or a photo's (`still`:
    the network on the one frame)."""
    return MatteStream(segmenter, every=1 if still else preset.keyframe_every, refine=refine,
                       focus=Focus() if preset.focus else None)


def _renderer(options: RenderOptions, height: int, width: int, fmt: str, limits: Limits, **kwargs) -> compose.Render:
    """compose.renderer, with the background picture or clip that mode "replace" shows opened within `limits`."""
    return compose.renderer(options, height, width, fmt, **kwargs,
                            backdrop=lambda: open_backdrop(options.background_image, limits))


def _temp_beside(dst: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=f".partial{dst.suffix}", dir=dst.parent)
    os.close(fd)
    return Path(name)


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
    segmenter = segmenter or load_segmenter(preset=options.preset)
    # MP4/WebM from an ordinary 8-bit 4:2:0 clip: the decoded YUV is used as it is (no conversion to RGB and
    # back; only the network's small copy is made RGB). Anything else is decoded to RGB.
    matrix = info.yuv_matrix if fmt in YUV_FORMATS else None
    small_h, small_w = inference_shape(info.height, info.width, segmenter.infer_size)

    def prepare(image: np.ndarray) -> Frame:
        """The frame as the matte stream needs it, made on the reader's thread."""
        if not matrix:
            return Frame.rgb(image, segmenter)
        small, grey = compose.shrink_i420(image, small_h, small_w, matrix)
        # the second look's crop is cut from the clip's own full-size planes
        return Frame(image, compose.planes(image)[0], small, grey,
                     lambda box, size: compose.crop_i420(image, box, *size, matrix))

    def frames() -> Iterator[Frame]:
        with closing(read_frames(info, pix_fmt="yuv420p" if matrix else "rgb24")) as reader:
            yield from map(prepare, reader)

    start = time.perf_counter()
    render = _renderer(options, info.height, info.width, fmt, limits, source="i420" if matrix else "rgb",
                       matrix=matrix or "bt601")
    (out_h, out_w), notes = render.size, list(render.notes)
    tmp = _temp_beside(dst)
    try:
        with closing(render), \
                open_writer(tmp, fmt, out_w, out_h, info.fps_fraction, alpha=render.alpha, audio_from=info,
                            crf=options.crf, gif_fps=options.gif_fps, gif_long_side=options.gif_long_side,
                            matrix=matrix or "bt601") as writer, \
                Stage.source(batched(frames(), options.batch_size), maxsize=2, name="segment-reader") as batches, \
                Stage.sink(lambda ready: writer.write(render.with_matte(*ready)), maxsize=2 * options.batch_size,
                           name="segment-compose") as composer:
            stream, done = matte_stream(segmenter, options.preset, options.refine), 0
            for batch in batches:
                for ready in stream.push(batch):
                    composer.put(ready)
                done += len(batch)
                if on_progress:
                    on_progress(Progress(done, max(info.frames, done), time.perf_counter() - start))
            for ready in stream.flush():
                composer.put(ready)
        if writer.frames == 0:
            raise InputError(f"{src.name} has no frames that could be decoded")
        publish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    if info.frames and abs(writer.frames - info.frames) > max(2, info.frames // 50):
        notes.append(f"the clip declared {info.frames} frames but {writer.frames} could be decoded")
    return Result(path=dst, kind="video", format=fmt, frames=writer.frames, seconds=time.perf_counter() - start,
                  width=out_w, height=out_h, fps=info.fps, has_audio=info.has_audio and fmt != "gif",
                  notes=tuple(notes))


def photo_matte(segmenter: Segmenter, frame: np.ndarray, options: RenderOptions) -> np.ndarray:
    """A still frame's alpha at full size, as the app makes a photo's: one network pass, the closer second look
    at small people when the preset takes it, then the refinement."""
    stream = matte_stream(segmenter, options.preset, options.refine, still=True)
    (still, matte), = stream.push([Frame.rgb(frame, segmenter)])
    return matte.alpha(still.guide)


def segment_image(src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None = None,
                  on_progress: ProgressFn | None = None, *, segmenter: Segmenter | None = None,
                  fmt: str | None = None, limits: Limits | None = None) -> Result:
    """Segment one photo and save the composed picture (PNG, JPEG or WebP)."""
    options, limits, src, dst, fmt = _job(src, dst, options, limits, fmt, IMAGE_FORMATS, "a photo")
    start = time.perf_counter()
    frame = read_image(src, limits)
    segmenter = segmenter or load_segmenter(preset=options.preset)
    h, w = frame.shape[:2]
    tmp = _temp_beside(dst)
    try:
        with closing(_renderer(options, h, w, fmt, limits)) as render:
            out = render(frame, photo_matte(segmenter, frame, options))
        Image.fromarray(out).save(tmp, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt],
                                  **({"quality": 92} if fmt != "png" else {}))
        if on_progress:     # before publishing: a stop raised here must not leave a finished file behind
            on_progress(Progress(1, 1, time.perf_counter() - start))
        publish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return Result(path=dst, kind="image", format=fmt, frames=1, seconds=time.perf_counter() - start,
                  width=out.shape[1], height=out.shape[0], notes=render.notes)


def segment_file(src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None = None,
                 on_progress: ProgressFn | None = None, **kwargs) -> Result:
    """Photo or clip, decided by the file's content (never its name)."""
    if is_still_image(src):
        return segment_image(src, dst, options, on_progress, **kwargs)
    return segment_video(src, dst, options, on_progress, **kwargs)
