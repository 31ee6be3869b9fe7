"""From the network's low-resolution probabilities to a steady, clean, full-resolution alpha.

    >>> from model.refine import Refiner, RefineOptions
    >>> refiner = Refiner(RefineOptions())            # one per clip: it remembers the previous frame
    >>> alpha = refiner(frame, prob_low)              # uint8 frame (H, W, 3), float prob (h, w) -> (H, W)
    >>> alpha = refiner(luma, prob_low, luma_low)     # or the frame's grey / luma plane (H, W) as the guide

Three steps, each optional and each cheap because most of the work stays at the network's resolution:
1. temporal smoothing: an exponential moving average of the probabilities, except where the picture moved
   (there the new prediction wins at once, so limbs do not trail) and after a scene cut (full reset);
2. clean-up: small disconnected blobs dropped, optionally only the largest person kept, holes closed;
3. edge-aware upsampling: a fast guided filter with the frame as guide, so the matte's edges follow the
   picture's edges (hair, fingers) instead of a blurry bilinear staircase;
4. levels: a contrast stretch of the final alpha (0 at or below `levels[0]`, 1 at or above `levels[1]`), so the
   faint haze the network leaves over the background is cut away; folded into the guided filter's
   coefficients, it costs nothing at full size.
Lives in `model` so that training-side evaluation (flicker on video-gt) runs the very same code as the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.focus import Crop, Focus, frame_crop, second_pass


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


def guided_upsample(prob: np.ndarray, frame: np.ndarray, radius: int, eps: float,
                    guide_low: np.ndarray | None = None) -> np.ndarray:
    """Fast guided filter: coefficients fitted at low resolution against the grey frame (guided_coefficients),
    enlarged, then applied to the full-resolution grey frame; at full size only two resizes and one
    multiply-add, in place. `frame` is RGB, or already the one-channel guide (a video's luma plane);
    `guide_low` is that guide at prob's size."""
    big_h, big_w = frame.shape[:2]
    a, b = guided_coefficients(prob, guide_low if guide_low is not None else _grey(frame, prob.shape), radius, eps)
    a = cv2.resize(a, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
    np.multiply(a, cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame, out=a)
    np.add(a, b, out=a)
    return np.clip(a, 0.0, 1.0, out=a)


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

    def _levels(self) -> tuple[np.float32, np.float32] | None:
        """(low, 1 / (high - low)) of the levels stretch; None when it changes nothing (off, or a hard matte)."""
        lo, hi = self.options.levels
        if (lo, hi) == (0.0, 1.0) or self.options.threshold is not None:
            return None
        return np.float32(lo), np.float32(1 / (hi - lo))

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

    def coefficients(self, frame: np.ndarray, prob: np.ndarray,
                     grey: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """What `__call__` computes, left at low resolution: maps (a, b) such that the alpha is
        clip(a * G + b, 0, 1), thresholded if the options say so, with a and b enlarged to the frame's size as
        cv2.resize(INTER_LINEAR) does and G the frame's grey (or luma) levels. For a consumer that enlarges
        and applies them in one pass (app.fused). Same arguments and state as `__call__`."""
        o = self.options
        prob, grey = self._low(frame, prob, grey)
        if o.edges == "guided" and prob.shape != frame.shape[:2]:
            a, b = guided_coefficients(prob, grey, o.guide_radius, o.guide_eps)
        else:
            a, b = np.zeros_like(prob), prob
        levels = self._levels()
        if levels is None:
            return a, b
        lo, scale = levels      # clip((a G + b - lo) * scale): the levels, folded in
        return a * scale, (b - lo) * scale

    def __call__(self, frame: np.ndarray, prob: np.ndarray, grey: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution float32 alpha for `frame` from its low-resolution `prob`. `frame` is uint8 RGB
        (H, W, 3), or one uint8 grey/luma plane (H, W), which then guides the edges as it is. `grey`, the same
        grey levels in float32 at prob's size, saves recomputing it when the caller already has it."""
        o = self.options
        prob, grey = self._low(frame, prob, grey)
        big_h, big_w = frame.shape[:2]
        if o.edges == "guided" and prob.shape != (big_h, big_w):
            alpha = guided_upsample(prob, frame, o.guide_radius, o.guide_eps, grey)
        else:
            alpha = cv2.resize(prob, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        levels = self._levels()
        if levels is not None:
            alpha -= levels[0]
            alpha *= levels[1]
            np.clip(alpha, 0.0, 1.0, out=alpha)
        if o.threshold is not None:
            alpha = (alpha > o.threshold).astype(np.float32)
        return alpha


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


class Keyframes:
    """A clip's low-resolution probabilities with the network run on only every `every`-th frame. The matte of
    each frame between is interpolated from both of its keyframes: the earlier keyframe's matte carried
    forward along dense optical flow (DIS, at inference size) and the later one's carried backward, weighted
    by distance. So results come out up to `every - 1` frames late: `step` returns those that are ready, in
    order, and `flush` the rest at the end of the clip (carried forward only). A scene cut always gets its own
    network pass, and nothing is carried across it. Stateful: one per clip, frames fed in order. `every=1`
    runs the network on every frame (nothing is late). On DAVIS at 384 px, every 3rd frame: lucia IoU 0.8130
    and dance-jump 0.3377 (forward carrying alone: 0.7910 and 0.3362; the network on every frame: 0.8193 and
    0.3390, all with the default refinement)."""

    def __init__(self, segmenter, every: int = 1, scene_cut: float = 40.0, focus: Focus | None = None) -> None:
        if every < 1:
            raise ValueError("the keyframe interval must be at least 1")
        self.segmenter, self.every, self.scene_cut = segmenter, every, scene_cut
        self.focus = focus      # the person-focused second pass on keyframes (model.focus); None: off
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if every > 1 else None
        self._since_key = every            # frames since the last network pass: the first frame is a keyframe
        self._prev: tuple[np.ndarray, np.ndarray] | None = None     # (prob, grey uint8) of the previous frame
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []     # frames since the last keyframe: (forward prob, grey)
        self._grid: np.ndarray | None = None

    def _carry(self, prob: np.ndarray, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        """prob of frame 0 moved onto frame 1 (backward warp: each pixel of 1 looks up where it came from)."""
        h, w = grey1.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            self._grid = np.dstack([xs, ys])
        flow = self._flow.calc(grey1, grey0, None)
        return cv2.remap(prob, self._grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def __call__(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`step` for full-size RGB frames."""
        smalls = [self.segmenter.shrink(f) for f in frames]
        crops = [frame_crop(f) for f in frames] if self.focus else None
        return self.step(smalls, [cv2.cvtColor(s, cv2.COLOR_RGB2GRAY) for s in smalls], crops)

    def step(self, smalls: list[np.ndarray], greys: list[np.ndarray],
             crops: list[Crop] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Feed frames at inference size (`Segmenter.shrink`) with their uint8 grey levels (any one-channel
        brightness: the video pipeline passes the luma plane); returns (probability, float32 grey) for every
        frame that is now ready, oldest first: the frames before this batch's last keyframe, and the keyframe.
        `crops`: each frame's full-size crop function, for the second pass (needed only with `focus`)."""
        keys, cuts, since, prev = [], [], self._since_key, self._prev[1] if self._prev else None
        for grey in greys:
            cut = prev is None or prev.shape != grey.shape or \
                float(cv2.absdiff(grey, prev).mean()) >= self.scene_cut
            keys.append(since >= self.every or cut)
            cuts.append(cut)
            since, prev = (1 if keys[-1] else since + 1), grey
        self._since_key = since
        predicted = iter(self.segmenter.predict_small([s for s, k in zip(smalls, keys) if k]))
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for i, (grey, key, cut) in enumerate(zip(greys, keys, cuts)):
            if not key:
                prob = self._carry(self._prev[0], self._prev[1], grey)
                self._pending.append((prob, grey))
                self._prev = (prob, grey)
                continue
            prob = next(predicted)
            if self.focus and crops is not None:
                prob = second_pass(self.segmenter, prob, crops[i], self.focus)
            out.extend(self._resolve(prob, grey, cut))
            out.append((prob, grey.astype(np.float32)))
            self._prev = (prob, grey)
        return out

    def _resolve(self, key_prob: np.ndarray, key_grey: np.ndarray, cut: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """The pending frames, now that the next keyframe is known: forward and backward mattes mixed."""
        pending, self._pending = self._pending, []
        if cut or not pending:
            return [(p, g.astype(np.float32)) for p, g in pending]
        back, later, mixed = key_prob, key_grey, []
        for i in range(len(pending) - 1, -1, -1):
            forward, grey = pending[i]
            back = self._carry(back, later, grey)
            w = np.float32((i + 1) / (len(pending) + 1))      # nearer the later keyframe: more of its matte
            mixed.append(((1 - w) * forward + w * back, grey.astype(np.float32)))
            later = grey
        return mixed[::-1]

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The frames still waiting at the end of the clip (no later keyframe: carried forward only)."""
        pending, self._pending = self._pending, []
        return [(p, g.astype(np.float32)) for p, g in pending]
