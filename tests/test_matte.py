"""model.matte: a clip's frames in, the same frames out in order with their mattes (keyframes, refinement)."""

import cv2
import numpy as np
from conftest import brightness_segmenter

from model.matte import Frame, MatteStream
from model.refine import RAW, Matte, Refiner, RefineOptions


class _Counting:
    """A segmenter that counts the frames the network is asked about."""

    def __init__(self, seg):
        self.seg, self.seen = seg, 0
        self.infer_size = seg.infer_size

    def shrink(self, frame):
        return self.seg.shrink(frame)

    def predict_small(self, smalls):
        self.seen += len(smalls)
        return self.seg.predict_small(smalls)


def _clip(n: int, h: int = 96, w: int = 64) -> list[np.ndarray]:
    """A bright square sliding over a dark textured background (the brightness segmenter's 'person')."""
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = bg.copy()
        f[30:60, 10 + 2 * i:30 + 2 * i] = 230
        frames.append(f)
    return frames


def test_frames_come_back_in_order_each_with_its_matte_and_the_network_sees_only_keyframes():
    seg = _Counting(brightness_segmenter(64))
    frames = _clip(10)
    stream = MatteStream(seg, every=3)
    out = list(stream.run((Frame.rgb(f, seg, tag=i) for i, f in enumerate(frames)), batch=4))
    assert [f.tag for f, _ in out] == list(range(10))
    assert seg.seen == 4                                   # keyframes 0, 3, 6, 9
    for i, (frame, matte) in enumerate(out):
        alpha = matte.alpha(frame.guide)
        assert alpha.shape == (96, 64) and alpha.dtype == np.float32
        assert alpha[40:50, 14 + 2 * i:26 + 2 * i].mean() > 0.9 and alpha[:, 50:].mean() < 0.1, i


def test_push_returns_what_is_ready_and_flush_the_rest():
    seg = brightness_segmenter(64)
    stream = MatteStream(seg, every=3)
    frames = [Frame.rgb(f, seg, tag=i) for i, f in enumerate(_clip(5))]
    first = stream.push(frames[:2])            # keyframe 0 ready; frame 1 waits for keyframe 3
    assert [f.tag for f, _ in first] == [0]
    second = stream.push(frames[2:])           # keyframe 3 resolves 1 and 2; frame 4 waits
    assert [f.tag for f, _ in second] == [1, 2, 3]
    assert [f.tag for f, _ in stream.flush()] == [4]


def test_given_probabilities_are_used_instead_of_running_the_network():
    seg = _Counting(brightness_segmenter(64))
    frame = Frame.rgb(_clip(1)[0], seg)
    prob = np.zeros(frame.small.shape[:2], np.float32)
    prob[:, :10] = 1.0                          # not what the network would say
    (_, matte), = MatteStream(seg, refine=RAW).push([frame], [prob])
    assert seg.seen == 0
    want = cv2.resize(prob, (64, 96), interpolation=cv2.INTER_LINEAR)
    assert np.allclose(matte.alpha(frame.guide), want, atol=1e-6)


def test_the_matte_left_at_low_resolution_is_the_refiners_alpha():
    rng = np.random.default_rng(1)
    frame = cv2.resize(rng.integers(0, 256, (12, 8, 3), dtype=np.uint8), (64, 96), interpolation=cv2.INTER_CUBIC)
    prob = cv2.GaussianBlur(rng.random((24, 16), dtype=np.float32), (0, 0), 2)
    for opts in (RefineOptions(temporal=0), RefineOptions(temporal=0, edges="bilinear"),
                 RefineOptions(temporal=0, levels=(0.0, 1.0)), RefineOptions(temporal=0, threshold=0.5), RAW):
        matte = Refiner(opts).matte(frame, prob)
        assert isinstance(matte, Matte) and matte.b.shape == prob.shape
        assert (matte.a is None) == (opts.edges == "bilinear")
        alpha = matte.alpha(frame)
        assert alpha.shape == (96, 64) and 0 <= alpha.min() and alpha.max() <= 1
    # the levels stretch, folded into the coefficients, equals stretching the alpha afterwards
    plain = Refiner(RefineOptions(temporal=0, levels=(0.0, 1.0)))(frame, prob)
    levelled = Refiner(RefineOptions(temporal=0, levels=(0.25, 0.75)))(frame, prob)
    assert np.allclose(levelled, np.clip((plain - 0.25) / 0.5, 0, 1), atol=1e-4)
