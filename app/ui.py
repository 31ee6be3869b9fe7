"""The web page: drop in a clip or a photo, pick what you want back, watch it run, preview and download.

    streamlit run app/ui.py --server.address=0.0.0.0 --server.port=8501      # or: make run
    SEGMENT_WEIGHTS=runs/mine/best.safetensors make run                        # another checkpoint

Thin on purpose: the work goes through `app.pipeline`, which also judges each upload (`pipeline.inspect`); this page
turns widgets into `RenderOptions` and a `Result` into a preview and a download link. Of the project it imports
`app.pipeline`, `app.options` and `app.downloads` only (a test checks). It is the only module that imports
streamlit. `streamlit run` finds the `st.App` at the bottom and serves the page with one route of its own, which
streams results from disk (`app.downloads`).

Settings (environment, read in `model.settings`): SEGMENT_WEIGHTS (a .safetensors checkpoint, default
weights/default.safetensors); SEGMENT_MAX_DURATION_S, SEGMENT_MAX_FRAMES, SEGMENT_MAX_SIDE, SEGMENT_MAX_IMAGE_PIXELS
(`Limits.from_env`); SEGMENT_SESSION_FILES_TTL_S (idle sessions' files are removed after this, default 3600); the
upload size is Streamlit's own `server.maxUploadSize` (.streamlit/config.toml, megabytes).
"""

from __future__ import annotations

import dataclasses
import html
import logging
import mimetypes
import os
import re
import secrets
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from app import downloads, pipeline
from app.options import ALPHA_FORMATS, DEFAULT_PRESET, PRESETS, InputError, Limits, Preset, RefineOptions, \
    RenderOptions, parse_colour
from app.pipeline import Segmenter, Source

import streamlit as st

log = logging.getLogger("app.ui")

VIDEO_TYPES = ["mp4", "mov", "m4v", "webm", "mkv", "avi", "gif"]
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp"]
MODE_LABELS = {
    "cutout": "Cutout on a colour",
    "transparent": "Transparent cutout",
    "overlay": "Highlight overlay",
    "mask": "Black & white mask (matte for track matte / luma key)",
    "blur": "Blurred background",
    "replace": "New background (picture or clip)",
    "collage": "Side by side",
}
VIDEO_FORMATS = {"MP4": "mp4", "WebM": "webm", "GIF": "gif", "MOV (ProRes)": "mov", "PNG frames (ZIP)": "zip"}
IMAGE_FORMATS = {"PNG": "png", "JPG": "jpg", "WebP": "webp"}
MIME = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif", "png": "image/png", "jpg": "image/jpeg",
        "webp": "image/webp", "mov": "video/quicktime", "zip": "application/zip"}
# For an editor, not a browser: no preview, a line on where they go instead.
EDITOR_FORMATS = {"mov": "Apple ProRes (4444 with alpha for a transparent cutout, else 422 HQ): Premiere Pro, "
                         "After Effects, DaVinci Resolve and Final Cut Pro import it, transparency included.",
                  "zip": "Numbered PNG frames (with alpha for a transparent cutout) and the audio as audio.m4a: "
                         "Premiere Pro, After Effects and DaVinci Resolve import the frames as an image sequence "
                         "(Final Cut Pro does not: take the MOV there)."}
# Codecs Chromium/Firefox/Safari play in a <video>; anything else is previewed by its first frame.
PLAYABLE_CODECS = {"h264", "vp8", "vp9", "av1"}
PREVIEW_HEIGHT = 440   # px: a tall phone clip should not push everything else off the screen
GENERIC_ERROR = "Something went wrong while processing this file; please try again, or try another file."


# ----------------------------------------------------------------------------------------------- model

@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load_model(path: str, mtime_ns: int) -> Segmenter:
    # mtime in the key: new weights dropped in place are picked up without a restart.
    return pipeline.load_segmenter(path, warm=True)


def load_model() -> Segmenter:
    """The process-wide model (loaded once, shared by every session); InputError when there are no weights."""
    path = pipeline.served_weights()
    if not path.is_file():
        return pipeline.load_segmenter(path)  # raises the clear message
    return _load_model(str(path), path.stat().st_mtime_ns)


