"""Speed benchmark: the full pipeline per preset against a bare ffmpeg transcode of the same clip, in one run.

    python -m bench                                    # generated 1080x1920 24 fps 12 s clip with audio
    python -m bench --input ../shared/datasets/videos/vertical_dance.mp4 --presets balanced
    python -m bench --model-only                       # just the network: ms/frame per backend and size

First, start-up: `python -m app.cli` in a fresh process on a 1 s clip of the same size, from the shell to its
first frames through the network (`--timing`), `--startup-runs` times after one warm-up run (min and median).
For each preset it prints frames, the bare transcode's seconds (the floor any output pays), wall seconds, fps,
wall / clip duration (<= 1.0 is faster than it plays), wall / transcode, peak RSS of the process and its ffmpeg
children, then the model alone in ms per frame for each backend and inference size. Each preset runs
`--repeat` times, each run right after its own transcode, and the medians are printed: a shared machine's
speed drifts by several percent from minute to minute, and a ratio taken within a pair cancels most of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from app.options import PRESETS, RenderOptions
from app.pipeline import at_preset, load_segmenter, segment_video
from app.video_io import ffmpeg_exe, probe, read_frames
from bench.memory import PeakSampler, make_clip
from model import Segmenter
from model.refine import Refiner, RefineOptions
from model.settings import tune_process

REPO = Path(__file__).resolve().parents[1]


def transcode_seconds(clip: Path, out: Path) -> float:
    """The floor: decode + H.264 encode (same encoder settings as the app's MP4) + audio copy."""
    start = time.perf_counter()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-nostdin", "-i", str(clip), "-c:v", "libx264", "-preset",
                    "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "copy", "-movflags", "+faststart",
                    str(out)], check=True)
    return time.perf_counter() - start


def model_ms_per_frame(seg: Segmenter, frames: list[np.ndarray], batch: int) -> float:
    seg.predict_lowres(frames[:batch])                      # warm-up (allocations, ONNX graph)
    start = time.perf_counter()
    for i in range(0, len(frames), batch):
        seg.predict_lowres(frames[i:i + batch])
    return (time.perf_counter() - start) / len(frames) * 1000


def refine_ms_per_frame(seg: Segmenter, frames: list[np.ndarray]) -> float:
    """What the matte refinement (smoothing + guided upsampling to full size) adds per frame."""
    probs = seg.predict_lowres(frames)
    refiner = Refiner(RefineOptions())
    start = time.perf_counter()
    for frame, prob in zip(frames, probs):
        refiner(frame, prob)
    return (time.perf_counter() - start) / len(frames) * 1000


def startup_seconds(clip: Path, out: Path, weights: str | None = None) -> float:
    """Seconds from starting `python -m app.cli CLIP` in a fresh process to its first frames through the network:
    the interpreter, the imports, loading the model, probing the clip, decoding and the first network pass."""
    cmd = [sys.executable, "-m", "app.cli", str(clip), "--out", str(out), "--quiet", "--timing"]
    if weights:
        cmd += ["--weights", str(weights)]
    start = time.time()
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    stamp = re.search(r"first frames through the network at ([0-9.]+)", run.stderr)
    if stamp is None:
        raise RuntimeError(f"the CLI printed no timing:\n{run.stderr}")
    return float(stamp.group(1)) - start


