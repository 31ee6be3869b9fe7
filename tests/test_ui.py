"""The Streamlit page through Streamlit's AppTest (no browser): upload, run, result, download, errors, cleanup.

The page runs the tiny random model (SEGMENT_WEIGHTS), so these tests check the plumbing, not the quality.
"""

from __future__ import annotations

import gc
import io
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app import downloads, pipeline
from tests.ui_helpers import REPO, probe_streams

UI = str(REPO / "app" / "ui.py")


@pytest.fixture
def page(monkeypatch, tiny_weights):
    monkeypatch.setenv("SEGMENT_WEIGHTS", str(tiny_weights))
    at = AppTest.from_file(UI, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "application/octet-stream") -> AppTest:
    at.file_uploader(key="upload_widget").upload(name, data, mime)
    at.run()
    assert not at.exception, at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.button(key="run").click()
    at.run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def download_links(at: AppTest) -> list[dict]:
    """The page's download links (st.html): label, the file name offered, and what the server would send."""
    links = []
    for h in at.get("html"):
        for href, name, label in re.findall(r'<a class="download-result" href="([^"]+)" download="([^"]+)"[^>]*>'
                                            r'<span[^>]*>[^<]*</span>([^<]+)</a>', h.value):
            assert href.startswith("/download/"), href
            links.append({"label": label, "name": name, "offer": downloads.lookup(href.rsplit("/", 1)[1])})
    return links


def shown_files(at: AppTest) -> list[tuple[str, object]]:
    """The uploads and results the page shows (st.html <video>/<img> on the download route): (tag, its offer)."""
    shown = []
    for h in at.get("html"):
        for tag, src in re.findall(r'<(video|img) class="shown-file" src="([^"]+)"', h.value):
            assert src.startswith("/download/"), src
            shown.append((tag, downloads.lookup(src.rsplit("/", 1)[1])))
    return shown


def test_sidebar_names_the_model_and_its_iou(page):
    assert [m.value for m in page.sidebar.markdown] == ["**tiny-random**"]
    captions = [c.value for c in page.sidebar.caption]
    assert "validation IoU 0.000" in captions
    # the tiny model was trained at 128 px; the default (balanced) preset runs it at 1.2x that
    assert any(c.startswith("runs on CPU (ONNX Runtime) · frames shrunk to 160 px (Balanced)") for c in captions), \
        captions
    assert page.button(key="run").disabled, "nothing to run before an upload"


def test_clip_upload_run_result_and_download(page, media, monkeypatch):
    calls = []
    real = pipeline.segment_file
    monkeypatch.setattr(pipeline, "segment_file", lambda *a, **k: calls.append(a) or real(*a, **k))

    upload(page, "my dance.mp4", (media / "clip.mp4").read_bytes(), "video/mp4")
    assert any(c.startswith("Video · 320×240 · 3.0 s · 30 fps · 90 frames · with audio") for c in captions(page))
    held = page.session_state["upload"]
    assert held.path.name.startswith("upload-") and "dance" not in held.path.name, "never the upload's name"
    assert not page.button(key="run").disabled

    page.radio(key="mode").set_value("cutout")
    run(page)
    result = page.session_state["result"]
    assert result["file_name"] == "my_dance_cutout.mp4"
    streams = probe_streams(result["path"])
    assert streams["video"]["codec_name"] == "h264" and int(streams["video"]["nb_read_frames"]) == 90
    assert "audio" in streams
    shown = shown_files(page)
    assert [tag for tag, _ in shown] == ["video"] * 3, "the upload's preview, then before and after side by side"
    assert [offer.path for _, offer in shown] == [held.path, held.path, result["path"]], "played from disk"
    assert not page.get("video"), "no file read whole into Streamlit's media store"
    assert [c.value for c in page.caption if c.value in ("Before", "After")] == ["Before", "After"]
    [link] = download_links(page)
    assert link["label"] == "Download MP4" and link["name"] == "my_dance_cutout.mp4"
    assert link["offer"].path == result["path"] and link["offer"].mime == "video/mp4", "the link serves the result"
    assert any("90 frames · audio kept" in c for c in captions(page))
    assert page.get("progress"), "the finished progress bar stays"
    assert len(calls) == 1

    # Any rerun (a download click, a widget change) shows the kept result without redoing the work.
    page.run()
    page.radio(key="preset").set_value("fast").run()
    assert not page.exception and len(calls) == 1
    assert page.session_state["result"]["path"] == result["path"] and result["path"].is_file()
    assert [link["offer"].path for link in download_links(page)] == [result["path"]]