@st.cache_resource(max_entries=8)
def _at_size(_base: Segmenter, key: tuple, infer_size: int) -> Segmenter:
    # Shares the cached network (no copy of the weights, same backend); only the frame size fed to it differs.
    return _base.with_infer_size(infer_size)


def preset_model(base: Segmenter, preset: Preset) -> Segmenter:
    """The shared model at the preset's inference size (fast / balanced / quality, see app.options.PRESETS)."""
    size = preset.infer_size(base.spec.infer_size)
    if size == base.infer_size:
        return base
    return _at_size(base, (str(pipeline.served_weights()), id(base.network)), size)


# ------------------------------------------------------------------------------------------ session files

SCRATCH_PREFIX = "segment-ui-"


class Scratch:
    """A per-session temporary folder, deleted when the session's state is dropped or the process exits.

    Streamlit keeps a closed tab's session for a while and gives no end-of-session hook, so the folder is
    also touched on every rerun and swept by `sweep_stale` once idle for SEGMENT_SESSION_FILES_TTL_S.
    """

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def touch(self) -> None:
        self.path.mkdir(mode=0o700, exist_ok=True)   # swept while the tab sat idle: start afresh
        os.utime(self.path)

    def new_file(self, prefix: str, suffix: str = "") -> Path:
        # Random names only: an upload's own name never becomes part of a path.
        return self.path / f"{prefix}-{secrets.token_hex(8)}{suffix}"


def sweep_stale(ttl_s: float) -> None:
    """Remove session folders (of any session of any app process) that nobody touched for ttl_s seconds."""
    cutoff = time.time() - ttl_s
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


@dataclass(frozen=True)
class Upload:
    file_id: str
    name: str                       # as the user named it: for display, messages and the download name only
    path: Path                      # where it lies, under a random name
    size: int                       # bytes
    source: Source | None = None    # what it is (pipeline.inspect); None when refused
    error: str | None = None        # why it was refused, one sentence naming it by `name`
    token: str | None = None        # its preview's address on the download route (app.downloads)


def scratch() -> Scratch:
    if "scratch" not in st.session_state:
        sweep_stale(pipeline.session_files_ttl_s())
        st.session_state.scratch = Scratch()
    folder = st.session_state.scratch
    folder.touch()
    return folder


