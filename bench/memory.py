"""Peak memory of the streaming pipeline against clip length: it must stay flat.

    python -m bench.memory --minutes 1 10                 # synthetic 1080x1920 24 fps clips with audio
    python -m bench.memory --minutes 1 --model default    # the shipped weights (balanced preset), not a tiny net
    python -m bench.memory --minutes 1 10 --format mov    # transparent cutout to ProRes 4444 (or zip: PNG frames)

Each clip is segmented (cutout -> MP4 with audio; with --format mov or zip, the transparent cutout to ProRes 4444
or a ZIP of PNG frames) in a fresh child process, so each peak RSS is that run's
alone. The tiny model (a random mobilenet_v2 UNet at 128 px) isolates what the streaming design costs, since
the model's own memory is constant whatever the length; `--model default` measures the shipped weights.
Peak RSS is reported for the Python process (getrusage) and, sampled every 0.2 s, for it plus its ffmpeg children.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from app.video_io import ffmpeg_exe
from model.settings import tune_process


def make_clip(path: Path, minutes: float, size: str, fps: int) -> Path:
    if not path.exists():
        seconds = minutes * 60
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={size}:rate={fps}:duration={seconds}", "-f", "lavfi", "-i",
                        f"sine=frequency=330:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                        "-crf", "35", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def descendants(pid: int) -> dict[int, str]:
    """{pid: command name} of every descendant of a process, unreaped ones included (Linux /proc)."""
    found: dict[int, str] = {}
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            children = [int(c) for task in Path(f"/proc/{p}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):   # it ended while we looked
            continue
        for child in children:
            try:
                found[child] = Path(f"/proc/{child}/comm").read_text().strip()
            except FileNotFoundError:
                continue
            stack.append(child)
    return found


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants (Linux /proc), in MB."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


class PeakSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.done = pid, every, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.peak = max(self.peak, _tree_rss_mb(self.pid))


def tiny_segmenter():
    """A small random network (mobilenet_v2 UNet at 128 px): what the pipeline costs, not a real model."""
    import torch

    from model import ModelSpec, Segmenter, build_model

    torch.manual_seed(0)
    spec = ModelSpec(encoder="mobilenet_v2", decoder_channels=(32, 16, 16, 8, 8), infer_size=128)
    return Segmenter(build_model(spec), spec, name="tiny-random")


FORMATS = {"mp4": "cutout", "mov": "transparent", "zip": "transparent"}    # output -> the mode it is measured in


def child(clip: str, weights: str | None, tiny: bool, fmt: str = "mp4") -> None:
    """Runs in the child process: one job, then prints its figures as JSON."""
    from app.options import Limits, RenderOptions
    from app.pipeline import load_segmenter, segment_video

    options = RenderOptions(mode=FORMATS[fmt])
    if tiny:
        segmenter = tiny_segmenter()
    else:       # the shipped weights as the app runs them by default: the balanced preset
        segmenter = load_segmenter(weights)     # load_segmenter and RenderOptions default to the balanced preset
    sampler = PeakSampler(os.getpid())
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = segment_video(clip, Path(tmp) / f"out.{fmt}", options, segmenter=segmenter,
                               limits=Limits(max_duration_s=3600, max_frames=10**6))
        wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    print(json.dumps({"frames": result.frames, "wall_s": wall,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "tree_peak_rss_mb": sampler.peak}))


def main(argv: list[str] | None = None) -> None:
    tune_process()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    p.add_argument("--size", default="1080x1920", help="WxH of the synthetic clips")
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--model", choices=["tiny", "default"], default="tiny")
    p.add_argument("--format", choices=list(FORMATS), default="mp4",
                   help="mp4: cutout on white; mov (ProRes 4444) and zip (PNG frames): the transparent cutout")
    p.add_argument("--weights", help="checkpoint for --model default (default: weights/default.safetensors)")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segment-bench",
                   help="where generated clips are cached")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.weights, args.model == "tiny", args.format)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"model: {args.model}; clips: {args.size} @ {args.fps} fps with audio; mode {FORMATS[args.format]} -> "
          f"{args.format.upper()}")
    print(f"{'minutes':>7} {'frames':>7} {'wall s':>8} {'fps':>6} {'python peak RSS MB':>19} {'with ffmpeg, MB':>16}")
    for minutes in args.minutes:
        clip = make_clip(args.workdir / f"synthetic_{args.size}_{args.fps}_{minutes:g}min.mp4", minutes, args.size,
                         args.fps)
        cmd = [sys.executable, "-m", "bench.memory", "--child", str(clip), "--model", args.model, "--format",
               args.format]
        if args.weights:
            cmd += ["--weights", args.weights]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{minutes:>7g} {r['frames']:>7} {r['wall_s']:>8.1f} {r['frames'] / r['wall_s']:>6.1f} "
              f"{r['peak_rss_mb']:>19.0f} {r['tree_peak_rss_mb']:>16.0f}", flush=True)


if __name__ == "__main__":
    main()
