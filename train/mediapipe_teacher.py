"""MediaPipe as a teacher: `train.label` labels clips with it and `bench.vs_mediapipe` compares it with our model.

MediaPipe (mediapipe==0.10.21, Apache-2.0, models inside the wheel, runs offline) pins numpy<2, which the app's
environment cannot share, so it runs in a venv of its own:

    python -m venv V && V/bin/pip install mediapipe==0.10.21
    V/bin/python train/mediapipe_teacher.py --solution pose OUT_DIR IMAGE...           # frames of one clip, in order
    V/bin/python train/mediapipe_teacher.py --solution pose --video CLIP --every 3 OUT_DIR

Two solutions:
- `pose` (the default teacher): Pose with `enable_segmentation`, `model_complexity=1` (the only model in the wheel;
  0 and 2 are downloaded on first use and fail offline), in video mode: every frame of a clip is fed in order, so
  it tracks the body and crops around it before segmenting (why small people come out well). It follows ONE
  person and gives no mask for a frame where it finds no pose.
- `selfie`: Selfie Segmentation (model 0 general 256x256, 1 landscape 144x256), frame by frame.

Pose follows more than one person with `--people N`: N Pose trackers, each fed the frame with the people the
ones before it found painted out (`cv2.inpaint` over their mask grown by 4% of the frame's long side, at most
640 px for speed), so the second tracks the next person; a later tracker claims no pixel an earlier one gave
above 0.5, and the label is the maximum of their confidences. A frame is kept when the first finds someone.
(Painting people out with flat grey instead made the next tracker take the grey silhouette for a person.)

As a script (in that venv) it writes, for the i-th input frame, OUT_DIR/<i>.png: the person confidence, 0-255, at
the frame's size; no file where Pose found no pose. With --video it reads the clip itself, feeds every frame
and writes only every k-th, with the frame as the teacher saw it beside it (OUT_DIR/<i>.frame.png, long side at
most --max-side). It prints one JSON line of counts. It imports nothing from this repository; run as a script,
its folder comes first on sys.path, so no file in train/ may be called mediapipe.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SOLUTIONS = ("pose", "selfie")


class TeacherError(RuntimeError):
    """MediaPipe could not run: the message says why, for a person."""


def check(python: str | Path) -> None:
    """Raise TeacherError unless `python` can import mediapipe."""
    try:
        ok = subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        raise TeacherError(f"{python} cannot import mediapipe: make a venv with `pip install mediapipe==0.10.21`")


def _run(python: str | Path, args: list[str]) -> dict:
    run = subprocess.run([str(python), __file__, *args], capture_output=True, text=True)
    if run.returncode:
        raise TeacherError(f"MediaPipe failed ({python}):\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _read_conf(path: Path) -> np.ndarray | None:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) / np.float32(255) if path.is_file() else None


def probabilities(python: str | Path, images: list[Path], model: int = 0,
                  solution: str = "selfie", people: int = 1) -> list[np.ndarray | None]:
    """MediaPipe's person confidence (float32, 0-1, each image's size) for image files, in order; None where Pose
    found no pose. `model`: Selfie's model_selection (0 general, 1 landscape). Pose sees the images as the
    frames of one clip, in this order, and follows `people` people."""
    with tempfile.TemporaryDirectory() as out:
        _run(python, ["--solution", solution, "--model", str(model), "--people", str(people), out,
                      *map(str, images)])
        return [_read_conf(Path(out) / f"{i}.png") for i in range(len(images))]


@dataclass(frozen=True)
class ClipLabels:
    """What the teacher made of one clip: frames[i] / masks[i] are files (uint8 PNG) in a temp folder that
    lives as long as `folder`; `index` their frame numbers in the clip."""
    folder: Path
    index: list[int]
    frames_read: int
    no_pose: int        # kept frames (every k-th) that got no mask
    more_people: int = 0    # kept frames in which a tracker after the first found someone (--people > 1)


def label_clip(python: str | Path, video: Path, out: Path, *, every: int = 1, max_side: int = 0,
               solution: str = "pose", model: int = 0, people: int = 1) -> ClipLabels:
    """Run the teacher over every frame of `video` in order; frames i % every == 0 that got a mask are written
    under `out` as <i>.frame.png (the frame, long side at most `max_side`, 0 = as decoded) and <i>.png (soft mask).
    Pose follows `people` people."""
    counts = _run(python, ["--solution", solution, "--model", str(model), "--video", str(video),
                           "--every", str(every), "--max-side", str(max_side), "--people", str(people), str(out)])
    index = sorted(int(p.name.split(".")[0]) for p in out.glob("*.frame.png"))
    return ClipLabels(out, index, counts["frames"], counts["no_pose"], counts.get("more_people", 0))


def _painted_out(rgb: np.ndarray, conf: np.ndarray, work_side: int = 640) -> np.ndarray:
    """The frame with the person of `conf` (and a margin) painted over from its surroundings, at most
    `work_side` px long: what the next tracker sees."""
    h, w = rgb.shape[:2]
    s = min(1.0, work_side / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small, c = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.resize(conf, size)
    k = max(3, int(0.04 * max(size)) | 1)
    hole = cv2.dilate((c > 0.2).astype(np.uint8), np.ones((k, k), np.uint8))
    return cv2.inpaint(small, hole, 7, cv2.INPAINT_TELEA)


def follow(trackers: list, rgb: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Pose's confidence for the people `trackers` follow in this frame (None: the first found nobody) and how
    many found someone. Each tracker after the first sees the frame with the people before it painted out."""
    h, w = rgb.shape[:2]
    conf, found, view = None, 0, rgb
    for k, tracker in enumerate(trackers):
        mask = tracker.process(view).segmentation_mask
        if mask is None:
            if k == 0:
                return None, 0
            continue
        mask = cv2.resize(mask.astype(np.float32), (w, h)) if mask.shape[:2] != (h, w) else mask
        found += 1
        conf = mask if conf is None else np.where(conf > 0.5, conf, np.maximum(conf, mask))
        if k + 1 < len(trackers):
            view = _painted_out(rgb, conf)
    return conf, found


