"""Real browser, real server: Debian's chromium (driven by Playwright) against the app started with the
Dockerfile's exact command on 127.0.0.1.

The TikTok clip runs through SEGMENT_WEIGHTS if set, else the shipped model (weights/default.safetensors) when
it exists, else the tiny random one (the checks are about the file, not the cutout's quality); the clips made from
a public-domain photo (tests/licensed_media.py) run through SEGMENT_WEIGHTS or the shipped model. Screenshots go
to the test's temporary folder; SAVE_SCREENSHOTS=1 also writes the public-domain clip's to docs/ for the README
(`make screenshots`), never a dataset clip's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.video_io import probe
from bench.memory import descendants
from tests.conftest import make_clip
from tests.licensed_media import astronaut_clip
from tests.ui_helpers import REPO, decode_rgba, probe_streams, running_app, zip_frames

pytestmark = pytest.mark.slow      # a real browser against a real server

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1500}   # tall enough for the whole finished page in one screenshot
DEFAULT_WEIGHTS = REPO / "weights" / "default.safetensors"
PROGRESS = re.compile(r"^\d+ / \d+ frames")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does)")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def screenshot(page, tmp_path: Path, name: str, *, save: bool = False) -> Path:
    """A picture of the page in the test's folder; also in docs/ (for the README) when `save` and SAVE_SCREENSHOTS=1."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    if save and os.environ.get("SAVE_SCREENSHOTS"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(path, REPO / "docs" / name)
    return path


def open_page(browser, url: str):
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    page.goto(url)
    page.get_by_text("Clip or photo").wait_for(timeout=60_000)
    return page


def upload(page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.get_by_text(re.compile(r"^(Video|Photo) · ")).wait_for(timeout=60_000)


def download(page, label: str, dst: Path) -> Path:
    """Click the result's download link (served from disk by app.downloads) and save what the browser gets."""
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("link", name=label).click()
    dl.value.save_as(str(dst))
    assert dl.value.failure() is None
    return dst


def choose(page, label: str) -> None:
    """Click a radio option, and see it chosen (what a person sees before clicking on)."""
    page.get_by_text(label, exact=True).click()
    expect(page.get_by_role("radio", name=label, exact=True)).to_be_checked()


def cut_out_in_the_browser(browser, src: Path, weights: Path, tmp_path: Path, *, readme: bool) -> Path:
    """Upload `src`, cut it out on a colour (MP4), take the page's pictures (the README's when `readme` and
    SAVE_SCREENSHOTS=1), download the result and check the page did not rerun; the downloaded path."""
    print(f"\ne2e model: {weights}")
    with running_app(weights, tmp_path / "app.log") as (url, _env):
        page = open_page(browser, url)
        upload(page, src)
        choose(page, "Cutout on a colour")
        page.get_by_role("button", name="Run").click()
        progress = page.get_by_text(PROGRESS)
        progress.wait_for(timeout=120_000)
        deadline = time.monotonic() + 120   # a picture of the bar well under way
        while time.monotonic() < deadline:
            try:
                done, total = map(int, re.findall(r"\d+", progress.inner_text(timeout=2_000))[:2])
            except Exception:   # it just finished, and the bar says "Done" instead
                break
            if done >= 0.4 * total:
                screenshot(page, tmp_path, "app-running.png", save=readme)
                break
            time.sleep(0.2)
        page.get_by_role("link", name="Download MP4").wait_for(timeout=600_000)
        page.get_by_text(re.compile(r"^Done: ")).wait_for()
        # All videos (the upload, then before and after) have their first frame: pictures, not spinners.
        page.wait_for_function("() => { const v = [...document.querySelectorAll('video')];"
                               " return v.length == 3 && v.every(e => e.readyState >= 2); }", timeout=30_000)
        page.wait_for_timeout(1_500)   # and the player's loading spinner has faded
        shot = screenshot(page, tmp_path, "app-result.png", save=readme)
        assert shot.stat().st_size > 20_000
        assert page.get_by_text("Traceback").count() == 0

        out = download(page, "Download MP4", tmp_path / "download.mp4")
        page.wait_for_timeout(1_000)
        # No rerun at all (a rerun would have dropped the finished bar, which only the Run click draws).
        assert page.get_by_text(re.compile(r"^Done: ")).is_visible(), "downloading does not rerun the page"
        assert page.get_by_role("link", name="Download MP4").is_visible()
        page.close()
    return out


def check_cutout_mp4(out: Path, src: Path) -> None:
    source = probe(src)
    streams = probe_streams(out)
    assert streams["video"]["codec_name"] == "h264"
    assert int(streams["video"]["nb_read_frames"]) == source.frames
    assert (int(streams["video"]["width"]), int(streams["video"]["height"])) == (source.width, source.height)
    assert ("audio" in streams) == source.has_audio


def test_tiktok_clip_cutout_in_the_browser(browser, datasets, tiny_weights, tmp_path):
    src = datasets / "videos" / "tiktok_dance_0.mp4"
    weights = os.environ.get("SEGMENT_WEIGHTS") or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else tiny_weights)
    out = cut_out_in_the_browser(browser, src, weights, tmp_path, readme=False)   # dataset frames: never in docs/
    check_cutout_mp4(out, src)


