"""The segmentation model: network spec, checkpoints and the frame-level `Segmenter`.

`model` imports neither `app` nor `train`; both of those import it.
"""

from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.network import ModelSpec, build_model
from model.segmenter import Segmenter

__all__ = ["Checkpoint", "ModelSpec", "Segmenter", "build_model", "load_checkpoint", "save_checkpoint"]
