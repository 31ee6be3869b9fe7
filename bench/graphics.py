"""Are stickers and captions taken for people? Edited clips carry flat graphics (a coloured disc, a box, an
ellipse, a caption); a segmenter that marks them as person leaves them in every cutout.

    python -m bench.graphics --data ../shared/datasets                        # the shipped weights
    python -m bench.graphics --data ../shared/datasets --weights runs/x/best.safetensors

Every `--every`-th frame without people (`negatives/davis-no-people`) gets the same four graphics, drawn by fixed
cv2 calls in fixed places (not the training generator, `train.data.draw_graphics`), in colours that change from
frame to frame. The model makes the frame's matte as the app makes a photo's (the preset's size, second pass and
refinement); the table gives the fraction of the graphics' pixels it calls person (above 0.5), the same outside
them, and how many frames have more than 20% of their graphics taken for a person.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process()

import cv2
import numpy as np

from app.options import DEFAULT_PRESET, PRESETS, Preset, RenderOptions
from app.pipeline import load_segmenter, photo_matte
from train.data import find_records

PALETTE = ((0, 200, 255), (255, 60, 60), (255, 220, 0), (140, 255, 90), (200, 80, 255), (255, 255, 255))
CAPTION = "wow look at this"


def with_graphics(frame: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The RGB frame with a disc (bottom right), a box (top left), an ellipse (centre) and a caption (bottom
    left) drawn on it in colours picked by `k`, and the graphics' mask (bool)."""
    img, h, w = frame.copy(), frame.shape[0], frame.shape[1]
    mask = np.zeros((h, w), np.uint8)
    c1, c2, c3 = PALETTE[k % 6], PALETTE[(k + 2) % 6], PALETTE[(k + 4) % 6]
    for target, disc, box, ellipse, text in ((img, c1, c2, c3, c2), (mask, 255, 255, 255, 255)):
        cv2.circle(target, (w - 110, h - 110), 70, disc, -1, cv2.LINE_AA)
        cv2.rectangle(target, (30, 30), (230, 110), box, -1)
        cv2.ellipse(target, (w // 2, h // 2), (90, 45), 20, 0, 360, ellipse, -1, cv2.LINE_AA)
        cv2.putText(target, CAPTION, (40, h - 40), cv2.FONT_HERSHEY_TRIPLEX, 1.2, text, 3, cv2.LINE_AA)
    return img, mask > 0


def measure(weights: str | None, data: Path, preset: Preset = PRESETS[DEFAULT_PRESET], every: int = 10) -> dict:
    seg = load_segmenter(weights, preset=preset)
    negatives = find_records(data / "negatives" / "davis-no-people")[::every]
    if not negatives:
        raise SystemExit(f"no frames without people under {data / 'negatives' / 'davis-no-people'}")
    inside, outside = [], []
    for k, rec in enumerate(negatives):
        img, drawn = with_graphics(rec.load()[0], k)
        person = photo_matte(seg, img, RenderOptions(preset=preset)) > 0.5
        inside.append(float(person[drawn].mean()))
        outside.append(float(person[~drawn].mean()))
    return {"frames": len(negatives), "inside": float(np.mean(inside)), "outside": float(np.mean(outside)),
            "frames_over_20": int(sum(i > 0.2 for i in inside))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET)
    p.add_argument("--every", type=int, default=10, help="every Nth frame without people")
    a = p.parse_args(argv)
    r = measure(a.weights, a.data, PRESETS[a.preset], a.every)
    print("| frames | graphics' pixels taken for person | other pixels taken for person | frames over 20% |")
    print("|---|---|---|---|")
    print(f"| {r['frames']} | {r['inside']:.4f} | {r['outside']:.4f} | {r['frames_over_20']} |")


if __name__ == "__main__":
    main()