def main(argv: list[str] | None = None) -> None:
    tune_process()      # before torch loads (the torch row of the model-only table)

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path, help="clip to use (default: a generated 1080x1920 24 fps 12 s clip)")
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    p.add_argument("--mode", default="cutout")
    p.add_argument("--focus", choices=["preset", "on", "off"], default="preset",
                   help="the person-focused second pass: as each preset says (default), or forced on/off")
    p.add_argument("--keyframes", type=int, metavar="K",
                   help="the network on every K-th frame in every preset run (the CLI's --keyframes; default: each preset's)")
    p.add_argument("--backends", nargs="+", default=["int8", "onnx", "torch"], choices=["int8", "onnx", "torch"],
                   help="for the model-only table (the pipeline runs what the app runs: backend auto)")
    p.add_argument("--model-only", action="store_true", help="skip start-up, the transcode and pipeline runs")
    p.add_argument("--startup-runs", type=int, default=5, help="fresh CLI processes timed for start-up (0: skip)")
    p.add_argument("--frames", type=int, default=32, help="frames for the model-only timing")
    p.add_argument("--repeat", type=int, default=3,
                   help="times each preset runs, each time right after its own transcode; medians are printed")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segment-bench")
    args = p.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = args.input or make_clip(args.workdir / "synthetic_1080x1920_24_12s.mp4", 0.2, "1080x1920", 24)
    info = probe(clip)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    print(f"clip: {clip.name} {info.width}x{info.height} {info.fps:g} fps {info.frames} frames "
          f"{info.duration:.1f} s audio={info.has_audio}; mode {args.mode} -> MP4\n")

    if args.startup_runs and not args.model_only:
        short = make_clip(args.workdir / f"synthetic_{info.width}x{info.height}_24_1s.mp4", 1 / 60,
                          f"{info.width}x{info.height}", 24)
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            startup_seconds(short, Path(tmp) / "warm-up.mp4", args.weights)     # page cache, numba's cache
            times = [startup_seconds(short, Path(tmp) / "startup.mp4", args.weights) for _ in range(args.startup_runs)]
        print(f"{'start-up':>9}: python -m app.cli CLIP --out OUT.mp4, shell to first frames through the network "
              f"({short.name}, {args.startup_runs} runs): min {min(times):.2f} s, median {statistics.median(times):.2f} s\n",
              flush=True)

    base = load_segmenter(args.weights, backend="auto")
    print(f"model: {base.name} ({base.spec.encoder}, trained size {base.spec.infer_size}), backend {base.backend}")
    if not args.model_only:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            print(f"each preset run {args.repeat}x, each run paired with a bare ffmpeg transcode just before it "
                  "(a shared machine drifts: ratios are taken within a pair); medians:\n")
            print(f"{'preset':>9} {'size':>5} {'every':>5} {'2nd':>4} {'frames':>7} {'transcode s':>12} {'wall s':>7} {'fps':>6} "
                  f"{'wall/dur':>9} {'wall/transcode':>15} {'(min-max)':>12} {'peak RSS MB':>12}")
            for name in args.presets:
                preset = PRESETS[name]
                if args.focus != "preset":
                    preset = dataclasses.replace(preset, focus=args.focus == "on")
                if args.keyframes:
                    preset = dataclasses.replace(preset, keyframe_every=args.keyframes)
                seg = at_preset(base, preset)
                floors, walls, ratios, peaks = [], [], [], []
                for _ in range(args.repeat):
                    floors.append(transcode_seconds(clip, Path(tmp) / "transcode.mp4"))
                    sampler = PeakSampler(os.getpid())
                    sampler.start()
                    start = time.perf_counter()
                    result = segment_video(clip, Path(tmp) / f"{name}.mp4", RenderOptions(mode=args.mode, preset=preset),
                                           segmenter=seg)
                    walls.append(time.perf_counter() - start)
                    sampler.done.set()
                    sampler.join()
                    ratios.append(walls[-1] / floors[-1])
                    peaks.append(sampler.peak)
                floor, wall, ratio = (statistics.median(v) for v in (floors, walls, ratios))
                print(f"{name:>9} {seg.infer_size:>5} {preset.keyframe_every:>5} {'on' if preset.focus else 'off':>4} {result.frames:>7} {floor:>12.1f} {wall:>7.1f} "
                      f"{result.frames / wall:>6.1f} {wall / info.duration:>9.2f} {ratio:>15.2f} "
                      f"{f'{min(ratios):.2f}-{max(ratios):.2f}':>12} {max(peaks):>12.0f}", flush=True)
        print()

    frames = []
    for frame in read_frames(info):
        frames.append(frame.copy())
        if len(frames) == args.frames:
            break
    # torch only now: the app's CPU path never loads it, so the pipeline's peak RSS above is without it
    import torch
    print(f"model only, ms/frame on {len(frames)} frames of {info.width}x{info.height} (batch 4; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads):")
    sizes = sorted({PRESETS[p].infer_size(base.spec.infer_size) for p in args.presets})
    print(f"{'backend':>8} " + " ".join(f"{s:>7}" for s in sizes))
    for backend in args.backends:
        seg = base if base.backend == backend else load_segmenter(args.weights, backend=backend)
        row = [model_ms_per_frame(seg.with_infer_size(s), frames, 4) for s in sizes]
        print(f"{backend:>8} " + " ".join(f"{ms:>7.1f}" for ms in row), flush=True)
    row = [refine_ms_per_frame(base.with_infer_size(s), frames) for s in sizes]
    print(f"{'refine':>8} " + " ".join(f"{ms:>7.1f}" for ms in row) + "   (default RefineOptions, to full size)")


if __name__ == "__main__":
    main()
