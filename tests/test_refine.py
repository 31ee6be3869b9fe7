"""Matte refinement: temporal smoothing, clean-up, guided upsampling and the flicker measure."""

import cv2
import numpy as np
import pytest

from model.matte import Keyframes
from model.refine import RAW, Refiner, RefineOptions, clean, flicker

GUIDED = RefineOptions(temporal=0.0, levels=(0.0, 1.0))    # the guided upsampling alone


def _step(keys, frames):
    """Keyframes.step for full-size RGB frames."""
    smalls = [keys.segmenter.shrink(f) for f in frames]
    return keys.step(smalls, [cv2.cvtColor(s, cv2.COLOR_RGB2GRAY) for s in smalls])


def test_guided_upsampling_follows_the_pictures_edge():
    # A frame whose left half is dark and right half bright; a blurry low-res prob of the same split.
    frame = np.zeros((160, 160, 3), np.uint8)
    frame[:, 80:] = 255
    prob = np.zeros((20, 20), np.float32)
    prob[:, 10:] = 1.0
    prob = np.clip(prob + np.linspace(-0.3, 0.3, 20)[None, :] * (np.abs(np.arange(20) - 10) < 3), 0, 1)
    guided = Refiner(GUIDED)(frame, prob)
    bilinear = Refiner(RAW)(frame, prob)
    transition = lambda a: int(((a > 0.1) & (a < 0.9)).sum(axis=1).mean())  # noqa: E731
    assert guided.shape == (160, 160)
    assert transition(guided) < transition(bilinear) / 2        # a crisper edge, where the picture's edge is
    assert guided[:, :70].max() < 0.1 and guided[:, 90:].min() > 0.9


def test_guided_upsampling_of_a_flat_matte_stays_flat():
    frame = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    out = Refiner(GUIDED)(frame, np.full((16, 12), 0.7, np.float32))
    assert np.allclose(out, 0.7, atol=1e-3)


def test_temporal_smoothing_calms_static_flicker_but_follows_motion():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    base = np.zeros((40, 40), np.float32)
    base[10:30, 10:30] = 1
    noisy = [np.clip(base + rng.normal(0, 0.2, base.shape), 0, 1).astype(np.float32) for _ in range(20)]
    smooth_opts = RefineOptions(temporal=0.7, min_blob=0, edges="bilinear")
    raw = [Refiner(RAW)(frame, p) for p in noisy]
    refiner = Refiner(smooth_opts)
    smoothed = [refiner(frame, p) for p in noisy]
    assert flicker(smoothed, [frame] * 20) < flicker(raw, [frame] * 20) / 2

    # The picture changes everywhere (the person moved): the new prediction must win at once.
    moved = 255 - frame
    new_prob = np.zeros((40, 40), np.float32)
    out = refiner(moved, new_prob)
    assert out.max() < 0.05


def test_scene_cut_resets_memory():
    r = Refiner(RefineOptions(temporal=0.9, motion=1e9, min_blob=0, edges="bilinear"))  # never 'moving'
    a = np.zeros((8, 8, 3), np.uint8)
    r(a, np.ones((8, 8), np.float32))
    out = r(np.full((8, 8, 3), 200, np.uint8), np.zeros((8, 8), np.float32))   # mean change 200 > scene_cut
    assert out.max() == 0


@pytest.mark.parametrize("keep, expected_blobs", [("all", 2), ("largest", 1)])
def test_clean_drops_specks_and_can_keep_the_largest(keep, expected_blobs):
    prob = np.zeros((100, 100), np.float32)
    prob[10:60, 10:40] = 1          # a person
    prob[70:90, 60:90] = 1          # a second, smaller person
    prob[5, 95] = 1                 # a speck
    out = clean(prob, min_blob=0.002, keep=keep)
    assert out[5, 95] == 0 and out[30, 20] == 1
    import cv2
    assert cv2.connectedComponents((out > 0.5).astype(np.uint8))[0] - 1 == expected_blobs