def test_readme_clip_cutout_in_the_browser(browser, tmp_path):
    """The README's screenshots (SAVE_SCREENSHOTS=1, `make screenshots`): a public-domain photo of a person as a
    clip (tests/licensed_media.py) through the shipped model."""
    src = astronaut_clip(tmp_path / "astronaut.mp4", size=(540, 540), seconds=8)
    out = cut_out_in_the_browser(browser, src, Path(os.environ.get("SEGMENT_WEIGHTS") or DEFAULT_WEIGHTS), tmp_path,
                                 readme=True)
    check_cutout_mp4(out, src)


def test_mov_and_zip_downloaded_from_the_page(browser, tmp_path):
    """Editor formats end to end: chosen in the page and Run clicked at once (as a person does, while the page
    still reruns for the choice), downloaded from the page, and checked as tests/test_editor_outputs.py does."""
    src = astronaut_clip(tmp_path / "astronaut.mp4", size=(192, 192), seconds=1)   # 30 frames, with a sound
    weights = Path(os.environ.get("SEGMENT_WEIGHTS") or DEFAULT_WEIGHTS)            # a real matte of a real person
    outs = {}
    with running_app(weights, tmp_path / "app.log") as (url, _env):
        page = open_page(browser, url)
        upload(page, src)
        choose(page, "Transparent cutout")
        expect(page.get_by_role("radio", name="WebM", exact=True)).to_be_checked()   # MP4 has no alpha: moved off it
        for label, ext in (("MOV (ProRes)", "mov"), ("PNG frames (ZIP)", "zip")):
            choose(page, label)
            page.get_by_role("button", name="Run").click()
            page.get_by_role("link", name=f"Download {ext.upper()}").wait_for(timeout=300_000)
            assert page.get_by_text("Traceback").count() == 0
            assert page.get_by_text(f"astronaut_transparent.{ext}", exact=True).is_visible()
            outs[ext] = download(page, f"Download {ext.upper()}", tmp_path / f"download.{ext}")
        page.close()

    streams = probe_streams(outs["mov"])
    video = streams["video"]
    assert video["codec_name"] == "prores" and video["profile"] == "4444"
    assert video["pix_fmt"].startswith("yuva444")                       # an alpha plane
    assert int(video["nb_read_frames"]) == 30 and (int(video["width"]), int(video["height"])) == (192, 192)
    assert streams["audio"]["codec_name"] == "aac"

    names, frames = zip_frames(outs["zip"])
    assert names == [f"frame_{i:06d}.png" for i in range(1, 31)] + ["audio.m4a"]
    assert all(f.shape == (192, 192, 4) for f in frames)                 # RGBA, the clip's size
    with zipfile.ZipFile(outs["zip"]) as z:
        (tmp_path / "audio.m4a").write_bytes(z.read("audio.m4a"))
    assert set(probe_streams(tmp_path / "audio.m4a")) == {"audio"}
    matte = np.stack([f[..., 3] for f in frames]).astype(int)
    assert 0.1 < (matte > 127).mean() < 0.9                              # the astronaut, and not the backdrop
    decoded = decode_rgba(outs["mov"], 192, 192)
    assert len(decoded) == 30
    assert np.abs(decoded[..., 3].astype(int) - matte).max() <= 2        # the same alpha in both files


