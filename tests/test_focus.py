"""The person-focused second pass (model.focus): a small person in a big generated frame is found and segmented
at the detail the frame has, in the photo path, the video path (the clip's own YUV) and the keyframes."""

import subprocess

import cv2
import numpy as np
import pytest
from conftest import brightness_segmenter

from app.options import Preset, RenderOptions
from app.pipeline import segment_image, segment_video
from model import Segmenter
from model.focus import (Focus, box_gain, followed_box, frame_crop, look_boxes, people_boxes, people_fractions,
                         second_pass, union_box)
from model.matte import Keyframes


def _segmenter(size: int = 384) -> Segmenter:
    return brightness_segmenter(size)


H, W = 1920, 1080
BODY = (1400, 1640, 700, 760)       # top, bottom, left, right: a dancer 240 px tall in a 1080x1920 frame
ARM = (1450, 1452, 760, 840)        # a forearm 2 px thick: a 0.4 px smear at the network's 384 px


def _frame(shift: int = 0) -> np.ndarray:
    frame = np.full((H, W, 3), 20, np.uint8)
    for t, b, l, r in (BODY, ARM):
        frame[t:b, l + shift:r + shift] = 235
    return frame


def _region(alpha: np.ndarray, box, shift: int = 0) -> np.ndarray:
    t, b, l, r = box
    return alpha[t:b, l + shift:r + shift]


def _full(prob: np.ndarray) -> np.ndarray:
    return cv2.resize(prob, (W, H), interpolation=cv2.INTER_LINEAR)


def test_a_small_person_gets_a_closer_look_that_finds_the_thin_arm():
    seg, frame = _segmenter(), _frame()
    first = seg.predict_lowres([frame])[0]
    assert _region(_full(first), ARM).mean() < 0.05                  # the first look cannot see the forearm
    assert _region(_full(first), BODY).mean() > 0.8                  # but it finds the body
    second = second_pass(seg, first, frame_crop(frame), Focus(max_gain=None))     # at the full 384 px
    # The closer look sees it; pasted back into the low-resolution map a 2 px arm is a 0.4 px line there, so
    # its probability is partial: the edge-aware refinement brings it out at full size (the pipeline tests).
    assert _region(_full(second), ARM).mean() > 0.25
    assert _region(_full(second), BODY).mean() > 0.8
    outside = np.ones((H, W), bool)
    outside[1300:1750, 600:900] = False
    assert _full(second)[outside].max() < 0.1                        # nothing invented anywhere else


def test_large_people_and_empty_frames_are_left_as_they_are():
    seg = _segmenter()
    big = np.full((H, W, 3), 20, np.uint8)
    big[200:1800, 200:900] = 235                                     # fills the frame: no closer look to take
    prob = seg.predict_lowres([big])[0]
    assert second_pass(seg, prob, frame_crop(big)) is prob
    empty = np.full((H, W, 3), 20, np.uint8)
    prob = seg.predict_lowres([empty])[0]
    assert people_boxes(prob, Focus()) == [] and second_pass(seg, prob, frame_crop(empty)) is prob


def test_people_near_one_another_share_a_box_people_apart_get_one_each_and_specks_none():
    prob = np.zeros((384, 216), np.float32)
    prob[100:140, 20:40] = 1        # one person
    prob[150:190, 30:50] = 1        # another beside them: their grown boxes overlap, one box
    prob[300:340, 170:190] = 1      # a third, far from both
    prob[10, 200] = 1               # a speck: under 2% of the largest blob
    focus = Focus(margin=0.2)
    assert people_boxes(prob, focus) == [(82, 208, 2, 68), (292, 348, 162, 198)]     # largest first
    assert people_boxes(prob, Focus(margin=2.0)) == [(0, 384, 0, 216)]     # with a wide margin all are one
    # What a clip remembers is each group before the margin, as fractions of the frame ...
    remembered = people_fractions(prob, focus)
    assert remembered == [(100 / 384, 190 / 384, 20 / 216, 50 / 216), (300 / 384, 340 / 384, 170 / 216, 190 / 216)]
    # ... and a remembered group is looked at again, gathered with what this frame shows
    prob[300:340, 170:190] = 0      # the third is lost by this look
    assert people_boxes(prob, focus, remembered) == [(82, 208, 2, 68), (292, 348, 162, 198)]
    with pytest.raises(ValueError):
        Focus(min_gain=0.5)
    with pytest.raises(ValueError):
        Focus(looks=0)


