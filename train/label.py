"""Pseudo-label a video or a folder of images with trained weights, in the images/ + masks/ layout.

    python -m train.label --weights weights/default.safetensors \\
        --input ../shared/datasets/videos/tiktok_dance_0.mp4 --out runs/labels/tiktok_0 --every 5

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


def label(weights: str | Path, src: str | Path, out: str | Path, *, every: int = 1, max_frames: int = 0,
          threshold: float = 0.5, batch: int = 4) -> int:
    """Write frames and predicted masks under `out`; returns how many pairs were written."""
    if every < 1:
        raise DataError("--every must be at least 1")
    seg = Segmenter.from_checkpoint(weights, device="cpu")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    n = 0
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        nonlocal n
        alphas = seg.predict([f for _, f in pending])
        for (stem, frame), alpha in zip(pending, alphas):
            cv2.imwrite(str(out / "images" / f"{stem}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
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
    p.add_argument("--weights", required=True)
    p.add_argument("--input", required=True, metavar="VIDEO|DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--every", type=int, default=1, help="keep every Nth frame")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=4)
    a = p.parse_args(argv)
    try:
        n = label(a.weights, a.input, a.out, every=a.every, max_frames=a.max_frames, threshold=a.threshold,
                  batch=a.batch)
    except (DataError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {n} frames and masks to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
