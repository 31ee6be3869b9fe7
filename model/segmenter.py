"""Frames in, alpha mattes out: the one place that knows how a frame meets the network.

    >>> import numpy as np
    >>> from model import Segmenter
    >>> seg = Segmenter.from_checkpoint("weights/default.safetensors")
    >>> alphas = seg.predict([np.zeros((1920, 1080, 3), np.uint8)])   # -> [float32 (1920, 1080) in [0, 1]]

Each frame is resized so its long side is `spec.infer_size` (aspect kept, never squashed, as in training),
padded to a multiple of 32, batched, and the result is cropped and resized back to the frame's own size.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from model.checkpoint import Checkpoint, load_checkpoint
from model.network import ModelSpec

STRIDE = 32
log = logging.getLogger(__name__)


def inference_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) of a frame resized so its long side is `long_side`, aspect kept, at least 1 pixel."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _pad_to(n: int) -> int:
    return -(-n // STRIDE) * STRIDE


class Segmenter:
    """Runs a segmentation network on batches of uint8 RGB frames of any size. Safe to share between threads."""

    def __init__(self, model: nn.Module, spec: ModelSpec, *, device: str | torch.device = "cpu",
                 infer_size: int | None = None, name: str = "model", metadata: dict | None = None,
                 session=None, backend: str | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.spec = spec
        self.infer_size = int(infer_size or spec.infer_size)
        self.name = name
        self.metadata = dict(metadata or {})
        self.session = session          # an onnxruntime.InferenceSession of the same network, or None
        self.backend = backend or ("onnx" if session is not None else "torch")

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, device: str | torch.device | None = None,
                        infer_size: int | None = None, backend: str = "torch") -> "Segmenter":
        """backend: "torch"; "onnx" (CPU, exported once and cached); "int8" (the INT8 copy shipped beside the
        weights, see model.export); or "auto": on CPU the INT8 copy when one matches these weights, else ONNX;
        torch on GPU."""
        if backend not in ("torch", "onnx", "int8", "auto"):
            raise ValueError(f"backend must be torch, onnx, int8 or auto, not {backend!r}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        ckpt: Checkpoint = load_checkpoint(path, device=device)
        session, chosen = None, "torch"
        if backend in ("onnx", "int8") or (backend == "auto" and torch.device(device).type == "cpu"):
            from model.export import export_onnx, int8_path_for, onnx_path_for, ort_session

            try:
                onnx_file = int8_path_for(path) if backend in ("int8", "auto") else None
                if onnx_file is not None:
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
                chosen = "torch"
                log.warning("ONNX Runtime unavailable (%s); using torch", exc)
        return cls(ckpt.model, ckpt.spec, device=device, infer_size=infer_size, name=ckpt.name,
                   metadata=ckpt.metadata, session=session, backend=chosen)

    def with_infer_size(self, infer_size: int) -> "Segmenter":
        """The same network (shared, not copied) run at another inference size: presets trade size for speed."""
        return Segmenter(self.model, self.spec, device=self.device, infer_size=infer_size, name=self.name,
                         metadata=self.metadata, session=self.session, backend=self.backend)

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        """The frame at inference size (long side `infer_size`, aspect kept): what the network sees."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected uint8 RGB frames (H, W, 3), got {frame.dtype} {frame.shape}")
        h, w = inference_shape(frame.shape[0], frame.shape[1], self.infer_size)
        return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != frame.shape[:2] else frame

    def _prepare(self, smalls: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        shapes = [s.shape[:2] for s in smalls]
        ph = _pad_to(max(h for h, _ in shapes))
        pw = _pad_to(max(w for _, w in shapes))
        batch = np.empty((len(smalls), ph, pw, 3), np.uint8)
        for i, (small, (h, w)) in enumerate(zip(smalls, shapes)):
            # Replicated edges look like more of the scene to the network; zeros would look like a border.
            batch[i] = cv2.copyMakeBorder(small, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return x, shapes

    @torch.inference_mode()
    def logits(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Raw network output at inference resolution (padded) and each frame's valid (h, w)."""
        return self.logits_small([self.shrink(f) for f in frames])

    @torch.inference_mode()
    def logits_small(self, smalls: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """`logits` for frames already at inference size (see `shrink`)."""
        x, shapes = self._prepare(smalls)
        if self.session is not None:
            return torch.from_numpy(self.session.run(None, {"image": x.numpy()})[0]), shapes
        return self.model(x), shapes

    def predict_lowres(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Float32 person probability at inference resolution (padding cropped off), for refinement
        (temporal smoothing, guided upsampling) that is cheaper to do small."""
        return self.predict_small([self.shrink(f) for f in frames])

    def predict_small(self, smalls: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`predict_lowres` for frames already at inference size (see `shrink`)."""
        if len(smalls) == 0:
            return []
        out, shapes = self.logits_small(smalls)
        if self.spec.classes > 1:
            probs = (out.argmax(dim=1) > 0).float().cpu().numpy()
        else:
            probs = torch.sigmoid(out[:, 0]).float().cpu().numpy()
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
        out, shapes = self.logits(frames)
        if self.spec.classes == 1:
            labels = (out[:, 0] > 0).to(torch.uint8)
        else:
            labels = out.argmax(dim=1).to(torch.uint8)
        labels = labels.cpu().numpy()
        return [cv2.resize(lab[:h, :w], (f.shape[1], f.shape[0]), interpolation=cv2.INTER_NEAREST)
                for lab, (h, w), f in zip(labels, shapes, frames)]
