"""The app: video I/O, compositing, the pipeline, the CLI and the Streamlit page."""

import os

# Before anything loads torch: see model/__init__.py (spinning OpenMP threads starve ffmpeg on small machines).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


_keep_freed_memory()