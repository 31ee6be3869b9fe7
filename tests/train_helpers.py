"""Tiny synthetic labelled data for the train/ tests: a bright blob ("person") on a textured background."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def blob_pair(rng: np.random.Generator, h: int = 64, w: int = 64, empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    img = (rng.random((h, w, 3)) * 90).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    if not empty:
        cx, cy = int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4))
        ax, ay = int(rng.integers(w // 8, w // 4)), int(rng.integers(h // 6, h // 3))
        cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
        img[mask > 0] = (rng.integers(170, 255, 3)).astype(np.uint8)
    return img, mask


def write_folder_set(root: Path, n: int, *, seed: int = 0, size: tuple[int, int] = (64, 64),
                     empty: bool = False, prefix: str = "img") -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, mask = blob_pair(rng, *size, empty=empty)
        cv2.imwrite(str(root / "images" / f"{prefix}_{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"{prefix}_{i:03d}.png"), mask)
    return root


def write_video_sets(root: Path, sequences: int, frames: int, classes: int, *, seed: int = 0,
                     size: tuple[int, int] = (64, 64)) -> Path:
    """video_XXXXX/image_N.png + mask.npy (frames, H, W) of class ids, classes-1 blobs per frame."""
    rng = np.random.default_rng(seed)
    h, w = size
    for s in range(sequences):
        seq = root / f"video_{s:05d}"
        seq.mkdir(parents=True, exist_ok=True)
        masks = np.zeros((frames, h, w), np.uint8)
        for f in range(frames):
            img = (rng.random((h, w, 3)) * 80).astype(np.uint8)
            for c in range(1, classes):
                cx, cy = int(rng.integers(12, w - 12)), int(rng.integers(12, h - 12))
                cv2.circle(masks[f], (cx, cy), 9, c, -1)
                img[masks[f] == c] = (60 * c + 60, 255 - 70 * c, 120)
            cv2.imwrite(str(seq / f"image_{f}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        np.save(seq / "mask.npy", masks)
    return root


def write_coco(root: Path) -> tuple[Path, Path, np.ndarray]:
    """One 40x60 image: a person polygon, a crowd RLE box, a dog polygon. Returns (ann, images, expected)."""
    from pycocotools import mask as mask_utils

    h, w = 40, 60
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(img_dir / "a.png"), np.full((h, w, 3), 100, np.uint8))
    crowd = np.zeros((h, w), np.uint8, order="F")
    crowd[25:35, 40:55] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    rle["counts"] = rle["counts"].decode()
    ann = {
        "images": [{"id": 7, "file_name": "a.png", "height": h, "width": w}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 100, "bbox": [5, 5, 10, 20],
             "segmentation": [[5, 5, 15, 5, 15, 25, 5, 25]]},
            {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 1, "area": 150, "bbox": [40, 25, 15, 10],
             "segmentation": rle},
            {"id": 3, "image_id": 7, "category_id": 18, "iscrowd": 0, "area": 100, "bbox": [25, 5, 10, 10],
             "segmentation": [[25, 5, 35, 5, 35, 15, 25, 15]]},
        ],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(ann))
    expected = np.zeros((h, w), np.uint8)
    expected[crowd.astype(bool)] = 255
    return path, img_dir, expected
