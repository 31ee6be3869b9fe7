"""Pure functions from (frame, alpha) to the picture the user asked for.

    >>> import numpy as np
    >>> from app import compose
    >>> from app.options import RenderOptions
    >>> frame = np.zeros((4, 4, 3), np.uint8); alpha = np.ones((4, 4), np.float32)
    >>> render = compose.renderer(RenderOptions(mode="cutout", background=(0, 255, 0)), 4, 4, "png")
    >>> render(frame, alpha).shape
    (4, 4, 3)

`frame` is uint8 RGB (H, W, 3). `alpha` is float in [0, 1] or uint8 in [0, 255], shape (H, W); 1 = person.
Blending is out = round(fg * a + bg * (1 - a)) with a in [0, 1] (uint8 alpha is divided by 255), computed by
OpenCV's fused cv2.blendLinear straight from the float matte: no rounding to 8 bits and back on the way.
A solid colour may be given as an (H, W, 3) image of it, prepared once per clip: cheaper than per frame.

The output modes are one table, `MODES`, at the end: every path (a photo's RGB, a clip's RGB or its own I420,
the one-pass kernel of app.fused) is chosen from it by `renderer`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from app.options import ALPHA_FORMATS, YUV_FORMATS
from model.focus import box_pixels

if TYPE_CHECKING:
    from app.options import RenderOptions
    from app.video_io import Backdrop
    from model.matte import Frame
    from model.refine import Matte

Colour = tuple[int, int, int]


def alpha8(alpha: np.ndarray) -> np.ndarray:
    """Alpha as uint8 0..255 (float alpha is rounded to the nearest level)."""
    if alpha.dtype == np.uint8:
        return alpha
    return np.rint(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)


def weight(alpha: np.ndarray) -> np.ndarray:
    """Alpha as float32 in [0, 1]."""
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) * np.float32(1 / 255)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)


def blend(fg: np.ndarray, bg: np.ndarray | Colour, w: np.ndarray) -> np.ndarray:
    """fg where w is 1, bg where it is 0: RGB images (or one-channel planes) and a float32 weight."""
    if not isinstance(bg, np.ndarray) or bg.shape != fg.shape:
        bg = np.ascontiguousarray(np.broadcast_to(np.asarray(bg, np.uint8), fg.shape))
    # OpenCV's fused kernel: ~6x faster than the same sum in numpy temporaries at 1080x1920 (6 vs 36 ms).
    return cv2.blendLinear(np.ascontiguousarray(fg), bg, w, 1.0 - w)


def rgba(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The frame's colours with alpha as the fourth channel."""
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


def fit_cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale `image` to cover (height, width) keeping its aspect, then centre-crop: no bars, no squashing."""
    ih, iw = image.shape[:2]
    scale = max(height / ih, width / iw)
    nh, nw = max(height, round(ih * scale)), max(width, round(iw * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


# ---------------------------------------------------------------- YUV 4:2:0 (I420), for video
# The video encoders take YUV 4:2:0, and most clips are decoded from it. RGB -> YUV is affine, so blending in
# YUV is blending in RGB (the chroma planes with the matte at their resolution): the same picture from half the
# values of an RGB blend, and no colour conversion of the result. An I420 frame is OpenCV's layout: a
# (H * 3 / 2, W) uint8 array holding the Y plane, then U, then V; H and W even. `matrix` is the clip's YUV
# matrix, BT.601 or BT.709, both limited range (16-235), which the video writer then declares in the file.

MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}      # (Kr, Kb) of each matrix


@functools.cache
def _rgb_to_yuv(matrix: str) -> tuple[np.ndarray, np.ndarray]:
    """(3x3 matrix, offset) turning 0..255 RGB into limited-range Y, U, V (computed once per matrix)."""
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    luma = np.array([kr, kg, kb])
    m = np.stack([luma * 219 / 255,
                  (np.array([0, 0, 1]) - luma) * 224 / 255 / (2 * (1 - kb)),
                  (np.array([1, 0, 0]) - luma) * 224 / 255 / (2 * (1 - kr))])
    return m, np.array([16.0, 128.0, 128.0])


@functools.cache
def _yuv_to_rgb_transform(matrix: str) -> np.ndarray:
    """3x4 matrix for cv2.transform: a (Y, U, V) pixel to RGB (computed once per matrix: used on every frame)."""
    m, off = _rgb_to_yuv(matrix)
    inv = np.linalg.inv(m)
    return np.hstack([inv, (-inv @ off)[:, None]]).astype(np.float32)


def to_i420(rgb: np.ndarray, matrix: str = "bt601") -> np.ndarray:
    """(H, W, 3) RGB with even H, W -> I420. Chroma is taken from the top-left pixel of each 2x2 block, as
    OpenCV's BT.601 conversion (used for "bt601") does."""
    if matrix == "bt601":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    m, off = _rgb_to_yuv(matrix)
    y = cv2.transform(rgb, np.hstack([m[:1], off[:1, None]]).astype(np.float32))
    uv = cv2.transform(np.ascontiguousarray(rgb[::2, ::2]), np.hstack([m[1:], off[1:, None]]).astype(np.float32))
    return join_planes(y, uv[..., 0], uv[..., 1])