def test_two_small_people_apart_each_get_a_closer_look_up_to_looks():
    """A duo at both edges of a wide shot: one box around both is the whole frame (no closer look pays); a box
    each finds both forearms. Focus.looks caps the closer looks (the largest group first)."""
    seg = _FirstLookMisses()
    frame = _frame()
    left = (300, 500, 100, 150)                     # a second dancer, smaller, top left, with her own forearm
    left_arm = (350, 352, 150, 230)
    for t, b, l, r in (left, left_arm):
        frame[t:b, l:r] = 235
    frame[1800:1825, 100:125] = 235                 # a speck far from both: a blob, too small for a look of its own
    first = seg.predict_small([seg.shrink(frame)])[0]
    boxes = people_boxes(first, Focus())
    assert len(boxes) == 3 and box_gain(seg, union_box(first, Focus())) < Focus().min_gain   # one box: no look
    both = second_pass(seg, first, frame_crop(frame), Focus(max_gain=None))
    assert len(seg.crops) == 2
    for arm in (ARM, left_arm):
        assert _region(_full(both), arm).mean() > 0.25, arm
    for body in (BODY, left):
        assert _region(_full(both), body).mean() > 0.8, body
    seg.crops.clear()
    one = second_pass(seg, first, frame_crop(frame), Focus(max_gain=None, looks=1))
    assert len(seg.crops) == 1
    assert _region(_full(one), ARM).mean() > 0.25 and _region(_full(one), left_arm).mean() < 0.1     # the larger


def test_photo_path_runs_the_second_pass(tmp_path):
    src = tmp_path / "small.png"
    cv2.imwrite(str(src), _frame())
    for focus, arm in ((True, True), (False, False)):
        out = tmp_path / f"mask-{focus}.png"
        segment_image(src, out, RenderOptions(mode="mask", preset=Preset(1.0, 1, focus)), segmenter=_segmenter())
        mask = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
        assert (_region(mask, ARM).mean() > 127) == arm, focus
        assert _region(mask, BODY).mean() > 200


def test_video_path_crops_the_clips_own_yuv_for_the_second_pass(tmp_path):
    """The dancer moves; every frame of the output has the forearm with the second pass, none without."""
    src = tmp_path / "small.mp4"
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                            "-r", "10", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10", str(src)],
                           stdin=subprocess.PIPE)
    shifts = [2 * i for i in range(6)]
    for s in shifts:
        enc.stdin.write(_frame(s).tobytes())
    enc.stdin.close()
    assert enc.wait() == 0
    for focus in (True, False):
        out = tmp_path / f"mask-{focus}.mp4"
        segment_video(src, out, RenderOptions(mode="mask", preset=Preset(1.0, 3, focus)), segmenter=_segmenter())
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                             capture_output=True, check=True).stdout
        masks = np.frombuffer(raw, np.uint8).reshape(-1, H, W)
        assert len(masks) == len(shifts)
        arms = [_region(m, ARM, s).mean() > 127 for m, s in zip(masks, shifts)]
        assert arms == [focus] * len(shifts), (focus, [_region(m, ARM, s).mean() for m, s in zip(masks, shifts)])


def test_keyframes_take_the_closer_look_on_keyframes_only():
    seg = _segmenter()
    calls = []

    class Counting:
        infer_size = seg.infer_size

        def shrink(self, frame):
            return seg.shrink(frame)

        def predict_small(self, smalls):
            calls.append([s.shape for s in smalls])
            return seg.predict_small(smalls)

    frames = [_frame(2 * i) for i in range(6)]
    keys = Keyframes(Counting(), every=3, focus=Focus())
    smalls = [seg.shrink(f) for f in frames]
    out = keys.step(smalls, [cv2.cvtColor(s, cv2.COLOR_RGB2GRAY) for s in smalls], [frame_crop(f) for f in frames]) \
        + keys.flush()
    assert len(out) == 6
    # Keyframes 0 and 3: one batched first look at both, then one closer look each (a crop, not the frame).
    assert [len(c) for c in calls] == [2, 1, 1]
    assert calls[1][0] != calls[0][0]
    for i, (prob, _) in enumerate(out):      # the keyframes' closer look is carried to the frames between
        assert _region(_full(prob), ARM, 2 * i).mean() > 0.15, i     # first look alone: under 0.05


class _FirstLookMisses:
    """The first look (the whole frame) finds the people only on the first keyframe; closer looks (crops) see
    what is there, as the brightness 'network' does: the case of a dancer the first pass loses for a while."""

    def __init__(self):
        self.seg, self.full_calls, self.crops = _segmenter(), 0, []
        self.infer_size = self.seg.infer_size

    def shrink(self, frame):
        return self.seg.shrink(frame)

    def predict_small(self, smalls):
        out = self.seg.predict_small(smalls)
        if smalls and smalls[0].shape[:2] == (384, 216):           # the whole frame
            self.full_calls += 1
            return out if self.full_calls == 1 else [np.zeros_like(p) for p in out]
        self.crops += [s.shape[:2] for s in smalls]
        return out


