"""Compositing, checked on tiny arrays at alpha 0, 1 and 0.5: exact at 0 and 1, correctly rounded between. Every
mode is tested through the one table (compose.MODES) and every path it is rendered by: a photo's RGB, a clip's RGB
or its own I420, and the one-pass kernel of app.fused; a new mode in the table is covered by the same tests."""

import cv2
import numpy as np
import pytest

from app import compose
from app.options import MODES, Limits, RenderOptions
from app.video_io import open_backdrop

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


def renderer(options: RenderOptions, h: int, w: int, fmt: str, **kwargs) -> compose.Render:
    """compose.renderer, opening mode replace's picture as the pipeline does."""
    return compose.renderer(options, h, w, fmt, backdrop=lambda: open_backdrop(options.background_image, Limits()),
                            **kwargs)


def render(mode: str, f: np.ndarray, a: np.ndarray, **options) -> np.ndarray:
    """A photo's picture in `mode` (RGB, or RGBA for transparent)."""
    return renderer(RenderOptions(mode=mode, **options), *f.shape[:2], "png")(f, a)


def test_the_table_has_every_mode_a_user_can_choose():
    assert tuple(compose.MODES) == MODES


@pytest.mark.parametrize("a, expected", [
    (0.0, (0, 0, 0)), (1.0, (255, 255, 255)), (0.5, (HALF(255, 0),) * 3),
])
def test_mask(a, expected):
    out = render("mask", frame(), alpha(a))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert same(out, expected)


@pytest.mark.parametrize("colour, a, expected", [
    ((255, 255, 255), 1.0, FG),
    ((255, 255, 255), 0.0, (255, 255, 255)),
    ((0, 255, 0), 0.0, (0, 255, 0)),
    ((255, 255, 255), 0.5, tuple(HALF(f, 255) for f in FG)),
    ((0, 0, 0), 0.5, tuple(HALF(f, 0) for f in FG)),
])
def test_cutout(colour, a, expected):
    assert same(render("cutout", frame(), alpha(a), background=colour), expected)


@pytest.mark.parametrize("a, opacity, expected", [
    (0.0, 0.5, FG),                                  # background untouched
    (1.0, 1.0, (255, 0, 0)),                         # full tint
    (1.0, 0.5, (HALF(255, 200), HALF(0, 100), HALF(0, 50))),
    (0.5, 1.0, (HALF(255, 200), HALF(0, 100), HALF(0, 50))),
])
def test_overlay(a, opacity, expected):
    assert same(render("overlay", frame(), alpha(a), tint=(255, 0, 0), opacity=opacity), expected)


@pytest.mark.parametrize("a, level", [(0.0, 0), (1.0, 255), (0.5, 128)])
def test_transparent(a, level):
    out = render("transparent", frame(), alpha(a))
    assert out.shape == (2, 3, 4)
    assert (out[..., :3] == FG).all() and (out[..., 3] == level).all()


def test_uint8_alpha_is_taken_as_is():
    a8 = np.array([[0, 128, 255]], np.uint8)
    out = render("cutout", frame(h=1), a8, background=(0, 0, 0))
    assert same(out[0, :, 0], [0, 200 * 128 / 255, 200])


@pytest.mark.parametrize("a", [0.0, 1.0, 0.5])
def test_blur_flat_frame(a):
    # A flat frame blurs to itself, so every alpha gives the frame back exactly.
    f = frame(h=40, w=30)
    assert (render("blur", f, alpha(a, 40, 30), blur_sigma=8) == f).all()


def test_blur_person_sharp_background_soft():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a = np.zeros((64, 64), np.float32)
    a[:, :32] = 1
    out = render("blur", f, a, blur_sigma=6)
    assert (out[:, :32] == f[:, :32]).all()                     # the person is untouched
    assert out[:, 40:].std() < f[:, 40:].std() / 3              # the background lost its detail


def _picture(path, rgb, h=2, w=3):
    from PIL import Image

    Image.fromarray(frame(rgb, h, w)).save(path)
    return str(path)


@pytest.mark.parametrize("a", [0.0, 1.0, 0.5])
def test_replace(a, tmp_path):
    out = render("replace", frame(), alpha(a), background_image=_picture(tmp_path / "bg.png", (10, 20, 30)))
    expected = {0.0: (10, 20, 30), 1.0: FG, 0.5: tuple(HALF(f, b) for f, b in zip(FG, (10, 20, 30)))}[a]
    assert same(out, expected)


