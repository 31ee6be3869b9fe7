"""The person-focused second pass: when the first pass finds the people small in the frame, the network looks
again at a crop around all of them, taken from the full-size frame at the network's own size, and that closer
look replaces the first inside the crop.

    >>> from model.focus import Focus, frame_crop, second_pass
    >>> prob = seg.predict_lowres([frame])[0]                         # first pass, at inference size
    >>> prob = second_pass(seg, prob, frame_crop(frame), Focus())     # the same, or closer looks pasted in

A dancer 100 px tall in a 1080x1920 frame is about 20 px tall at the network's 384 px: too few for a forearm.
The crop (the box of the people found, with a margin; people apart get a box each) is cut from the full frame,
so the second look sees them with the detail the frame has. The paste goes back into the first pass's
low-resolution map, where refinement (guided upsampling on the full frame) takes over as for any frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from model.segmenter import inference_shape

# A crop of the full-size frame: (top, bottom, left, right) as fractions of the frame's height and width, and
# the (height, width) to return it at, as uint8 RGB. The video path crops its YUV planes; a photo its pixels.
Crop = Callable[[tuple[float, float, float, float], tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class Focus:
    """When and how to take the closer look. The defaults were chosen on the held-out clips (train.label's Pose
    labels of dance_dispose_1080x1920 and juggle_sam2), as they are and shrunk to 0.35x into a scene without
    people (bench.zoomout): balanced preset (384 px, every 3rd frame), v2 weights, mean IoU per frame, as is /
    small: threshold 0.5 without memory (the first version) 0.9047 / 0.5822, + memory 2 0.9047 / 0.8252 (1 and 4
    the same on small), + threshold 0.3 0.9042 / 0.8414, + max_gain 3 (the defaults) 0.9042 / 0.8421, max_gain
    2.5 0.9042 / 0.8370; no second pass at all: 0.4704 on small. Memory is what finds the small juggler (0.27 ->
    0.73): once the closer look has found someone, the next keyframes look there even when the first look
    misses them."""

    # Look again only if the crop shows the people at least this much larger. v8 weights, balanced, the eight
    # held-out sets (train.evaluate --refine app --every 3 --focus --infer-size 384), 1.5 -> 1.2: mean 0.8230 ->
    # 0.8255, all of it on the two children of bedroom_sam2 (0.7641 -> 0.7831: a crop around both shows them
    # 1.2-1.5x larger); every other set within 0.0003; 1.0 gave 0.8252. bench.zoomout sets: a pair apart 0.7131 ->
    # 0.7154, a dancer before an audience (--crowd) 0.6864 -> 0.6897.
    min_gain: float = 1.2
    # The union box grows by this fraction of its long side on each side: room for the arms and feet the first
    # look missed. On the held-out clips (train.label's Pose labels, balanced preset) 0.4 gave 0.8740 mIoU, 0.2
    # 0.8726, keeping the max of both looks instead of replacing 0.8668, no second pass 0.8637 (v2 weights).
    # v11 (fp32, bench.heldout score, session 27), 0.4 -> 0.3: mean of the eight sets 0.8296 -> 0.8307 (two
    # children 0.7808 -> 0.7888, beside stone figures 0.8277 -> 0.8503: a tighter crop shows less clutter); but
    # a pair apart 0.7628 -> 0.7189 (the tighter box around both pays and replaced a look each) and the single
    # dancer shrunk into scenes 0.8949 -> 0.8883, and a forearm the first look misses reaches ~0.4 of the body's
    # height beyond it: 0.4 stays.
    margin: float = 0.4
    threshold: float = 0.3      # a pixel of the first pass is a person above this (a faint one still gets looked at)
    min_part: float = 0.02      # blobs under this fraction of the largest one are noise, not people
    # In a clip, where the people were at the last keyframes is looked at too (the union of that box and this
    # frame's), for this many keyframes after they were last found: a dancer the first look half-misses (motion
    # blur, a tutu against grass) still gets the closer look, as MediaPipe Pose tracks its region of interest.
    memory: int = 2
    # The closer look shows the people at most this many times larger than the first did (None: as large as
    # the network's size allows): the crop is run at a smaller size when they are very small. Its cost goes
    # with the square of that size, and a crop of only a few dozen pixels, as in a wide shot, needs no 384.
    max_gain: float | None = 3.0
    # While people are followed (found at the last keyframe, and small enough for a closer look), the whole frame
    # is looked at only on every `full_every`-th keyframe; the keyframes between take the closer look alone, as
    # MediaPipe Pose tracks its region of interest instead of detecting on every frame. Nothing outside the crop
    # is found on those keyframes (someone new is found at the next whole look). 1: the whole frame every time.
    # v3 weights, balanced, float ONNX, held-out sets (mIoU/img; bench.zoomout --variants 4 for the small ones),
    # 1 -> 2: the two held-out clips 0.9079 -> 0.9083, bedroom_sam2 0.6581 -> 0.6589, shrunk to 0.35x 0.8144 ->
    # 0.8140 and 0.5510 -> 0.5528; on the speed bench's test pattern 145 -> 123 network passes in 288 frames.
    full_every: int = 2
    # People apart (a duo at both edges of a wide shot), whom one box around all of them would show no larger
    # than the whole frame does, get a closer look each instead: at most this many groups (the largest), each at
    # least `look_part` of the largest's area (a speck far away gets no closer look of its own: at 3x a few
    # pixels of noise become a person). Groups are people whose boxes, grown by the margin, overlap.
    looks: int = 3
    look_part: float = 0.1
    # Even when one box around everyone pays, groups apart get a look each when each of those shows its people at
    # least `apart` times larger than the one box would; a group counts for that only if its box's long side is
    # at least `min_side` of the network's size (a person far away is found in fragments, head and legs apart,
    # and a look at each fragment finds nobody). One value each, not scanned. v11 (fp32, bench.heldout score,
    # session 27): a pair apart (`val-pair`) 0.7628 -> 0.8206; the eight sets, the photos, beside statues and
    # before an audience unchanged (two-small4 0.6962 -> 0.6964, the rest to the fourth decimal). Without
    # `min_side` (tried at margin 0.3) the two children shrunk into scenes fell from 0.6383 to 0.5616: lost
    # whole, as the looks at their fragments found no one, so nobody was followed.
    apart: float = 1.5
    min_side: float = 0.06

    def __post_init__(self) -> None:
        if self.min_gain < 1 or self.margin < 0 or not 0 < self.threshold < 1 or not 0 <= self.min_part < 1 \
                or self.memory < 0 or (self.max_gain is not None and self.max_gain < self.min_gain) \
                or self.full_every < 1 or self.looks < 1 or not 0 <= self.look_part <= 1 or self.apart < 1 \
                or not 0 <= self.min_side < 1:
            raise ValueError("Focus needs min_gain >= 1, margin >= 0, 0 < threshold < 1, 0 <= min_part < 1, "
                             "memory >= 0, max_gain >= min_gain, full_every >= 1, looks >= 1, 0 <= look_part <= 1, "
                             "apart >= 1, 0 <= min_side < 1")


Box = tuple[float, float, float, float]     # (top, bottom, left, right) as fractions of the frame
Pixels = tuple[int, int, int, int]          # the same in a map's pixels


def _blobs(prob: np.ndarray, focus: Focus) -> list[Pixels]:
    """The boxes (top, bottom, left, right) of the blobs above the threshold, specks left out."""
    mask = (prob > focus.threshold).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = stats[1:][areas >= max(1, focus.min_part * areas.max())]
    return [(int(y), int(y + bh), int(x), int(x + bw)) for x, y, bw, bh in keep[:, :4]]


def _union(boxes: list[Pixels]) -> Pixels:
    return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))


def _grow(box: Pixels, focus: Focus, h: int, w: int) -> Pixels:
    """A box grown by the margin (a fraction of its long side) and kept inside an h x w map."""
    y0, y1, x0, x1 = box
    pad = focus.margin * max(x1 - x0, y1 - y0)
    return (max(0, int(y0 - pad)), min(h, int(np.ceil(y1 + pad))),
            max(0, int(x0 - pad)), min(w, int(np.ceil(x1 + pad))))


def _overlap(a: Pixels, b: Pixels) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _groups(boxes: list[Pixels], focus: Focus, h: int, w: int) -> list[tuple[Pixels, Pixels]]:
    """Boxes gathered into groups, each (union of its boxes, that union grown by the margin): boxes whose grown
    groups would overlap are one group, so the grown boxes never overlap. Largest group first."""
    groups = [[b] for b in boxes]
    while True:
        grown = [_grow(_union(g), focus, h, w) for g in groups]
        pair = next(((i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))
                     if _overlap(grown[i], grown[j])), None)
        if pair is None:
            break
        i, j = pair
        groups[i] += groups.pop(j)
    out = [(_union(g), gb) for g, gb in zip(groups, grown)]
    return sorted(out, key=lambda u: -(u[0][1] - u[0][0]) * (u[0][3] - u[0][2]))


def people_boxes(prob: np.ndarray, focus: Focus, prior: list[Box] = ()) -> list[Pixels]:
    """(top, bottom, left, right) in `prob`'s pixels of each group of people, grown by the margin and kept inside
    the map, largest first: people near one another share a box, people apart get one each. `prior`: where
    people were before (people_fractions of an earlier frame), gathered in as if found again. [] when nobody."""
    return [grown for _, grown in _found(prob, focus, prior)]


def _found(prob: np.ndarray, focus: Focus, prior: list[Box] = ()) -> list[tuple[Pixels, Pixels]]:
    found, before = _parts(prob, focus, prior)
    return _groups(found + before, focus, *prob.shape)


def _parts(prob: np.ndarray, focus: Focus, prior: list[Box]) -> tuple[list[Pixels], list[Pixels]]:
    """The blobs of this map and the `prior` boxes, both in its pixels."""
    h, w = prob.shape
    return _blobs(prob, focus), [box_pixels(b, h, w) for b in prior]


def _union_box(found: list[Pixels], before: list[Pixels], focus: Focus, h: int, w: int) -> Pixels | None:
    parts = [_grow(_union(boxes), focus, h, w) for boxes in (found, before) if boxes]
    return _union(parts) if parts else None


def union_box(prob: np.ndarray, focus: Focus, prior: list[Box] = ()) -> Pixels | None:
    """One box around all the people, grown by the margin, and around where they were (`prior`), grown alike;
    None when nobody."""
    return _union_box(*_parts(prob, focus, prior), focus, *prob.shape)


def followed_box(prior: list[Box], focus: Focus, h: int, w: int) -> Pixels | None:
    """One box around where people were (`prior`, see people_fractions), grown by the margin, in the pixels of an
    h x w map; None when nobody was."""
    before = [box_pixels(b, h, w) for b in prior]
    return _grow(_union(before), focus, h, w) if before else None


def look_boxes(segmenter, prob: np.ndarray, focus: Focus, prior: list[Box] = ()) -> list[Pixels]:
    """Where the closer looks go (pixels of `prob`): one box around all the people when it shows them at least
    `Focus.min_gain` times larger, unless they are in groups apart that a look each shows `Focus.apart` times
    larger still (each at least `Focus.min_side` tall); else, when they are apart, a box for each group large
    enough to count (`Focus.look_part`) and small enough for a closer look to pay, the largest `Focus.looks` of
    them; else, in a clip, where the people were (`prior`) when a look there pays.

    The last is for a dancer the first look loses while it marks something wide elsewhere (an audience along
    the top of the frame): with that in, every box holds most of the frame and no look paid, so she was lost
    until the clutter went. v10's weights (fp32), balanced, the eight held-out sets (bench.heldout score): mean
    0.8219 -> 0.8221, all of it on `two` (0.7779 -> 0.7791), the others and the extra sets before an audience
    and of a pair apart unchanged; DAVIS dance-jump (information only, INT8) 0.5415 -> 0.5589, lucia the
    same."""
    found, before = _parts(prob, focus, prior)
    union = _union_box(found, before, focus, *prob.shape)
    if union is None:
        return []
    groups = _groups(found + before, focus, *prob.shape)
    area = [(b - t) * (r - l) for (t, b, l, r), _ in groups]
    counted = [(box, grown) for (box, grown), a in zip(groups, area) if a >= focus.look_part * area[0]]
    gain = box_gain(segmenter, union)
    if gain >= focus.min_gain:
        if 1 < len(counted) <= focus.looks and all(
                max(b - t, r - l) >= focus.min_side * segmenter.infer_size
                and box_gain(segmenter, grown) >= focus.apart * gain for (t, b, l, r), grown in counted):
            return [grown for _, grown in counted]
        return [union]
    looks = [grown for _, grown in counted if box_gain(segmenter, grown) >= focus.min_gain][:focus.looks]
    if not looks and before:
        followed = followed_box(prior, focus, *prob.shape)
        if box_gain(segmenter, followed) >= focus.min_gain:
            looks = [followed]
    return looks


def people_fractions(prob: np.ndarray, focus: Focus) -> list[Box]:
    """Where the groups of people are, as fractions of the frame (comparable across inference sizes), before the
    margin (people_boxes grows them again): what a clip remembers between keyframes (Focus.memory)."""
    h, w = prob.shape
    return [(t / h, b / h, l / w, r / w) for (t, b, l, r), _ in _found(prob, focus)]


def box_gain(segmenter, box: Pixels) -> float:
    """How many times larger a closer look at `box` (pixels of the first pass's map) shows the people."""
    top, bottom, left, right = box
    return segmenter.infer_size / max(bottom - top, right - left)


def second_pass(segmenter, prob: np.ndarray, crop: Crop, focus: Focus | None = None,
                prior: list[Box] = ()) -> np.ndarray:
    """`prob` (the first pass, at inference size) with a closer look at the people pasted in (`look_boxes`: one
    around all of them, or one per group when they are apart), where they are small enough for one to pay
    (`Focus.min_gain`); otherwise `prob` itself. `prior`: where people were found before (a clip's earlier
    keyframes, see Focus.memory), looked at as well."""
    focus = focus or Focus()
    h, w = prob.shape
    out = prob
    for top, bottom, left, right in look_boxes(segmenter, prob, focus, prior):
        gain = box_gain(segmenter, (top, bottom, left, right))
        # The crop keeps the box's aspect in the frame's own pixels; its long side becomes the network's size.
        long_side = segmenter.infer_size if focus.max_gain is None or gain <= focus.max_gain else \
            max(32, round(focus.max_gain * max(bottom - top, right - left)))
        size = inference_shape(bottom - top, right - left, long_side)
        closer = segmenter.predict_small([crop((top / h, bottom / h, left / w, right / w), size)])[0]
        if out is prob:
            out = prob.copy()
        out[top:bottom, left:right] = cv2.resize(closer, (right - left, bottom - top), interpolation=cv2.INTER_AREA)
    return out


def frame_crop(frame: np.ndarray) -> Crop:
    """A `Crop` of an RGB frame (a photo, or a clip decoded to RGB)."""
    def crop(box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
        fh, fw = frame.shape[:2]
        t, b, l, r = box_pixels(box, fh, fw)
        return cv2.resize(frame[t:b, l:r], (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return crop


def box_pixels(box: tuple[float, float, float, float], h: int, w: int, even: bool = False) -> tuple[int, int, int, int]:
    """A fractional box in a frame's pixels (top, bottom, left, right), at least one pixel; with `even`, on even
    lines and columns (so an I420 frame's half-size chroma planes crop the same region)."""
    step = 2 if even else 1
    t, b = int(box[0] * h) // step * step, -(-int(np.ceil(box[1] * h)) // step) * step
    l, r = int(box[2] * w) // step * step, -(-int(np.ceil(box[3] * w)) // step) * step
    return t, max(b, t + step), l, max(r, l + step)
