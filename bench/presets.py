"""Accuracy of each speed preset, run the way the app runs it: IoU on the validation split and on video-gt/davis.

    python -m bench.presets --data ../shared/datasets            # writes weights/presets.json, prints the table

Each preset is an inference size and a keyframe interval (app.options.PRESETS), run on the app's backend
("auto": the INT8 copy of the weights on a CPU when there is one; `--backend torch` for the float network). Photos (the validation split)
see the size and, as the app's photos, the mirror image too; the DAVIS sequences also see the keyframes (the network on every k-th frame, the matte
carried along optical flow between), with the app's default refinement. tests/test_train_data.py recomputes
the file's figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process()

from app.options import PRESETS
from model.focus import Focus
from app.pipeline import DEFAULT_WEIGHTS
from model.checkpoint import read_metadata
from model.refine import RefineOptions
from train.evaluate import evaluate, format_table

DAVIS = ("lucia", "dance-jump")


def measure(weights: Path, data: Path, name: str, backend: str = "auto") -> dict:
    preset = PRESETS[name]
    size, every = preset.infer_size(int(read_metadata(weights)["spec"]["infer_size"])), preset.keyframe_every
    focus = Focus() if preset.focus else None
    photos = [data / "photos" / "ccp", data / "photos" / "vikram"]
    kw = {"infer_size": size, "refine": RefineOptions(), "backend": backend, "focus": focus}
    val = evaluate(weights, photos, val_split=True, still=True, **kw)     # as the app makes photos
    davis = evaluate(weights, [data / "video-gt" / "davis"], every=every, **kw)
    print(f"{name}: size {size}, every {every}, second pass {'on' if focus else 'off'}\n{format_table({'val': val['overall'], **davis})}\n", flush=True)
    return {"infer_size": size, "keyframe_every": every, "focus": focus is not None, "val_mean_iou": val["overall"]["mean_iou"],
            **{f"davis_{s}_mean_iou": davis[f"davis/{s}"]["mean_iou"] for s in DAVIS},
            "davis_mean_iou": sum(davis[f"davis/{s}"]["mean_iou"] for s in DAVIS) / len(DAVIS)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="the datasets folder (photos/, video-gt/davis)")
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument("--out", type=Path, help="JSON to write (default: presets.json beside the weights)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx", "int8"], default="auto")
    args = p.parse_args(argv)
    results = {preset: measure(args.weights, args.data, preset, args.backend) for preset in PRESETS}
    out = args.out or args.weights.with_name("presets.json")
    from model import Segmenter

    backend = Segmenter.from_checkpoint(args.weights, device="cpu", backend=args.backend).backend
    out.write_text(json.dumps({"weights": args.weights.name, "backend": backend, "presets": results}, indent=1)
                   + "\n")
    print("| preset | size | keyframes | val mIoU | DAVIS lucia | DAVIS dance-jump | DAVIS mean |\n|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['infer_size']} | every {r['keyframe_every']} | {r['val_mean_iou']:.4f} | "
              f"{r['davis_lucia_mean_iou']:.4f} | {r['davis_dance-jump_mean_iou']:.4f} | {r['davis_mean_iou']:.4f} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
