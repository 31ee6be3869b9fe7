"""The segmentation model: network spec, checkpoints and the frame-level `Segmenter`.

`model` imports neither `app` nor `train`; both of those import it. Importing it costs neither torch nor
segmentation-models-pytorch (seconds of imports): on a CPU the app runs the network in ONNX Runtime, and they load
only when a job builds or runs the torch network (`build_model`, `load_checkpoint`, the torch backend, export).
"""

from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.segmenter import Segmenter
from model.spec import ModelSpec

__all__ = ["Checkpoint", "ModelSpec", "Segmenter", "build_model", "load_checkpoint", "save_checkpoint"]


def __getattr__(name: str):
    if name == "build_model":   # model.network imports torch and smp: only when a network is built
        from model.network import build_model

        return build_model
    raise AttributeError(f"module 'model' has no attribute {name!r}")
