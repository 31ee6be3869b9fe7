"""Soak: many jobs in a row in one process, as a long-running server does them; memory must stay flat and
nothing may be left behind.

    python -m bench.soak --clips 30                  # the shipped model, as the app runs it (make soak)
    python -m bench.soak --clips 60 --model tiny     # a small random network (PyTorch): the pipeline's own cost

The jobs repeat one round of ten (ROUND): every output mode, MP4/WebM/GIF, the three presets, two photo
formats, one job stopped midway (as a closed tab stops one) and one damaged file. After each job it prints the
process's RSS, open file descriptors and threads; at the end the peak RSS, and it checks that RSS is flat (the
mean of the last 10 jobs against the mean of jobs 11-20, the first round being warm-up: caches that fill once
per frame size, model size and format), that the temporary and output folders are empty, and that no child
process, thread or file descriptor is left over. Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app.options import PRESETS, InputError, RenderOptions
from app.pipeline import at_preset, load_segmenter, segment_file
from bench.memory import descendants, make_clip, tiny_segmenter
from model.settings import tune_process

GROWTH_LIMIT_MB = 20     # the last round's mean RSS may exceed the second round's by this much (allocator noise)
FRAMES = {"portrait": 90, "landscape": 48, "photo": 1}    # what a finished job must have written


class Stopped(BaseException):
    """Stands for Streamlit's StopException (also a BaseException), raised from the progress callback."""


def rss_mb() -> float:
    """Resident memory now, after handing freed heap back to the OS: otherwise RSS is glibc's high-water mark,
    which climbs each time a larger frame/mode/format combination first comes along, and hides the trend."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_inputs(folder: Path) -> dict[str, Path]:
    """Generated inputs (cached in `folder`): two clips with audio, a photo, a background and a damaged file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    inputs = {"portrait": make_clip(folder / "portrait_360x640.mp4", 3 / 60, "360x640", 30),
              "landscape": make_clip(folder / "landscape_480x270.mp4", 2 / 60, "480x270", 24),
              "photo": folder / "photo.png", "background": folder / "background.jpg", "damaged": folder / "damaged.mp4"}
    Image.fromarray(rng.integers(0, 256, (640, 480, 3), np.uint8)).save(inputs["photo"])
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), np.uint8)).save(inputs["background"])
    inputs["damaged"].write_bytes(rng.bytes(100_000))
    return inputs


# One round of jobs, repeated: each (input, mode, format, preset, expected outcome). Any 10 jobs in a row are the
# same mix, so two such windows compare like with like.
ROUND = [
    ("portrait", "cutout", "mp4", "balanced", "done"),
    ("landscape", "transparent", "webm", "fast", "done"),
    ("portrait", "overlay", "gif", "quality", "done"),
    ("landscape", "mask", "mp4", "quality", "done"),
    ("photo", "blur", "png", "balanced", "done"),
    ("portrait", "replace", "webm", "balanced", "done"),
    ("landscape", "collage", "gif", "fast", "done"),
    ("portrait", "cutout", "mp4", "fast", "stopped"),     # stopped midway, as a closed tab stops a job
    ("photo", "transparent", "webp", "quality", "done"),
    ("damaged", "blur", "mp4", "balanced", "refused"),
]


def main(argv: list[str] | None = None) -> int:
    tune_process()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=30, help="number of jobs (at least 30)")
    p.add_argument("--model", choices=["default", "tiny"], default="default")
    p.add_argument("--weights", help="checkpoint for --model default (default: weights/default.safetensors)")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segment-soak")
    args = p.parse_args(argv)
    if args.clips < 30:
        p.error("--clips must be at least 30: a warm-up round, then jobs 11-20 compared with the last 10")

    inputs = make_inputs(args.workdir / "inputs")
    out_dir, tmp_dir = args.workdir / "out", args.workdir / "tmp"
    for d in (out_dir, tmp_dir):
        d.mkdir(parents=True, exist_ok=True)
        if any(d.iterdir()):
            p.error(f"{d} is not empty: remove it first")
    tempfile.tempdir = str(tmp_dir)   # anything the jobs put in the temporary folder shows up here
    base = tiny_segmenter() if args.model == "tiny" else load_segmenter(args.weights)
    # As the app does: one model, shared by the presets at their inference sizes (made once, not per job).
    models = {name: at_preset(base, preset) for name, preset in PRESETS.items()}
    print(f"soak: {args.clips} jobs in one process (pid {os.getpid()}), model {base.name} on "
          f"{base.device_type}; {os.cpu_count()} cores ({cpu_name()}), "
          f"Python {platform.python_version()}")
    print(f"{'job':>3} {'input':<9} {'mode':<11} {'format':<6} {'preset':<8} {'outcome':<8} {'frames':>6} "
          f"{'wall s':>6} {'RSS MB':>7} {'fds':>4} {'threads':>7}")

    threads_at_start, fds_at_start = threading.active_count(), open_fds()
    rss, failures = [], []
    for i in range(args.clips):
        what, mode, fmt, preset, expected = ROUND[i % len(ROUND)]
        options = RenderOptions(mode=mode, background_image=str(inputs["background"]) if mode == "replace" else None,
                                preset=PRESETS[preset])
        src = inputs[what]
        dst = out_dir / f"job{i:02d}.{fmt}"

        def on_progress(progress, stop=expected == "stopped"):
            if stop and progress.done >= 8:
                raise Stopped

        start, frames = time.perf_counter(), 0
        try:
            result = segment_file(src, dst, options, on_progress, segmenter=models[preset], fmt=fmt)
            outcome, frames = "done", result.frames
            if frames != FRAMES[what] or not dst.is_file() or dst.stat().st_size == 0:
                failures.append(f"job {i}: {frames} frames written, expected {FRAMES[what]}")
        except Stopped:
            outcome = "stopped"
        except InputError:
            outcome = "refused"
        if outcome != expected:
            failures.append(f"job {i}: {outcome}, expected {expected}")
        dst.unlink(missing_ok=True)   # handed over; what must not remain is anything else
        rss.append(rss_mb())
        print(f"{i + 1:>3} {what:<9} {mode:<11} {fmt:<6} {preset:<8} {outcome:<8} {frames:>6} "
              f"{time.perf_counter() - start:>6.1f} {rss[-1]:>7.0f} {open_fds():>4} {threading.active_count():>7}",
              flush=True)

    time.sleep(0.5)   # the last job's stderr readers end as their pipes close
    first, warm, last = (float(np.mean(r)) for r in (rss[:10], rss[10:20], rss[-10:]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    leftovers = sorted(str(f.relative_to(args.workdir)) for d in (out_dir, tmp_dir) for f in d.rglob("*"))
    children = descendants(os.getpid())
    print(f"peak RSS {peak:.0f} MB; mean RSS of jobs 1-10 {first:.0f} MB, 11-20 {warm:.0f} MB, last 10 {last:.0f} MB "
          f"({last - warm:+.0f} MB, {100 * (last - warm) / warm:+.1f} % on 11-20)")
    print(f"left over: files {leftovers or 'none'}; child processes {children or 'none'}; "
          f"threads {threading.active_count() - threads_at_start:+d}; file descriptors {open_fds() - fds_at_start:+d}")
    if last - warm > GROWTH_LIMIT_MB:
        failures.append(f"RSS grew by {last - warm:.0f} MB after the warm-up round (limit {GROWTH_LIMIT_MB})")
    if leftovers or children:
        failures.append("files or processes left over")
    if threading.active_count() > threads_at_start or open_fds() > fds_at_start:
        failures.append("threads or file descriptors left over")
    print("FAIL: " + "; ".join(failures) if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
