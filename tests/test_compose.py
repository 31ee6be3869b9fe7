"""Compositing, checked on tiny arrays at alpha 0, 1 and 0.5: exact at 0 and 1, correctly rounded between."""

import numpy as np
import pytest

from app import compose

FG = (200, 100, 50)
# alpha 0.5 blends to the exact mean, which `same` accepts rounded either way (x.5 ties)
HALF = lambda fg, bg: (fg + bg) / 2  # noqa: E731


def same(out, expected) -> bool:
    """Every pixel equals `expected` rounded to the nearest level (either way for an exact .5)."""
    return bool((np.abs(out.astype(np.float64) - np.asarray(expected, np.float64)) <= 0.5).all())


def frame(rgb=FG, h=2, w=3):
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def alpha(v, h=2, w=3):
    return np.full((h, w), v, np.float32)


@pytest.mark.parametrize("a, expected", [
    (0.0, (0, 0, 0)), (1.0, (255, 255, 255)), (0.5, (128, 128, 128)),
])
def test_mask(a, expected):
    out = compose.mask(frame(), alpha(a))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert (out == expected).all()


@pytest.mark.parametrize("colour, a, expected", [
    ((255, 255, 255), 1.0, FG),
    ((255, 255, 255), 0.0, (255, 255, 255)),
    ((0, 255, 0), 0.0, (0, 255, 0)),
    ((255, 255, 255), 0.5, tuple(HALF(f, 255) for f in FG)),
    ((0, 0, 0), 0.5, tuple(HALF(f, 0) for f in FG)),
])
def test_cutout(colour, a, expected):
    assert same(compose.cutout(frame(), alpha(a), colour), expected)


@pytest.mark.parametrize("a, opacity, expected", [
    (0.0, 0.5, FG),                                  # background untouched
    (1.0, 1.0, (255, 0, 0)),                         # full tint
    (1.0, 0.5, (HALF(255, 200), HALF(0, 100), HALF(0, 50))),
    (0.5, 1.0, (HALF(255, 200), HALF(0, 100), HALF(0, 50))),
])
def test_overlay(a, opacity, expected):
    assert same(compose.overlay(frame(), alpha(a), (255, 0, 0), opacity), expected)


@pytest.mark.parametrize("a, level", [(0.0, 0), (1.0, 255), (0.5, 128)])
def test_transparent(a, level):
    out = compose.transparent(frame(), alpha(a))
    assert out.shape == (2, 3, 4)
    assert (out[..., :3] == FG).all() and (out[..., 3] == level).all()


def test_uint8_alpha_is_taken_as_is():
    a8 = np.array([[0, 128, 255]], np.uint8)
    out = compose.cutout(frame(h=1), a8, (0, 0, 0))
    assert same(out[0, :, 0], [0, 200 * 128 / 255, 200])


@pytest.mark.parametrize("a", [0.0, 1.0, 0.5])
def test_blur_flat_frame(a):
    # A flat frame blurs to itself, so every alpha gives the frame back exactly.
    f = frame(h=40, w=30)
    assert (compose.blur(f, alpha(a, 40, 30), sigma=8) == f).all()


def test_blur_person_sharp_background_soft():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a = np.zeros((64, 64), np.float32)
    a[:, :32] = 1
    out = compose.blur(f, a, sigma=6)
    assert (out[:, :32] == f[:, :32]).all()                     # the person is untouched
    assert out[:, 40:].std() < f[:, 40:].std() / 3              # the background lost its detail


@pytest.mark.parametrize("a", [0.0, 1.0, 0.5])
def test_replace(a):
    bg = frame((10, 20, 30))
    out = compose.replace(frame(), alpha(a), bg)
    expected = {0.0: (10, 20, 30), 1.0: FG, 0.5: tuple(HALF(f, b) for f, b in zip(FG, (10, 20, 30)))}[a]
    assert same(out, expected)


def test_replace_rejects_wrong_size():
    with pytest.raises(ValueError):
        compose.replace(frame(), alpha(1.0), frame(h=5))


@pytest.mark.parametrize("a", [0.0, 1.0, 0.5])
def test_collage(a):
    f = frame()
    out = compose.collage(f, alpha(a), (255, 255, 255))
    assert out.shape == (2, 9, 3)
    assert (out[:, :3] == f).all()
    assert (out[:, 3:6] == compose.mask(f, alpha(a))).all()
    assert (out[:, 6:] == compose.cutout(f, alpha(a), (255, 255, 255))).all()


def test_fit_cover_fills_without_squashing():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255                                      # a white centre square
    out = compose.fit_cover(img, 50, 50)
    assert out.shape == (50, 50, 3)
    assert (out == 255).all()                                 # centre crop of the square, no stretched edges


def test_checkerboard():
    board = compose.checkerboard(32, 32, cell=16)
    assert board[0, 0, 0] == 255 and board[0, 16, 0] == 204 and board[16, 16, 0] == 255


@pytest.mark.parametrize("mode", ["mask", "overlay", "cutout", "transparent", "blur", "replace", "collage"])
@pytest.mark.parametrize("h, w", [(48, 32), (47, 33)])
def test_video_frames_are_composed_in_yuv_as_the_rgb_picture_would_be(mode, h, w, tmp_path):
    """MP4/WebM frames are composed directly in I420: they must be the RGB composition, converted."""
    from PIL import Image

    from app.options import RenderOptions
    from app.pipeline import _output_size, _render_fn

    rng = np.random.default_rng(0)
    f = np.clip(rng.normal(120, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip((xx - w / 4) / 12, 0, 1).astype(np.float32) * (yy % 3 > 0)   # soft edges, and hard ones
    Image.fromarray(np.full((20, 30, 3), (30, 160, 90), np.uint8)).save(tmp_path / "bg.png")
    options = RenderOptions(mode=mode, background=(20, 40, 200), background_image=str(tmp_path / "bg.png"))
    fmt = "webm" if mode == "transparent" else "mp4"
    rgb_fn, _, _ = _render_fn(options, h, w, "png")
    yuv_fn, alpha, _ = _render_fn(options, h, w, fmt)
    out_h, out_w = _output_size(options, h, w, fmt)
    got = yuv_fn(f, a)
    assert got.size == out_h * out_w * (5 if alpha else 3) // 2       # what the writer expects
    if h % 2 and mode in ("blur", "collage"):
        return    # odd sizes are padded before composing: a blur's border and the collage's panels differ by design
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    rgb = np.pad(rgb_fn(f, a), pad, mode="edge")
    if alpha:                                                    # yuva420p: I420 then the alpha plane
        n = rgb.shape[0] * rgb.shape[1]
        got, plane = got[:-n].reshape(-1, rgb.shape[1]), got[-n:].reshape(rgb.shape[:2])
        assert (plane == rgb[..., 3]).all()
        rgb = np.ascontiguousarray(rgb[..., :3])
    want = compose.to_i420(rgb)
    y, u, v = compose.planes(got)
    wy, wu, wv = compose.planes(want)
    assert np.abs(y.astype(int) - wy).max() <= 1
    assert max(np.abs(u.astype(int) - wu).max(), np.abs(v.astype(int) - wv).max()) <= 1