def _unlink(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _suffix(name: str, allowed: list[str]) -> str:
    """The upload's extension if it is one we accept (ffmpeg likes a hint), else none; never anything else."""
    ext = Path(name).suffix.lower().lstrip(".")
    return f".{ext}" if ext in allowed else ""


def safe_stem(name: str) -> str:
    stem = re.sub(r"[^\w\-]+", "_", Path(name).stem, flags=re.ASCII).strip("_.")[:60]
    return stem or "clip"


def take_upload(uploaded, limits: Limits, max_bytes: int) -> Upload:
    """Save the upload under a random name in this session's folder and find out what it is (pipeline.inspect:
    the engine's own checks, its sentences naming the file as the user named it)."""
    name = uploaded.name
    path = scratch().new_file("upload", _suffix(name, VIDEO_TYPES + IMAGE_TYPES))
    common = dict(file_id=uploaded.file_id, name=name, path=path, size=uploaded.size)
    if uploaded.size > max_bytes:
        return Upload(**common, error=f"{name} is {uploaded.size / 2**20:.0f} MB; uploads are limited to "
                                      f"{max_bytes / 2**20:.0f} MB")
    with open(path, "wb") as f:
        f.write(uploaded.getbuffer())
    try:
        source = pipeline.inspect(path, limits, name=name)
        return Upload(**common, source=source, token=downloads.offer(path, name, _preview_mime(path, source)))
    except InputError as exc:
        return Upload(**common, error=str(exc))
    except Exception:
        log.exception("could not inspect an upload")
        return Upload(**common, error=f"{name} could not be read: it is damaged or not a video or photo")


def _preview_mime(path: Path, source: Source) -> str:
    """What the browser is told the upload's preview is. A clip: WebM, else MP4, as st.video told it before (how
    Chromium and Firefox play H.264 in a MOV or MKV too); a picture or a GIF by its extension."""
    if source.kind == "image" or path.suffix == ".gif":
        return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return "video/webm" if path.suffix == ".webm" else "video/mp4"


def current_upload(uploaded, limits: Limits, max_bytes: int) -> Upload | None:
    """The session's upload, saved once per file (not on every rerun); the previous one's files removed."""
    held: Upload | None = st.session_state.get("upload")
    if held and not held.error and not held.path.is_file():   # swept while idle: save it again
        st.session_state.upload = held = None
    if uploaded is None or (held and held.file_id != uploaded.file_id):
        if held:
            downloads.withdraw(held.token)
            _unlink(held.path)
            clear_result()
            st.session_state.pop("error", None)
        st.session_state.upload = held = None
    if uploaded is not None and held is None:
        held = st.session_state.upload = take_upload(uploaded, limits, max_bytes)
        if held.error:
            _unlink(held.path)
    return held


def clear_result() -> None:
    result = st.session_state.pop("result", None)
    if result:
        downloads.withdraw(result.get("token"))
        _unlink(result["path"])


def background_image(uploaded) -> str | None:
    """The replacement background, saved once per file under a random name (messages call it by its own name:
    RenderOptions.background_name)."""
    held = st.session_state.get("background")
    if uploaded is None or (held and held[0] != uploaded.file_id):
        if held:
            _unlink(held[1])
        st.session_state.background = held = None
    if uploaded is not None and held is None:
        path = scratch().new_file("background", _suffix(uploaded.name, IMAGE_TYPES + VIDEO_TYPES))
        path.write_bytes(uploaded.getbuffer())
        held = st.session_state.background = (uploaded.file_id, path)
    return str(held[1]) if held else None


# ------------------------------------------------------------------------------------------------ text

def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def _size_text(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def facts(upload: Upload) -> str:
    size, source = _size_text(upload.size), upload.source
    if source.kind == "image":
        return f"Photo · {source.width}×{source.height} · {size}"
    info = source.info
    audio = "with audio" if info.has_audio else "no audio"
    return (f"Video · {info.width}×{info.height} · {info.duration:.1f} s · {info.fps:.3g} fps · "
            f"{info.frames} frames · {audio} · {size}")


def progress_text(p: pipeline.Progress) -> str:
    eta = f" · about {duration_text(p.eta)} left" if p.done < p.total else ""
    return f"{p.done} / {p.total} frames · {p.fps:.1f} fps{eta}"


# ----------------------------------------------------------------------------------------------- pieces

def sidebar(limits: Limits, max_mb: int) -> Segmenter | None:
    with st.sidebar:
        st.header("Model")
        try:
            model = load_model()
        except InputError as exc:
            st.error(f"No model is loaded: {exc}")
            return None
        except Exception:
            log.exception("could not load the model")
            st.error(f"The model at {pipeline.served_weights()} could not be loaded; see the server log.")
            return None
        iou = (model.metadata.get("metrics") or {}).get("val_iou")
        st.markdown(f"**{model.name}**")
        st.caption(f"validation IoU {iou:.3f}" if isinstance(iou, (int, float)) else "validation IoU not recorded")
        backend = {"int8": "ONNX Runtime, INT8", "onnx": "ONNX Runtime"}.get(getattr(model, "backend", ""), "PyTorch")
        st.caption(f"runs on {model.device_type.upper()} ({backend}) · frames shrunk to {model.infer_size} px "
                   f"({DEFAULT_PRESET.capitalize()})")
        st.header("Limits")
        st.caption(f"Uploads up to {max_mb} MB · clips up to {duration_text(limits.max_duration_s)} and "
                   f"{limits.max_frames} frames · frames up to {limits.max_side} px")
    return model


def fit_width(width: int, height: int) -> int:
    """Display width that keeps the picture at most PREVIEW_HEIGHT tall."""
    return max(120, min(720, round(width * PREVIEW_HEIGHT / max(height, 1))))


def _href(token: str) -> str:
    return downloads.url(token, st.get_option("server.baseUrlPath") or "")


def show_file(token: str, kind: str, width: int, *, loop: bool = False) -> None:
    """An upload or a result shown by the browser from this server's download route (app.downloads): read from
    disk as it plays, with HTTP ranges for seeking. Not st.video or st.image with the file: those read it whole
    into Streamlit's media store, in the server's memory for as long as the page shows it, and a clip or its
    result can be hundreds of megabytes. `kind`: "video" for a player, "image" for a picture (an animated GIF
    too)."""
    style = f"width: {width}px; max-width: 100%; display: block;"
    src = html.escape(_href(token))
    st.html(f'<video class="shown-file" src="{src}" controls playsinline{" loop" if loop else ""} '
            f'style="{style}"></video>' if kind == "video" else
            f'<img class="shown-file" src="{src}" alt="" style="{style}">')


def preview(upload: Upload) -> None:
    source = upload.source
    width = fit_width(source.width, source.height)
    if source.kind == "image" or source.info.video_codec == "gif":
        show_file(upload.token, "image", width)
    elif source.info.video_codec in PLAYABLE_CODECS:
        show_file(upload.token, "video", width)
    else:
        try:
            st.image(pipeline.poster(source), caption="first frame (this format does not play in the browser)",
                     width=width)
        except Exception:
            log.exception("no preview frame")


FORMAT_KEYS = {False: "format_video", True: "format_image"}   # one Format radio per kind, whatever the mode


def _keep_transparency() -> None:
    """The Output radio's callback: a transparent cutout moves the chosen format off one that cannot hold alpha
    (MP4, JPG) to the first that can; any other choice (MOV, a ZIP, ...) stays as the user left it."""
    if st.session_state.get("mode") != "transparent":
        return
    for key, formats in ((FORMAT_KEYS[False], VIDEO_FORMATS), (FORMAT_KEYS[True], IMAGE_FORMATS)):
        label = st.session_state.get(key)
        if label is not None and formats[label] not in ALPHA_FORMATS:
            st.session_state[key] = next(k for k, v in formats.items() if v in ALPHA_FORMATS)


def choose_options(upload: Upload | None) -> tuple[dict, str, str]:
    """The widgets; returns (RenderOptions keyword arguments, format, preset chosen)."""
    mode = st.radio("Output", list(MODE_LABELS), format_func=MODE_LABELS.get, key="mode", horizontal=True,
                    on_change=_keep_transparency)
    kwargs: dict = {"mode": mode}
    if mode in ("cutout", "collage"):
        kwargs["background"] = parse_colour(st.color_picker("Background colour", "#FFFFFF", key="colour"))
    elif mode == "overlay":
        kwargs["tint"] = parse_colour(st.color_picker("Highlight colour", "#FE2C55", key="tint"))
    elif mode == "blur":
        kwargs["blur_sigma"] = float(st.slider("Blur strength (0: automatic)", 0, 60, 0, key="blur"))
    elif mode == "replace":
        bg = st.file_uploader("Background picture or clip", type=IMAGE_TYPES + VIDEO_TYPES, key="background_upload",
                              help="A clip plays behind the dancer: looped when shorter, cut when longer, its sound "
                                   "left out.")
        kwargs["background_image"] = background_image(bg)
        kwargs["background_name"] = bg.name if bg is not None else None
    is_image = upload is not None and upload.source.kind == "image"
    formats = IMAGE_FORMATS if is_image else VIDEO_FORMATS
    labels = list(formats)
    if mode == "transparent":   # the formats that keep transparency first (the choice itself is kept: by name)
        labels.sort(key=lambda label: formats[label] not in ALPHA_FORMATS)
    # The key must not depend on the mode: a widget swapped for another on a mode change would swallow a click
    # made while the page reruns (the click lands on the outgoing radio), and would forget the user's choice.
    label = st.radio("Format", labels, key=FORMAT_KEYS[is_image], horizontal=True)
    preset = st.radio("Speed / quality", list(PRESETS), index=list(PRESETS).index(DEFAULT_PRESET), key="preset",
                      format_func=str.capitalize, horizontal=True,
                      help="Fast shrinks frames more before the model and runs it on fewer video frames (the "
                           "matte follows the motion between); Quality runs it larger, on every frame.")
    kwargs.update(advanced_options(preset))
    return kwargs, formats[label], kwargs["preset"]


def advanced_options(preset: str) -> dict:
    """The edge and steadiness settings the CLI has, folded away; their defaults are the preset's (the widgets'
    keys include the preset, so choosing another preset resets them to its values)."""
    d = RefineOptions()
    with st.expander("Advanced: edges and steadiness"):
        every = st.slider("Run the model on every k-th video frame", 1, 8, PRESETS[preset].keyframe_every,
                          key=f"every_{preset}",
                          help="1 runs it on every frame (slowest). Between two runs the matte follows the motion "
                               "along optical flow.")
        focus = st.toggle("Look again, closer, at small people", PRESETS[preset].focus, key=f"focus_{preset}",
                          help="When the people are small in the frame, the model runs a second time on a crop "
                               "around them (around each group when they are far apart), cut from the full-size "
                               "frame: more of the arms and hands.")
        temporal = st.slider("Steadiness", 0.0, 0.9, d.temporal, 0.05, key=f"smooth_{preset}",
                             help="How much of the previous frames' matte is kept where the picture does not move: "
                                  "calms flicker; 0 is off.")
        low = st.slider("Edge levels: transparent below", 0.0, 0.45, d.levels[0], 0.05, key=f"low_{preset}",
                        help="Alpha under this becomes fully transparent: clears the faint haze over busy "
                             "backgrounds. 0 keeps every faint edge.")
        high = st.slider("Edge levels: opaque above", 0.55, 1.0, d.levels[1], 0.05, key=f"high_{preset}",
                         help="Alpha over this becomes fully opaque: solid bodies, softer only at the very edge. "
                              "1 keeps the model's own softness.")
    return {"preset": dataclasses.replace(PRESETS[preset], keyframe_every=every, focus=focus),
            "refine": RefineOptions(temporal=temporal, levels=(low, high))}


def run_job(upload: Upload, kwargs: dict, fmt: str, model: Segmenter, limits: Limits) -> None:
    """Run the pipeline with a live progress bar; keep the result (or the error sentence) in the session."""
    st.session_state.pop("error", None)
    if kwargs["mode"] == "replace" and not kwargs.get("background_image"):
        st.session_state.error = "Choose a background picture or clip for 'New background', then run again."
        return
    folder = scratch()
    dst = folder.new_file("result", f".{fmt}")
    bar = st.progress(0.0, text="Starting…")
    last = [0.0]

    def on_progress(p: pipeline.Progress) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25 or p.done >= p.total:   # a few updates a second is plenty for the page
            last[0] = now
            folder.touch()   # a long job is not an idle session
            bar.progress(min(1.0, p.done / max(p.total, 1)), text=progress_text(p))

    try:
        options = RenderOptions(**kwargs)
        result = pipeline.segment_file(upload.path, dst, options, on_progress, segmenter=model, fmt=fmt,
                                       limits=limits, name=upload.name)
    except InputError as exc:
        _unlink(dst)
        bar.empty()
        st.session_state.error = str(exc)
        return
    except Exception:
        _unlink(dst)
        bar.empty()
        log.exception("processing failed")
        st.session_state.error = GENERIC_ERROR
        return
    except BaseException:   # Streamlit stopping the run (a widget changed, the tab closed): keep nothing
        _unlink(dst)
        raise
    bar.progress(1.0, text=f"Done: {result.frames} frame{'s' * (result.frames != 1)} in "
                           f"{result.seconds:.1f} s ({result.speed:.1f} fps)")
    clear_result()
    file_name = f"{safe_stem(upload.name)}_{kwargs['mode']}.{result.format}"
    st.session_state.result = {
        "path": result.path, "kind": result.kind, "format": result.format, "frames": result.frames,
        "seconds": result.seconds, "width": result.width, "height": result.height, "has_audio": result.has_audio,
        "notes": result.notes, "file_name": file_name, "upload_id": upload.file_id,
        "token": downloads.offer(result.path, file_name, MIME[result.format]),
    }


def show_result(result: dict) -> None:
    st.subheader("Result")
    path, fmt = result["path"], result["format"]
    left, right = st.columns([3, 2], gap="large")
    with left:
        # Before and after side by side (Streamlit stacks the two columns on a narrow screen), so the cutout can be
        # judged without downloading it.
        upload = st.session_state.get("upload")
        before, after = st.columns(2) if upload is not None and not upload.error else (None, st.container())
        if before is not None:
            with before:
                st.caption("Before")
                preview(upload)
        with after:
            if before is not None:
                st.caption("After")
            width = fit_width(result["width"], result["height"])
            if fmt in ("mp4", "webm"):
                show_file(result["token"], "video", width, loop=True)
            elif fmt in EDITOR_FORMATS:
                st.info(EDITOR_FORMATS[fmt] + " Browsers cannot play it: download it.")
            else:
                show_file(result["token"], "image", width)
    with right:
        what = f"{result['frames']} frames" if result["kind"] == "video" else "photo"
        audio = " · audio kept" if result["has_audio"] else ""
        st.markdown(f"**{result['file_name']}**")
        st.caption(f"{fmt.upper()} · {result['width']}×{result['height']} · {what}{audio} · "
                   f"{_size_text(path.stat().st_size)} · made in {result['seconds']:.1f} s")
        for note in result["notes"]:
            st.info(note)
        download_link(result, f"Download {fmt.upper()}")


def download_link(result: dict, label: str) -> None:
    """A link to the result on this server's download route (app.downloads), drawn like the primary button.

    Not `st.download_button`: that holds the whole file in the server's memory, and a ProRes MOV or a ZIP of a
    long clip is gigabytes; the route streams it from disk. A plain link: clicking it does not rerun the script.
    """
    href = _href(result["token"])
    colour = st.get_option("theme.primaryColor") or "#fe2c55"
    st.html(f"""<style>
a.download-result {{ display: flex; align-items: center; justify-content: center; gap: 0.5rem; width: 100%;
  box-sizing: border-box; min-height: 2.5rem; padding: 0.25rem 0.75rem; border-radius: 0.5rem;
  background: {colour}; color: #fff !important; text-decoration: none !important; font-weight: 400; }}
a.download-result:hover {{ filter: brightness(0.92); }}
a.download-result:focus-visible {{ outline: 2px solid {colour}; outline-offset: 2px; }}
</style><a class="download-result" href="{html.escape(href)}" download="{html.escape(result['file_name'])}"
   type="{MIME[result['format']]}"><span aria-hidden="true">&#x2913;</span>{html.escape(label)}</a>""")


# ------------------------------------------------------------------------------------------------- page

def main() -> None:
    st.set_page_config(page_title="Dance cutout", page_icon="🕺", layout="wide")
    limits = Limits.from_env()
    max_mb = int(st.get_option("server.maxUploadSize"))
    scratch()   # this session is alive
    result = st.session_state.get("result")
    if result and not result["path"].is_file():   # swept while the tab sat idle
        del st.session_state.result
    model = sidebar(limits, max_mb)

    st.title("Dance cutout")
    st.caption("Cut the dancer out of a TikTok clip or a photo: a mask, a highlight, a cutout on any colour, "
               "a transparent cutout, a blurred or new background, or all side by side.")
    if model is None:
        st.error("The app has no model to run, so it cannot process files yet; see the sidebar.")

    left, right = st.columns([3, 2], gap="large")
    with left:
        uploaded = st.file_uploader("Clip or photo", type=VIDEO_TYPES + IMAGE_TYPES, key="upload_widget",
                                    help=f"Videos: {', '.join(VIDEO_TYPES)}. Photos: {', '.join(IMAGE_TYPES)}.")
        upload = current_upload(uploaded, limits, max_mb * 2**20)
        if upload and upload.error:
            st.error(upload.error)
        elif upload:
            preview(upload)
            st.caption(facts(upload))
    with right:
        kwargs, fmt, preset = choose_options(upload if upload and not upload.error else None)
        ready = model is not None and upload is not None and not upload.error
        clicked = st.button("Run", type="primary", disabled=not ready, key="run", width="stretch",
                            icon=":material/play_arrow:")

    if clicked and ready:
        run_job(upload, kwargs, fmt, preset_model(model, preset), limits)
    if st.session_state.get("error"):
        st.error(st.session_state.error)
    if st.session_state.get("result"):
        show_result(st.session_state.result)


if __name__ == "__main__":   # how `streamlit run` executes the page (on every rerun); importing it runs nothing
    pipeline.tune_process()
    main()
elif __name__ == "ui":
    # How `streamlit run app/ui.py` starts the server: it finds this st.App, imports this file as the module `ui`
    # and serves it: Streamlit's own routes plus the download route. (Imported as `app.ui`, nothing is made.)
    streamlit_app = st.App(__file__, routes=downloads.routes(st.get_option("server.baseUrlPath") or ""))
