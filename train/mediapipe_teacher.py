"""MediaPipe Selfie Segmentation as a teacher: `train.label --mediapipe-python` labels frames with it and
`bench.vs_mediapipe` compares it with our model. MediaPipe (mediapipe==0.10.21, Apache-2.0, model inside the
wheel, runs offline) pins numpy<2, which the app's environment cannot share, so it runs in a venv of its own:

    python -m venv V && V/bin/pip install mediapipe==0.10.21
    V/bin/python train/mediapipe_teacher.py --model 0 OUT_DIR IMAGE...     # what `probabilities` runs

As a script (in that venv) it writes OUT_DIR/<i>.png for the i-th image: MediaPipe's person confidence, 0-255,
at the image's size; it imports nothing from this repository. Run as a script, its folder comes first on
sys.path, so no file in train/ may be called mediapipe.py.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np


class TeacherError(RuntimeError):
    """MediaPipe could not run: the message says why, for a person."""


def check(python: str | Path) -> None:
    """Raise TeacherError unless `python` can import mediapipe."""
    try:
        ok = subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        raise TeacherError(f"{python} cannot import mediapipe: make a venv with `pip install mediapipe==0.10.21`")


def probabilities(python: str | Path, images: list[Path], model: int = 0) -> list[np.ndarray]:
    """MediaPipe's person confidence (float32, 0-1, each image's size) for image files, in order; `model` is its
    model_selection (0 general, 256x256; 1 landscape, 144x256)."""
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run([str(python), __file__, "--model", str(model), out, *map(str, images)],
                             capture_output=True, text=True)
        if run.returncode:
            raise TeacherError(f"MediaPipe failed ({python}):\n{run.stderr[-2000:]}")
        return [cv2.imread(str(Path(out) / f"{i}.png"), cv2.IMREAD_GRAYSCALE) / np.float32(255)
                for i in range(len(images))]


def _main() -> None:
    import mediapipe as mp

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=int, choices=[0, 1], default=0)
    p.add_argument("out", type=Path)
    p.add_argument("images", nargs="+", type=Path)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=args.model) as seg:
        for i, path in enumerate(args.images):
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SystemExit(f"cannot read {path}")
            mask = seg.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).segmentation_mask
            cv2.imwrite(str(args.out / f"{i}.png"), np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8))


if __name__ == "__main__":
    _main()
