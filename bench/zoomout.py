"""Small people from big ones: labelled sequences shrunk into a larger scene, to measure the small-person case
(the second pass, model.focus) on held-out clips instead of on the evaluation-only ground truth.

    python -m bench.zoomout --input L/val --backgrounds ../shared/datasets/negatives/davis-no-people \\
        --out L/val-small --scale 0.35
    python -m train.evaluate --weights weights/default.safetensors --data L/val-small --refine app --every 3 \\
        --focus --infer-size 384 --backend auto

Each set (images/ + masks/, as train.label writes them) becomes a set of the same frame size in which every
frame is shrunk by `--scale` and pasted at one fixed place (random per set, seeded) over one frame without
people, cut to cover the frame; its mask the same, over zeros. The camera thus seems to have stepped back: the
dancer moves as before, only smaller, as in a wide shot. labels.json is kept (soft labels stay soft).

`--cut` pastes only the person (the label, softened by a 3x3 blur, as the alpha) instead of the whole shrunk
frame: no rectangle of another scene around the person to give away where to look, as in a real wide shot
(the rectangle's edges are a cue no real clip has; the price is a seam along the label's own edge).

`--copies N` pastes each frame N times side by side (every other copy mirrored), each at its own fixed place in
its own slice of the frame's width: people apart in one wide shot (a duo, a group dance), whom one box around
all of them holds at no closer look than the whole frame. Each copy keeps its own place through the set.

`--crowd N` adds an audience: N smaller copies of each frame (`--crowd-scale` of the person's size; every other
one mirrored), side by side along the top quarter of the frame and behind the person, all labelled: a dancer
on a stage with people watching, where one box around everyone holds the whole frame and the dancer still
needs a closer look of her own.

`--statues N` adds N statues beside the person: the person of the set's first frame at the same size, painted
as stone (train.data.stone, one tone per statue), standing still on the person's ground line, each at
its own place (its box's centre at least half a person's width from the person's), labelled background, behind
the person: figures shaped like people that are not people (a fountain's stone lions next to the dancer in DAVIS
dance-jump were marked as her).

`--variants N` makes N such sets of each input set (`<set>~0` .. `<set>~N-1`), each over its own background at
its own place: one background's look-alike of a person (a post, a statue) then weighs 1/N of the score, not all
of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from train.data import IMAGE_EXTS, LABELS_FILE, stone


def _cover(img: np.ndarray, h: int, w: int) -> np.ndarray:
    scale = max(h / img.shape[0], w / img.shape[1])
    big = cv2.resize(img, (max(w, round(img.shape[1] * scale)), max(h, round(img.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA)
    top, left = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[top:top + h, left:left + w]


def _fill(src: Path, tmp: Path, images: list[Path], background: np.ndarray, scale: float,
          rng: np.random.Generator, cut: bool, copies: int, crowd: int, crowd_scale: float,
          statues: int = 0) -> None:
    spots = seats = None
    figures: list[tuple[np.ndarray, np.ndarray, int, int]] = []
    for path in images:
        img = cv2.imread(str(path))
        mask = cv2.imread(str(src / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        h, w = img.shape[:2]
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        if spots is None:
            if copies * sw > w:
                raise ValueError(f"{copies} copies at {scale:g}x do not fit side by side in {w} px")
            slot = w // copies      # copy k stays inside the k-th slice of the width
            spots = [(int(rng.integers(0, h - sh + 1)), k * slot + int(rng.integers(0, slot - sw + 1)))
                     for k in range(copies)]
            bg = _cover(background, h, w)
            ch, cw = max(1, round(sh * crowd_scale)), max(1, round(sw * crowd_scale))
            if crowd and crowd * cw > w:
                raise ValueError(f"a crowd of {crowd} at {scale * crowd_scale:g}x does not fit side by side in {w} px")
            # The audience sits along the top quarter (its feet at most there), one seat per slice of the width.
            seat = w // max(1, crowd)
            seats = [(int(rng.integers(0, max(0, h // 4 - ch) + 1)), k * seat + int(rng.integers(0, seat - cw + 1)))
                     for k in range(crowd)]
            if statues:
                figures = _statues(img, mask, sh, sw, spots[0], w, statues, rng)
        frame, target = bg.copy(), np.zeros((h, w), np.uint8)
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA)
        tiny = (cv2.resize(img, (cw, ch), interpolation=cv2.INTER_AREA),
                cv2.resize(mask, (cw, ch), interpolation=cv2.INTER_AREA)) if crowd else None
        # The crowd first, the person last (in front): (picture, label, top, left) in painting order.
        pastes = [(*tiny, y, x) for y, x in seats] + [(small, small_mask, y, x) for y, x in spots]
        for pic, alpha, y, x in figures:        # behind the person, before them; background
            a = alpha[..., None]
            region = frame[y:y + pic.shape[0], x:x + pic.shape[1]]
            frame[y:y + pic.shape[0], x:x + pic.shape[1]] = (pic * a + region * (1 - a) + 0.5).astype(np.uint8)
            target[y:y + pic.shape[0], x:x + pic.shape[1]] = \
                (target[y:y + pic.shape[0], x:x + pic.shape[1]] * (1 - alpha) + 0.5).astype(np.uint8)
        for k, (pic, lab, y, x) in enumerate(pastes):
            if k % 2:
                pic, lab = pic[:, ::-1], lab[:, ::-1]
            if cut:
                a = cv2.GaussianBlur(lab, (3, 3), 0)[..., None] / np.float32(255)
                pic = (pic * a + frame[y:y + lab.shape[0], x:x + lab.shape[1]] * (1 - a) + 0.5).astype(np.uint8)
                under = target[y:y + lab.shape[0], x:x + lab.shape[1]]
                lab = np.maximum(lab, under)       # a person pasted alone hides the label only where it covers it
            target[y:y + lab.shape[0], x:x + lab.shape[1]] = lab
            frame[y:y + lab.shape[0], x:x + lab.shape[1]] = pic
        cv2.imwrite(str(tmp / "images" / path.name), frame)
        cv2.imwrite(str(tmp / "masks" / f"{path.stem}.png"), target)
    if (src / LABELS_FILE).is_file():
        meta = json.loads((src / LABELS_FILE).read_text())
        meta.update(zoomed_out_from=str(src), scale=scale, **({"copies": copies} if copies > 1 else {}),
                    **({"crowd": crowd, "crowd_scale": crowd_scale} if crowd else {}),
                    **({"statues": statues} if statues else {}))
        (tmp / LABELS_FILE).write_text(json.dumps(meta, indent=1))


def _statues(img: np.ndarray, mask: np.ndarray, sh: int, sw: int, spot: tuple[int, int], w: int, n: int,
             rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """`n` stone figures of a frame's person (BGR), shrunk to (sh, sw), on the ground line of the person at
    `spot` and clear of them: (picture, alpha in [0, 1], top, left)."""
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    alpha = cv2.GaussianBlur(cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA), (3, 3), 0) / np.float32(255)
    places = [x for x in range(w - sw + 1) if abs(x - spot[1]) >= sw / 2]
    if not places:
        raise ValueError(f"no room for a statue beside a person at {sw} px in {w} px")
    figures = []
    for k in range(n):
        x = int(places[int(rng.integers(len(places)))])
        tone = np.random.default_rng(int(rng.integers(2**31)))
        pic = cv2.cvtColor(stone(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), tone).astype(np.uint8), cv2.COLOR_RGB2BGR)
        pic, a = (pic[:, ::-1], alpha[:, ::-1]) if k % 2 == 0 else (pic, alpha)     # facing the other way first
        figures.append((np.ascontiguousarray(pic), np.ascontiguousarray(a), spot[0], x))
    return figures


def zoom_out_set(src: Path, dst: Path, background: np.ndarray, scale: float, rng: np.random.Generator,
                 cut: bool = False, copies: int = 1, crowd: int = 0, crowd_scale: float = 0.4,
                 statues: int = 0) -> int:
    images = sorted(p for p in (src / "images").iterdir() if p.suffix.lower() in IMAGE_EXTS)
    tmp = dst.with_name(f".{dst.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "masks").mkdir()
    try:
        _fill(src, tmp, images, background, scale, rng, cut, copies, crowd, crowd_scale, statues)
    except BaseException:       # nothing half-made is left behind (a crowd that does not fit, a full disk)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return len(images)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path, required=True, help="folder of labelled sets (each images/ + masks/)")
    p.add_argument("--backgrounds", type=Path, required=True,
                   help="folder of frames without people (searched deeply; masks/ folders skipped)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scale", type=float, default=0.35, help="how much smaller the people become (0-1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", type=int, default=1, help="sets made of each input set, each on its own background")
    p.add_argument("--cut", action="store_true", help="paste only the person (its label as alpha), not the frame")
    p.add_argument("--copies", type=int, default=1,
                   help="paste each frame this many times side by side (people apart in one wide shot)")
    p.add_argument("--crowd", type=int, default=0,
                   help="also paste this many smaller copies along the top of the frame, behind (an audience)")
    p.add_argument("--crowd-scale", type=float, default=0.4, help="the audience's size relative to the person's")
    p.add_argument("--statues", type=int, default=0,
                   help="also paste this many stone figures of the person beside them, labelled background")
    args = p.parse_args(argv)
    if not 0 < args.scale < 1:
        p.error("--scale must be between 0 and 1")
    if args.variants < 1:
        p.error("--variants must be at least 1")
    if args.copies < 1 or args.copies * args.scale > 1:
        p.error("--copies must be at least 1, and copies x scale at most 1 (side by side in the frame's width)")
    if args.crowd < 0 or not 0 < args.crowd_scale <= 1 or args.crowd * args.scale * args.crowd_scale > 1:
        p.error("--crowd must be at least 0, --crowd-scale between 0 and 1, and the crowd must fit side by side "
                "(crowd x scale x crowd-scale at most 1)")
    if args.statues < 0:
        p.error("--statues must be at least 0")
    try:
        zoom_out(args.input, args.backgrounds, args.out, scale=args.scale, seed=args.seed, variants=args.variants,
                 cut=args.cut, copies=args.copies, crowd=args.crowd, crowd_scale=args.crowd_scale,
                 statues=args.statues)
    except ValueError as exc:
        p.error(str(exc))


def zoom_out(src: Path, backgrounds: Path, out: Path, *, scale: float = 0.35, seed: int = 0, variants: int = 1,
             cut: bool = False, copies: int = 1, crowd: int = 0, crowd_scale: float = 0.4, statues: int = 0,
             log=print) -> int:
    """Every set of `src` shrunk into frames without people from `backgrounds` (the command's work; its flags
    as keywords); the frames made, all sets together. ValueError when there is no background picture or no set."""
    # Pictures only: a set of frames without people in the images/ + masks/ layout has its (black) masks beside.
    pictures = sorted(q for q in Path(backgrounds).rglob("*")
                      if q.suffix.lower() in IMAGE_EXTS and q.parent.name != "masks")
    sets = sorted(d for d in Path(src).iterdir() if (d / "images").is_dir()) if Path(src).is_dir() else []
    if not pictures or not sets:
        raise ValueError("need at least one background picture and one labelled set")
    rng = np.random.default_rng(seed)
    Path(out).mkdir(parents=True, exist_ok=True)
    total = 0
    for d in sets:
        for k in range(variants):
            pick = rng.integers(len(pictures))       # drawn as with one variant: --variants 1 is unchanged
            name = d.name if variants == 1 else f"{d.name}~{k}"
            background = cv2.imread(str(pictures[int(pick)]))
            n = zoom_out_set(d.resolve(), Path(out) / name, background, scale, rng, cut=cut,
                             copies=copies, crowd=crowd, crowd_scale=crowd_scale, statues=statues)
            total += n
            times = (f" x{copies}" if copies > 1 else "") + (f" + a crowd of {crowd}" if crowd else "") \
                + (f" + {statues} statues" if statues else "")
            log(f"{name}: {n} frames at {scale:g}x{times} over {pictures[int(pick)].name}")
    return total


if __name__ == "__main__":
    main()
