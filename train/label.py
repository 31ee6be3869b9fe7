"""Pseudo-label a video or a folder of images with a teacher, in the images/ + masks/ layout.

    python -m train.label --weights weights/default.safetensors \\
        --input ../shared/datasets/videos/tiktok_dance_0.mp4 --out runs/labels/tiktok_0 --every 5
    python -m train.label --mediapipe-python V/bin/python --input ... --out ...   # MediaPipe as the teacher

The teacher is trained weights, or MediaPipe Selfie Segmentation run from a venv of its own
(train/mediapipe_teacher.py says how to make it).

The output folder is a labelled set that `python -m train --train` and `python -m train.evaluate` read
directly: `images/<stem>.png` (lossless, so the pixels are exactly what the teacher saw) and
`masks/<stem>.png` (0 background, 255 person). Look at the masks before training on them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from model import Segmenter
from model.checkpoint import CheckpointError
from train.data import IMAGE_EXTS, DataError, read_rgb
from train.mediapipe_teacher import TeacherError, check, probabilities

VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif")


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a video, rotation applied (OpenCV's FFmpeg backend honours the rotation tag)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def iter_inputs(src: str | Path, every: int = 1, max_frames: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """(stem, frame) pairs from a video file or a folder of images (sorted)."""
    src = Path(src)
    if src.is_dir():
        items = ((p.stem, p) for p in sorted(src.iterdir()) if p.suffix.lower() in IMAGE_EXTS)
        frames = ((stem, read_rgb(p)) for stem, p in items)
    elif src.is_file() and src.suffix.lower() in VIDEO_EXTS:
        frames = ((f"{src.stem}_{i:05d}", f) for i, f in enumerate(iter_video(src)))
    else:
        raise DataError(f"{src} is neither a folder of images nor a video ({', '.join(VIDEO_EXTS)})")
    kept = 0
    for i, item in enumerate(frames):
        if i % every:
            continue
        yield item
        kept += 1
        if max_frames and kept >= max_frames:
            return


def label(weights: str | Path | None, src: str | Path, out: str | Path, *, every: int = 1, max_frames: int = 0,
          threshold: float = 0.5, batch: int = 4, mediapipe_python: str | Path | None = None) -> int:
    """Write frames and the teacher's masks under `out` (the teacher: `weights`, or MediaPipe run by
    `mediapipe_python`); returns how many pairs were written."""
    if every < 1:
        raise DataError("--every must be at least 1")
    out = Path(out)
    if mediapipe_python:
        check(mediapipe_python)
        batch = max(batch, 64)      # one MediaPipe process per batch: starting it costs ~1 s

        def teacher(frames: list[np.ndarray], stems: list[str]) -> list[np.ndarray]:
            return probabilities(mediapipe_python, [out / "images" / f"{s}.png" for s in stems])
    else:
        seg = Segmenter.from_checkpoint(weights, device="cpu")

        def teacher(frames: list[np.ndarray], stems: list[str]) -> list[np.ndarray]:
            return seg.predict(frames)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    n = 0
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        nonlocal n
        for stem, frame in pending:
            cv2.imwrite(str(out / "images" / f"{stem}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        try:
            alphas = teacher([f for _, f in pending], [s for s, _ in pending])
        except BaseException:       # no picture is left without its mask
            for stem, _ in pending:
                (out / "images" / f"{stem}.png").unlink(missing_ok=True)
            raise
        for (stem, _), alpha in zip(pending, alphas):
            cv2.imwrite(str(out / "masks" / f"{stem}.png"), np.where(alpha > threshold, 255, 0).astype(np.uint8))
            n += 1
        pending.clear()

    for item in iter_inputs(src, every, max_frames):
        # Frames of one source share a size, so batching adds no padding that a single frame would not get.
        if pending and pending[0][1].shape != item[1].shape:
            flush()
        pending.append(item)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    if n == 0:
        raise DataError(f"no frames read from {src}")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.label", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    teacher = p.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--weights", help="a .safetensors checkpoint as the teacher")
    teacher.add_argument("--mediapipe-python", metavar="PYTHON",
                         help="MediaPipe Selfie Segmentation as the teacher, run by this venv's python")
    p.add_argument("--input", required=True, metavar="VIDEO|DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--every", type=int, default=1, help="keep every Nth frame")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=4)
    a = p.parse_args(argv)
    try:
        n = label(a.weights, a.input, a.out, every=a.every, max_frames=a.max_frames, threshold=a.threshold,
                  batch=a.batch, mediapipe_python=a.mediapipe_python)
    except (DataError, CheckpointError, TeacherError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {n} frames and masks to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
