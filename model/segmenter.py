"""Frames in, alpha mattes out: the one place that knows how a frame meets the network.

    >>> import numpy as np
    >>> from model import Segmenter
    >>> seg = Segmenter.from_checkpoint("weights/default.safetensors")
    >>> alphas = seg.predict([np.zeros((1920, 1080, 3), np.uint8)])   # -> [float32 (1920, 1080) in [0, 1]]

Each frame is resized so its long side is `spec.infer_size` (aspect kept, never squashed, as in training),
padded to a multiple of 32, batched (model.preprocess), and the result is cropped and resized back to the frame's
own size. With an ONNX Runtime session (the app on a CPU) all of it is numpy: torch is never imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.checkpoint import describe_checkpoint, load_checkpoint
from model.export import export_onnx, int8_session, onnx_path_for, ort_session
from model.preprocess import inference_shape, network_input, padded_batch, shrink
from model.spec import ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Segmenter", "default_device", "inference_shape"]
log = logging.getLogger(__name__)


def default_device() -> str:
    """"cuda" when torch can use a GPU, else "cpu". On Linux torch is asked only where a GPU's device node exists
    (NVIDIA, ROCm, WSL): its import costs seconds, and on a CPU the network runs in ONNX Runtime without it."""
    if sys.platform == "linux" and not any(os.path.exists(d) for d in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Segmenter:
    """Runs a segmentation network on batches of uint8 RGB frames of any size. Safe to share between threads.

    The network is a torch module (`model`, on `device`) or an ONNX Runtime session of it (`session`, on the
    CPU). A Segmenter made with a session needs no torch module (`model` may be None), and then never imports
    torch (the app's CPU path)."""

    def __init__(self, model: nn.Module | None, spec: ModelSpec, *, device: str | torch.device = "cpu",
                 infer_size: int | None = None, name: str = "model", metadata: dict | None = None,
                 session=None, backend: str | None = None, mirror: bool = False) -> None:
        if model is None and session is None:
            raise ValueError("a Segmenter needs a torch module or an ONNX Runtime session")
        self.device = str(device)
        self.model = model.to(self.device).eval() if model is not None else None
        self.spec = spec
        self.infer_size = int(infer_size or spec.infer_size)
        self.name = name
        self.metadata = dict(metadata or {})
        self.session = session          # an onnxruntime.InferenceSession of the same network, or None
        self.backend = backend or ("onnx" if session is not None else "torch")
        self.mirror = mirror            # every pass also sees the frame's mirror image (see `mirrored`)

    @property
    def device_type(self) -> str:
        """"cpu" or "cuda" (the device without its index)."""
        return self.device.split(":")[0]

    @property
    def network(self):
        """What runs the frames: the ONNX Runtime session, else the torch module. Shared by `with_infer_size`
        copies, so its identity tells one loaded model from another."""
        return self.session if self.session is not None else self.model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, device: str | torch.device | None = None,
                        infer_size: int | None = None, backend: str = "torch") -> "Segmenter":
        """backend: "torch"; "onnx" (CPU, exported once and cached); "int8" (the INT8 copy shipped beside the
        weights, see model.export); or "auto": on CPU the INT8 copy when one matches these weights, else ONNX;
        torch on GPU. The ONNX backends load no torch weights (nor torch), unless the ONNX export has to be made."""
        if backend not in ("torch", "onnx", "int8", "auto"):
            raise ValueError(f"backend must be torch, onnx, int8 or auto, not {backend!r}")
        device = str(device or default_device())
        ckpt = describe_checkpoint(path)
        session, chosen = None, "torch"
        if backend in ("onnx", "int8") or (backend == "auto" and device.split(":")[0] == "cpu"):
            try:
                session = int8_session(path) if backend in ("int8", "auto") else None
                if session is not None:
                    chosen = "int8"
                elif backend == "int8":
                    raise FileNotFoundError(f"no INT8 copy of {Path(path).name} made from this very file beside it "
                                            "(python -m train.int8 makes one)")
                else:
                    chosen, onnx_file = "onnx", onnx_path_for(path)
                    if not onnx_file.is_file():
                        onnx_file = export_onnx(path, onnx_file)
                    session = ort_session(onnx_file)
            except Exception as exc:  # ONNX is an optimisation: torch always works
                if backend in ("onnx", "int8"):
                    raise
                session, chosen = None, "torch"
                log.warning("ONNX Runtime unavailable (%s); using torch", exc)
        model = load_checkpoint(path, device=device).model if session is None else None
        return cls(model, ckpt.spec, device=device, infer_size=infer_size, name=ckpt.name,
                   metadata=ckpt.metadata, session=session, backend=chosen)

    def with_infer_size(self, infer_size: int) -> "Segmenter":
        """The same network (shared, not copied) run at another inference size: presets trade size for speed."""
        return self._sharing(infer_size=infer_size)

    def _sharing(self, **changes) -> "Segmenter":
        """Another Segmenter on this one's network (shared, not copied), with `changes` to its settings."""
        settings = dict(device=self.device, infer_size=self.infer_size, name=self.name, metadata=self.metadata,
                        session=self.session, backend=self.backend, mirror=self.mirror)
        return Segmenter(self.model, self.spec, **{**settings, **changes})

    def mirrored(self) -> "Segmenter":
        """The same network (shared, not copied) looking at each frame twice, as it is and mirrored left to right,
        its two answers' logits averaged: twice the work, for a photo (app.pipeline.matte_stream's `still`), where
        time is not short. v11's weights (float), balanced, the photo val split 0.9501 -> 0.9517 mIoU/img; its
        people shrunk into scenes without people (bench.heldout's pval-small / pval-cut) 0.9202 -> 0.9243 and
        0.9088 -> 0.9131."""
        return self._sharing(mirror=True)

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        """The frame at inference size (long side `infer_size`, aspect kept): what the network sees."""
        return shrink(frame, self.infer_size)

    def logits(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Raw network output at inference resolution (padded), as a torch tensor, and each frame's valid (h, w)."""
        return self.logits_small([self.shrink(f) for f in frames])

    def logits_small(self, smalls: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """`logits` for frames already at inference size (see `shrink`)."""
        import torch

        out, shapes = self._run(smalls)
        return (torch.from_numpy(out) if isinstance(out, np.ndarray) else out), shapes

    def _run(self, smalls: Sequence[np.ndarray]) -> tuple[np.ndarray | torch.Tensor, list[tuple[int, int]]]:
        """Logits: a numpy array from ONNX Runtime, a tensor on `device` from torch (with `mirror`, each frame's
        averaged with its mirror image's, flipped back; the padding, right and below, is left as it was)."""
        if not self.mirror:
            return self._forward(smalls)
        n = len(smalls)
        out, shapes = self._forward([*smalls, *(np.ascontiguousarray(s[:, ::-1]) for s in smalls)])
        numpy = isinstance(out, np.ndarray)
        if not numpy:
            import torch
        with contextlib.nullcontext() if numpy else torch.inference_mode():   # torch's output: inference tensors
            mean = out[:n].copy() if numpy else out[:n].clone()
            for k, (h, w) in enumerate(shapes[:n]):
                other = out[n + k, :, :h, :w]
                mean[k, :, :h, :w] = (mean[k, :, :h, :w] + (other[..., ::-1] if numpy else other.flip(-1))) / 2
        return mean, shapes[:n]

    def _forward(self, smalls: Sequence[np.ndarray]) -> tuple[np.ndarray | torch.Tensor, list[tuple[int, int]]]:
        """The network on a batch, as it is."""
        if self.session is not None:
            x, shapes = network_input(smalls)
            return self.session.run(None, {"image": x})[0], shapes
        import torch

        batch, shapes = padded_batch(smalls)
        with torch.inference_mode():    # uint8 to the device, then float there: a quarter of the transfer
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            return self.model(x), shapes

    def _logits_numpy(self, smalls: Sequence[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """`_run`'s logits as a float32 numpy array, whichever backend made them: one post-processing path."""
        out, shapes = self._run(smalls)
        if not isinstance(out, np.ndarray):
            out = out.float().cpu().numpy()
        return out, shapes

    def predict_lowres(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Float32 person probability at inference resolution (padding cropped off), for refinement
        (temporal smoothing, guided upsampling) that is cheaper to do small."""
        return self.predict_small([self.shrink(f) for f in frames])

    def predict_small(self, smalls: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`predict_lowres` for frames already at inference size (see `shrink`)."""
        if len(smalls) == 0:
            return []
        out, shapes = self._logits_numpy(smalls)
        if self.spec.classes > 1:
            probs = (out.argmax(axis=1) > 0).astype(np.float32)
        else:
            with np.errstate(over="ignore"):        # exp(-x) of a very negative logit is inf: probability 0
                probs = 1.0 / (1.0 + np.exp(-out[:, 0]))
        return [p[:h, :w] for p, (h, w) in zip(probs, shapes)]

    def predict(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Float32 alpha in [0, 1] at each frame's own size (for multi-class models: any non-background class)."""
        if self.spec.classes > 1:
            return [(labels > 0).astype(np.float32) for labels in self.predict_labels(frames)]
        return [cv2.resize(p, (f.shape[1], f.shape[0]), interpolation=cv2.INTER_LINEAR)
                for p, f in zip(self.predict_lowres(frames), frames)]

    def predict_labels(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Uint8 class ids per pixel. Argmax runs at low resolution, then a nearest upsample: far cheaper than
        upsampling every class map first, and identical wherever the low-resolution argmax is."""
        if len(frames) == 0:
            return []
        out, shapes = self._logits_numpy([self.shrink(f) for f in frames])
        labels = (out[:, 0] > 0 if self.spec.classes == 1 else out.argmax(axis=1)).astype(np.uint8)
        return [cv2.resize(lab[:h, :w], (f.shape[1], f.shape[0]), interpolation=cv2.INTER_NEAREST)
                for lab, (h, w), f in zip(labels, shapes, frames)]
