"""Frames of a clip in order -> (frame, matte) in order: the one place a clip (or a photo) becomes mattes, for the
app's video and photo paths, evaluation and the benches alike.

    >>> from model.matte import Frame, MatteStream
    >>> stream = MatteStream(segmenter, every=3, focus=Focus())          # one per clip
    >>> for frame, matte in stream.run(Frame.rgb(f, segmenter) for f in frames):
    ...     alpha = matte.alpha(frame.guide)                              # (H, W) float32 in [0, 1]

A `MatteStream` runs the network on keyframes (every k-th frame, and every scene cut), takes the person-focused
second look at small people on them (model.focus), carries the matte along optical flow to the frames between
(`Keyframes`), hands each probability in order to the refiner (model.refine: smoothing, clean-up, guided edges,
levels), and gives the frames back in the order they came, each with its `Matte`: still at low resolution, so
the caller makes it full size where it pays (the video pipeline in its compose thread, in one pass with the
blend). The frame's full-size picture is never touched here, except through its `crop` for the second look.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from model.focus import Box, Crop, Focus, box_gain, followed_box, frame_crop, people_fractions, second_pass
from model.refine import Matte, Refiner, RefineOptions


@dataclass(frozen=True)
class Frame:
    """One frame on its way through a MatteStream."""

    image: np.ndarray       # as decoded, whatever the caller composes (RGB (H, W, 3), or an I420 buffer)
    guide: np.ndarray       # uint8 (H, W): the brightness the matte's edges follow (grey, or the luma plane)
    small: np.ndarray       # uint8 RGB at inference size (Segmenter.shrink): what the network sees
    grey: np.ndarray        # uint8 (h, w), `small`'s brightness: optical flow, smoothing, the guided filter
    crop: Crop              # the full-size frame cut at a box, for the second look (model.focus)
    tag: object = None      # the caller's own (evaluation: the ground-truth mask and the frame's name)

    @classmethod
    def rgb(cls, image: np.ndarray, segmenter, tag: object = None) -> "Frame":
        """An RGB frame (or photo) made ready for `segmenter`."""
        small = segmenter.shrink(image)
        return cls(image, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), small, cv2.cvtColor(small, cv2.COLOR_RGB2GRAY),
                   frame_crop(image), tag)


class MatteStream:
    """A clip's frames in, the same frames out in order, each with its `Matte`. Stateful: one per clip.

    `every`: the network on every k-th frame (Keyframes; mattes then come out up to k - 1 frames late, `push`
    returns what is ready and `flush` the rest); `refine`: the refinement (model.refine.RAW: the network's
    probability, enlarged bilinearly); `focus`: the second look at small people (None: off)."""

    def __init__(self, segmenter, *, every: int = 1, refine: RefineOptions = RefineOptions(),
                 focus: Focus | None = None) -> None:
        self.keyframes = Keyframes(segmenter, every, refine.scene_cut, focus)
        self.refiner = Refiner(refine)
        self._waiting: collections.deque[Frame] = collections.deque()   # frames whose matte is not known yet

    def push(self, frames: Sequence[Frame], probs: Sequence[np.ndarray] | None = None) -> list[tuple[Frame, Matte]]:
        """Feed the next frames; returns every frame now ready, oldest first. `probs`: the network's output for
        each frame when the caller has it already (see Keyframes.step)."""
        self._waiting.extend(frames)
        ready = self.keyframes.step([f.small for f in frames], [f.grey for f in frames],
                                    [f.crop for f in frames] if self.keyframes.focus else None,
                                    list(probs) if probs is not None else None)
        return [self._finish(prob, grey) for prob, grey in ready]

    def flush(self) -> list[tuple[Frame, Matte]]:
        """The frames still waiting at the end of the clip."""
        return [self._finish(prob, grey) for prob, grey in self.keyframes.flush()]

    def run(self, frames: Iterable[Frame], batch: int = 4) -> Iterator[tuple[Frame, Matte]]:
        """Every frame of `frames` with its matte, in order (the network sees `batch` frames at a time)."""
        pending: list[Frame] = []
        for frame in frames:
            pending.append(frame)
            if len(pending) == batch:
                yield from self.push(pending)
                pending = []
        if pending:
            yield from self.push(pending)
        yield from self.flush()

    def _finish(self, prob: np.ndarray, grey: np.ndarray) -> tuple[Frame, Matte]:
        frame = self._waiting.popleft()
        return frame, self.refiner.matte(frame.guide, prob, grey)


class Keyframes:
    """A clip's low-resolution probabilities with the network run on only every `every`-th frame. The matte of
    each frame between is interpolated from both of its keyframes: the earlier keyframe's matte carried
    forward along dense optical flow (DIS, at inference size) and the later one's carried backward, weighted
    by distance. So results come out up to `every - 1` frames late: `step` returns those that are ready, in
    order, and `flush` the rest at the end of the clip (carried forward only). A scene cut always gets its own
    network pass, and nothing is carried across it. Stateful: one per clip, frames fed in order. `every=1`
    runs the network on every frame (nothing is late). On DAVIS at 384 px with the v1 weights, every 3rd frame: lucia IoU
    0.8130 and dance-jump 0.3377 (forward carrying alone: 0.7910 and 0.3362; the network on every frame: 0.8193
    and 0.3390, all with the default refinement)."""

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
        self._boxes: list[Box] = []         # where the people were at the last keyframes (Focus.memory)
        self._box_age = 0                   # keyframes since they were last found there
        self._crop_only = 0                 # keyframes since the last whole-frame look (Focus.full_every)

    def _carry(self, prob: np.ndarray, grey0: np.ndarray, grey1: np.ndarray) -> np.ndarray:
        """prob of frame 0 moved onto frame 1 (backward warp: each pixel of 1 looks up where it came from)."""
        h, w = grey1.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            self._grid = np.dstack([xs, ys])
        flow = self._flow.calc(grey1, grey0, None)
        return cv2.remap(prob, self._grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def step(self, smalls: list[np.ndarray], greys: list[np.ndarray], crops: list[Crop] | None = None,
             probs: list[np.ndarray] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Feed frames at inference size (`Segmenter.shrink`) with their uint8 grey levels (any one-channel
        brightness: the video pipeline passes the luma plane); returns (probability, float32 grey) for every
        frame that is now ready, oldest first: the frames before this batch's last keyframe, and the keyframe.
        `crops`: each frame's full-size crop function, for the second pass (needed only with `focus`).
        `probs`: the network's output for every frame, when the caller has already run it (evaluation, for its
        loss): keyframes then use it instead of running the network again."""
        keys, cuts, since, prev = [], [], self._since_key, self._prev[1] if self._prev else None
        for grey in greys:
            cut = prev is None or prev.shape != grey.shape or \
                float(cv2.absdiff(grey, prev).mean()) >= self.scene_cut
            keys.append(since >= self.every or cut)
            cuts.append(cut)
            since, prev = (1 if keys[-1] else since + 1), grey
        self._since_key = since
        whole = self._whole_looks(smalls, keys, cuts) if self.focus and crops is not None else keys
        predicted = iter([p for p, w in zip(probs, whole) if w] if probs is not None else
                         self.segmenter.predict_small([s for s, w in zip(smalls, whole) if w]))
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for i, (grey, key, cut) in enumerate(zip(greys, keys, cuts)):
            if not key:
                prob = self._carry(self._prev[0], self._prev[1], grey)
                self._pending.append((prob, grey))
                self._prev = (prob, grey)
                continue
            if whole[i]:
                prob, self._crop_only = next(predicted), 0
            elif self._followed(smalls[i].shape[:2]):      # the closer look alone (Focus.full_every)
                prob, self._crop_only = np.zeros(smalls[i].shape[:2], np.float32), self._crop_only + 1
            else:       # lost since this batch was planned: the whole frame after all
                prob = probs[i] if probs is not None else self.segmenter.predict_small([smalls[i]])[0]
                self._crop_only = 0
            if self.focus and crops is not None:
                prob = self._second_pass(prob, crops[i], cut)
            out.extend(self._resolve(prob, grey, cut))
            out.append((prob, grey.astype(np.float32)))
            self._prev = (prob, grey)
        return out

    def _followed(self, shape: tuple[int, int]) -> bool:
        """People were found at the last keyframe, in one box small enough in a frame of this inference `shape`
        for the closer look: a keyframe may then take the closer look alone. (People apart, with a look each,
        get the whole frame looked at every time.)"""
        if not self._boxes or self._box_age:
            return False
        box = followed_box(self._boxes, self.focus, *shape)
        return box is not None and box_gain(self.segmenter, box) >= self.focus.min_gain

    def _whole_looks(self, smalls: list[np.ndarray], keys: list[bool], cuts: list[bool]) -> list[bool]:
        """Which keyframes of this batch get the whole-frame look (Focus.full_every), planned from where the
        people are now; a keyframe planned without one that has lost them by its turn gets it after all."""
        whole, crop_only = list(keys), self._crop_only
        for i, key in enumerate(keys):
            if not key:
                continue
            if cuts[i] or crop_only + 1 >= self.focus.full_every or not self._followed(smalls[i].shape[:2]):
                crop_only = 0
                if cuts[i]:
                    break       # after a cut nobody is followed yet: whole looks for the rest of the batch
            else:
                whole[i], crop_only = False, crop_only + 1
        return whole

    def _second_pass(self, prob: np.ndarray, crop: Crop, cut: bool) -> np.ndarray:
        """The closer look (model.focus), at this frame's people and, with Focus.memory, where they just were."""
        memory = self.focus.memory
        if cut or self._box_age >= memory:
            self._boxes = []
        prob = second_pass(self.segmenter, prob, crop, self.focus, self._boxes)
        if memory:
            found = people_fractions(prob, self.focus)
            self._boxes, self._box_age = (found, 0) if found else (self._boxes, self._box_age + 1)
        return prob

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
