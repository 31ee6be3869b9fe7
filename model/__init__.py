"""The segmentation model: network spec, checkpoints and the frame-level `Segmenter`.

`model` imports neither `app` nor `train`; both of those import it.
"""

import os

# OpenMP threads that spin while waiting are ruinous when ffmpeg (or anything) shares the cores: measured
# here, the pipeline ran at 3.6 fps with the default policy and 59 fps with PASSIVE on 2 busy cores. It must be
# set before torch loads OpenMP, hence here, at the package's first import; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.network import ModelSpec, build_model
from model.segmenter import Segmenter

__all__ = ["Checkpoint", "ModelSpec", "Segmenter", "build_model", "load_checkpoint", "save_checkpoint"]
