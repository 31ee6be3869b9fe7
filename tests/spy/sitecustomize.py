"""Test instrumentation for the app's server process (never shipped): with this folder and the repository on
PYTHONPATH and SEGMENT_SPY=FILE set, each model load and each job is appended to FILE as a JSON line, so a
browser test can see inside the server: which model object each job used, and when each job ran and how it ended.
"""

import json
import os
import threading
import time

if os.environ.get("SEGMENT_SPY"):
    from app import pipeline

    _lock = threading.Lock()
    _load, _segment = pipeline.load_segmenter, pipeline.segment_file

    def _record(**event) -> None:
        with _lock, open(os.environ["SEGMENT_SPY"], "a") as f:
            f.write(json.dumps(event) + "\n")

    def load_segmenter(*args, **kwargs):
        segmenter = _load(*args, **kwargs)
        _record(event="load", model=id(segmenter.network))
        return segmenter

    def segment_file(src, dst, *args, segmenter, **kwargs):
        start, error = time.time(), None
        try:
            return _segment(src, dst, *args, segmenter=segmenter, **kwargs)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            _record(event="job", dst=str(dst), model=id(segmenter.network), start=start, end=time.time(), error=error)

    pipeline.load_segmenter, pipeline.segment_file = load_segmenter, segment_file