def test_threshold_and_options_validation():
    frame = np.zeros((8, 8, 3), np.uint8)
    out = Refiner(RefineOptions(threshold=0.5, temporal=0, edges="bilinear"))(frame, np.full((8, 8), 0.6, np.float32))
    assert set(np.unique(out)) == {1.0}
    with pytest.raises(ValueError):
        RefineOptions(temporal=1.0)
    with pytest.raises(ValueError):
        RefineOptions(keep="tallest")


def test_levels_cut_the_background_haze_and_keep_the_half_way_line():
    """The default levels (0.25, 0.75): faint alpha over the background goes to 0, near-certain alpha to 1, and
    the 0.5 line (what IoU counts) stays where it was."""
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    prob = np.full((40, 30), 0.2, np.float32)            # the haze a network leaves on a busy background
    prob[8:32, 10:20] = 0.9                              # the person
    prob = cv2.GaussianBlur(prob, (0, 0), 2)
    plain = Refiner(RefineOptions(temporal=0.0, levels=(0.0, 1.0)))(frame, prob)
    levelled = Refiner(RefineOptions(temporal=0.0))(frame, prob)
    assert np.allclose(levelled, np.clip((plain - 0.25) / 0.5, 0, 1), atol=1e-5)
    assert plain[:5].max() > 0.15 and levelled[:5].max() == 0.0       # haze gone
    assert levelled[60, 45] == 1.0 and plain[60, 45] < 1.0                # the person fully opaque
    assert ((levelled > 0.5) == (plain > 0.5)).mean() > 0.999
    for bad in [(0.6, 0.4), (0.0, 1.2), (-0.1, 0.5)]:
        with pytest.raises(ValueError):
            RefineOptions(levels=bad)


def test_flicker_measure():
    a = [np.zeros((4, 4)), np.ones((4, 4)), np.ones((4, 4))]
    assert flicker(a) == pytest.approx(0.5)
    frames = [np.zeros((4, 4, 3), np.uint8)] * 3
    assert flicker(a, frames) == pytest.approx(0.5)
    moving = [np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4, 3), np.uint8)]
    assert flicker(a, moving) == 0.0          # every change coincides with the picture changing


