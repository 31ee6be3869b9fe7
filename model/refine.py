"""From the network's low-resolution probabilities to a steady, clean, full-resolution alpha.

    >>> from model.refine import Refiner, RefineOptions
    >>> refiner = Refiner(RefineOptions())            # one per clip: it remembers the previous frame
    >>> alpha = refiner(frame, prob_low)              # uint8 frame (H, W, 3), float prob (h, w) -> (H, W)
    >>> alpha = refiner(luma, prob_low, luma_low)     # or the frame's grey / luma plane (H, W) as the guide
    >>> matte = refiner.matte(luma, prob_low, luma_low)   # the same, left at low resolution (a Matte) ...
    >>> alpha = matte.alpha(luma)                          # ... and made full size where the caller wants it

Three steps, each optional and each cheap because most of the work stays at the network's resolution:
1. temporal smoothing: an exponential moving average of the probabilities, except where the picture moved
   (there the new prediction wins at once, so limbs do not trail) and after a scene cut (full reset);
2. clean-up: small disconnected blobs dropped, optionally only the largest person kept, holes closed;
3. edge-aware upsampling: a fast guided filter with the frame as guide, so the matte's edges follow the
   picture's edges (hair, fingers) instead of a blurry bilinear staircase;
4. levels: a contrast stretch of the final alpha (0 at or below `levels[0]`, 1 at or above `levels[1]`), so the
   faint haze the network leaves over the background is cut away; folded into the guided filter's
   coefficients, it costs nothing at full size.
Steps 3 and 4 are one linear map per pixel, alpha = clip(A * grey + B, 0, 1), whose coefficient maps A and B are
fitted at low resolution: a `Matte` holds them, and `Matte.alpha` (or the video pipeline's fused blend, app.fused)
applies them at full size. Lives in `model` so that evaluation and the benches run the very same code as the app;
model.matte drives it over a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class RefineOptions:
    temporal: float = 0.9          # weight of the past in static areas (0 = off, per-frame output)
    motion: float = 40.0           # grey-level change (0-255) at which a pixel counts as fully moving
    scene_cut: float = 40.0        # mean grey change that resets the memory entirely
    min_blob: float = 0.0          # drop blobs smaller than this fraction of the frame (0 = keep all)
    keep: str = "all"              # "all" people, or only the "largest"
    edges: str = "guided"          # "guided" (edge-aware) or "bilinear"
    guide_radius: int = 2          # guided filter window radius, in low-resolution pixels
    guide_eps: float = 1e-3        # guided filter smoothing (larger = softer edges)
    feather: float = 0.0           # extra softening of the edge, in full-resolution pixels
    threshold: float | None = None  # hard 0/1 matte at this level (None = soft alpha)
    levels: tuple[float, float] = (0.25, 0.75)  # soft alpha: 0 below the first, 1 above the second, linear between

    def __post_init__(self) -> None:
        if not 0.0 <= self.temporal < 1.0:
            raise ValueError("temporal smoothing must be in [0, 1)")
        if self.keep not in ("all", "largest"):
            raise ValueError("keep must be 'all' or 'largest'")
        if self.edges not in ("guided", "bilinear"):
            raise ValueError("edges must be 'guided' or 'bilinear'")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if len(self.levels) != 2 or not 0.0 <= self.levels[0] < self.levels[1] <= 1.0:
            raise ValueError("levels must be two numbers, low < high, between 0 and 1")
        if self.min_blob < 0 or self.feather < 0 or self.guide_radius < 1 or self.guide_eps <= 0:
            raise ValueError("min_blob and feather must be >= 0, guide radius >= 1, guide eps > 0")


RAW = RefineOptions(temporal=0.0, min_blob=0.0, edges="bilinear", levels=(0.0, 1.0))   # per-frame, bilinear


def _grey(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 grey of an RGB frame (or of a one-channel guide, as it is) at `shape`."""
    h, w = shape
    small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA) if frame.shape[:2] != shape else frame
    return (cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small).astype(np.float32)


