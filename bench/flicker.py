"""Matte refinement settings against flicker and accuracy, on labelled DAVIS sequences and unlabelled clips.

    python -m bench.flicker                                   # shipped weights, ../shared/datasets
    python -m bench.flicker --weights runs/x/best.safetensors --data /path/to/datasets --clips 2
    python -m bench.flicker --gif raw_vs_default.gif          # + side-by-side mask GIF of tiktok_dance_0
    python -m bench.flicker --preset balanced                 # at the preset's size, + a row for the preset itself

The network runs once per frame; every setting then refines the same probabilities with the app's Refiner,
so the rows differ only by refinement; with --preset, one more row runs the network the way that preset does on
a video (on every k-th frame, the matte carried along optical flow between: model.matte.MatteStream), with the
default refinement and the preset's second pass: the app's output, against the raw per-frame row; on DAVIS a
last row gives the ground truth's own flicker (an output far calmer than it would be lagging the motion). Flicker (model.refine.FlickerMeter) is the mean alpha change between
consecutive frames over pixels whose picture did not change; IoU needs ground truth (DAVIS only).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np

from app.pipeline import load_segmenter, matte_stream
from app.video_io import probe, read_frames
from app.options import PRESETS
from model.matte import Frame
from model.refine import RAW, FlickerMeter, Refiner, RefineOptions
from model.settings import tune_process

SETTINGS = {
    "raw": RAW,
    "default": RefineOptions(),
    "default, levels off": RefineOptions(levels=(0.0, 1.0)),
    "levels 0.1-0.9": RefineOptions(levels=(0.1, 0.9)),
    "levels 0.35-0.65": RefineOptions(levels=(0.35, 0.65)),
    "default + min-blob": RefineOptions(min_blob=0.002),
    "guided edges only": RefineOptions(temporal=0.0),
    "smoothing only": RefineOptions(edges="bilinear"),
    "smoothing 0.5, motion 12": RefineOptions(temporal=0.5, motion=12),
    "smoothing 0.8, motion 12": RefineOptions(temporal=0.8, motion=12),
}


def run(frames: list[np.ndarray], probs: list[np.ndarray], masks: list[np.ndarray] | None, opts: RefineOptions):
    refiner, meter, ious = Refiner(opts), FlickerMeter(), []
    start = time.perf_counter()
    for i, (frame, prob) in enumerate(zip(frames, probs)):
        alpha = refiner(frame, prob)
        meter.update(alpha, frame)
        if masks is not None:
            pred, gt = alpha > 0.5, masks[i]
            ious.append((pred & gt).sum() / max((pred | gt).sum(), 1))
    ms = (time.perf_counter() - start) / len(frames) * 1000
    return (float(np.mean(ious)) if ious else float("nan")), meter.value, ms


def low_res_probs(seg, frames: list[np.ndarray], batch: int = 4) -> list[np.ndarray]:
    return [p for i in range(0, len(frames), batch) for p in seg.predict_lowres(frames[i:i + batch])]


def side_by_side_gif(path: Path, frames: list[np.ndarray], probs: list[np.ndarray], seg) -> None:
    """Frame with raw matte | frame with refined matte, as the app's overlay, through the app's GIF writer."""
    from app.compose import renderer
    from app.options import RenderOptions
    from app.video_io import VideoWriter

    raw, refined = Refiner(RAW), Refiner(RefineOptions())
    h, w = frames[0].shape[:2]
    overlay = renderer(RenderOptions(mode="overlay", tint=(255, 0, 0), opacity=0.6), h, w, "gif")
    with VideoWriter(path, "gif", 2 * w, h, "15/1") as writer:
        for frame, prob in zip(frames, probs):
            writer.write(np.concatenate([overlay(frame, raw(frame, prob)), overlay(frame, refined(frame, prob))],
                                        axis=1))


def main(argv: list[str] | None = None) -> None:
    tune_process()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    p.add_argument("--clips", type=int, default=6, help="how many tiktok_dance_N.mp4 clips (0-6)")
    p.add_argument("--gif", type=Path, help="also write a raw | default side-by-side mask GIF of the first clip")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="run the network at this preset's size, and add a row for the preset with its keyframes")
    p.add_argument("--keyframes", type=int, metavar="K",
                   help="with --preset: the network on every K-th frame instead of the preset's (the CLI's --keyframes)")
    args = p.parse_args(argv)
    if args.keyframes and not args.preset:
        p.error("--keyframes needs --preset")
    preset = PRESETS[args.preset] if args.preset else None
    if preset and args.keyframes:
        preset = dataclasses.replace(preset, keyframe_every=args.keyframes)
    seg = load_segmenter(args.weights, backend="auto", preset=preset)    # no preset: the trained size
    print(f"model: {seg.name}, inference size {seg.infer_size}, backend {seg.backend}")
    print(f"{'sequence':<18} {'setting':<20} {'IoU':>7} {'flicker':>9} {'vs raw':>7} {'refine ms':>10}")
    davis = args.data / "video-gt" / "davis"
    sources = [(d.name, d) for d in sorted(davis.iterdir()) if (d / "images").is_dir()]
    sources += [(f"tiktok_dance_{i}", args.data / "videos" / f"tiktok_dance_{i}.mp4") for i in range(args.clips)]
    totals: dict[str, list[float]] = {}
    for name, src in sources:
        if src.is_dir():
            names = sorted((src / "images").iterdir())
            frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in names]
            masks = [cv2.imread(str(src / "masks" / f"{f.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127 for f in names]
        else:
            frames, masks = [f.copy() for f in read_frames(probe(src))], None
        probs = low_res_probs(seg, frames)
        if args.gif and masks is None:
            side_by_side_gif(args.gif, frames, probs, seg)
            print(f"wrote {args.gif} (left: raw, right: default refinement)")
            args.gif = None
        raw_flicker = None
        rows = [(label, opts, probs) for label, opts in SETTINGS.items()]
        if preset:
            # the app's own mattes (refined inside the stream): the row refines nothing more (RAW at full size)
            stream = matte_stream(seg, preset)
            mattes = [m.alpha(f.guide) for f, m in stream.run(Frame.rgb(x, seg) for x in frames)]
            rows.append((f"{args.preset} (every {preset.keyframe_every})", RAW, mattes))
        if masks is not None:   # how much the truth itself changes: an output calmer than this lags the motion
            rows.append(("ground truth", RAW, [m.astype(np.float32) for m in masks]))
        for label, opts, source_probs in rows:
            iou, flick, ms = run(frames, source_probs, masks, opts)
            raw_flicker = flick if raw_flicker is None else raw_flicker
            ratio = flick / raw_flicker if raw_flicker else float("nan")
            totals.setdefault(label, []).append(ratio)
            print(f"{name:<18} {label:<20} {iou:>7.4f} {flick:>9.5f} {ratio:>7.2f} {ms:>10.1f}", flush=True)
    print("\nmean flicker relative to raw over all sequences:")
    for label, ratios in totals.items():
        print(f"  {label:<20} {np.mean(ratios):.2f}")


if __name__ == "__main__":
    main()