def i420_to_rgb(i420: np.ndarray, matrix: str = "bt601") -> np.ndarray:
    """The RGB picture an I420 frame holds: each chroma sample shared by its 2x2 block."""
    y, u, v = planes(i420)
    h, w = y.shape
    return cv2.transform(cv2.merge([y] + [cv2.resize(p, (w, h), interpolation=cv2.INTER_NEAREST) for p in (u, v)]),
                         _yuv_to_rgb_transform(matrix))


def planes(i420: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H, W), U and V (H/2, W/2) planes of an I420 frame."""
    h, w = i420.shape[0] * 2 // 3, i420.shape[1]
    flat = i420.reshape(-1)
    q = h * w // 4
    return flat[:h * w].reshape(h, w), flat[h * w:h * w + q].reshape(h // 2, w // 2), \
        flat[h * w + q:].reshape(h // 2, w // 2)


def join_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The I420 frame holding these planes."""
    return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(-1, y.shape[1])


def shrink_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """One channel at (height, width), area-averaged when shrinking. OpenCV's area resize is fast only for
    whole-number factors: by 2.5 (a 1080x1920 frame's chroma planes to 216x384) it costs as much as by 5 on the
    luma plane, four times the pixels. So a fractional factor above 2 is done as a bilinear resize to twice the
    target, then an exact area halving: within a level or two of the exact area result, at a third of the cost."""
    ph, pw = plane.shape[:2]
    if ph <= height or pw <= width:
        return cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
    if (ph % height or pw % width) and ph >= 2 * height and pw >= 2 * width:
        plane = cv2.resize(plane, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA)


def shrink_i420(i420: np.ndarray, height: int, width: int, matrix: str = "bt601") -> tuple[np.ndarray, np.ndarray]:
    """An I420 frame at (height, width), as (RGB, luma): what the network sees, and its brightness for the
    optical flow and the edge guide. Each plane is shrunk on its own and only the small result converted, a
    fraction of the cost of converting the whole frame to RGB first."""
    y, u, v = planes(i420)
    ys = shrink_plane(y, height, width)
    yuv = cv2.merge([ys, shrink_plane(u, height, width), shrink_plane(v, height, width)])
    return cv2.transform(yuv, _yuv_to_rgb_transform(matrix)), ys


