"""Are all the people kept? The teacher (MediaPipe Pose) follows one person, so a student of it could learn to
drop the others. This measures, per person, how much of them the model finds.

    python -m bench.people --data ../shared/datasets                        # the shipped weights
    python -m bench.people --data ../shared/datasets --weights runs/x/best.safetensors

Two sets, both from the photo validation split (never trained on): (1) its photos with two or more people (a
person = a connected region of the mask of at least 1% of the photo); (2) generated: pairs of single-person
validation photos, each person cut out by its mask and both pasted side by side onto a frame without people
(`negatives/`), each at a random height of 35-80% of the frame. A person counts as kept when the model (the
app's balanced preset on a photo: its size, second pass and refinement) finds at least half of their pixels;
the table gives how many are kept and the mean recall per person.
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
from train.data import find_records, split_records

MIN_PERSON = 0.01


def people(mask: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the people in a 0/1 mask: connected regions of at least MIN_PERSON of the image."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_PERSON * mask.size]


def recalls(seg, frame: np.ndarray, persons: list[np.ndarray], preset: Preset) -> list[float]:
    found = photo_matte(seg, frame, RenderOptions(preset=preset)) > 0.5
    return [float((found & p).sum() / p.sum()) for p in persons]


def _cut(img: np.ndarray, mask: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    img, mask = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1], mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    s = height / img.shape[0]
    size = (max(1, round(img.shape[1] * s)), height)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA), cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)


def generated_pairs(singles: list, negatives: list, n: int, seed: int = 0):
    """(frame, [person masks]) with two validation people pasted side by side on a frame without people."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        bg = negatives[int(rng.integers(len(negatives)))].load()[0].copy()
        h, w = bg.shape[:2]
        persons = []
        picks = rng.choice(len(singles), 2, replace=False)
        for side, k in enumerate(picks):
            img, mask = singles[int(k)].load()
            fg, fm = _cut(img, mask, int(h * rng.uniform(0.35, 0.8)))
            fw = min(fg.shape[1], w // 2)
            fg, fm = fg[:, :fw], fm[:, :fw]
            x = int(rng.integers(side * w // 2, side * w // 2 + w // 2 - fw + 1))
            y = int(rng.integers(0, h - fg.shape[0] + 1))
            region = bg[y:y + fg.shape[0], x:x + fw]
            region[fm > 0] = fg[fm > 0]
            p = np.zeros((h, w), bool)
            p[y:y + fg.shape[0], x:x + fw] = fm > 0
            persons.append(p)
        yield bg, persons


def measure(weights: str | None, data: Path, preset: Preset = PRESETS[DEFAULT_PRESET], pairs: int = 40) -> dict[str, dict]:
    seg = load_segmenter(weights, preset=preset)
    photos = [r for s in ("ccp", "vikram") for r in find_records(data / "photos" / s)]
    val = split_records(photos, 0.1, 0)[1]
    groups: list[tuple[str, list]] = [("several", []), ("generated", [])]
    singles = []
    for rec in val:
        img, mask = rec.load()
        ps = people(mask)
        if len(ps) >= 2:
            groups[0][1].append(recalls(seg, img, ps, preset))
        elif len(ps) == 1 and (mask > 0).sum() > 0.05 * mask.size:
            singles.append(rec)
    negatives = find_records(data / "negatives" / "davis-no-people")
    for frame, ps in generated_pairs(singles, negatives, pairs):
        groups[1][1].append(recalls(seg, frame, ps, preset))
    out = {}
    for name, rows in groups:
        flat = [r for row in rows for r in row]
        out[name] = {"images": len(rows), "people": len(flat), "kept": int(sum(r >= 0.5 for r in flat)),
                     "mean_recall": float(np.mean(flat)) if flat else float("nan"),
                     "images_all_kept": int(sum(all(r >= 0.5 for r in row) for row in rows))}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET)
    p.add_argument("--pairs", type=int, default=40, help="generated two-person frames")
    a = p.parse_args(argv)
    res = measure(a.weights, a.data, PRESETS[a.preset], a.pairs)
    print("| set | images | people | kept (>= half found) | images with everyone kept | mean recall per person |")
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {r['images']} | {r['people']} | {r['kept']} | {r['images_all_kept']} | "
              f"{r['mean_recall']:.4f} |")


if __name__ == "__main__":
    main()
