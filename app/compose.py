"""Pure functions from (frame, alpha) to the picture the user asked for.

    >>> import numpy as np
    >>> from app import compose
    >>> frame = np.zeros((4, 4, 3), np.uint8); alpha = np.ones((4, 4), np.float32)
    >>> compose.cutout(frame, alpha, (255, 255, 255)).shape
    (4, 4, 3)

`frame` is uint8 RGB (H, W, 3). `alpha` is float in [0, 1] or uint8 in [0, 255], shape (H, W); 1 = person.
Blending uses 8-bit alpha a: out = round((fg * a + bg * (255 - a)) / 255), computed by cv2.blendLinear.
A solid colour may be given as an (H, W, 3) image of it, prepared once per clip: cheaper than per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

Colour = tuple[int, int, int]


def alpha8(alpha: np.ndarray) -> np.ndarray:
    """Alpha as uint8 0..255 (float alpha is rounded to the nearest level)."""
    if alpha.dtype == np.uint8:
        return alpha
    return np.rint(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)


def _blend(fg: np.ndarray, bg: np.ndarray | Colour, a8: np.ndarray) -> np.ndarray:
    if not isinstance(bg, np.ndarray) or bg.shape != fg.shape:
        bg = np.ascontiguousarray(np.broadcast_to(np.asarray(bg, np.uint8), fg.shape))
    w = a8.astype(np.float32) * np.float32(1 / 255)
    # OpenCV's fused kernel: ~6x faster than the same sum in numpy temporaries at 1080x1920 (6 vs 36 ms).
    return cv2.blendLinear(np.ascontiguousarray(fg), bg, w, 1.0 - w)


def mask(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """White person on black, as an RGB frame."""
    a8 = alpha8(alpha)
    return np.repeat(a8[..., None], 3, axis=2)


def overlay(frame: np.ndarray, alpha: np.ndarray, colour: Colour | np.ndarray = (255, 0, 0),
            opacity: float = 0.5) -> np.ndarray:
    """The frame with the person tinted: colour mixed in at `opacity` where alpha is 1."""
    a8 = np.rint(alpha8(alpha).astype(np.float32) * opacity).astype(np.uint8)
    if not isinstance(colour, np.ndarray) or colour.shape != frame.shape:
        colour = np.ascontiguousarray(np.broadcast_to(np.asarray(colour, np.uint8), frame.shape))
    return _blend(colour, frame, a8)


def cutout(frame: np.ndarray, alpha: np.ndarray, colour: Colour | np.ndarray = (255, 255, 255)) -> np.ndarray:
    """The person on a solid colour (white by default)."""
    return _blend(frame, colour, alpha8(alpha))


def transparent(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA: the frame's colours with alpha as the fourth channel."""
    return np.concatenate([frame, alpha8(alpha)[..., None]], axis=2)


def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    """The grey-and-white squares that editors draw behind transparent pixels."""
    ys = (np.arange(height) // cell)[:, None]
    xs = (np.arange(width) // cell)[None, :]
    tile = np.where((ys + xs) % 2 == 0, 255, 204).astype(np.uint8)
    return np.repeat(tile[..., None], 3, axis=2)


def blurred(frame: np.ndarray, sigma: float) -> np.ndarray:
    """A strong Gaussian blur, done at a quarter size: indistinguishable at this strength, ~16x cheaper."""
    h, w = frame.shape[:2]
    factor = max(1, min(4, int(sigma // 2), h, w))
    small = cv2.resize(frame, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(sigma / factor, 0.5))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur(frame: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """The person sharp over their own blurred background."""
    return _blend(frame, blurred(frame, sigma), alpha8(alpha))


def replace(frame: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The person over another picture of the same size (see `fit_cover` to prepare it)."""
    if background.shape != frame.shape:
        raise ValueError(f"background {background.shape} must match the frame {frame.shape}")
    return _blend(frame, background, alpha8(alpha))


def collage(frame: np.ndarray, alpha: np.ndarray, colour: Colour | np.ndarray = (255, 255, 255)) -> np.ndarray:
    """Original | mask | cutout, side by side."""
    return np.concatenate([frame, mask(frame, alpha), cutout(frame, alpha, colour)], axis=1)


def fit_cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale `image` to cover (height, width) keeping its aspect, then centre-crop: no bars, no squashing."""
    ih, iw = image.shape[:2]
    scale = max(height / ih, width / iw)
    nh, nw = max(height, round(ih * scale)), max(width, round(iw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])