def test_photo_gives_image_formats_and_a_picture(page):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 90, 3), np.uint8)).save(buf, "PNG")
    upload(page, "me.png", buf.getvalue(), "image/png")
    assert any(c.startswith("Photo · 90×120") for c in captions(page))
    fmt = [r for r in page.radio if r.label == "Format"][0]
    assert fmt.options == ["PNG", "JPG", "WebP"]
    page.radio(key="mode").set_value("transparent")
    run(page)
    result = page.session_state["result"]
    assert result["kind"] == "image" and result["file_name"] == "me_transparent.png"
    with Image.open(result["path"]) as im:
        assert im.size == (90, 120) and im.mode == "RGBA"
    assert [link["label"] for link in download_links(page)] == ["Download PNG"]


def test_invalid_file_is_one_sentence_and_no_exception(page):
    upload(page, "dance.mp4", b"this is not a video at all", "video/mp4")
    [error] = page.error
    assert "dance.mp4" in error.value and "upload-" not in error.value, "the user's name, not the temp file's"
    assert error.value.count(". ") == 0 and "Traceback" not in error.value
    assert page.button(key="run").disabled
    assert not page.session_state["upload"].path.exists(), "a rejected upload is deleted at once"


def test_clip_over_the_length_limit_is_refused_before_running(page, media, monkeypatch):
    monkeypatch.setenv("SEGMENT_MAX_DURATION_S", "1")
    page.run()
    upload(page, "long.mp4", (media / "clip.mp4").read_bytes(), "video/mp4")
    [error] = page.error
    assert error.value == "long.mp4 lasts 3 s; the limit is 1 s"
    assert page.button(key="run").disabled


def test_replace_without_a_background_asks_for_one(page, media):
    upload(page, "clip.mp4", (media / "silent.mp4").read_bytes(), "video/mp4")
    page.radio(key="mode").set_value("replace").run()
    run(page)
    [error] = page.error
    assert error.value.startswith("Choose a background picture or clip")
    assert "result" not in page.session_state


def test_missing_weights_is_said_clearly(monkeypatch, tmp_path, media):
    monkeypatch.setenv("SEGMENT_WEIGHTS", str(tmp_path / "none.safetensors"))
    at = AppTest.from_file(UI, default_timeout=60)
    at.run()
    assert not at.exception
    assert "weights file not found" in at.sidebar.error[0].value
    assert "no model" in at.error[0].value
    upload(at, "clip.mp4", (media / "clip.mp4").read_bytes(), "video/mp4")
    assert at.button(key="run").disabled


def test_removing_the_upload_and_ending_the_session_leave_no_files(page, media):
    upload(page, "clip.mp4", (media / "silent.mp4").read_bytes(), "video/mp4")
    run(page)
    folder = page.session_state["scratch"].path
    upload_path, result_path = page.session_state["upload"].path, page.session_state["result"]["path"]
    assert upload_path.is_file() and result_path.is_file()
    token = page.session_state["result"]["token"]
    assert downloads.lookup(token).path == result_path

    page.file_uploader(key="upload_widget").clear()
    page.run()
    assert not upload_path.exists() and not result_path.exists()
    assert not download_links(page) and downloads.lookup(token) is None, "the link is withdrawn with the file"
    assert list(folder.iterdir()) == []


