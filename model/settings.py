"""Every environment variable the project reads, and the process tuning its entry points apply, in one place.

    >>> from model import settings
    >>> settings.tune_process()          # an entry point's first step, before torch (OpenMP) is loaded
    >>> settings.network_threads()       # SEGMENT_THREADS, else every core
    >>> settings.opencv_threads()        # SEGMENT_THREADS, else half the cores

| variable | default | read for |
|---|---|---|
| `SEGMENT_WEIGHTS` | `weights/default.safetensors` | the checkpoint the web app serves |
| `SEGMENT_MAX_DURATION_S`, `SEGMENT_MAX_FRAMES`, `SEGMENT_MAX_SIDE`, `SEGMENT_MAX_IMAGE_PIXELS` | `Limits()` | the web app's limits (`app.options.Limits.from_env`) |
| `SEGMENT_SESSION_FILES_TTL_S` | 3600 | how long an idle web session's files are kept |
| `SEGMENT_THREADS` | every core for a network pass, half of them for OpenCV | threads for a network pass (`network_threads`) and for OpenCV (`opencv_threads`) |
| `XDG_CACHE_HOME` | `~/.cache` | where ONNX exports of checkpoints are cached (`cache_dir`) |
| `RANK`, `LOCAL_RANK`, `WORLD_SIZE` | 0, 0, 1 | set by `torchrun` for distributed training (`distributed`) |
| `OMP_WAIT_POLICY` | set to `PASSIVE` by `tune_process` unless already set (not for training) | OpenMP, read when torch loads |

This module lives in `model` because `model`, `app` and `train` all need settings, and `model` is the one package
the other two may import (`model` imports neither). It imports nothing from the project and nothing heavy, and
reads the environment when asked, not at import, so a test or a page that sets a variable is seen at once.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

# Limits fields (app.options.Limits) that the environment may override: field -> (variable, type).
LIMIT_VARIABLES = {
    "max_duration_s": ("SEGMENT_MAX_DURATION_S", float),
    "max_frames": ("SEGMENT_MAX_FRAMES", int),
    "max_side": ("SEGMENT_MAX_SIDE", int),
    "max_image_pixels": ("SEGMENT_MAX_IMAGE_PIXELS", int),
}


def weights() -> Path | None:
    """The checkpoint the web app serves (SEGMENT_WEIGHTS), or None for the shipped default."""
    value = os.environ.get("SEGMENT_WEIGHTS")
    return Path(value) if value else None


def limit_overrides() -> dict[str, float | int]:
    """{Limits field: value} for each SEGMENT_MAX_* variable that is set."""
    return {name: kind(os.environ[var]) for name, (var, kind) in LIMIT_VARIABLES.items() if os.environ.get(var)}


def session_files_ttl_s() -> float:
    """Seconds an idle web session's files are kept (SEGMENT_SESSION_FILES_TTL_S, default an hour)."""
    return float(os.environ.get("SEGMENT_SESSION_FILES_TTL_S") or 3600)


def network_threads() -> int:
    """Threads for one network pass (ONNX Runtime): every core. In the video pipeline ffmpeg's decoder and encoder
    and the compose thread want cores too, but ONNX Runtime's threads sleep when idle (no spinning, see
    model.export.ort_session), and measured on 2 cores the whole pipeline ran faster with the network on both
    (2026-12-04, python -m bench --repeat 5 --presets balanced, wall / transcode, 1 thread -> 2: vertical_dance
    1.49/1.51 -> 1.44/1.45 with v5, 1.62/1.59 -> 1.47/1.52 with a Lite2; the test pattern 1.45 -> 1.35 and
    1.44 -> 1.43). SEGMENT_THREADS overrides it."""
    return int(os.environ.get("SEGMENT_THREADS") or max(1, os.cpu_count() or 1))


def opencv_threads() -> int:
    """Threads for OpenCV's per-frame work (optical flow, resizing, the refinement): half the cores, since the
    pipeline's stages are its parallelism. SEGMENT_THREADS overrides it."""
    return int(os.environ.get("SEGMENT_THREADS") or max(1, (os.cpu_count() or 2) // 2))


def cache_dir() -> Path:
    """This project's folder in the user's cache (XDG_CACHE_HOME, default ~/.cache): ONNX exports."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tiktok-cutout"


@dataclass(frozen=True)
class Distributed:
    """This process's place in a `torchrun` job; one process alone is rank 0 of 1."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def distributed() -> Distributed:
    return Distributed(rank=int(os.environ.get("RANK", "0")), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                       world_size=int(os.environ.get("WORLD_SIZE", "1")))


def tune_process(*, pipeline: bool = True, passive_wait: bool = True) -> None:
    """Process-wide settings the entry points apply first (app.cli, the Streamlit page, bench, train); safe to
    call again.

    `passive_wait` (all but training): OpenMP's waiting threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE
    unless set). Spinning threads are ruinous when ffmpeg (or anything) shares the cores: measured here, the
    pipeline ran at 3.6 fps with the default policy and 59 fps with PASSIVE on 2 busy cores. A training step is the
    other way round, many short parallel regions back to back with nothing else on the cores: PASSIVE made it 1.7x
    slower (`python -m bench.train_step`, Lite2, 352x224, batch 8, 2 cores, 2026-12-06: bf16 1.37 s against 0.80 s,
    fp32 1.71 s against 1.45 s), so `python -m train` leaves OpenMP's default. OpenMP reads it once, when torch
    loads it, so this must run before torch is imported.

    `pipeline` (the app and the benchmarks, not training): glibc keeps freed memory for reuse, and OpenCV uses
    `opencv_threads()` threads."""
    if passive_wait:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if pipeline:
        _keep_freed_memory()
        import cv2

        cv2.setNumThreads(opencv_threads())


@functools.cache     # once per process: the Streamlit page calls tune_process on every rerun
def _keep_freed_memory() -> None:
    """Let glibc reuse freed memory instead of handing it back to the OS. Every video frame allocates a few
    full-size arrays (8 MB at 1080x1920); by default each comes from a fresh mmap and costs its page faults
    again, which measured as half of the matte refinement's time. The process's peak memory is unchanged."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 64 << 20)      # M_MMAP_THRESHOLD: blocks below 64 MB come from the heap
        libc.mallopt(-1, 128 << 20)     # M_TRIM_THRESHOLD: keep up to 128 MB of freed heap for reuse
    except (OSError, AttributeError):   # not glibc (musl, macOS, Windows): nothing to tune
        pass
