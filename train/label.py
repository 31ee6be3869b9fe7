"""Pseudo-label clips (or a folder of images) with a teacher, in the images/ + masks/ layout.

    python -m venv ~/mp && ~/mp/bin/pip install mediapipe==0.10.21          # the teacher's own venv, once
    python -m train.label --mediapipe-python ~/mp/bin/python \\
        --input ../shared/datasets/videos-unlabelled --out ~/labels --every 3 --max-side 960
    python -m train.label --weights weights/default.safetensors --input clip.mp4 --out runs/labels/clip

Teachers: MediaPipe Pose (the default with --mediapipe-python: video mode, every frame of a clip fed in order,
one person, or N with `--people N`; no mask where it finds no pose), MediaPipe Selfie Segmentation (`--solution
selfie`), or trained weights (`--weights`). train/mediapipe_teacher.py says more about MediaPipe.

--input is a video, a folder of videos (each becomes a set of its own: OUT/<clip>/images, masks) or a folder of
images (the frames of one clip, in name order). Each set gets `images/<stem>.png` (lossless: the pixels the
teacher saw), `masks/<stem>.png` (the teacher's confidence, 0-255: a SOFT label, which `python -m train` trains
on as such) and `labels.json` (teacher, counts). Frames without a mask are skipped and counted. Look at the
masks before training on them (`--sheet` writes a contact sheet of each set).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from model.settings import tune_process

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    tune_process(pipeline=False)

import cv2
import numpy as np

from model import Segmenter
from model.checkpoint import CheckpointError
from train.data import IMAGE_EXTS, LABELS_FILE, DataError, read_rgb
from train.mediapipe_teacher import SOLUTIONS, TeacherError, check, label_clip, probabilities

VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif")


@dataclass(frozen=True)
class SetReport:
    """One labelled set: how many frames the teacher read, kept (every k-th) and wrote, and what it skipped."""
    name: str
    teacher: str
    frames_read: int
    written: int
    no_mask: int        # kept frames the teacher gave no mask (Pose: no pose found)
    path: str = ""
    soft: bool = True
    people: int = 1         # how many people the teacher followed (Pose, --people)
    more_people: int | None = None      # written frames in which it found more than one (clips only)

    def line(self) -> str:
        more = f", more than one person in {self.more_people}" if self.more_people is not None else ""
        return (f"{self.name}: {self.written} frames labelled by {self.teacher} ({self.frames_read} read, "
                f"{self.no_mask} skipped without a mask{more})")


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a video, rotation applied (OpenCV's FFmpeg backend honours the rotation tag)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _fit(img: np.ndarray, max_side: int, interp: int = cv2.INTER_AREA) -> np.ndarray:
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=interp)


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTS


def _images(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS]


class _SetWriter:
    """Writes one set atomically: pairs go to a hidden temp folder that replaces `out` only when complete, so
    an interrupted run leaves no half set (and never a picture without its mask)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        (self.tmp / "images").mkdir()
        (self.tmp / "masks").mkdir()

    def add(self, stem: str, rgb: np.ndarray, conf: np.ndarray) -> None:
        """conf: float 0-1 (or uint8 0-255) person confidence at the image's size."""
        if conf.dtype != np.uint8:
            conf = np.clip(conf * 255 + 0.5, 0, 255).astype(np.uint8)
        cv2.imwrite(str(self.tmp / "masks" / f"{stem}.png"), conf)
        cv2.imwrite(str(self.tmp / "images" / f"{stem}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def commit(self, report: SetReport) -> None:
        (self.tmp / LABELS_FILE).write_text(json.dumps(asdict(report), indent=1))
        if self.out.exists():
            shutil.rmtree(self.out)
        self.tmp.rename(self.out)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _label_one(src: Path, out: Path, *, seg: Segmenter | None, python: str | None, solution: str, every: int,
               max_frames: int, max_side: int, people: int) -> SetReport:
    writer = _SetWriter(out)
    try:
        if seg is None and _is_video(src):      # MediaPipe reads the clip itself: it must see every frame
            with tempfile.TemporaryDirectory() as tmp:
                clip = label_clip(python, src, Path(tmp), every=every, max_side=max_side, solution=solution,
                                  people=people)
                index = clip.index[:max_frames] if max_frames else clip.index
                for i in index:
                    bgr = cv2.imread(str(Path(tmp) / f"{i}.frame.png"))
                    conf = cv2.imread(str(Path(tmp) / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
                    writer.add(f"{src.stem}_{i:05d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), conf)
                report = SetReport(out.name, solution, clip.frames_read, len(index), clip.no_pose, str(out),
                                   people=people, more_people=clip.more_people if people > 1 else None)
        elif seg is None:                       # a folder of images: one clip, in name order
            paths = _images(src)
            if not paths:
                raise DataError(f"no images in {src}")
            confs = probabilities(python, paths, solution=solution, people=people)
            kept = [(p, c) for i, (p, c) in enumerate(zip(paths, confs)) if i % every == 0]
            written = 0
            for p, c in kept:
                if c is not None and (not max_frames or written < max_frames):
                    writer.add(p.stem, _fit(read_rgb(p), max_side), _fit(c, max_side))
                    written += 1
            report = SetReport(out.name, solution, len(paths), written, sum(c is None for _, c in kept), str(out),
                               people=people)
        else:
            frames = ((f"{src.stem}_{i:05d}", f) for i, f in enumerate(iter_video(src))) if _is_video(src) \
                else ((p.stem, read_rgb(p)) for p in _images(src))
            read = written = 0
            for i, (stem, frame) in enumerate(frames):
                read += 1
                if i % every or (max_frames and written >= max_frames):
                    continue
                frame = _fit(frame, max_side)
                writer.add(stem, frame, seg.predict([frame])[0])
                written += 1
            report = SetReport(out.name, seg.name, read, written, 0, str(out))
        if report.written == 0:
            raise DataError(f"no frames labelled from {src} ({report.frames_read} read, "
                            f"{report.no_mask} without a mask)")
        writer.commit(report)
        return report
    except BaseException:
        writer.abort()
        raise


def label(src: str | Path, out: str | Path, *, weights: str | Path | None = None,
          mediapipe_python: str | Path | None = None, solution: str = "pose", every: int = 1,
          max_frames: int = 0, max_side: int = 0, people: int = 1,
          on_set: Callable[[SetReport], None] | None = None) -> list[SetReport]:
    """Label `src` (a video, a folder of videos, or a folder of images) into `out`; one report per set written
    (also passed to `on_set` as each set is done). The teacher is `weights` or MediaPipe's `solution` run by
    `mediapipe_python`; Pose follows `people` people."""
    if every < 1:
        raise DataError("--every must be at least 1")
    if people < 1 or (people > 1 and (mediapipe_python is None or solution != "pose")):
        raise DataError("--people must be at least 1, and more than 1 only with MediaPipe Pose")
    if (weights is None) == (mediapipe_python is None):
        raise DataError("give one teacher: weights or a MediaPipe python")
    if solution not in SOLUTIONS:
        raise DataError(f"solution must be one of {SOLUTIONS}")
    src, out = Path(src), Path(out)
    if not src.exists():
        raise DataError(f"{src} does not exist")
    if mediapipe_python:
        check(mediapipe_python)
    seg = Segmenter.from_checkpoint(weights, device="cpu") if weights else None
    kw = dict(seg=seg, python=str(mediapipe_python) if mediapipe_python else None, solution=solution, every=every,
              max_frames=max_frames, max_side=max_side, people=people)
    if not _is_video(src) and not src.is_dir():
        raise DataError(f"{src} is neither a video ({', '.join(VIDEO_EXTS)}) nor a folder")
    clips = [p for p in sorted(src.iterdir()) if _is_video(p)] if src.is_dir() else []
    jobs = [(c, out / c.stem) for c in clips] if clips else [(src, out)]
    reports = []
    for one_src, one_out in jobs:
        reports.append(_label_one(one_src, one_out, **kw))
        if on_set:
            on_set(reports[-1])
    return reports


def contact_sheet(folder: str | Path, dst: str | Path, *, count: int = 12, width: int = 160) -> Path:
    """A picture of `count` evenly spaced pairs of a labelled set: each frame with its mask as a magenta tint
    (strength = the label's confidence) above the frame cut out on white, to look at before training."""
    folder = Path(folder)
    images = _images(folder / "images")
    if not images:
        raise DataError(f"no images in {folder / 'images'}")
    picks = [images[round(i)] for i in np.linspace(0, len(images) - 1, min(count, len(images)))]
    tiles = []
    for p in picks:
        img = read_rgb(p).astype(np.float32)
        a = cv2.imread(str(folder / "masks" / f"{p.stem}.png"), cv2.IMREAD_GRAYSCALE)[..., None] / np.float32(255)
        tint = img * (1 - 0.5 * a) + np.array([255, 0, 255], np.float32) * 0.5 * a
        cut = img * a + 255 * (1 - a)
        tile = np.concatenate([tint, cut], axis=0).astype(np.uint8)
        tiles.append(cv2.resize(tile, (width, round(tile.shape[0] * width / tile.shape[1])),
                                interpolation=cv2.INTER_AREA))
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    sheet = np.concatenate(tiles, axis=1)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.label", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    teacher = p.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--mediapipe-python", metavar="PYTHON",
                         help="MediaPipe as the teacher, run by this venv's python (mediapipe==0.10.21)")
    teacher.add_argument("--weights", help="a .safetensors checkpoint as the teacher")
    p.add_argument("--solution", choices=SOLUTIONS, default="pose", help="MediaPipe's solution (default pose)")
    p.add_argument("--input", required=True, metavar="VIDEO|DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--every", type=int, default=1, help="keep every Nth frame (the teacher still sees them all)")
    p.add_argument("--max-frames", type=int, default=0, help="at most this many frames a set (0: all)")
    p.add_argument("--max-side", type=int, default=0, help="shrink kept frames to this long side (0: as they are)")
    p.add_argument("--people", type=int, default=1,
                   help="Pose: follow this many people (each next one with those found painted out; default 1)")
    p.add_argument("--sheet", action="store_true", help="also write OUT/<set>.sheet.png, a contact sheet")
    a = p.parse_args(argv)
    def done(r: SetReport) -> None:
        print(r.line(), flush=True)
        if a.sheet:
            contact_sheet(r.path, Path(r.path).parent / f"{r.name}.sheet.png")

    try:
        reports = label(a.input, a.out, weights=a.weights, mediapipe_python=a.mediapipe_python,
                        solution=a.solution, every=a.every, max_frames=a.max_frames, max_side=a.max_side,
                        people=a.people, on_set=done)
    except (DataError, CheckpointError, TeacherError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = sum(r.written for r in reports)
    print(f"wrote {total} frames and masks in {len(reports)} set(s) under {a.out}; "
          f"{sum(r.no_mask for r in reports)} frames skipped without a mask")
    return 0


if __name__ == "__main__":
    sys.exit(main())