def test_session_folder_goes_with_the_session():
    from app import ui

    scratch = ui.Scratch()
    folder = scratch.path
    scratch.new_file("upload", ".mp4").write_bytes(b"x")
    del scratch   # what happens to a session's state when Streamlit drops a closed session
    gc.collect()
    assert not folder.exists()


@pytest.mark.parametrize("name, stem", [("my dance.mp4", "my_dance"), ("../../etc/passwd.mp4", "passwd"),
                                        ("ダンス.mov", "clip"), (".mp4", "mp4"), ("a;rm -rf ~.mp4", "a_rm_-rf")])
def test_download_names_are_tame(name, stem):
    from app import ui

    assert ui.safe_stem(name) == stem


def test_progress_text():
    from app import ui

    assert ui.progress_text(pipeline.Progress(30, 90, 2.0)) == "30 / 90 frames · 15.0 fps · about 4 s left"
    assert ui.progress_text(pipeline.Progress(90, 90, 6.0)) == "90 / 90 frames · 15.0 fps"
    assert ui.duration_text(125) == "2:05"


def test_presets_share_the_model_at_other_sizes(tiny_segmenter):
    from app import ui

    sizes = {name: ui.preset_model(tiny_segmenter, p) for name, p in ui.PRESETS.items()}
    assert sizes["fast"] is tiny_segmenter                         # 1.0x the model's own size (128)
    assert (sizes["balanced"].infer_size, sizes["quality"].infer_size) == (160, 192)
    assert all(s.model is tiny_segmenter.model for s in sizes.values()), "one copy of the weights"
    assert all(s.session is tiny_segmenter.session for s in sizes.values()), "same backend"
    assert ui.preset_model(tiny_segmenter, ui.PRESETS["balanced"]) is sizes["balanced"], "made once"


def test_idle_sessions_files_are_swept_and_an_idle_page_recovers(page, media, tmp_path, monkeypatch):
    import os
    import shutil
    import tempfile

    from app import ui

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, fresh = tmp_path / "segment-ui-old", tmp_path / "segment-ui-fresh"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "upload-x.mp4").write_bytes(b"x")
    os.utime(old, (0, 0))
    ui.sweep_stale(60)
    assert not old.exists() and fresh.exists()

    # This page's own folder swept while the tab sat idle: the next rerun saves the upload again and runs.
    upload(page, "clip.mp4", (media / "silent.mp4").read_bytes(), "video/mp4")
    shutil.rmtree(page.session_state["scratch"].path)
    page.run()
    assert page.session_state["upload"].path.is_file()
    run(page)
    assert page.session_state["result"]["path"].is_file()


@pytest.mark.parametrize("suffix, vcodec, preview", [
    (".mov", ("-c:v", "libx264", "-pix_fmt", "yuv420p"), ("video", "video/mp4")),
    (".webm", ("-c:v", "libvpx-vp9", "-b:v", "200k"), ("video", "video/webm")),
    (".mkv", ("-c:v", "libx264", "-pix_fmt", "yuv420p"), ("video", "video/mp4")),
    (".avi", ("-c:v", "mpeg4"), None),          # does not play in a browser: its first frame instead (st.image)
    (".gif", ("-c:v", "gif"), ("img", "image/gif")),     # animated: a video to the engine, shown as the GIF itself
])
def test_every_video_type_gets_facts_and_a_preview(page, tmp_path, suffix, vcodec, preview):
    from tests.conftest import make_clip

    clip = make_clip(tmp_path / f"c{suffix}", size="160x120", rate="10", seconds=1, audio=False, vcodec=vcodec)
    upload(page, f"dance{suffix}", clip.read_bytes())
    assert not page.error, page.error[0].value
    assert any(c.startswith("Video · 160×120 · ") and "10 frames" in c for c in captions(page)), captions(page)
    shown = [(tag, offer.mime) for tag, offer in shown_files(page)]
    assert shown == ([preview] if preview else []) and bool(page.get("image")) == (preview is None), shown
    assert not page.button(key="run").disabled