def test_replace_fits_a_picture_of_another_size(tmp_path):
    out = render("replace", frame(), alpha(0.0), background_image=_picture(tmp_path / "bg.png", (10, 20, 30), 5, 9))
    assert out.shape == (2, 3, 3) and (out == (10, 20, 30)).all()


@pytest.mark.parametrize("a", [0.0, 1.0, 0.5])
def test_collage(a):
    f = frame()
    out = render("collage", f, alpha(a), background=(255, 255, 255))
    assert out.shape == (2, 9, 3)
    assert (out[:, :3] == f).all()
    assert (out[:, 3:6] == render("mask", f, alpha(a))).all()
    assert (out[:, 6:] == render("cutout", f, alpha(a), background=(255, 255, 255))).all()


def test_fit_cover_fills_without_squashing():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255                                      # a white centre square
    out = compose.fit_cover(img, 50, 50)
    assert out.shape == (50, 50, 3)
    assert (out == 255).all()                                 # centre crop of the square, no stretched edges


def test_checkerboard():
    board = compose.checkerboard(32, 32, cell=16)
    assert board[0, 0, 0] == 255 and board[0, 16, 0] == 204 and board[16, 16, 0] == 255


@pytest.mark.parametrize("mode", list(compose.MODES))
@pytest.mark.parametrize("h, w", [(48, 32), (47, 33)])
def test_video_frames_are_composed_in_yuv_as_the_rgb_picture_would_be(mode, h, w, tmp_path):
    """MP4/WebM frames are composed directly in I420: they must be the RGB composition, converted."""
    from PIL import Image

    rng = np.random.default_rng(0)
    f = np.clip(rng.normal(120, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip((xx - w / 4) / 12, 0, 1).astype(np.float32) * (yy % 3 > 0)   # soft edges, and hard ones
    Image.fromarray(np.full((20, 30, 3), (30, 160, 90), np.uint8)).save(tmp_path / "bg.png")
    options = RenderOptions(mode=mode, background=(20, 40, 200), background_image=str(tmp_path / "bg.png"))
    fmt = "webm" if compose.MODES[mode].keeps_alpha else "mp4"
    rgb_fn = renderer(options, h, w, "png")
    yuv_fn = renderer(options, h, w, fmt)
    (out_h, out_w), alpha = yuv_fn.size, yuv_fn.alpha
    got = yuv_fn(f, a)
    assert got.size == out_h * out_w * (5 if alpha else 3) // 2       # what the writer expects
    if h % 2 and (compose.MODES[mode].bg == "blurred" or compose.MODES[mode].panels):
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


@pytest.mark.parametrize("mode", list(compose.MODES))
@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_a_clips_own_yuv_frames_compose_as_its_rgb_frames_would(mode, matrix, tmp_path):
    """Decoded I420 frames are composed as they are (no RGB round trip): the result must be the RGB composition
    of the same picture, in the clip's own matrix."""
    from PIL import Image

    h, w = 48, 64
    rng = np.random.default_rng(1)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    i420 = compose.to_i420(rgb, matrix)
    # The picture the clip holds is what its YUV decodes to (chroma shared by each 2x2 block).
    rgb = compose.i420_to_rgb(i420, matrix)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip((xx - w / 4) / 12, 0, 1).astype(np.float32) * (yy % 3 > 0)
    Image.fromarray(np.full((20, 30, 3), (30, 160, 90), np.uint8)).save(tmp_path / "bg.png")
    options = RenderOptions(mode=mode, background=(20, 40, 200), background_image=str(tmp_path / "bg.png"))
    fmt = "webm" if compose.MODES[mode].keeps_alpha else "mp4"
    render = renderer(options, h, w, fmt, source="i420", matrix=matrix)
    got, want_rgb = render(i420, a), renderer(options, h, w, "png")(rgb, a)
    if render.alpha:
        n = h * w
        assert (got[-n:].reshape(h, w) == want_rgb[..., 3]).all()
        got, want_rgb = got[:-n].reshape(-1, w), np.ascontiguousarray(want_rgb[..., :3])
    want = compose.to_i420(want_rgb, matrix)
    tol = 6 if compose.MODES[mode].bg == "blurred" else 3   # the blur runs on each plane at its own size; else YUV rounding
    assert np.abs(got.astype(int) - want).max() <= tol


@pytest.mark.parametrize("matrix,size", [("bt601", (120, 80)), ("bt709", (120, 80)), ("bt709", (192, 128)),
                                         ("bt601", (96, 64))])
def test_the_networks_copy_of_a_yuv_frame_is_the_shrunk_picture(matrix, size):
    """shrink_i420 (planes shrunk, then converted) gives what shrinking the RGB picture gives, and its luma;
    at whole-number factors (480x320 to 120x80), 2.5 for luma (to 192x128) and 2.5 for chroma (to 96x64)."""
    rng = np.random.default_rng(2)
    rgb = cv2.resize(rng.integers(0, 256, (24, 16, 3), dtype=np.uint8), (320, 480), interpolation=cv2.INTER_CUBIC)
    i420 = compose.to_i420(rgb, matrix)
    small, luma = compose.shrink_i420(i420, *size, matrix)
    y, u, v = compose.planes(i420)     # the picture the frame holds: its chroma shared by each 2x2 block
    held = compose.i420_to_rgb(i420, matrix)
    want = cv2.resize(held, size[::-1], interpolation=cv2.INTER_AREA).astype(int)
    assert small.shape == (*size, 3) and luma.shape == size
    assert np.abs(small.astype(int) - want).mean() < 1.0 and np.abs(small.astype(int) - want).max() <= 8
    kr, kb = compose.MATRICES[matrix]
    grey = want @ np.array([kr, 1 - kr - kb, kb])
    assert np.abs(luma - (16 + grey * 219 / 255)).max() <= 3


def test_bt709_conversion_matches_the_standard():
    """Pure colours against the BT.709 limited-range values (ITU-R BT.709, 8 bit)."""
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    rgb = np.repeat(np.repeat(colours, 2, axis=0), 2, axis=1)      # 2x2 blocks: one chroma sample each
    y, u, v = compose.planes(compose.to_i420(rgb, "bt709"))
    assert list(y[0, ::2]) == [235, 16, 63, 173, 32]
    assert list(u[0]) == [128, 128, 102, 42, 240]
    assert list(v[0]) == [128, 128, 240, 26, 118]


@pytest.mark.parametrize("mode", list(compose.MODES))
@pytest.mark.parametrize("size, low, refine", [
    ((1108, 692), (384, 240), {}),                                   # a phone clip at the balanced preset
    ((96, 64), (48, 32), {"edges": "bilinear", "temporal": 0.0}),
    ((480, 270), (160, 90), {"threshold": 0.5, "feather": 2.0}),
    ((240, 136), (120, 68), {"levels": (0.0, 1.0)}),
], ids=["guided", "bilinear", "threshold", "levels-off"])
def test_the_one_pass_matte_and_blend_is_the_step_by_step_picture(mode, size, low, refine, tmp_path):
    """app.fused enlarges the matte and blends in one pass: the same picture as Refiner + render, within 1 level.
    Every mode that is one blend (all but side-by-side panels) is served by it on a clip's own I420."""
    from PIL import Image

    from model.refine import Refiner, RefineOptions

    (h, w), (lh, lw) = size, low
    rng = np.random.default_rng(3)
    Image.fromarray(np.full((20, 30, 3), (30, 160, 90), np.uint8)).save(tmp_path / "bg.png")
    options = RenderOptions(mode=mode, background_image=str(tmp_path / "bg.png"), opacity=0.6)
    render = renderer(options, h, w, "mp4", source="i420")
    assert render.fused == (not compose.MODES[mode].panels)
    if not render.fused:
        return
    opts = RefineOptions(**refine)
    step, one = Refiner(opts), Refiner(opts)
    for i in range(3):                      # several frames: the temporal smoothing's memory is used too
        rgb = cv2.resize(rng.integers(0, 256, (8, 6, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        frame = compose.to_i420(rgb)
        luma = compose.planes(frame)[0]
        prob = cv2.GaussianBlur(rng.random((lh, lw), dtype=np.float32), (0, 0), 2)
        grey = cv2.resize(luma, (lw, lh), interpolation=cv2.INTER_AREA).astype(np.float32)
        want = render(frame, step(luma, prob, grey))
        got = render.blend.fused(frame, luma, one.matte(luma, prob, grey))
        diff = np.abs(got.astype(int) - want)
        if opts.threshold is None:
            assert diff.max() <= 1, (i, diff.max())
        else:                               # an alpha within float rounding of the threshold may fall either side
            assert (diff > 1).mean() < 1e-3, (i, (diff > 1).mean())
