"""Matte refinement settings on video-gt/davis: IoU and flicker per setting, with the Refiner the app uses.

    python -m bench.refine_davis weights/default.safetensors [DATASETS]   # DATASETS default ../shared/datasets
"""
import sys, numpy as np, cv2, time
from pathlib import Path
import bench  # noqa: F401  (OMP policy before torch)
from model import Segmenter
from model.refine import Refiner, RefineOptions, RAW, flicker
seg = Segmenter.from_checkpoint(sys.argv[1])
configs = {"raw": RAW, "default": RefineOptions(), "blob": RefineOptions(min_blob=0.002),
           "guided_only": RefineOptions(temporal=0),
           "temporal_only": RefineOptions(edges="bilinear")}
root = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/datasets") / "video-gt" / "davis"
for seq in ["lucia", "dance-jump"]:
    names = sorted((root/seq/"images").iterdir())
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in names]
    gts = [(cv2.imread(str(root/seq/"masks"/(p.stem+".png")), 0) > 127).astype(np.float32) for p in names]
    probs = []
    for i in range(0, len(frames), 4):
        probs += seg.predict_lowres(frames[i:i+4])
    gtf = flicker(gts, frames); gtall = flicker(gts)
    for name, opt in configs.items():
        r = Refiner(opt); t = time.perf_counter()
        alphas = [r(f, p) for f, p in zip(frames, probs)]
        dt = (time.perf_counter() - t) / len(frames) * 1000
        ious = [((a > .5) & (g > .5)).sum() / max(((a > .5) | (g > .5)).sum(), 1) for a, g in zip(alphas, gts)]
        print(f"{seq:10s} {name:14s} IoU {np.mean(ious):.4f}  flicker(static px) {flicker(alphas, frames):.5f} (gt {gtf:.5f})  "
              f"flicker(all) {flicker(alphas):.5f} (gt {gtall:.5f})  refine {dt:.1f} ms/frame")
