"""Score weights on labelled folders, the way the app infers (full frames through the Segmenter, threshold 0.5).

    python -m train.evaluate --weights weights/default.safetensors --data ../shared/datasets/video-gt/davis
    python -m train.evaluate --weights weights/default.safetensors --val-split \\
        --data ../shared/datasets/photos/ccp ../shared/datasets/photos/vikram --json val.json

    python -m train.evaluate --weights weights/default.safetensors --data ../shared/datasets/video-gt/davis \\
        --every 3 --focus --infer-size 384 --per-frame frames.csv     # the balanced preset, frame by frame

`--val-split` scores only the seeded validation part of the given training folders (the same records
`python -m train` held out with the same --val-fraction/--split-seed); `--split run/split.json` reads the
exact list a run wrote. The table has one row per set (per sub-folder for nested sets) and one overall:
mean of per-image IoU (`mIoU/img`) and IoU over all pixels pooled (`IoU`), plus Dice, F2, precision,
recall and pixel accuracy.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process(pipeline=False)

import torch

from model import Segmenter
from model.focus import Focus
from model.refine import RefineOptions
from model.checkpoint import CheckpointError
from train.data import DataError, Record, find_records, read_split, split_records
from train.loop import evaluate_frames

COLUMNS = [("images", "n", "{:d}"), ("mean_iou", "mIoU/img", "{:.4f}"), ("iou", "IoU", "{:.4f}"),
           ("dice", "Dice", "{:.4f}"), ("f2", "F2", "{:.4f}"), ("precision", "Prec", "{:.4f}"),
           ("recall", "Rec", "{:.4f}"), ("accuracy", "Acc", "{:.4f}"),
           ("flicker", "Flicker", "{:.5f}"), ("flicker_gt", "GT flick", "{:.5f}")]


def evaluate(weights: str | Path, data: list[str | Path] | None = None, *, records: list[Record] | None = None,
             val_split: bool = False, val_fraction: float = 0.1, split_seed: int = 0,
             infer_size: int | None = None, progress: bool = False, refine: RefineOptions | None = None,
             flicker: bool = False, every: int = 1, backend: str = "torch",
             focus: Focus | None = None, per_frame: list[dict[str, Any]] | None = None,
             still: bool = False) -> dict[str, dict[str, float]]:
    """{"<set>": metrics, ..., "overall": metrics} for `weights` on `data` folders (or explicit records).
    `per_frame`: a list that gets each frame's scores (train.loop.frame_row).
    `still`: each image as the app makes a photo (app.pipeline.matte_stream): also seen mirrored; no keyframes.
    `backend` as in Segmenter.from_checkpoint: "auto" scores what the app runs (the INT8 copy on a CPU)."""
    if still and every > 1:
        raise ValueError("a photo has no keyframes: `still` takes every=1")
    # Weights first: a wrong path should fail before minutes of data scanning.
    seg = Segmenter.from_checkpoint(weights, device="cpu" if not torch.cuda.is_available() else None,
                                    infer_size=infer_size, backend=backend)
    seg = seg.mirrored() if still else seg
    if records is None:
        records = [r for d in (data or []) for r in find_records(d)]
        if val_split:
            records = split_records(records, val_fraction, split_seed)[1]
    if not records:
        raise DataError("nothing to evaluate: no labelled images found")
    return evaluate_frames(seg, records, progress=progress, refine=refine, flicker=flicker, every=every, focus=focus,
                           per_frame=per_frame)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    head = f"{'set':<28}" + "".join(f"{title:>10}" for _, title, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for group, m in results.items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = m.get(key)
            cells.append(f"{fmt.format(int(v) if key == 'images' else v):>10}" if v is not None else f"{'':>10}")
        lines.append(f"{group:<28}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--data", nargs="+", default=[], metavar="DIR")
    p.add_argument("--split", metavar="SPLIT_JSON", help="evaluate the val records listed in a run's split.json")
    p.add_argument("--val-split", action="store_true", help="only the seeded validation part of --data")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--infer-size", type=int, default=None, help="override the long side stored in the weights")
    p.add_argument("--refine", choices=["raw", "app"], default="raw",
                   help="raw per-frame output (default), or with the app's matte refinement (smoothing, guided edges)")
    p.add_argument("--flicker", action="store_true",
                   help="add each sequence's flicker: mean alpha change between frames where the picture is still")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="the app's keyframes: the network on every K-th frame of a sequence, the matte carried "
                        "along optical flow between (implies --refine app); the presets use 4/3/1")
    p.add_argument("--focus", action="store_true",
                   help="the app's person-focused second pass: the network again on a crop around small people")
    p.add_argument("--still", action="store_true",
                   help="score each image as the app makes a photo: the network also sees it mirrored")
    p.add_argument("--backend", choices=["torch", "onnx", "int8", "auto"], default="torch",
                   help="the network's runtime: torch (default), ONNX, its INT8 copy, or auto (what the app runs)")
    p.add_argument("--json", metavar="OUT", help="also write the metrics as JSON")
    p.add_argument("--per-frame", metavar="CSV", help="also write each frame's scores: IoU, precision, recall, "
                   "IoU inside the labelled person's box (a person cut or missed) and predicted pixels outside it")
    a = p.parse_args(argv)
    if not a.data and not a.split:
        p.error("give --data DIR [DIR ...] or --split run/split.json")
    if a.still and a.every > 1:
        p.error("--still scores photos: no --every")
    rows: list[dict[str, Any]] | None = [] if a.per_frame else None
    try:
        records = read_split(a.split) if a.split else None
        results = evaluate(a.weights, a.data, records=records, val_split=a.val_split, val_fraction=a.val_fraction,
                           split_seed=a.split_seed, infer_size=a.infer_size, progress=sys.stderr.isatty(),
                           refine=RefineOptions() if a.refine == "app" else None, flicker=a.flicker,
                           every=a.every, backend=a.backend, focus=Focus() if a.focus else None,
                           per_frame=rows, still=a.still)
    except (DataError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, sort_keys=True))
    if rows is not None and not rows:
        print(f"no per-frame scores for multi-class sets: {a.per_frame} not written", file=sys.stderr)
    if rows:
        with open(a.per_frame, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: f"{v:.5f}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
