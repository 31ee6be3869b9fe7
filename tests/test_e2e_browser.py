"""Real browser, real server: Debian's chromium (driven by Playwright) against the app started with the
Dockerfile's exact command on 127.0.0.1.

The TikTok clip runs through SEGMENT_WEIGHTS if set, else the shipped model (weights/default.safetensors) when
it exists, else the tiny random one (the checks are about the file, not the cutout's quality). Screenshots go to the test's temporary
folder; SAVE_SCREENSHOTS=1 also writes them to docs/ (the README shows those).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from app.video_io import probe
from tests.conftest import make_clip
from tests.ui_helpers import REPO, probe_streams, running_app

playwright = pytest.importorskip("playwright.sync_api")

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


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    if os.environ.get("SAVE_SCREENSHOTS"):
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
    page.get_by_text(re.compile(r"^Video · ")).wait_for(timeout=60_000)


def download(page, label: str, dst: Path) -> Path:
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name=label).click()
    dl.value.save_as(str(dst))
    return dst


def test_tiktok_clip_cutout_in_the_browser(browser, datasets, tiny_weights, tmp_path):
    src = datasets / "videos" / "tiktok_dance_0.mp4"
    source = probe(src)
    weights = os.environ.get("SEGMENT_WEIGHTS") or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else tiny_weights)
    print(f"\ne2e model: {weights}")
    with running_app(weights, tmp_path / "app.log") as (url, _env):
        page = open_page(browser, url)
        upload(page, src)
        page.get_by_text("Cutout on a colour").click()
        page.get_by_role("button", name="Run").click()
        progress = page.get_by_text(PROGRESS)
        progress.wait_for(timeout=120_000)
        deadline = time.monotonic() + 120   # a picture of the bar well under way, for the README
        while time.monotonic() < deadline:
            try:
                done, total = map(int, re.findall(r"\d+", progress.inner_text(timeout=2_000))[:2])
            except Exception:   # it just finished, and the bar says "Done" instead
                break
            if done >= 0.4 * total:
                screenshot(page, tmp_path, "app-running.png")
                break
            time.sleep(0.2)
        page.get_by_role("button", name="Download MP4").wait_for(timeout=600_000)
        page.get_by_text(re.compile(r"^Done: ")).wait_for()
        # Both videos (upload and result) have their first frame, so the screenshot shows pictures, not spinners.
        page.wait_for_function("() => { const v = [...document.querySelectorAll('video')];"
                               " return v.length == 2 && v.every(e => e.readyState >= 2); }", timeout=30_000)
        page.wait_for_timeout(1_500)   # and the player's loading spinner has faded
        shot = screenshot(page, tmp_path, "app-result.png")
        assert shot.stat().st_size > 20_000
        assert page.get_by_text("Traceback").count() == 0

        out = download(page, "Download MP4", tmp_path / "download.mp4")
        page.wait_for_timeout(1_000)
        # No rerun at all (a rerun would have dropped the finished bar, which only the Run click draws).
        assert page.get_by_text(re.compile(r"^Done: ")).is_visible(), "downloading does not rerun the page"
        assert page.get_by_role("button", name="Download MP4").is_visible()
        page.close()

    streams = probe_streams(out)
    assert streams["video"]["codec_name"] == "h264"
    assert int(streams["video"]["nb_read_frames"]) == source.frames
    assert (int(streams["video"]["width"]), int(streams["video"]["height"])) == (source.width, source.height)
    assert ("audio" in streams) == source.has_audio


def test_two_sessions_at_once_each_get_their_own_result(browser, tiny_weights, tmp_path):
    clips = [make_clip(tmp_path / "a.mp4", size="320x240", seconds=10, audio=True),
             make_clip(tmp_path / "b.mp4", size="240x320", rate="24", seconds=10, audio=False)]
    server_tmp = tmp_path / "server-tmp"   # the app's temporary files, to see them come and go
    server_tmp.mkdir()
    ttl = 8
    with running_app(tiny_weights, tmp_path / "app.log", TMPDIR=str(server_tmp),
                     SEGMENT_SESSION_FILES_TTL_S=str(ttl)) as (url, _env):
        contexts = [browser.new_context(viewport=VIEWPORT, accept_downloads=True) for _ in clips]
        pages = []
        for ctx, clip in zip(contexts, clips):
            page = ctx.new_page()
            page.goto(url)
            page.get_by_text("Clip or photo").wait_for(timeout=60_000)
            upload(page, clip)
            pages.append(page)
        pages[1].get_by_text("Black & white mask").click()
        pages[1].get_by_text("WebM").click()
        for page in pages:
            page.get_by_role("button", name="Run").click()

        # Both progress bars move at the same time: neither session waits for the other.
        both_running = False
        done = [False, False]
        deadline = time.monotonic() + 300
        while not all(done) and time.monotonic() < deadline:
            running = []
            for i, page in enumerate(pages):
                done[i] = done[i] or page.get_by_text(re.compile(r"^Done: ")).count() > 0
                running.append(page.get_by_text(PROGRESS).count() > 0 and not done[i])
            both_running = both_running or all(running)
            time.sleep(0.1)
        assert all(done), "both sessions finish"
        assert both_running, "the two jobs overlapped"

        outs = [download(pages[0], "Download MP4", tmp_path / "out_a.mp4"),
                download(pages[1], "Download WEBM", tmp_path / "out_b.webm")]
        a, b = (probe_streams(p) for p in outs)
        assert a["video"]["codec_name"] == "h264" and int(a["video"]["nb_read_frames"]) == 300 and "audio" in a
        assert (int(a["video"]["width"]), int(a["video"]["height"])) == (320, 240)
        assert b["video"]["codec_name"] == "vp9" and int(b["video"]["nb_read_frames"]) == 240 and "audio" not in b
        assert (int(b["video"]["width"]), int(b["video"]["height"])) == (240, 320)

        # One private folder per session, holding just its upload and its result.
        folders = sorted(server_tmp.glob("segment-ui-*"))
        assert len(folders) == 2
        assert sorted(len(list(f.iterdir())) for f in folders) == [2, 2]

        # Closed tabs: their folders go once idle for the TTL (swept when the next visitor arrives).
        for ctx in contexts:
            ctx.close()
        time.sleep(ttl + 1)
        page = open_page(browser, url)
        assert len(list(server_tmp.glob("segment-ui-*"))) == 1, "only the new visitor's (empty) folder is left"
        page.close()
