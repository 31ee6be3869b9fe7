"""What a user can ask for, validated once: render options, output formats and input limits.

    >>> from app.options import RenderOptions, parse_colour
    >>> RenderOptions(mode="cutout", background=parse_colour("#00ff00"))

Every mistake a user can make surfaces as `InputError`, whose message is one sentence meant for a person;
the CLI prints it and the UI shows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageColor

from model import settings
from model.refine import RefineOptions


class InputError(ValueError):
    """A problem with what the user gave us (file, option, limit), worded for that user."""


MODES = ("mask", "overlay", "cutout", "transparent", "blur", "replace", "collage")
VIDEO_FORMATS = ("mp4", "gif", "webm", "mov", "zip")     # mov: ProRes for editors; zip: numbered PNGs
IMAGE_FORMATS = ("png", "jpg", "webp")
# Formats that can carry an alpha channel; elsewhere "transparent" is shown over a checkerboard.
ALPHA_FORMATS = ("gif", "webm", "mov", "zip", "png", "webp")
YUV_FORMATS = ("mp4", "webm")       # composed in YUV 4:2:0 (I420), what their encoders take (app.compose)
_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".gif": "gif", ".webm": "webm", ".mov": "mov", ".zip": "zip",
             ".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Preset:
    """A speed/quality trade-off, passed whole to what needs it: the network's frame size (pipeline.load_segmenter,
    pipeline.at_preset), and the keyframe interval and second pass of a job (RenderOptions.preset). A person's own
    choice of one part is the preset with that part replaced: dataclasses.replace(PRESETS["fast"], focus=True)."""

    scale: float            # factor on the model's own inference size (the long side fed to the network)
    keyframe_every: int     # the network runs on every k-th video frame; the matte is carried between
    focus: bool = True      # the person-focused second pass (model.focus) when people are small in the frame

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise InputError(f"a preset's scale must be above 0, got {self.scale}")
        if not 1 <= self.keyframe_every <= 8:
            raise InputError(f"the keyframe interval must be from 1 to 8, got {self.keyframe_every}")

    def infer_size(self, base: int) -> int:
        """The inference size for a model trained at `base` (a multiple of 32, at least 64)."""
        return max(64, round(base * self.scale / 32) * 32)


# Speed/quality presets, chosen by measurement (README, "Speed"): see bench/ and train.evaluate --every.
PRESETS = {"fast": Preset(1.0, 4, focus=False), "balanced": Preset(1.2, 3), "quality": Preset(1.4, 1)}
DEFAULT_PRESET = "balanced"     # what the CLI, the web app and the Python defaults (load_segmenter, RenderOptions) use


def parse_colour(text: str) -> Colour:
    """'white', '#ff8800', 'rgb(0,255,0)' or '0,255,0' -> (r, g, b)."""
    text = text.strip()
    try:
        if "," in text and not text.startswith("rgb"):
            parts = tuple(int(p) for p in text.split(","))
            if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
                raise ValueError
            return parts  # type: ignore[return-value]
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise InputError(f"'{text}' is not a colour: use a name like white, a hex code like #00ff00, "
                         "or three numbers like 0,255,0") from None


def format_from_path(path: str | os.PathLike) -> str:
    """The output format that a file name asks for, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(f"cannot tell the output format from '{Path(path).name}': "
                         f"use one of {', '.join(sorted(_SUFFIXES))} or pass --format")
    return _SUFFIXES[suffix]


@dataclass(frozen=True)
class RenderOptions:
    """How to turn a frame and its alpha into the output frame."""

    mode: str = "cutout"
    background: Colour = (255, 255, 255)       # cutout colour
    background_image: str | None = None       # for mode "replace": a picture, or a clip played behind the dancer
    background_name: str | None = None        # what messages call it (the web page saves it under a random name)
    tint: Colour = (255, 0, 0)                # overlay colour (the original project's red highlight)
    opacity: float = 0.5                      # overlay strength
    blur_sigma: float = 0.0                   # background blur; 0 = automatic (short side / 40)
    batch_size: int = 4
    preset: Preset = PRESETS[DEFAULT_PRESET]  # keyframe interval and second pass (its size is the segmenter's)
    crf: int = 20                             # H.264 quality (lower is better, 18-23 is visually clean)
    gif_fps: float = 15.0
    gif_long_side: int = 480
    refine: RefineOptions = RefineOptions()   # temporal smoothing, clean-up, edges (model/refine.py)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown mode '{self.mode}': choose one of {', '.join(MODES)}")
        if self.mode == "replace" and not self.background_image:
            raise InputError("mode 'replace' needs a background image")
        if self.background_image and not Path(self.background_image).is_file():
            raise InputError(f"background image not found: {self.background_image}")
        for name in ("background", "tint"):
            value = getattr(self, name)
            if len(value) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in value):
                raise InputError(f"{name} must be three numbers from 0 to 255, got {value}")
        if not 0.0 <= self.opacity <= 1.0:
            raise InputError(f"opacity must be between 0 and 1, got {self.opacity}")
        if self.blur_sigma < 0:
            raise InputError("blur strength cannot be negative")
        if not 1 <= self.batch_size <= 64:
            raise InputError(f"batch size must be from 1 to 64, got {self.batch_size}")
        if not 0 <= self.crf <= 51:
            raise InputError(f"crf must be from 0 to 51, got {self.crf}")
        if not 1 <= self.gif_fps <= 50 or self.gif_long_side < 16:
            raise InputError("GIF frame rate must be 1-50 and its size at least 16 pixels")


@dataclass(frozen=True)
class Limits:
    """What the engine accepts. The defaults suit a desktop; the web app may set tighter ones."""

    max_duration_s: float = 600.0
    max_frames: int = 36_000
    max_side: int = 4096            # longest side of a frame, pixels
    max_image_pixels: int = 50_000_000

    @classmethod
    def from_env(cls) -> "Limits":
        """Limits overridden by SEGMENT_MAX_DURATION_S, SEGMENT_MAX_FRAMES, SEGMENT_MAX_SIDE, ... (model.settings)."""
        return cls(**settings.limit_overrides())