def _keyframes_over(frames, focus):
    seg = _FirstLookMisses()
    keys = Keyframes(seg, every=3, focus=focus)
    probs = []
    for f in frames:        # one at a time, as a clip streams
        small = seg.shrink(f)
        probs += [p for p, _ in keys.step([small], [cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)], [frame_crop(f)])]
    return probs + [p for p, _ in keys.flush()], seg


def test_a_clip_keeps_looking_where_the_people_were_when_the_first_look_loses_them():
    frames = [_frame(2 * i) for i in range(7)]                     # keyframes 0, 3, 6
    remembered, seg = _keyframes_over(frames, Focus(memory=2))
    forgotten, _ = _keyframes_over(frames, Focus(memory=0))
    for k in (3, 6):
        assert _region(_full(forgotten[k]), BODY, 2 * k).mean() < 0.1, k      # lost with the first look
        assert _region(_full(remembered[k]), BODY, 2 * k).mean() > 0.8, k     # found by the closer look
    assert len(seg.crops) == 3                                     # one closer look per keyframe


def test_a_clip_remembers_each_of_two_people_apart_and_looks_closer_at_both_on_every_keyframe():
    duo = (300, 500, 100, 150)                                     # a second dancer, top left
    frames = []
    for i in range(7):
        f = _frame(2 * i)
        f[duo[0]:duo[1], duo[2]:duo[3]] = 235
        frames.append(f)
    probs, seg = _keyframes_over(frames, Focus(memory=2))
    for k in (3, 6):        # the whole-frame look finds nobody after frame 0: both found by their closer looks
        assert _region(_full(probs[k]), BODY, 2 * k).mean() > 0.8, k
        assert _region(_full(probs[k]), duo).mean() > 0.8, k
    assert len(seg.crops) == 6                                     # two closer looks per keyframe
    _, looks = _run_keyframes(frames + frames[::-1], Focus(full_every=2))
    # People apart are not followed by closer looks alone (Focus.full_every): the whole frame every keyframe
    assert (looks.whole, looks.crops) == (5, 10)


def test_a_remembered_place_is_given_up_after_memory_keyframes_without_anybody():
    frames = [_frame(0)] + [np.full((H, W, 3), 20, np.uint8)] * 9   # the dancer leaves after frame 0
    probs, seg = _keyframes_over(frames, Focus(memory=2))
    assert len(seg.crops) == 3               # keyframe 0, then the empty place looked at on keyframes 3 and 6
    assert all(p.max() < 0.1 for p in probs[3:])      # frames 1-2 still mix in keyframe 0's matte


def test_a_very_small_person_is_looked_at_with_a_smaller_crop_when_max_gain_caps_it():
    seg, frame = _FirstLookMisses(), _frame()
    first = seg.predict_small([seg.shrink(frame)])[0]
    capped = second_pass(seg, first, frame_crop(frame), Focus(max_gain=2.0))
    full = second_pass(seg, first, frame_crop(frame), Focus(max_gain=None))
    (capped_shape, full_shape) = seg.crops
    assert max(full_shape) == 384 and max(capped_shape) < 384 * 0.8
    ((top, bottom, left, right),) = people_boxes(first, Focus())
    assert max(capped_shape) <= round(2.0 * max(bottom - top, right - left))
    assert _region(_full(capped), BODY).mean() > 0.8 and _region(_full(full), BODY).mean() > 0.8
    with pytest.raises(ValueError):
        Focus(max_gain=1.1)                  # below min_gain


class _Looks:
    """The brightness 'network', counting whole-frame looks (the 384x216 map) and closer looks (crops)."""

    def __init__(self):
        self.seg, self.whole, self.crops = _segmenter(), 0, 0
        self.infer_size = self.seg.infer_size

    def shrink(self, frame):
        return self.seg.shrink(frame)

    def predict_small(self, smalls):
        for s in smalls:
            if s.shape[:2] == (384, 216):
                self.whole += 1
            else:
                self.crops += 1
        return self.seg.predict_small(smalls)


def _run_keyframes(frames, focus, batch=4):
    seg = _Looks()
    keys = Keyframes(seg, every=3, focus=focus)
    probs = []
    for i in range(0, len(frames), batch):
        chunk = frames[i:i + batch]
        smalls = [seg.shrink(f) for f in chunk]
        probs += [p for p, _ in keys.step(smalls, [cv2.cvtColor(s, cv2.COLOR_RGB2GRAY) for s in smalls],
                                          [frame_crop(f) for f in chunk])]
    return probs + [p for p, _ in keys.flush()], seg


