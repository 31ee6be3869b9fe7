"""The held-out sets that choose the weights (issue 14; the model card's table of them), built in one command and
scored in one command, so that a new machine gets the same sets, and the same weights the same row.

    python -m bench.heldout build --labels ~/L --data ../shared/datasets --mediapipe-python ~/mp/bin/python
    python -m bench.heldout score --weights weights/default.safetensors --labels ~/L --data ../shared/datasets

`build` labels the clips with MediaPipe Pose (train.label: video mode, every 2nd frame, long side 768) unless
their folders are there already: `u/` (videos-unlabelled), `v/` (videos), `two/bedroom2` (bedroom_sam2 with both
children, `--people 2`). Then, under the same folder: `train/` and `val/`, links to the labelled clips (the two
held-out clips in `val/`; bedroom_sam2, which has a second person the one-person teacher misses, in neither),
`pval/` (the photo val split, one set per photo, linked), and the shrunk sets of `SHRUNK` (bench.zoomout, fixed
seeds). `python -m train --pseudo L/train --video-val L/val` trains on them.

`score` runs each set as the app runs a clip at the balanced preset (384 px, the network on every 3rd frame,
refinement, the second pass; the photo sets as single photos) with the float network, then the photo val split
the same way ("pv"), and prints one row: each set's mean IoU per frame, their mean, pv. The card's rule for
shipping weights reads that row.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process(pipeline=False)

from bench.zoomout import zoom_out
from model.checkpoint import CheckpointError
from model.focus import Focus
from model.refine import RefineOptions
from train.data import DataError, find_records, split_records
from train.evaluate import evaluate
from train.label import TeacherError, label

HELD_OUT = ("dance_dispose_1080x1920", "juggle_sam2")    # the video validation clips: never trained on
LEFT_OUT = ("bedroom_sam2",)                            # two people, the teacher follows one: `two/` instead
PHOTOS = ("photos/ccp", "photos/vikram")
NEGATIVES = "negatives/davis-no-people"
# (name, made from, zoom-out keywords): the small-person sets, each input set shrunk over 4 (photos: 2) scenes;
# the last three are extras outside the mean (`score --sets`): a dancer before an audience, a pair apart, a
# dancer beside two stone figures of herself (labelled background: what a statue costs).
SHRUNK = (
    ("val-small4", "val", dict(scale=0.35, variants=4, seed=0)),
    ("two-small4", "two", dict(scale=0.35, variants=4, seed=0)),
    ("val-cut4", "val", dict(scale=0.35, variants=4, seed=1, cut=True)),
    ("two-cut4", "two", dict(scale=0.35, variants=4, seed=1, cut=True)),
    ("pval-small", "pval", dict(scale=0.3, variants=2, seed=2)),
    ("pval-cut", "pval", dict(scale=0.3, variants=2, seed=2, cut=True)),
    ("val-crowd", "val", dict(scale=0.5, variants=2, seed=3, cut=True, crowd=5, crowd_scale=0.35)),
    ("val-pair", "val", dict(scale=0.3, variants=2, seed=1, cut=True, copies=2)),
    ("val-statue", "val", dict(scale=0.35, variants=2, seed=4, cut=True, statues=2)),
)
SETS = ("val", "two", "val-small4", "two-small4", "val-cut4", "two-cut4", "pval-small", "pval-cut")  # the mean's
SIZE, EVERY = 384, 3        # the balanced preset for weights shipped at 320 (app.options.PRESETS)


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return
        link.unlink()
    link.symlink_to(target.resolve())


def build(labels: Path, data: Path, mediapipe_python: str | None = None, log=print) -> None:
    """Label what is not labelled yet (`mediapipe_python`: the teacher's venv), then link and make every set."""
    labels.mkdir(parents=True, exist_ok=True)
    clips = [(data / "videos-unlabelled", labels / "u", 1), (data / "videos", labels / "v", 1),
             (data / "videos-unlabelled" / "bedroom_sam2.mp4", labels / "two" / "bedroom2", 2)]
    missing = [c for c in clips if not c[1].is_dir()]
    if missing and not mediapipe_python:
        raise DataError(f"no labels in {', '.join(str(c[1]) for c in missing)}: give --mediapipe-python "
                        "(a venv with mediapipe==0.10.21) to make them")
    if missing:
        for src, out, people in missing:
            # Into a scratch folder first: a folder that is there counts as labelled, so never a half-done one.
            tmp = labels / f".labelling-{out.name}"        # beside the sets, never inside one
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                reports = label(src, tmp, mediapipe_python=mediapipe_python, every=2, max_side=768, people=people,
                                on_set=lambda r: log(r.line()))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(out)
            log(f"{out}: {sum(r.written for r in reports)} frames labelled")
    for part in ("train", "val"):
        (labels / part).mkdir(exist_ok=True)
    for clip in sorted(d for folder in ("u", "v") for d in (labels / folder).iterdir() if (d / "images").is_dir()):
        if clip.name in HELD_OUT:
            _link(clip, labels / "val" / clip.name)
        elif clip.name not in LEFT_OUT:
            _link(clip, labels / "train" / clip.name)
    photos = [r for folder in PHOTOS for r in find_records(data / folder)]
    for r in split_records(photos, 0.1, 0)[1]:          # train's own split (--val-fraction 0.1 --split-seed 0)
        one = labels / "pval" / Path(r.image).stem
        for src, sub in ((r.image, "images"), (r.mask, "masks")):
            (one / sub).mkdir(parents=True, exist_ok=True)
            _link(Path(src), one / sub / Path(src).name)
    for name, src, kw in SHRUNK:
        frames = zoom_out(labels / src, data / NEGATIVES, labels / name, log=lambda _line: None, **kw)
        log(f"{name}: {frames} frames")


def score(weights: Path, labels: Path, data: Path, sets: tuple[str, ...] = SETS, photos: bool = True,
          log=print) -> dict[str, float]:
    """{set: mean IoU per frame} as the app runs it at balanced, plus "mean" (of `sets`) and "pv" (photo val)."""
    kw = dict(infer_size=SIZE, refine=RefineOptions(), focus=Focus(), backend="torch")
    out = {}
    for name in sets:
        still = name.startswith("pval")         # photos: single frames, as the photo path runs them
        out[name] = evaluate(weights, [labels / name], every=1 if still else EVERY, still=still,
                             **kw)["overall"]["mean_iou"]
        log(f"{name}: {out[name]:.4f}")
    out["mean"] = sum(out[s] for s in sets) / len(sets)
    if photos:
        out["pv"] = evaluate(weights, [data / p for p in PHOTOS], val_split=True, still=True,
                             **kw)["overall"]["mean_iou"]
    return out


def row(name: str, scores: dict[str, float]) -> str:
    return f"| {name} | " + " | ".join(f"{v:.4f}" for v in scores.values()) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.heldout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="label the clips (if needed) and make the sets")
    s = sub.add_parser("score", help="one row of the table for some weights")
    for q in (b, s):
        q.add_argument("--labels", type=Path, required=True, help="the folder of labels and sets (outside the repo)")
        q.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    b.add_argument("--mediapipe-python", help="the python of a venv with mediapipe==0.10.21 (to label the clips)")
    s.add_argument("--weights", type=Path, required=True)
    s.add_argument("--sets", nargs="+", default=list(SETS), help=f"which sets (default the eight: {' '.join(SETS)})")
    s.add_argument("--no-photos", action="store_true", help="leave out the photo val split (pv)")
    s.add_argument("--json", type=Path, help="also write the scores here")
    a = p.parse_args(argv)
    known = set(SETS) | {name for name, _, _ in SHRUNK}
    if a.command == "score" and set(a.sets) - known:
        p.error(f"unknown set(s): {' '.join(sorted(set(a.sets) - known))}; known: {' '.join(sorted(known))}")
    try:
        if a.command == "build":
            build(a.labels, a.data, a.mediapipe_python)
            return 0
        missing = [n for n in a.sets if not (a.labels / n).is_dir()]
        if missing:
            raise DataError(f"no set {', '.join(missing)} in {a.labels}: run `python -m bench.heldout build` first")
        scores = score(a.weights, a.labels, a.data, tuple(a.sets), photos=not a.no_photos,
                       log=lambda line: print(line, file=sys.stderr, flush=True))     # stdout: the row
    except (DataError, CheckpointError, TeacherError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("| weights | " + " | ".join(scores) + " |")
    print(row(a.weights.name, scores))
    if a.json:
        a.json.write_text(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