def test_evaluate_reports_flicker_for_sequences(tmp_path, tiny_weights):
    """train.evaluate --flicker: per-sequence flicker of the prediction and of the ground truth."""
    import json

    from PIL import Image

    from train.evaluate import main

    rng = np.random.default_rng(0)
    for seq in ("a", "b"):
        (tmp_path / "seqs" / seq / "images").mkdir(parents=True)
        (tmp_path / "seqs" / seq / "masks").mkdir(parents=True)
        for t in range(4):
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
                tmp_path / "seqs" / seq / "images" / f"{t:05d}.png")
            mask = np.zeros((48, 64), np.uint8)
            mask[10:40, 10 + 4 * t:30 + 4 * t] = 255                   # a person walking right
            Image.fromarray(mask).save(tmp_path / "seqs" / seq / "masks" / f"{t:05d}.png")
    out = tmp_path / "m.json"
    assert main(["--weights", str(tiny_weights), "--data", str(tmp_path / "seqs"), "--flicker", "--refine", "app",
                 "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for seq in ("seqs/a", "seqs/b"):
        assert 0.0 <= results[seq]["flicker"] <= 1.0
        assert results[seq]["flicker_gt"] > 0                            # the ground truth moves
    # --still: the images as the app's photos (seen mirrored too): other numbers, and no keyframes with it
    still = tmp_path / "still.json"
    assert main(["--weights", str(tiny_weights), "--data", str(tmp_path / "seqs"), "--refine", "app", "--still",
                 "--json", str(still)]) == 0
    assert json.loads(still.read_text())["overall"]["loss"] != results["overall"]["loss"]
    with pytest.raises(SystemExit):
        main(["--weights", str(tiny_weights), "--data", str(tmp_path / "seqs"), "--still", "--every", "3"])


class _OracleSegmenter:
    """Stands in for the network: the 'prediction' is where the textured square really is, and it counts calls."""

    def __init__(self, boxes: list[tuple[int, int]], size: int = 64) -> None:
        self.boxes, self.size, self.calls, self.frames_seen = boxes, size, 0, 0

    def shrink(self, frame):
        return frame

    def predict_small(self, smalls):
        self.calls += 1
        out = []
        for _ in smalls:
            y, x = self.boxes[self.frames_seen]
            prob = np.zeros((self.size, self.size), np.float32)
            prob[y:y + 20, x:x + 20] = 1
            out.append(prob)
            self.frames_seen += 1
        return out


def _moving_square(n: int, step: int = 2):
    """Frames of a textured square sliding right over a textured background, and its true boxes."""
    rng = np.random.default_rng(1)
    bg = rng.integers(0, 120, (64, 64, 3), dtype=np.uint8)
    tex = rng.integers(140, 256, (20, 20, 3), dtype=np.uint8)
    frames, boxes = [], []
    for i in range(n):
        f = bg.copy()
        y, x = 20, 8 + step * i
        f[y:y + 20, x:x + 20] = tex
        frames.append(f)
        boxes.append((y, x))
    return frames, boxes


def _iou(prob, box):
    truth = np.zeros(prob.shape, bool)
    truth[box[0]:box[0] + 20, box[1]:box[1] + 20] = True
    pred = prob > 0.5
    return (pred & truth).sum() / (pred | truth).sum()


def test_keyframes_run_the_network_on_every_kth_frame_and_carry_the_matte_along_the_motion():
    frames, boxes = _moving_square(12)
    oracle = _OracleSegmenter(boxes[::3])                 # it must only be asked about keyframes 0, 3, 6, 9
    keys = Keyframes(oracle, every=3)
    first = _step(keys, frames[:5])                              # keyframes 0 and 3: frames 0-3 are ready, 4 waits for 6
    out = first + _step(keys, frames[5:]) + keys.flush()         # state carries across batches; 10, 11 end the clip
    assert len(first) == 4 and len(out) == 12 and oracle.frames_seen == 4     # 4 network passes for 12 frames
    for i, (prob, grey) in enumerate(out):
        assert grey.dtype == np.float32 and grey.shape == prob.shape
        if i % 3:                                         # frames between follow the square (it moved 2-4 px)
            stale = _iou(out[i - i % 3][0], boxes[i])
            assert _iou(prob, boxes[i]) > 0.9 > stale, (i, _iou(prob, boxes[i]), stale)


def test_frames_between_keyframes_mix_the_mattes_carried_from_both_sides():
    """A frame between two keyframes gets the earlier keyframe's matte carried forward and the later one's
    carried backward, weighted by distance; frames after the last keyframe get the forward matte alone."""
    frames, boxes = _moving_square(7)
    oracle = _OracleSegmenter(boxes[::3])
    keys = Keyframes(oracle, every=3)
    out = _step(keys, frames) + keys.flush()
    forward_only = Keyframes(_OracleSegmenter(boxes[::3]), every=3)
    alone = []
    for f in frames:            # fed one by one and flushed each time: no later keyframe is ever known
        alone += _step(forward_only, [f]) + forward_only.flush()
    assert len(out) == len(alone) == 7
    for i in (1, 2, 4, 5):
        assert not np.allclose(out[i][0], alone[i][0]), i          # the later keyframe took part
        assert _iou(out[i][0], boxes[i]) > 0.9, i
    assert np.allclose(out[6][0], alone[6][0])                      # after the last keyframe: forward only


def test_keyframes_give_a_scene_cut_its_own_network_pass():
    frames, boxes = _moving_square(6)
    frames[4:] = [255 - f for f in frames[4:]]            # the clip cuts to a different picture at frame 4
    oracle = _OracleSegmenter([boxes[0], boxes[4]])
    _step(Keyframes(oracle, every=8), frames)
    assert oracle.frames_seen == 2


def test_keyframe_interval_must_be_positive():
    with pytest.raises(ValueError):
        Keyframes(_OracleSegmenter([]), every=0)
