"""The README's animated before/after: the public-domain clip (tests/licensed_media.py) and the app's own cutout of
it, a line wiping from one to the other and back, as a small looping animated WebP (a GIF of the same frames
is 2-3 times larger: every frame of the zoom differs, and a palette of 256 colours dithers the photo).

    python -m tests.readme_pictures docs/before-after.webp       # part of `make screenshots`
    SEGMENT_WEIGHTS=runs/mine/best.safetensors python -m tests.readme_pictures /tmp/mine.webp

The "after" frames are the app's output for `--mode cutout` (RGB PNGs in a ZIP, so nothing is lost before the
WebP), by SEGMENT_WEIGHTS or the shipped model at the default preset; nothing is retouched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.options import RenderOptions
from app.pipeline import DEFAULT_WEIGHTS, load_segmenter, segment_video
from app.video_io import ffmpeg_exe
from tests.licensed_media import astronaut_clip
from tests.ui_helpers import zip_frames

BACKGROUND = (37, 244, 238)     # the cutout's colour: TikTok's cyan, far from the orange suit
SIZE = 360                      # px, square
FPS = 15


def read_video(path: Path, size: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)


def label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font, anchor: str) -> None:
    box = draw.textbbox(xy, text, font=font, anchor=anchor)
    draw.rounded_rectangle((box[0] - 8, box[1] - 5, box[2] + 8, box[3] + 5), radius=8, fill=(0, 0, 0, 150))
    draw.text(xy, text, font=font, anchor=anchor, fill=(255, 255, 255, 255))


def wipe_frames(before: np.ndarray, after: np.ndarray) -> list[Image.Image]:
    """Boomerang through the clip (it loops without a jump); the line sweeps to "after" on the way out and back
    on the way home, with a pause at each end (the longest on "after")."""
    n = len(before)
    order = list(range(n)) + list(range(n - 1, -1, -1))
    font = ImageFont.load_default(size=20)
    out = []
    for k, i in enumerate(order):
        t = k / (len(order) - 1)
        # 0 -> 1 over the first half (after a pause), 1 -> 0 over the second: the share of the frame that is "after"
        phase = min(1.0, max(0.0, (t - 0.08) / 0.3)) if t < 0.5 else min(1.0, max(0.0, (0.92 - t) / 0.3))
        share = phase * phase * (3 - 2 * phase)
        x = round(share * SIZE)
        frame = before[i].copy()
        frame[:, :x] = after[i][:, :x]
        im = Image.fromarray(frame).convert("RGBA")
        overlay = Image.new("RGBA", im.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        if 0 < x < SIZE:
            draw.rectangle((x - 1, 0, x + 1, SIZE), fill=(255, 255, 255, 255))
        if x < SIZE - 70:
            label(draw, (SIZE - 12, 14), "Before", font, "ra")
        if x > 70:
            label(draw, (12, 14), "After", font, "la")
        out.append(Image.alpha_composite(im, overlay).convert("RGB"))
    return out


def write_webp(frames: list[Image.Image], dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".partial.webp")
    frames[0].save(tmp, format="WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / FPS), loop=0,
                   quality=80, method=6)
    os.replace(tmp, dst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/before-after.webp"))
    parser.add_argument("--seconds", type=float, default=1.2, help="of the clip; the loop is twice this")
    args = parser.parse_args()
    weights = os.environ.get("SEGMENT_WEIGHTS") or str(DEFAULT_WEIGHTS)
    with tempfile.TemporaryDirectory() as tmp:
        clip = astronaut_clip(Path(tmp) / "astronaut.mp4", size=(SIZE, SIZE), seconds=args.seconds, fps=FPS,
                              audio=False)
        result = segment_video(clip, Path(tmp) / "cutout.zip", RenderOptions(mode="cutout", background=BACKGROUND),
                               segmenter=load_segmenter(weights))
        _, after = zip_frames(result.path)
        before = read_video(clip, SIZE)
    assert len(before) == len(after), (len(before), len(after))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_webp(wipe_frames(before, np.stack(after)), args.out)
    print(f"{args.out}: {2 * len(before)} frames, {args.out.stat().st_size / 1024:.0f} KB, model {weights}")


if __name__ == "__main__":
    main()