# Bad files from the engine's corpus (tests/test_corpus.py), now uploaded through the page: (kind, the name
# the user gave it, words the one error sentence must contain).
UI_CORPUS = [
    ("empty", "empty.mp4", "is empty"),
    ("random bytes", "noise.mp4", "could not be read as a video"),
    ("text named mp4", "notes.mp4", "could not be read as a video"),
    ("truncated no moov", "cut.mp4", "cut short"),
    ("decompression bomb", "bomb.png", "megapixels"),
    ("random bytes", "../../etc/passwd.mp4", "could not be read as a video"),
]


@pytest.mark.parametrize("kind, name, words", UI_CORPUS, ids=[f"{k} as {n}" for k, n, _ in UI_CORPUS])
def test_bad_uploads_get_one_sentence(page, tmp_path, kind, name, words):
    from tests.test_corpus import build

    upload(page, name, build(kind, tmp_path).read_bytes())
    [error] = page.error
    assert error.value.startswith(f"{name} ") and words in error.value, error.value
    assert "\n" not in error.value and "Traceback" not in error.value and "upload-" not in error.value
    assert not page.get("exception")
    assert page.button(key="run").disabled
    assert list(page.session_state["scratch"].path.iterdir()) == [], "the rejected upload is deleted"


def test_a_path_like_upload_name_is_only_a_name(page, media):
    upload(page, "../../etc/passwd.mp4", (media / "silent.mp4").read_bytes(), "video/mp4")
    folder = page.session_state["scratch"].path
    held = page.session_state["upload"]
    assert held.path.parent == folder and held.path.name.startswith("upload-") and "passwd" not in held.path.name
    run(page)
    result = page.session_state["result"]
    assert result["path"].parent == folder and result["file_name"] == "passwd_cutout.mp4"
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["result", "upload"]


def test_advanced_settings_default_to_the_preset_and_reach_the_engine(page, media, monkeypatch):
    """The folded-away edge and steadiness settings start at the chosen preset's values; what the person sets is
    what the engine gets."""
    from app.options import PRESETS, Preset, RefineOptions

    seen = []
    real = pipeline.segment_file
    monkeypatch.setattr(pipeline, "segment_file", lambda *a, **k: seen.append(a[2]) or real(*a, **k))
    upload(page, "d.mp4", (media / "clip.mp4").read_bytes(), "video/mp4")
    assert page.slider(key="every_balanced").value == PRESETS["balanced"].keyframe_every
    assert page.toggle(key="focus_balanced").value is PRESETS["balanced"].focus
    run(page)
    assert seen[-1].preset == PRESETS["balanced"] and seen[-1].refine == RefineOptions()
    page.radio(key="preset").set_value("fast").run()
    assert page.slider(key="every_fast").value == PRESETS["fast"].keyframe_every
    assert page.toggle(key="focus_fast").value is PRESETS["fast"].focus
    page.slider(key="every_fast").set_value(2)
    page.toggle(key="focus_fast").set_value(True)
    page.slider(key="smooth_fast").set_value(0.5)
    page.slider(key="low_fast").set_value(0.1)
    page.slider(key="high_fast").set_value(0.9).run()
    run(page)
    options = seen[-1]
    assert options.preset == Preset(PRESETS["fast"].scale, 2, True)
    assert options.refine == RefineOptions(temporal=0.5, levels=(0.1, 0.9))


@pytest.mark.parametrize("label, name, codec", [("MOV (ProRes)", "d_transparent.mov", "prores"),
                                                ("PNG frames (ZIP)", "d_transparent.zip", None)])
