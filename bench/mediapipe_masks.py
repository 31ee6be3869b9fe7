"""MediaPipe Selfie Segmentation on a list of pictures: run by `python -m bench.vs_mediapipe` in MediaPipe's own
virtual environment (mediapipe==0.10.21 pins numpy<2, which the app's environment cannot share), so it imports
nothing from this repository.

    /path/to/mediapipe-venv/bin/python bench/mediapipe_masks.py --model 0 OUT_DIR IMAGE...

Writes OUT_DIR/<i>.png for the i-th image: MediaPipe's person confidence, 0-255, at the image's size.
(Run as a script, its folder comes first on sys.path: no file in bench/ may be called mediapipe.py.)
"""

import argparse
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=int, choices=[0, 1], default=0,
                   help="MediaPipe's model_selection: 0 general (256x256), 1 landscape (144x256)")
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
    main()