def crop_i420(i420: np.ndarray, box: tuple[float, float, float, float], height: int, width: int,
              matrix: str = "bt601") -> np.ndarray:
    """RGB of a fractional box (top, bottom, left, right) of an I420 frame at (height, width): the person-focused
    second pass's closer look (model.focus), cut from the full-size planes."""
    y, u, v = planes(i420)
    t, b, l, r = box_pixels(box, y.shape[0], y.shape[1], even=True)
    yuv = cv2.merge([shrink_plane(y[t:b, l:r], height, width),
                     shrink_plane(u[t // 2:b // 2, l // 2:r // 2], height, width),
                     shrink_plane(v[t // 2:b // 2, l // 2:r // 2], height, width)])
    return cv2.transform(yuv, _yuv_to_rgb_transform(matrix))


def blurred_i420(i420: np.ndarray, sigma: float) -> np.ndarray:
    """`blurred` for an I420 frame: each plane blurred at its own resolution."""
    y, u, v = planes(i420)
    return join_planes(blurred(y, sigma), blurred(u, sigma / 2), blurred(v, sigma / 2))


def blend_i420(fg: np.ndarray, bg: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`blend` for I420 frames: w (H, W) weighs luma, and its top-left pixel of each 2x2 block the chroma,
    the very pixel OpenCV's RGB -> I420 takes chroma from: so the result is to_i420 of the RGB blend."""
    out = np.empty_like(fg)
    y, u, v = planes(out)
    fy, fu, fv = planes(fg)
    by, bu, bv = planes(bg)
    cv2.blendLinear(fy, by, w, 1.0 - w, dst=y)
    half = np.ascontiguousarray(w[::2, ::2])
    rest = 1.0 - half
    cv2.blendLinear(fu, bu, half, rest, dst=u)
    cv2.blendLinear(fv, bv, half, rest, dst=v)
    return out


def hstack_i420(frames: list[np.ndarray]) -> np.ndarray:
    """I420 frames of one height side by side."""
    parts = [planes(f) for f in frames]
    return join_planes(*(np.concatenate([p[i] for p in parts], axis=1) for i in range(3)))


# ---------------------------------------------------------------- the output modes, one table
# Each mode is one blend, `fg` over `bg` weighted per pixel by w0 + w1 * alpha, of layers made in the output's
# colours (RGB, or I420 for MP4/WebM); `panels` make a mode of other modes' pictures side by side instead, and
# `keeps_alpha` a mode that, where the format holds transparency, is the frame itself with the matte as its alpha.

@dataclasses.dataclass(frozen=True)
class Mode:
    fg: str = "frame"       # layers: "frame", a solid ("white", "black", "colour": options.background, "tint"),
    bg: str = "colour"      # "blurred" (the frame's own), "picture" (options.background_image), "checkerboard"
    weights: Callable[["RenderOptions"], tuple[float, float]] = lambda options: (0.0, 1.0)     # (w0, w1)
    keeps_alpha: bool = False
    panels: tuple[str | None, ...] = ()     # other modes, side by side (None: the frame as it is)


MODES: dict[str, Mode] = {
    "mask": Mode(fg="white", bg="black"),
    "overlay": Mode(bg="tint", weights=lambda options: (1.0, -options.opacity)),   # tinted at `opacity` where 1
    "cutout": Mode(bg="colour"),
    "transparent": Mode(bg="checkerboard", keeps_alpha=True),
    "blur": Mode(bg="blurred"),
    "replace": Mode(bg="picture"),
    "collage": Mode(panels=(None, "mask", "cutout")),
}


@dataclasses.dataclass(frozen=True)
class Blend:
    """fg(frame) over bg(frame), weighted per pixel by w0 + w1 * alpha: RGB images, or I420 (`i420`)."""

    fg: Callable[[np.ndarray], np.ndarray]
    bg: Callable[[np.ndarray], np.ndarray]
    w0: float
    w1: float
    i420: bool

    def apply(self, frame: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The blend, given `weight(alpha)`."""
        w = w if (self.w0, self.w1) == (0.0, 1.0) else self.w0 + self.w1 * w
        return (blend_i420 if self.i420 else blend)(self.fg(frame), self.bg(frame), w)

    def __call__(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        return self.apply(frame, weight(alpha))

    def fused(self, frame: np.ndarray, luma: np.ndarray, matte: "Matte") -> np.ndarray:
        """The same picture from the matte still at low resolution: enlarged and applied in the blend's own pass
        over the I420 frame (app.fused), a fifth of the step-by-step cost on a 1080x1920 frame."""
        from app.fused import matte_blend_i420     # numba: loaded by the first clip that needs it

        return matte_blend_i420(matte, luma, self.fg(frame), self.bg(frame), self.w0, self.w1)


@dataclasses.dataclass(frozen=True)
class Render:
    """One job's output mode, made once per clip or photo by `renderer`: (frame, alpha) -> the output frame."""

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    size: tuple[int, int]                   # (height, width) of the frames it gives
    alpha: bool                             # they carry alpha: RGBA, or the I420 frame then an alpha plane
    notes: tuple[str, ...] = ()             # for the user
    blend: Blend | None = None              # the mode as one blend over the clip's own I420: app.fused serves it
    backdrop: "Backdrop | None" = dataclasses.field(default=None, repr=False)     # "picture": closed with it

    def __call__(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        return self.fn(frame, alpha)

    @property
    def fused(self) -> bool:
        return self.blend is not None

    def with_matte(self, frame: "Frame", matte: "Matte") -> np.ndarray:
        """The output frame of a frame and its matte from a matte stream (model.matte), the matte still at low
        resolution: enlarged in the blend's own pass where the mode allows (`fused`), else first made full size."""
        if self.blend is not None:
            return self.blend.fused(frame.image, frame.guide, matte)
        return self.fn(frame.image, matte.alpha(frame.guide))

    def close(self) -> None:
        """Stop a background clip's decoder (at the end of the job, or when it fails)."""
        if self.backdrop is not None:
            self.backdrop.close()


def renderer(options: "RenderOptions", height: int, width: int, fmt: str, *, source: str = "rgb",
             matrix: str = "bt601", backdrop: Callable[[], "Backdrop"] | None = None) -> Render:
    """The Render of `options.mode` (MODES) for (height, width) frames saved as `fmt`.

    Frames come in as RGB, or (`source="i420"`, MP4/WebM only) as the clip's own decoded I420 in `matrix`.
    Photos, GIFs, MOVs and ZIPs come out as RGB(A); MP4 and WebM as I420, what their encoders take: composing in
    YUV is the same picture for a third of the work, and saves converting every result. `backdrop` opens the
    picture or clip of the "picture" layer (app.video_io.open_backdrop), when the mode has one."""
    yuv = fmt in YUV_FORMATS
    if source == "i420" and not (yuv and height % 2 == 0 and width % 2 == 0):
        raise ValueError("I420 frames need an even size and an MP4 or WebM output")
    if yuv and (height % 2 or width % 2):      # 4:2:0 needs even sizes: repeat the last row / column
        inner = renderer(options, height + height % 2, width + width % 2, fmt, matrix=matrix, backdrop=backdrop)
        pad = ((0, height % 2), (0, width % 2))
        return dataclasses.replace(inner, fn=lambda f, a: inner.fn(np.pad(f, pad + ((0, 0),), mode="edge"),
                                                                   np.pad(a, pad, mode="edge")))
    conv = (lambda rgb: to_i420(rgb, matrix)) if yuv else np.asarray       # an RGB picture in the output's colours
    frame = np.asarray if source == "i420" or not yuv else conv             # the frame in the output's colours
    opened: Backdrop | None = None

    def layer(name: str) -> Callable[[np.ndarray], np.ndarray]:
        """frame -> the layer in the output's colours; pictures that do not change are made once per job."""
        nonlocal opened
        if name == "frame":
            return frame
        if name == "blurred":
            sigma = options.blur_sigma or max(2.0, min(height, width) / 40)
            if source == "i420":
                return lambda f: blurred_i420(f, sigma)
            return lambda f: conv(blurred(f, sigma))
        if name == "picture":
            if backdrop is None:
                raise ValueError(f"mode {options.mode} needs a backdrop to open its picture")
            clip = opened = opened or backdrop()
            if clip.still is not None:
                picture = conv(fit_cover(clip.still, height, width))
                return lambda f: picture
            return lambda f: conv(fit_cover(clip.next(), height, width))
        if name == "checkerboard":
            picture = conv(checkerboard(height, width))
        else:
            colour = {"white": (255, 255, 255), "black": (0, 0, 0), "colour": options.background,
                      "tint": options.tint}[name]
            picture = conv(np.full((height, width, 3), colour, np.uint8))
        return lambda f: picture

    def one_blend(mode: Mode) -> Blend:
        return Blend(layer(mode.fg), layer(mode.bg), *mode.weights(options), yuv)

    mode, notes, fused = MODES[options.mode], [], None
    with_alpha = mode.keeps_alpha and fmt in ALPHA_FORMATS
    if mode.panels:
        panels = [None if p is None else one_blend(MODES[p]) for p in mode.panels]
        stack = hstack_i420 if yuv else (lambda parts: np.concatenate(parts, axis=1))

        def fn(f, a):
            w = weight(a)
            return stack([frame(f) if p is None else p.apply(f, w) for p in panels])
    elif with_alpha:
        if yuv:    # yuva420p: the I420 frame, then the alpha plane
            fn = lambda f, a: np.concatenate([frame(f).reshape(-1), alpha8(a).reshape(-1)])  # noqa: E731
        else:
            fn = rgba
    else:
        if mode.keeps_alpha:
            notes.append(f"{fmt.upper()} cannot store transparency, so the background is drawn as a checkerboard; "
                         "choose MOV (ProRes 4444), WebM, a ZIP of PNGs, GIF or PNG for a truly transparent file")
        fn = one_blend(mode)
        fused = fn if source == "i420" else None      # the clip's own I420: app.fused can serve it
    return Render(fn, (height, width * max(1, len(mode.panels))), with_alpha, tuple(notes), fused, opened)