def clean(prob: np.ndarray, min_blob: float, keep: str) -> np.ndarray:
    """Zero the probability outside the connected regions worth keeping; fill pinholes inside them."""
    binary = (prob > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return prob
    areas = stats[1:, cv2.CC_STAT_AREA]
    wanted = areas >= min_blob * prob.size
    if keep == "largest":
        wanted = np.zeros_like(wanted)
        wanted[int(np.argmax(areas))] = True
    if wanted.all():
        return prob
    lut = np.concatenate([[0], wanted]).astype(np.uint8)
    kept = lut[labels]
    # Grow the kept regions a little so their soft edges survive; everything farther away is dropped.
    kept = cv2.dilate(kept, np.ones((3, 3), np.uint8))
    return prob * kept


def guided_coefficients(prob: np.ndarray, guide_low: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The fast guided filter's (He & Sun 2015) linear coefficients at low resolution: alpha = a * G + b, where
    G is the full-size guide in 0..255 grey levels and a, b are enlarged to its size. `guide_low` is that guide
    at prob's size (float32)."""
    guide = guide_low * np.float32(1 / 255)
    k = (2 * radius + 1, 2 * radius + 1)
    mean_i = cv2.boxFilter(guide, -1, k)
    mean_p = cv2.boxFilter(prob, -1, k)
    cov_ip = cv2.boxFilter(guide * prob, -1, k) - mean_i * mean_p
    var_i = cv2.boxFilter(guide * guide, -1, k) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    # a is scaled by 1/255 here so that it applies to the 0..255 grey levels directly at full size.
    return cv2.boxFilter(a, -1, k) * np.float32(1 / 255), cv2.boxFilter(b, -1, k)


@dataclass(frozen=True)
class Matte:
    """A frame's finished matte, still at low resolution: alpha = clip(A * G + B, 0, 1), with A and B these maps
    enlarged to the frame's size as cv2.resize(INTER_LINEAR) does and G the frame's grey (or luma) levels, 0-255;
    then a hard 0/1 at `threshold` if set. `a` is None where the edges do not follow the picture (bilinear)."""

    a: np.ndarray | None
    b: np.ndarray
    threshold: float | None = None

    def alpha(self, guide: np.ndarray) -> np.ndarray:
        """Full-size float32 alpha for the frame whose uint8 grey (or luma) plane (H, W) is `guide`; an RGB frame
        is turned grey first. Two resizes and one multiply-add at full size, in place."""
        if guide.ndim == 3:
            guide = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY)
        big_h, big_w = guide.shape
        alpha = cv2.resize(self.b, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        if self.a is not None:
            a = cv2.resize(self.a, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
            np.multiply(a, guide, out=a)
            np.add(alpha, a, out=alpha)
        np.clip(alpha, 0.0, 1.0, out=alpha)
        if self.threshold is not None:
            alpha = (alpha > self.threshold).astype(np.float32)
        return alpha


class Refiner:
    """Turns each frame's low-resolution probability into its final alpha. Stateful: one per clip."""

    def __init__(self, options: RefineOptions = RefineOptions()) -> None:
        self.options = options
        self._prev_prob: np.ndarray | None = None
        self._prev_grey: np.ndarray | None = None

    def smooth(self, prob: np.ndarray, grey: np.ndarray) -> np.ndarray:
        o = self.options
        prev_p, prev_g = self._prev_prob, self._prev_grey
        if o.temporal > 0 and prev_p is not None and prev_p.shape == prob.shape:
            change = np.abs(grey - prev_g)
            if float(change.mean()) < o.scene_cut:
                # Per pixel: static -> average with the past; moving -> trust the new frame.
                moving = np.clip(cv2.blur(change, (3, 3)) / o.motion, 0.0, 1.0)
                past = o.temporal * (1.0 - moving)
                prob = past * prev_p + (1.0 - past) * prob
        self._prev_prob, self._prev_grey = prob, grey
        return prob

    def _low(self, frame: np.ndarray, prob: np.ndarray, grey: np.ndarray | None):
        """Steps 1 and 2 (and the feathering), all at low resolution: (prob, grey)."""
        o = self.options
        prob = prob.astype(np.float32, copy=False)
        if grey is None and (o.temporal > 0 or o.edges == "guided"):
            grey = _grey(frame, prob.shape)
        if o.temporal > 0:
            prob = self.smooth(prob, grey)
        if o.min_blob > 0 or o.keep == "largest":
            prob = clean(prob, o.min_blob, o.keep)
        if o.feather > 0:
            scale = prob.shape[0] / frame.shape[0]
            prob = cv2.GaussianBlur(prob, (0, 0), sigmaX=max(o.feather * scale, 0.3))
        return prob, grey

    def matte(self, frame: np.ndarray, prob: np.ndarray, grey: np.ndarray | None = None) -> Matte:
        """`frame`'s finished matte from its low-resolution `prob`, left at low resolution (see Matte). `frame`
        is uint8 RGB (H, W, 3), or one uint8 grey/luma plane (H, W), which then guides the edges as it is;
        `grey`, the same grey levels in float32 at prob's size, saves recomputing it when the caller has it.
        Frames of a clip are given in order: the smoothing remembers the previous one."""
        o = self.options
        prob, grey = self._low(frame, prob, grey)
        if o.edges == "guided" and prob.shape != frame.shape[:2]:
            a, b = guided_coefficients(prob, grey, o.guide_radius, o.guide_eps)
        else:
            a, b = None, prob
        lo, hi = o.levels
        if (lo, hi) != (0.0, 1.0) and o.threshold is None:
            scale = np.float32(1 / (hi - lo))      # the levels, folded in: clip((a G + b - lo) * scale)
            a, b = (a * scale if a is not None else None), (b - np.float32(lo)) * scale
        return Matte(a, b, o.threshold)

    def __call__(self, frame: np.ndarray, prob: np.ndarray, grey: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution float32 alpha: `matte`, made full size at once."""
        return self.matte(frame, prob, grey).alpha(frame)


class FlickerMeter:
    """Running flicker of one sequence: feed alphas (and frames) in order, read `value`.

    Flicker is the mean absolute change of alpha between consecutive frames, in [0, 1]. With frames, only
    pixels whose picture did not change (grey change below `still` levels) count: alpha changing there is
    flicker, not motion. Without frames, every pixel counts (compare with the same measure on ground truth)."""

    def __init__(self, still: float = 4.0) -> None:
        self.still = still
        self.total, self.count = 0.0, 0
        self._prev: tuple[np.ndarray, np.ndarray | None] | None = None

    def update(self, alpha: np.ndarray, frame: np.ndarray | None = None) -> None:
        alpha = alpha.astype(np.float32, copy=False)
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.int16) if frame is not None else None
        if self._prev is not None and self._prev[0].shape == alpha.shape:
            diff = np.abs(alpha - self._prev[0])
            if grey is not None and self._prev[1] is not None:
                static = np.abs(grey - self._prev[1]) < self.still
                if static.any():
                    self.total += float(diff[static].mean())
                    self.count += 1
            else:
                self.total += float(diff.mean())
                self.count += 1
        self._prev = (alpha, grey)

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else 0.0


def flicker(alphas: list[np.ndarray], frames: list[np.ndarray] | None = None, *, still: float = 4.0) -> float:
    """Flicker of a whole sequence (see FlickerMeter)."""
    meter = FlickerMeter(still)
    for i, alpha in enumerate(alphas):
        meter.update(alpha, frames[i] if frames is not None else None)
    return meter.value
