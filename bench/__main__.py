"""Speed benchmark: the full pipeline per preset against a bare ffmpeg transcode of the same clip, in one run.

    python -m bench                                    # generated 1080x1920 24 fps 12 s clip with audio
    python -m bench --input ../shared/datasets/videos/vertical_dance.mp4 --presets balanced
    python -m bench --model-only                       # just the network: ms/frame per backend and size

For each preset it prints frames, wall seconds, fps, wall / clip duration (<= 1.0 is faster than it plays),
wall / transcode (the floor any output pays), peak RSS of the process and its ffmpeg children, then the
model alone in ms per frame for each backend and inference size. Ratios are against the transcode measured
in this same run, so a busy or slow machine shifts both sides alike.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from app.options import PRESETS, RenderOptions, preset_infer_size, preset_keyframes
from app.pipeline import load_segmenter, segment_video
from app.video_io import ffmpeg_exe, probe, read_frames
from bench.memory import _PeakSampler, make_clip
from model import Segmenter
from model.refine import Refiner, RefineOptions


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


def main(argv: list[str] | None = None) -> None:
    import os

    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", type=Path, help="clip to use (default: a generated 1080x1920 24 fps 12 s clip)")
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    p.add_argument("--mode", default="cutout")
    p.add_argument("--backends", nargs="+", default=["int8", "onnx", "torch"], choices=["int8", "onnx", "torch"],
                   help="for the model-only table (the pipeline runs what the app runs: backend auto)")
    p.add_argument("--model-only", action="store_true", help="skip the transcode and pipeline runs")
    p.add_argument("--frames", type=int, default=32, help="frames for the model-only timing")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segment-bench")
    args = p.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = args.input or make_clip(args.workdir / "synthetic_1080x1920_24_12s.mp4", 0.2, "1080x1920", 24)
    info = probe(clip)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"clip: {clip.name} {info.width}x{info.height} {info.fps:g} fps {info.frames} frames "
          f"{info.duration:.1f} s audio={info.has_audio}; mode {args.mode} -> MP4\n")

    base = load_segmenter(args.weights, backend="auto")
    print(f"model: {base.name} ({base.spec.encoder}, trained size {base.spec.infer_size}), backend {base.backend}")
    if not args.model_only:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            floor = transcode_seconds(clip, Path(tmp) / "transcode.mp4")
            print(f"bare ffmpeg transcode: {floor:.1f} s ({info.frames / floor:.1f} fps, "
                  f"{floor / info.duration:.2f} x clip duration)\n")
            print(f"{'preset':>9} {'size':>5} {'every':>5} {'frames':>7} {'wall s':>7} {'fps':>6} {'wall/dur':>9} "
                  f"{'wall/transcode':>15} {'peak RSS MB':>12}")
            for preset in args.presets:
                seg = base.with_infer_size(preset_infer_size(base.spec.infer_size, preset))
                sampler = _PeakSampler(os.getpid())
                sampler.start()
                start = time.perf_counter()
                every = preset_keyframes(preset)
                result = segment_video(clip, Path(tmp) / f"{preset}.mp4",
                                       RenderOptions(mode=args.mode, keyframe_every=every), segmenter=seg)
                wall = time.perf_counter() - start
                sampler.done.set()
                sampler.join()
                print(f"{preset:>9} {seg.infer_size:>5} {every:>5} {result.frames:>7} {wall:>7.1f} {result.frames / wall:>6.1f} "
                      f"{wall / info.duration:>9.2f} {wall / floor:>15.2f} {sampler.peak:>12.0f}", flush=True)
        print()

    frames = []
    for frame in read_frames(info):
        frames.append(frame.copy())
        if len(frames) == args.frames:
            break
    print(f"model only, ms/frame on {len(frames)} frames of {info.width}x{info.height} (batch 4):")
    sizes = sorted({preset_infer_size(base.spec.infer_size, p) for p in args.presets})
    print(f"{'backend':>8} " + " ".join(f"{s:>7}" for s in sizes))
    for backend in args.backends:
        seg = base if base.backend == backend else load_segmenter(args.weights, backend=backend)
        row = [model_ms_per_frame(seg.with_infer_size(s), frames, 4) for s in sizes]
        print(f"{backend:>8} " + " ".join(f"{ms:>7.1f}" for ms in row), flush=True)
    row = [refine_ms_per_frame(base.with_infer_size(s), frames) for s in sizes]
    print(f"{'refine':>8} " + " ".join(f"{ms:>7.1f}" for ms in row) + "   (default RefineOptions, to full size)")


if __name__ == "__main__":
    main()
