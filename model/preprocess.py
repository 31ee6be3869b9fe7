"""How a frame becomes the network's input: the one definition, shared by the Segmenter (both backends) and the
INT8 calibration (model.export).

    >>> from model.preprocess import network_input, shrink
    >>> x, shapes = network_input([shrink(frame, 384)])   # float32 (1, 3, H, W) in [0, 1], H and W multiples of 32

Each frame is resized so its long side is the inference size (aspect kept, never squashed, as in training),
then the batch is padded to a multiple of 32 by repeating the edges. numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

STRIDE = 32


def inference_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) of a frame resized so its long side is `long_side`, aspect kept, at least 1 pixel."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(frame: np.ndarray, long_side: int) -> np.ndarray:
    """A uint8 RGB frame at inference size (long side `long_side`, aspect kept): what the network sees."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB frames (H, W, 3), got {frame.dtype} {frame.shape}")
    h, w = inference_shape(frame.shape[0], frame.shape[1], long_side)
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != frame.shape[:2] else frame


def _pad_to(n: int) -> int:
    return -(-n // STRIDE) * STRIDE


def padded_batch(smalls: Sequence[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Frames at inference size as one uint8 (N, H, W, 3) batch padded to a multiple of 32, and each one's (h, w)."""
    shapes = [s.shape[:2] for s in smalls]
    ph = _pad_to(max(h for h, _ in shapes))
    pw = _pad_to(max(w for _, w in shapes))
    batch = np.empty((len(smalls), ph, pw, 3), np.uint8)
    for i, (small, (h, w)) in enumerate(zip(smalls, shapes)):
        # Replicated edges look like more of the scene to the network; zeros would look like a border.
        batch[i] = cv2.copyMakeBorder(small, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
    return batch, shapes


def network_input(smalls: Sequence[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The network's input for frames at inference size: float32 RGB in [0, 1], (N, 3, H, W) padded to a
    multiple of 32; and each frame's valid (h, w)."""
    batch, shapes = padded_batch(smalls)
    x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    x /= 255.0
    return x, shapes