def test_editor_formats_from_the_page(page, media, label, name, codec):
    import zipfile

    upload(page, "d.mp4", (media / "clip.mp4").read_bytes(), "video/mp4")
    page.radio(key="mode").set_value("transparent").run()
    page.radio(key="format_video").set_value(label).run()
    shown = len(shown_files(page))          # the upload's own preview
    run(page)
    result = page.session_state["result"]
    assert result["file_name"] == name
    if codec:
        assert probe_streams(result["path"])["video"]["codec_name"] == codec
    else:
        assert len([n for n in zipfile.ZipFile(result["path"]).namelist() if n.endswith(".png")]) == 90
    # The result area shows the upload again ("Before") but the MOV/ZIP itself is not previewed ("After": a note).
    assert len(shown_files(page)) == shown + 1, "an editor's format is not previewed"
    assert [c.value for c in page.caption if c.value in ("Before", "After")] == ["Before", "After"]
    assert any("Browsers cannot play it" in i.value for i in page.info)
    [link] = download_links(page)
    assert link["label"] == f"Download {name.rsplit('.', 1)[1].upper()}" and link["offer"].path == result["path"]


def test_the_format_choice_survives_a_change_of_output(page, media):
    """One Format radio whatever the output (a radio swapped on a mode change would swallow a click made while
    the page reruns, and forget the choice); a transparent cutout only moves it off a format with no alpha."""
    upload(page, "d.mp4", (media / "clip.mp4").read_bytes(), "video/mp4")
    fmt = page.radio(key="format_video")
    assert fmt.value == "MP4" and fmt.options[0] == "MP4"
    page.radio(key="mode").set_value("transparent").run()
    fmt = page.radio(key="format_video")
    assert fmt.value == "WebM", "MP4 has no alpha: a transparent cutout starts on WebM"
    assert fmt.options[-1] == "MP4", "the formats that keep transparency come first"
    fmt.set_value("MOV (ProRes)").run()
    for mode in ("cutout", "transparent", "mask", "transparent"):
        page.radio(key="mode").set_value(mode).run()
        assert page.radio(key="format_video").value == "MOV (ProRes)", mode
    assert not page.exception

    buf = io.BytesIO()
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(buf, "PNG")
    upload(page, "me.png", buf.getvalue(), "image/png")
    page.radio(key="mode").set_value("cutout").run()
    page.radio(key="format_image").set_value("JPG").run()
    page.radio(key="mode").set_value("transparent").run()
    assert page.radio(key="format_image").value == "PNG"


def test_errors_found_while_running_name_the_users_own_files(page, media, tmp_path):
    """Sentences from the engine name the files as the user named them, not by the random names they are saved
    under: the upload's (pipeline.segment_file's `name`) and the background's (RenderOptions.background_name)."""
    from tests.test_corpus import build

    upload(page, "My clip.mp4", build("index without frames", tmp_path).read_bytes(), "video/mp4")
    assert not page.error, "ffprobe finds nothing wrong with it: the job finds out"
    run(page)
    [error] = page.error
    assert error.value.startswith("My clip.mp4 has no frames that could be decoded") and "upload-" not in error.value

    upload(page, "dance.mp4", (media / "silent.mp4").read_bytes(), "video/mp4")
    page.radio(key="mode").set_value("replace").run()
    page.file_uploader(key="background_upload").upload("Beach.png", b"not a picture at all", "image/png")
    run(page)
    [error] = page.error
    assert error.value == "the background Beach.png is neither a picture nor a video that could be read"
    assert "result" not in page.session_state


def test_the_page_imports_only_pipeline_options_and_downloads():
    """The page reaches the engine through app.pipeline and app.options (and serves files with app.downloads):
    `model` and `app.video_io` stay behind them, so each check and each setting has one home."""
    import ast

    imported = set()
    for node in ast.walk(ast.parse((REPO / "app" / "ui.py").read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = ".".join(filter(None, ["app" if node.level else "", node.module or ""]))
            imported.add(module)
            if module in ("app", "model"):          # `from app import video_io` imports the module app.video_io
                imported |= {f"{module}.{alias.name}" for alias in node.names}
    ours = {m for m in imported if m.split(".")[0] in ("app", "model", "train")}
    assert ours == {"app", "app.downloads", "app.options", "app.pipeline"}, ours
