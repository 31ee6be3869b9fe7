"""The free alternatives, MediaPipe Pose and Selfie Segmentation, against the shipped model: DAVIS IoU and a picture.

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21    # its own venv (train.mediapipe_teacher)
    python -m bench.vs_mediapipe --mediapipe-python /tmp/mp/bin/python --picture runs/ours_vs_mediapipe.png

Every frame of each `video-gt/davis` sequence, in order. Columns: MediaPipe Pose's segmentation (video mode, the
teacher of train.label; a frame where it finds no pose counts as empty), Selfie Segmentation (model 0 general,
1 landscape); ours raw (each frame through the network at the preset's size, the probability enlarged) and
ours as the app runs a clip at that preset (keyframes, second pass, refinement). A pixel is a person above
0.5; the table gives the mean of per-frame IoU, as `train.evaluate` does. The picture is the middle frame of
each `videos/tiktok_dance_N.mp4`: the frame, our cutout on white and MediaPipe Pose's (its confidence as
alpha, the same compositing).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.compose import renderer
from app.options import DEFAULT_PRESET, PRESETS, Preset, RenderOptions
from app.pipeline import load_segmenter, matte_stream, photo_matte
from app.video_io import probe, read_frames
from model.matte import Frame
from model.refine import RAW, Refiner
from model.settings import tune_process
from train.mediapipe_teacher import TeacherError, check, probabilities


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = (pred | gt).sum()
    return float((pred & gt).sum() / union) if union else 1.0


def ours_raw(seg, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Our alpha for each frame alone: one network pass each, the probability enlarged."""
    refiner = Refiner(RAW)
    return [refiner(frame, seg.predict_lowres([frame])[0]) for frame in frames]


def ours_app(seg, frames: list[np.ndarray], preset: Preset) -> list[np.ndarray]:
    """Our alpha as the app makes a clip's at `preset`: keyframes, the second pass, the default refinement."""
    stream = matte_stream(seg, preset)
    return [matte.alpha(frame.guide) for frame, matte in stream.run(Frame.rgb(f, seg) for f in frames)]


def _or_empty(alphas: list[np.ndarray | None], frames: list[np.ndarray]) -> list[np.ndarray]:
    return [a if a is not None else np.zeros(f.shape[:2], np.float32) for a, f in zip(alphas, frames)]


def davis_table(python: str, seg, davis: Path, preset: str = DEFAULT_PRESET) -> dict[str, dict[str, float]]:
    """Prints the table; returns {sequence: {column: mean IoU}} with a "mean" row."""
    print(f"{'sequence':<12} {'MP Pose':>10} {'MP Selfie 0':>12} {'MP Selfie 1':>12} {'ours raw':>10} "
          f"{'ours ' + preset:>14}   (mean per-frame IoU; ours {seg.name} at {seg.infer_size} px, {seg.backend})")
    table: dict[str, dict[str, float]] = {}
    for seq in sorted(d for d in davis.iterdir() if (d / "images").is_dir()):
        names = sorted((seq / "images").iterdir())
        frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in names]
        masks = [cv2.imread(str(seq / "masks" / f"{f.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127 for f in names]
        pose = probabilities(python, names, solution="pose")
        alphas = {"MP Pose": _or_empty(pose, frames),
                  "MP Selfie 0": probabilities(python, names, 0), "MP Selfie 1": probabilities(python, names, 1),
                  "ours raw": ours_raw(seg, frames), f"ours {preset}": ours_app(seg, frames, PRESETS[preset])}
        table[seq.name] = {k: float(np.mean([iou(a > 0.5, m) for a, m in zip(v, masks)])) for k, v in alphas.items()}
        no_pose = sum(p is None for p in pose)
        print(f"{seq.name:<12} " + " ".join(f"{v:>{max(10, len(k))}.4f}" for k, v in table[seq.name].items())
              + (f"   (Pose: no pose on {no_pose} of {len(pose)} frames)" if no_pose else ""), flush=True)
    cols = next(iter(table.values())).keys()
    table["mean"] = {k: float(np.mean([table[s][k] for s in table])) for k in cols}
    print(f"{'mean':<12} " + " ".join(f"{v:>{max(10, len(k))}.4f}" for k, v in table["mean"].items()))
    return table


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
        theirs = [probabilities(python, [p], solution="pose")[0] for p in paths]     # one clip each
    theirs = _or_empty(theirs, frames)
    second_look = RenderOptions(preset=dataclasses.replace(PRESETS[DEFAULT_PRESET], focus=True))
    ours_alpha = [photo_matte(seg, f, second_look) for f in frames]
    cutout = lambda f, a: renderer(RenderOptions(mode="cutout"), *f.shape[:2], "png")(f, a)  # noqa: E731
    rows = [frames, [cutout(f, a) for f, a in zip(frames, ours_alpha)], [cutout(f, a) for f, a in zip(frames, theirs)]]
    small = lambda im: cv2.resize(im, (width, round(im.shape[0] * width / im.shape[1])), interpolation=cv2.INTER_AREA)  # noqa: E731
    grid = np.concatenate([np.concatenate([small(im) for im in row], axis=1) for row in rows], axis=0)
    label_h = grid.shape[0] // 3
    for r, text in enumerate(["frame", f"ours ({seg.name}, {seg.infer_size} px)", "MediaPipe Pose"]):
        cv2.putText(grid, text, (6, r * label_h + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 0, 255), 2, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}: rows frame / ours / MediaPipe, columns the middle frames of {', '.join(c.stem for c in clips)}")


def main(argv: list[str] | None = None) -> None:
    tune_process()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mediapipe-python", required=True, help="the python of a venv with mediapipe==0.10.21")
    p.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    p.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET)
    p.add_argument("--picture", type=Path, help="also write the TikTok side-by-side picture here (.png or .jpg)")
    args = p.parse_args(argv)
    seg = load_segmenter(args.weights, preset=PRESETS[args.preset])
    try:
        check(args.mediapipe_python)
        davis_table(args.mediapipe_python, seg, args.data / "video-gt" / "davis", args.preset)
        if args.picture:
            picture(args.mediapipe_python, seg, sorted((args.data / "videos").glob("tiktok_dance_*.mp4")),
                    args.picture)
    except TeacherError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
