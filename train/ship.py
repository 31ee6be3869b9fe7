"""Turn a run's best checkpoint into the shipped weights, with metrics measured on the shipped file itself.

    python -m train.ship --run runs/effnet-v1 --out weights/default.safetensors \\
        --test ../shared/datasets/video-gt/davis --speed-video ../shared/datasets/videos/tiktok_dance_0.mp4

Writes fp16 weights (half the size; the Segmenter loads them as float32), evaluates *that* file on the run's
held-out split (split.json) and on the --test sets, times CPU inference, stores everything in the file's
metadata and in `<out dir>/metrics.json`, which the data test in CI recomputes.

`--infer-size N` ships the network with N as its own inference size instead of the run's: the app's presets
scale that size (fast 1.0x, balanced 1.2x, quality 1.4x), so weights trained at 384 px ship with 320 to keep
the presets at 320 / 384 / 448. The metadata's config still says what the run trained at.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process(pipeline=False)

import numpy as np
import torch

from model import Segmenter, load_checkpoint, save_checkpoint
from model.checkpoint import read_metadata
from train.data import find_records, read_split
from train.evaluate import evaluate, format_table
from train.label import iter_video


def cpu_speed(weights: Path, video: Path, frames: int = 30, threads: int = 1) -> dict[str, Any]:
    """Median seconds per frame through Segmenter.predict, batch 1, `threads` torch threads."""
    torch.set_num_threads(threads)
    seg = Segmenter.from_checkpoint(weights, device="cpu")
    clip = []
    for f in iter_video(video):
        clip.append(f)
        if len(clip) >= frames:
            break
    seg.predict(clip[:2])  # first calls allocate; not what a user waits for per frame
    times = []
    for f in clip:
        t0 = time.perf_counter()
        seg.predict([f])
        times.append(time.perf_counter() - t0)
    h, w = clip[0].shape[:2]
    return {"seconds_per_frame_median": float(np.median(times)), "frames": len(times), "threads": threads,
            "frame_size": f"{w}x{h}", "infer_long_side": seg.infer_size, "video": video.name}


def ship(run: Path, out: Path, tests: list[Path], speed_video: Path | None, threads: int = 1,
         infer_size: int | None = None) -> dict[str, Any]:
    src = load_checkpoint(run / "best.safetensors")
    if infer_size:
        src = dataclasses.replace(src, spec=dataclasses.replace(src.spec, infer_size=infer_size))
    meta = read_metadata(run / "best.safetensors")
    config = meta.get("config", {})
    mix = {"averaged_from": meta["averaged_from"]} if "averaged_from" in meta else {}     # train.average's weights
    common = {"name": src.name, "data": meta.get("data"), "command": meta.get("command"), "epoch": meta.get("epoch"),
              "train_metrics_at_epoch": meta.get("metrics"), "config": config,
              **mix, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    save_checkpoint(out, src.model, src.spec, half=True, **common)
    metrics: dict[str, Any] = {"weights": out.name, "epoch": meta.get("epoch"), "date": common["date"], **mix}
    val = evaluate(out, records=read_split(run / "split.json"))
    metrics["val"] = val
    print("val split\n" + format_table(val), flush=True)
    for t in tests:
        res = evaluate(out, [t])
        metrics[f"test:{t.name}"] = res
        print(f"{t}\n" + format_table(res), flush=True)
    if speed_video:
        metrics["cpu_speed"] = cpu_speed(out, speed_video, threads=threads)
    metrics["val_split"] = {"val_fraction": config.get("val_fraction"), "split_seed": config.get("split_seed"),
                            "sets": config.get("train"), "images": val["overall"]["images"]}
    headline = {"val_mean_iou": val["overall"]["mean_iou"], "val_iou": val["overall"]["iou"]}
    for t in tests:
        for g, m in metrics[f"test:{t.name}"].items():
            headline[f"{t.name}/{g}_mean_iou"] = m["mean_iou"]
    metrics["headline"] = headline
    # Same tensors (fp16 -> fp32 -> fp16 is lossless), now with the measured numbers inside the file too.
    shipped = load_checkpoint(out)
    save_checkpoint(out, shipped.model, shipped.spec, half=True, metrics=headline, **common)
    (out.parent / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    return metrics


CARD_START, CARD_END = "<!-- metrics:start (written by python -m train.ship) -->", "<!-- metrics:end -->"


def _mix(parts: list[dict[str, Any]]) -> str:
    """`train.average`'s record of a weighted mean, nested means included: "0.6 x a (epoch 2) + 0.4 x (...)"."""
    def one(p: dict[str, Any]) -> str:
        if p.get("averaged_from"):
            return f"{p['weight']:.2f} x `{p['file']}` = ({_mix(p['averaged_from'])})"
        return f"{p['weight']:.2f} x `{p['file']}`" + (f" (epoch {p['epoch']})" if p.get("epoch") is not None else "")
    return " + ".join(one(p) for p in parts)


