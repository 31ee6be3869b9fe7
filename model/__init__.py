"""The segmentation model: network spec, checkpoints and the frame-level `Segmenter`.

`model` imports neither `app` nor `train`; both of those import it.
"""

import os

# OpenMP threads that spin while waiting are ruinous when ffmpeg (or anything) shares the cores: measured
# here, the pipeline ran at 3.6 fps with the default policy and 59 fps with PASSIVE on 2 busy cores. It must be
# set before torch loads OpenMP, hence here, at the package's first import; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def inference_threads() -> int:
    """Threads for one network pass (and OpenCV's per-frame work): half the cores. The video pipeline runs the
    network, the matte refinement and ffmpeg's decoder and encoder at once, so a stage that takes every core
    only fights the others: on 2 cores a 2-thread network pass took twice as long inside the pipeline as
    alone. SEGMENT_THREADS overrides it."""
    return int(os.environ.get("SEGMENT_THREADS") or max(1, (os.cpu_count() or 2) // 2))


from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.network import ModelSpec, build_model
from model.segmenter import Segmenter

__all__ = ["Checkpoint", "inference_threads", "ModelSpec", "Segmenter", "build_model", "load_checkpoint", "save_checkpoint"]