def _main() -> None:
    import mediapipe as mp

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--solution", choices=SOLUTIONS, default="pose")
    p.add_argument("--model", type=int, choices=[0, 1], default=0, help="Selfie Segmentation's model_selection")
    p.add_argument("--video", type=Path, help="read this clip instead of image files")
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--max-side", type=int, default=0)
    p.add_argument("--people", type=int, default=1, help="Pose: follow this many people")
    p.add_argument("out", type=Path)
    p.add_argument("images", nargs="*", type=Path)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def frames():
        if args.video:
            cap = cv2.VideoCapture(str(args.video))
            if not cap.isOpened():
                raise SystemExit(f"cannot open video {args.video}")
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield bgr
        for path in args.images:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SystemExit(f"cannot read {path}")
            yield bgr

    if args.people < 1 or (args.people > 1 and args.solution != "pose"):
        raise SystemExit("--people: at least 1, and more than 1 only with pose")
    if args.solution == "pose":
        models = [mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, enable_segmentation=True,
                                         smooth_segmentation=True) for _ in range(args.people)]
    else:
        models = [mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=args.model)]
    n = no_pose = more = 0
    with contextlib.ExitStack() as stack:
        for m in models:
            stack.enter_context(m)
        for i, bgr in enumerate(frames()):
            n += 1
            mask, found = follow(models, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))   # every frame: tracking
            if args.video and i % args.every:
                continue
            if mask is None:
                no_pose += 1
                continue
            more += found > 1
            conf = np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8)
            if args.video:
                h, w = bgr.shape[:2]
                if args.max_side and max(h, w) > args.max_side:
                    size = (round(w * args.max_side / max(h, w)), round(h * args.max_side / max(h, w)))
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                    conf = cv2.resize(conf, size, interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(args.out / f"{i}.frame.png"), bgr)
            cv2.imwrite(str(args.out / f"{i}.png"), conf)
    print(json.dumps({"frames": n, "no_pose": no_pose, "more_people": more}))


if __name__ == "__main__":
    _main()