def card_block(m: dict[str, Any]) -> str:
    """The numbers section of MODEL_CARD.md, straight from metrics.json so the card cannot drift."""
    epoch = str(m["epoch"])
    if m.get("averaged_from"):
        what = f"The weighted mean {_mix(m['averaged_from'])} (`python -m train.average`)"
    elif "+" in epoch:
        what = f"The mean of the weights of epochs {epoch.replace('+', ', ')} (`python -m train.average`)"
    else:
        what = f"Epoch {epoch} of the run"
    lines = [f"{what}, shipped {m['date']}.", "",
             "| data | images | mIoU/img | IoU | Dice | F2 | precision | recall | accuracy |",
             "|---|---|---|---|---|---|---|---|---|"]
    parts = [("val split", m["val"])] + [(k.split(":", 1)[1], v) for k, v in m.items() if k.startswith("test:")]
    for title, res in parts:
        for g, r in sorted(res.items(), key=lambda kv: (kv[0] == "overall", kv[0])):
            name = f"**{title} overall**" if g == "overall" else f"{title}: {g}"
            lines.append(f"| {name} | {r['images']} | {r['mean_iou']:.4f} | {r['iou']:.4f} | {r['dice']:.4f} | "
                         f"{r['f2']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | {r['accuracy']:.4f} |")
    if "cpu_speed" in m:
        c = m["cpu_speed"]
        lines += ["", f"CPU speed: median {c['seconds_per_frame_median'] * 1000:.0f} ms per frame "
                  f"({c['frame_size']} frames of {c['video']} at long side {c['infer_long_side']}, batch 1, "
                  f"{c['threads']} torch thread(s), `Segmenter.predict` including resizing) on the machine that "
                  "trained it (2 CPU cores shared with other jobs, so treat it as approximate)."]
    return "\n".join(lines)


def update_card(card: Path, m: dict[str, Any]) -> None:
    text = card.read_text()
    if CARD_START not in text or CARD_END not in text:
        raise ValueError(f"{card} has no {CARD_START} ... {CARD_END} block to fill")
    head, rest = text.split(CARD_START, 1)
    _, tail = rest.split(CARD_END, 1)
    card.write_text(f"{head}{CARD_START}\n{card_block(m)}\n{CARD_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.ship", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--out", default=Path("weights/default.safetensors"), type=Path)
    p.add_argument("--test", nargs="*", default=[], type=Path)
    p.add_argument("--speed-video", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--card", type=Path, help="MODEL_CARD.md whose metrics block to rewrite")
    p.add_argument("--infer-size", type=int, help="the shipped network's own inference size, which the presets "
                   "scale (default: the run's)")
    a = p.parse_args(argv)
    for t in a.test:
        find_records(t)  # fail before writing anything if a test folder is wrong
    m = ship(a.run, a.out, a.test, a.speed_video, a.threads, a.infer_size)
    if a.card:
        update_card(a.card, m)
    print(json.dumps(m["headline"], indent=1))
    if "cpu_speed" in m:
        print(json.dumps(m["cpu_speed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
