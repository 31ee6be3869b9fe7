"""The free alternative, MediaPipe Selfie Segmentation, against the shipped model: DAVIS IoU and a picture.

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21    # its own venv (train.mediapipe_teacher)
    python -m bench.vs_mediapipe --mediapipe-python /tmp/mp/bin/python --picture runs/ours_vs_mediapipe.jpg

Both see every frame of the `video-gt/davis` sequences (MediaPipe both of its models: 0 general, 1 landscape;
ours per frame at the default preset's input size, with and without the app's refinement); a pixel is a
person above 0.5; the table gives the mean of per-frame IoU, as `train.evaluate` does. The picture is the
middle frame of each `videos/tiktok_dance_N.mp4`: the frame, our cutout on white (as the app makes a photo's)
and MediaPipe's (its confidence as alpha, the same compositing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.compose import cutout
from app.pipeline import load_segmenter
from app.video_io import probe, read_frames
from model.refine import RAW, Refiner, RefineOptions
from train.mediapipe_teacher import TeacherError, check, probabilities


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = (pred | gt).sum()
    return float((pred & gt).sum() / union) if union else 1.0


def ours(seg, frames: list[np.ndarray], refine: RefineOptions) -> list[np.ndarray]:
    """Our alpha for each frame (one network pass each), refined as `refine` says (RAW: the probability enlarged)."""
    refiner = Refiner(refine)
    return [refiner(frame, seg.predict_lowres([frame])[0]) for frame in frames]


def davis_table(python: str, seg, davis: Path) -> None:
    print(f"{'sequence':<12} {'MediaPipe 0':>12} {'MediaPipe 1':>12} {'ours raw':>10} {'ours app':>10}   "
          f"(mean per-frame IoU; ours {seg.name} at {seg.infer_size} px, {seg.backend})")
    means: dict[str, list[float]] = {}
    for seq in sorted(d for d in davis.iterdir() if (d / "images").is_dir()):
        names = sorted((seq / "images").iterdir())
        frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in names]
        masks = [cv2.imread(str(seq / "masks" / f"{f.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127 for f in names]
        # The app's refinement carries memory from frame to frame: it sees the sequence in order, as on a video.
        alphas = {"MediaPipe 0": probabilities(python, names, 0), "MediaPipe 1": probabilities(python, names, 1),
                  "ours raw": ours(seg, frames, RAW), "ours app": ours(seg, frames, RefineOptions())}
        row = {k: float(np.mean([iou(a > 0.5, m) for a, m in zip(v, masks)])) for k, v in alphas.items()}
        for k, v in row.items():
            means.setdefault(k, []).append(v)
        print(f"{seq.name:<12} " + " ".join(f"{v:>{max(10, len(k))}.4f}" for k, v in row.items()), flush=True)
    print(f"{'mean':<12} " + " ".join(f"{np.mean(v):>{max(10, len(k))}.4f}" for k, v in means.items()))


def picture(python: str, seg, clips: list[Path], out: Path, width: int = 200) -> None:
    frames = []
    for clip in clips:
        info = probe(clip)
        for i, frame in enumerate(read_frames(info)):
            if i == info.frames // 2:
                frames.append(frame.copy())
                break
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.png" for i in range(len(frames))]
        for p, f in zip(paths, frames):
            cv2.imwrite(str(p), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        theirs = probabilities(python, paths, 0)
    ours_alpha = [Refiner(RefineOptions())(f, seg.predict_lowres([f])[0]) for f in frames]
    rows = [frames, [cutout(f, a) for f, a in zip(frames, ours_alpha)], [cutout(f, a) for f, a in zip(frames, theirs)]]
    small = lambda im: cv2.resize(im, (width, round(im.shape[0] * width / im.shape[1])), interpolation=cv2.INTER_AREA)  # noqa: E731
    grid = np.concatenate([np.concatenate([small(im) for im in row], axis=1) for row in rows], axis=0)
    label_h = grid.shape[0] // 3
    for r, text in enumerate(["frame", f"ours ({seg.name}, {seg.infer_size} px)", "MediaPipe Selfie Segmentation"]):
        cv2.putText(grid, text, (6, r * label_h + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 0, 255), 2, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}: rows frame / ours / MediaPipe, columns the middle frames of {', '.join(c.stem for c in clips)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mediapipe-python", required=True, help="the python of a venv with mediapipe==0.10.21")
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    p.add_argument("--picture", type=Path, help="also write the TikTok side-by-side picture here (.png or .jpg)")
    args = p.parse_args(argv)
    seg = load_segmenter(args.weights)
    try:
        check(args.mediapipe_python)
        davis_table(args.mediapipe_python, seg, args.data / "video-gt" / "davis")
        if args.picture:
            picture(args.mediapipe_python, seg, sorted((args.data / "videos").glob("tiktok_dance_*.mp4")),
                    args.picture)
    except TeacherError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