def test_a_followed_person_gets_the_whole_frame_looked_at_only_every_full_every_keyframes():
    frames = [_frame(2 * i) for i in range(19)]                     # keyframes 0, 3, ..., 18: seven
    every_time, seg1 = _run_keyframes(frames, Focus(full_every=1))
    alternate, seg2 = _run_keyframes(frames, Focus(full_every=2))
    assert (seg1.whole, seg1.crops) == (7, 7)
    assert (seg2.whole, seg2.crops) == (4, 7)          # keyframes 0, 6, 12, 18 whole; every one a closer look
    for k in range(0, 19, 3):          # the crop-only keyframes find the dancer and her forearm as well
        assert _region(_full(alternate[k]), BODY, 2 * k).mean() > 0.8, k
        assert _region(_full(alternate[k]), ARM, 2 * k).mean() > 0.15, k
    with pytest.raises(ValueError):
        Focus(full_every=0)


def test_someone_new_outside_the_crop_is_found_at_the_next_whole_look():
    newcomer = (200, 440, 100, 160)                                   # top left, far from the dancer
    frames = [_frame(0) for _ in range(7)] + [_frame(0) for _ in range(12)]
    for f in frames[7:]:
        t, b, l, r = newcomer
        f[t:b, l:r] = 235
    probs, _ = _run_keyframes(frames, Focus(full_every=2))
    found = [k for k in range(9, 19, 3) if _region(_full(probs[k]), newcomer).mean() > 0.8]
    assert found and found[0] <= 12                    # at most one crop-only keyframe (9) misses them
    assert all(k in found for k in range(found[0], 19, 3) if k % 6 == 0)   # every whole look keeps them


def test_nobody_followed_means_whole_looks_every_time():
    empty = [np.full((H, W, 3), 20, np.uint8)] * 10
    _, seg = _run_keyframes(empty, Focus(full_every=3))
    assert (seg.whole, seg.crops) == (4, 0)
    big = np.full((H, W, 3), 20, np.uint8)
    big[200:1800, 200:900] = 235                                     # too large for a closer look: not followed
    _, seg = _run_keyframes([big] * 10, Focus(full_every=3))
    assert (seg.whole, seg.crops) == (4, 0)


def test_a_followed_person_is_still_looked_at_when_clutter_elsewhere_makes_every_box_too_wide():
    """The first look loses the dancer and marks a band along the top (an audience): one box around both, and
    the one group their grown boxes make, hold the whole frame, so no look pays there; where she was (`prior`)
    still gets its closer look. Without a prior nothing is looked at, as before."""
    seg = _segmenter()
    prob = np.zeros((216, 384), np.float32)
    prob[0:20, :] = 1                                          # the clutter: a band across the top
    prior = [(60 / 216, 160 / 216, 150 / 384, 220 / 384)]     # where the dancer was at the last keyframes
    focus = Focus()
    assert box_gain(seg, union_box(prob, focus, prior)) < focus.min_gain
    assert len(people_boxes(prob, focus, prior)) == 1                       # one group: the whole frame
    assert look_boxes(seg, prob, focus) == []
    (box,) = look_boxes(seg, prob, focus, prior)
    assert box == (20, 200, 110, 260)                          # her box grown by the margin, nothing more
    assert box_gain(seg, box) >= focus.min_gain
    assert followed_box(prior, focus, 216, 384) == box and followed_box([], focus, 216, 384) is None


def test_groups_apart_get_a_look_each_when_that_shows_them_much_larger_and_fragments_do_not():
    """One box around a pair apart pays (1.7x), yet a look at each shows its dancer 5.3x larger (at least
    Focus.apart times more): a look each. The same layout shrunk, each blob under Focus.min_side of the network's
    size (fragments of one far person, head and legs apart), keeps the one box: a look at a fragment finds nobody."""
    seg = _segmenter()
    focus = Focus(margin=0.4)
    prob = np.zeros((384, 216), np.float32)
    prob[150:190, 20:40] = 1        # a dancer 40 px tall at the network's 384 px
    prob[200:240, 170:190] = 1      # another, apart
    union = union_box(prob, focus)
    assert box_gain(seg, union) >= focus.min_gain                        # one box around both pays ...
    looks = look_boxes(seg, prob, focus)
    assert looks == people_boxes(prob, focus) and len(looks) == 2        # ... a look each pays far more
    assert all(box_gain(seg, box) >= focus.apart * box_gain(seg, union) for box in looks)
    assert look_boxes(seg, prob, Focus(margin=0.4, apart=10.0)) == [union]          # not enough more: one box
    small = np.zeros((384, 216), np.float32)
    small[150:160, 100:105] = 1     # 10 px: under min_side (0.06 x 384 = 23 px)
    small[178:188, 116:121] = 1
    assert len(people_boxes(small, focus)) == 2
    assert look_boxes(seg, small, focus) == [union_box(small, focus)]
    assert len(look_boxes(seg, small, Focus(margin=0.4, min_side=0.0))) == 2
    with pytest.raises(ValueError):
        Focus(apart=0.5)
