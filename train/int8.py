"""Make the INT8 copy of shipped weights (model.export.quantize_int8), calibrated on the training split only.

    python -m train.int8 --weights weights/default.safetensors \\
        --data ../shared/datasets/photos/ccp ../shared/datasets/photos/vikram      # writes weights/default.int8.onnx

The validation photos (the same seeded split `python -m train` holds out) are never used for calibration.
The app uses the file only while it matches the checkpoint it was made from (model.export.int8_path_for).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process(pipeline=False)

from model.export import quantize_int8
from train.data import DataError, find_records, split_records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.int8", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=Path("weights/default.safetensors"))
    p.add_argument("--data", nargs="+", type=Path, required=True, metavar="DIR", help="training photo folders")
    p.add_argument("--out", type=Path, help="default: <weights stem>.int8.onnx beside the weights")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--count", type=int, default=64, help="calibration images")
    a = p.parse_args(argv)
    try:
        train, val = split_records([r for d in a.data for r in find_records(d)], a.val_fraction, a.split_seed)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = quantize_int8(a.weights, [Path(r.image) for r in train if hasattr(r, "image")], a.out, count=a.count)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), calibrated on {min(a.count, len(train))} of the "
          f"{len(train)} training photos ({len(val)} validation photos left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
