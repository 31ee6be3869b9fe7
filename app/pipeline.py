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

Every file is first looked at by `inspect` (photo or clip, by content; within the limits; errors in one sentence
that names the file as its owner knows it, `name`). The web page reaches the engine through this module alone:
`inspect` for an upload, `poster`, `served_weights`, `load_segmenter`, `segment_file`; `Segmenter`,
`session_files_ttl_s` and `tune_process` are named here for it, so that it imports nothing of `model` or
`app.video_io`.
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
from app.video_io import MediaInfo, image_size, is_still_image, open_backdrop, open_writer, probe, read_frames, \
    read_image
from model import Segmenter, settings
from model.checkpoint import publish
from model.focus import Focus
from model.matte import Frame, MatteStream
from model.refine import RefineOptions
from model.segmenter import inference_shape
from model.settings import session_files_ttl_s, tune_process     # not used here: named for the web page

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


@dataclass(frozen=True)
class Source:
    """A photo or clip that `inspect` accepted: what it is, how large, and what to call it."""

    path: Path
    name: str                   # what messages call it: the person's own name for the file
    kind: str                   # "video" or "image"
    width: int                  # as displayed (a clip's rotation applied)
    height: int
    info: MediaInfo | None = None   # a clip's probe: frame rate, frames, duration, audio, codec


_WHAT = {"video": "a video", "image": "a photo"}


def inspect(path: str | os.PathLike, limits: Limits, *, name: str | None = None) -> Source:
    """What the file at `path` is, decided by its content (never its name), and whether it is within `limits`:
    a photo by its header alone (nothing decoded), a clip by ffprobe. InputError with one sentence calling it
    `name` (default: the file's own name) when it is neither, or too large or too long."""
    path = Path(path)
    name = name or path.name
    if is_still_image(path):
        return Source(path, name, "image", *image_size(path, limits, name=name))
    info = probe(path, name=name)
    if max(info.width, info.height) > limits.max_side:
        raise InputError(f"{name} is {info.width}x{info.height}; the largest frame side allowed is "
                         f"{limits.max_side} pixels")
    if info.duration > limits.max_duration_s:
        raise InputError(f"{name} lasts {info.duration:.0f} s; the limit is {limits.max_duration_s:.0f} s")
    if info.frames > limits.max_frames:
        raise InputError(f"{name} has {info.frames} frames; the limit is {limits.max_frames}")
    return Source(path, name, "video", info.width, info.height, info)


def poster(source: Source) -> np.ndarray:
    """A clip's first frame (RGB): what to show where a browser cannot play the clip itself."""
    with closing(read_frames(source.info)) as frames:
        return next(frames)


def served_weights() -> Path:
    """The checkpoint the web app serves: SEGMENT_WEIGHTS, else the shipped default."""
    return settings.weights() or DEFAULT_WEIGHTS