def spy_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Environment that loads tests/spy/sitecustomize.py into the server: it logs model loads and jobs."""
    log = tmp_path / "spy.jsonl"
    path = [str(REPO / "tests" / "spy"), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {"SEGMENT_SPY": str(log), "PYTHONPATH": os.pathsep.join(filter(None, path))}, log


def spied(log: Path, event: str) -> list[dict]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == event]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.1)
    return value


def server_ffmpeg() -> dict[int, str]:
    """ffmpeg processes under this test process (the app server is its child), zombies included."""
    return {pid: name for pid, name in descendants(os.getpid()).items() if "ffmpeg" in name}


def test_closing_the_tab_mid_run_stops_the_job_and_leaves_nothing(browser, tiny_weights, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", seconds=60)   # 1,800 frames: many seconds of work for the tiny model
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    env, spy = spy_env(tmp_path)
    with running_app(tiny_weights, tmp_path / "app.log", TMPDIR=str(server_tmp), **env) as (url, _env):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        page.get_by_text("Clip or photo").wait_for(timeout=60_000)
        upload(page, clip)
        page.get_by_role("button", name="Run").click()
        page.get_by_text(PROGRESS).wait_for(timeout=60_000)
        assert server_ffmpeg(), "the job's reader and writer are running"
        context.close()

        [job] = wait_until(lambda: spied(spy, "job"), 60, "the job to end")
        assert job["error"] == "StopException", job
        [folder] = server_tmp.glob("segment-ui-*")
        assert [p.name.split("-")[0] for p in folder.iterdir()] == ["upload"], "no result, partial or finished"
        assert not list(server_tmp.rglob("*partial*"))
        wait_until(lambda: not server_ffmpeg(), 10, "the job's ffmpeg processes to go")


def test_three_sessions_at_once_share_the_model_not_their_files(browser, tiny_weights, tmp_path):
    photo = tmp_path / "c.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 150, 3), np.uint8)).save(photo)
    inputs = [make_clip(tmp_path / "a.mp4", size="320x240", seconds=30, audio=True),     # the long job
              make_clip(tmp_path / "b.mp4", size="240x320", rate="24", seconds=2, audio=False),
              photo]
    server_tmp = tmp_path / "server-tmp"   # the app's temporary files, to see them come and go
    server_tmp.mkdir()
    ttl = 8
    env, spy = spy_env(tmp_path)
    with running_app(tiny_weights, tmp_path / "app.log", TMPDIR=str(server_tmp),
                     SEGMENT_SESSION_FILES_TTL_S=str(ttl), **env) as (url, _env):
        contexts = [browser.new_context(viewport=VIEWPORT, accept_downloads=True) for _ in inputs]
        pages = []
        for ctx, path in zip(contexts, inputs):
            page = ctx.new_page()
            page.goto(url)
            page.get_by_text("Clip or photo").wait_for(timeout=60_000)
            upload(page, path)
            pages.append(page)
        pages[1].get_by_text("Black & white mask").click()
        pages[1].get_by_text("WebM").click()
        pages[2].get_by_text("Transparent cutout", exact=True).click()

        # The long job first; the two short ones start while it runs, and finish before it does.
        pages[0].get_by_role("button", name="Run").click()
        pages[0].get_by_text(PROGRESS).wait_for(timeout=60_000)
        for page in pages[1:]:
            page.get_by_role("button", name="Run").click()
        for page in pages:
            page.get_by_text(re.compile(r"^Done: ")).wait_for(timeout=300_000)
            assert page.get_by_text("Traceback").count() == 0

        [load] = spied(spy, "load")
        jobs = sorted(spied(spy, "job"), key=lambda e: e["start"])
        assert len(jobs) == 3 and not any(j["error"] for j in jobs), jobs
        assert {j["model"] for j in jobs} == {load["model"]}, "one model object, loaded once, used by every session"
        long = jobs[0]
        assert Path(long["dst"]).suffix == ".mp4"
        for short in jobs[1:]:
            assert long["start"] < short["start"] and short["end"] < long["end"], "the long job blocked nobody"

        outs = [download(pages[0], "Download MP4", tmp_path / "out_a.mp4"),
                download(pages[1], "Download WEBM", tmp_path / "out_b.webm"),
                download(pages[2], "Download PNG", tmp_path / "out_c.png")]
        a, b = probe_streams(outs[0]), probe_streams(outs[1])
        assert a["video"]["codec_name"] == "h264" and int(a["video"]["nb_read_frames"]) == 900 and "audio" in a
        assert (int(a["video"]["width"]), int(a["video"]["height"])) == (320, 240)
        assert b["video"]["codec_name"] == "vp9" and int(b["video"]["nb_read_frames"]) == 48 and "audio" not in b
        assert (int(b["video"]["width"]), int(b["video"]["height"])) == (240, 320)
        with Image.open(outs[2]) as im:
            assert im.size == (150, 200) and im.mode == "RGBA"

        # One private folder per session, holding just its upload and its result; each page offers its own
        # result and nothing else.
        folders = sorted(server_tmp.glob("segment-ui-*"))
        assert len(folders) == 3
        assert all(sorted(p.name.split("-")[0] for p in f.iterdir()) == ["result", "upload"] for f in folders)
        results = {Path(j["dst"]).suffix: Path(j["dst"]) for j in jobs}
        assert len({r.parent for r in results.values()}) == 3
        assert all(out.read_bytes() == results[out.suffix].read_bytes() for out in outs)
        assert all(page.get_by_role("link", name=re.compile("^Download")).count() == 1 for page in pages)

        # Closed tabs: their folders go once idle for the TTL (swept when the next visitor arrives).
        for ctx in contexts:
            ctx.close()
        time.sleep(ttl + 1)
        page = open_page(browser, url)
        assert len(list(server_tmp.glob("segment-ui-*"))) == 1, "only the new visitor's (empty) folder is left"
        page.close()
