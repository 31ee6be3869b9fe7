"""A job stopped midway leaves nothing behind: no partial file, no ffmpeg process, no worker thread.

Streamlit stops a run (tab closed, widget changed) by raising StopException or RerunException from the next
st.* call the script makes; in a job that call is the progress bar's, inside `on_progress`. The browser version
(a tab closed mid-run against the real server) is in test_e2e_browser.py.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from app.options import RenderOptions
from app.pipeline import segment_file
from bench.memory import descendants


def ffmpeg_children() -> dict[int, str]:
    return {pid: name for pid, name in descendants(os.getpid()).items() if "ffmpeg" in name}


def settle(check, timeout: float = 10.0):
    """check() until it returns something falsy (threads and pipes wind down asynchronously); its last value."""
    deadline = time.monotonic() + timeout
    while (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


@pytest.mark.parametrize("fmt, mode, stop", [
    ("mp4", "cutout", StopException()),            # the tab was closed
    ("webm", "transparent", StopException()),
    ("gif", "overlay", RerunException(None)),      # a widget changed
], ids=["mp4", "webm", "gif"])
def test_a_job_stopped_midway_leaves_nothing(tmp_path, media, tiny_segmenter, fmt, mode, stop):
    out = tmp_path / "out"
    out.mkdir()
    threads_before = set(threading.enumerate())
    seen = []

    def on_progress(p):
        seen.append(p.done)
        assert ffmpeg_children(), "the reader and writer are running"
        if len(seen) == 2:
            raise stop

    with pytest.raises(type(stop)):
        segment_file(media / "clip.mp4", out / f"result.{fmt}", RenderOptions(mode=mode, batch_size=4),
                     on_progress, segmenter=tiny_segmenter)
    assert seen == [4, 8], "stopped after the second batch of 90 frames"
    assert list(out.iterdir()) == [], "no partial or finished file"
    assert not settle(ffmpeg_children), "no ffmpeg left running (or unreaped)"
    assert not settle(lambda: set(threading.enumerate()) - threads_before), "no worker thread left"
