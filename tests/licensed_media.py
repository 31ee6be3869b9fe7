"""Media of a real person that anyone may use, for the browser tests and the README's pictures (docs/).

    python -m tests.licensed_media out/astronaut.mp4            # the clip the README's pictures are made from

The person is Eileen Collins in NASA's portrait photo (public domain: a work of the US federal government), as
scikit-image ships it (`skimage.data.astronaut()`, in the wheel itself: nothing is downloaded). The clip is a
slow zoom into the photo, so the video path runs (every frame differs a little), with a tone as its audio track.
docs/MEDIA_LICENCE.md says the same for the pictures made from it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from app.video_io import ffmpeg_exe

CREDIT = "Eileen Collins, NASA portrait photo (public domain), via scikit-image's skimage.data.astronaut()"


def astronaut() -> np.ndarray:
    """The 512x512 RGB photo."""
    from skimage import data

    return data.astronaut()


def zoom_frames(photo: np.ndarray, size: tuple[int, int], frames: int, zoom: float = 1.25,
                centre: tuple[float, float] = (0.45, 0.45)) -> np.ndarray:
    """Frames of a slow zoom into `photo` (towards `centre`, as fractions of its width and height): (frames, h, w, 3)."""
    h, w = photo.shape[:2]
    out_w, out_h = size
    cover = max(out_w / w, out_h / h)          # the first frame shows as much of the photo as the shape allows
    cx, cy = centre[0] * w, centre[1] * h
    result = np.empty((frames, out_h, out_w, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        ease = t * t * (3 - 2 * t)             # smoothstep: starts and ends gently
        scale = cover * (1 + (zoom - 1) * ease)
        # Move the view's centre from the photo's middle towards `centre` as it zooms, kept inside the photo.
        vx = w / 2 + (cx - w / 2) * ease
        vy = h / 2 + (cy - h / 2) * ease
        half_w, half_h = out_w / scale / 2, out_h / scale / 2
        vx, vy = np.clip(vx, half_w, w - half_w), np.clip(vy, half_h, h - half_h)
        m = np.float32([[scale, 0, out_w / 2 - scale * vx], [0, scale, out_h / 2 - scale * vy]])
        result[i] = cv2.warpAffine(photo, m, (out_w, out_h), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
    return result


def astronaut_clip(path: Path, *, size: tuple[int, int] = (512, 512), seconds: float = 2.0, fps: int = 30,
                   audio: bool = True) -> Path:
    """An H.264 MP4 (yuv420p, AAC tone when `audio`) of a slow zoom into the astronaut photo."""
    frames = zoom_frames(astronaut(), size, round(seconds * fps))
    w, h = size
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return Path(path)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "astronaut.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(astronaut_clip(target))