def load_segmenter(weights: str | os.PathLike | None = None, *, preset: Preset | None = PRESETS[DEFAULT_PRESET],
                   warm: bool = False, **kwargs) -> Segmenter:
    """The model from `weights`, or the shipped default, at `preset`'s inference size (None: the size it was
    trained at); a clear InputError if there is none. `warm`: also load the video loop's compiled code now (a
    server: not during someone's first clip). Other arguments go to Segmenter.from_checkpoint."""
    path = Path(weights) if weights else DEFAULT_WEIGHTS
    if not path.is_file():
        if path != DEFAULT_WEIGHTS:
            raise InputError(f"weights file not found: {path}")
        raise InputError(f"no trained weights at {path}: pass --weights PATH to a .safetensors checkpoint, "
                         "or train one with `python -m train` (see README, 'Training')")
    if warm:
        from app.fused import warm as load_compiled      # numba: only for whoever asks

        load_compiled()
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
    the network on the one frame, and on its mirror image too: Segmenter.mirrored)."""
    return MatteStream(segmenter.mirrored() if still else segmenter, every=1 if still else preset.keyframe_every,
                       refine=refine, focus=Focus() if preset.focus else None)


def _renderer(options: RenderOptions, height: int, width: int, fmt: str, limits: Limits, **kwargs) -> compose.Render:
    """compose.renderer, with the background picture or clip that mode "replace" shows opened within `limits`."""
    return compose.renderer(options, height, width, fmt, **kwargs,
                            backdrop=lambda: open_backdrop(options.background_image, limits,
                                                           name=options.background_name))


def _temp_beside(dst: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=f".partial{dst.suffix}", dir=dst.parent)
    os.close(fd)
    return Path(name)


def _run(kind: str | None, src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None,
         on_progress: ProgressFn | None, segmenter: Segmenter | None, fmt: str | None, limits: Limits | None,
         name: str | None) -> Result:
    """What the entry points share: `inspect` the file once (refused if it is not the `kind` asked for; None: either
    kind), then the clip's or the photo's job on it."""
    limits = limits or Limits()
    source = inspect(src, limits, name=name)
    if kind is not None and source.kind != kind:
        raise InputError(f"{source.name} is {_WHAT[source.kind]}, not {_WHAT[kind]}: segment_file takes either")
    job = _segment_video if source.kind == "video" else _segment_image
    return job(source, dst, options, on_progress, segmenter=segmenter, fmt=fmt, limits=limits)


def _job(source: Source, dst: str | os.PathLike, options: RenderOptions | None,
         fmt: str | None) -> tuple[RenderOptions, Path, str]:
    """The defaults and the output-format check that both kinds of job start with."""
    fmt = fmt or format_from_path(dst)
    allowed = VIDEO_FORMATS if source.kind == "video" else IMAGE_FORMATS
    if fmt not in allowed:
        raise InputError(f"{_WHAT[source.kind]} can be saved as {', '.join(allowed)}, not {fmt}")
    return options or RenderOptions(), Path(dst), fmt


def segment_video(src: str | os.PathLike, dst: str | os.PathLike, options: RenderOptions | None = None,
                  on_progress: ProgressFn | None = None, *, segmenter: Segmenter | None = None,
                  fmt: str | None = None, limits: Limits | None = None, name: str | None = None) -> Result:
    """Segment every frame of a clip and write the composed video (MP4/WebM with the source's audio, or GIF).
    `name`: what error messages call the clip (default: its file's name)."""
    return _run("video", src, dst, options, on_progress, segmenter, fmt, limits, name)


def _segment_video(source: Source, dst: str | os.PathLike, options: RenderOptions | None,
                   on_progress: ProgressFn | None, *, segmenter: Segmenter | None, fmt: str | None,
                   limits: Limits) -> Result:
    options, dst, fmt = _job(source, dst, options, fmt)
    info = source.info
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
            raise InputError(f"{source.name} has no frames that could be decoded")
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
                  fmt: str | None = None, limits: Limits | None = None, name: str | None = None) -> Result:
    """Segment one photo and save the composed picture (PNG, JPEG or WebP). `name`: what error messages call it
    (default: its file's name)."""
    return _run("image", src, dst, options, on_progress, segmenter, fmt, limits, name)


def _segment_image(source: Source, dst: str | os.PathLike, options: RenderOptions | None,
                   on_progress: ProgressFn | None, *, segmenter: Segmenter | None, fmt: str | None,
                   limits: Limits) -> Result:
    options, dst, fmt = _job(source, dst, options, fmt)
    start = time.perf_counter()
    frame = read_image(source.path, limits, name=source.name)
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
                 on_progress: ProgressFn | None = None, *, segmenter: Segmenter | None = None,
                 fmt: str | None = None, limits: Limits | None = None, name: str | None = None) -> Result:
    """Photo or clip, decided by the file's content (never its name): `segment_image` or `segment_video`.
    `name`: what error messages call the file (the web page passes the upload's own name; default the file's)."""
    return _run(None, src, dst, options, on_progress, segmenter, fmt, limits, name)
