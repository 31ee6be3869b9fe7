"""Training data: every source yields the same (uint8 RGB image, uint8 mask) pair.

    >>> from train.data import find_records, split_records
    >>> recs = find_records("../shared/datasets/photos/ccp")        # images/ + masks/, flat or nested
    >>> train, val = split_records(recs, val_fraction=0.1, seed=0)  # fixed, seeded, per set

Masks hold class ids: 0 background, 1 person (or 1..N-1 for multi-class video sets) and IGNORE (255) for
pixels the loss and metrics must skip (COCO crowd regions). Sources:
- folder layout `<set>/images/<stem>.(jpg|png)` + `<set>/masks/<stem>.png` (0/255), or sets one level down;
- COCO instances JSON (category `person`), via pycocotools;
- video sets `video_XXXXX/image_N.png` + `video_XXXXX/mask.npy` (N, H, W) of class ids.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

IGNORE = 255
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LABELS_FILE = "labels.json"     # written by train.label beside images/ + masks/: teacher, counts, soft or not


class DataError(ValueError):
    """A data folder or annotation file that cannot be used, with the reason in words."""


def read_rgb(path: str | Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class FolderRecord:
    image: str
    mask: str
    group: str  # the set (or nested sub-set) the pair belongs to, for per-set tables and splits
    soft: bool = False  # the mask is a teacher's confidence 0-255 (train.label), not 0/255

    @property
    def name(self) -> str:
        return Path(self.image).stem

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        img = read_rgb(self.image)
        m = cv2.imread(self.mask, cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise DataError(f"cannot read mask {self.mask}")
        if m.shape != img.shape[:2]:
            m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        return img, m

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        img, m = self._read()
        return img, (m > 127).astype(np.uint8)

    def load_target(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.soft:
            return _target(*self.load())
        img, m = self._read()
        return img, m.astype(np.float32) / 255


# Records stay small and picklable (for DataLoader workers); each process parses an annotation file once.
@functools.lru_cache(maxsize=4)
def _coco(ann_file: str):
    from pycocotools.coco import COCO

    return COCO(ann_file)


@dataclass(frozen=True)
class CocoRecord:
    ann_file: str
    image_dir: str
    image_id: int
    group: str = "coco"

    @property
    def name(self) -> str:
        return str(self.image_id)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        coco = _coco(self.ann_file)
        info = coco.loadImgs(self.image_id)[0]
        img = read_rgb(Path(self.image_dir) / info["file_name"])
        h, w = img.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        crowd = np.zeros((h, w), bool)
        cat_ids = coco.getCatIds(catNms=["person"])
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=self.image_id, catIds=cat_ids, iscrowd=None)):
            m = coco.annToMask(ann).astype(bool)
            if m.shape != (h, w):
                m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            if ann.get("iscrowd", 0):
                crowd |= m
            else:
                mask[m] = 1
        # A crowd region is "people somewhere in here": neither a positive nor a negative label.
        mask[crowd & (mask == 0)] = IGNORE
        return img, mask


@dataclass(frozen=True)
class VideoRecord:
    image: str
    masks: str  # mask.npy of the whole sequence
    index: int
    group: str

    @property
    def name(self) -> str:
        return f"{Path(self.image).parent.name}_{self.index}"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        img = read_rgb(self.image)
        m = np.asarray(np.load(self.masks, mmap_mode="r")[self.index]).astype(np.uint8)
        if m.shape != img.shape[:2]:
            m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        return img, m


Record = FolderRecord | CocoRecord | VideoRecord


def _target(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A binary training target from class ids: float32 person probability, -1 where the label is IGNORE."""
    return img, np.where(mask == IGNORE, -1.0, mask == 1).astype(np.float32)


def load_target(record: Record) -> tuple[np.ndarray, np.ndarray]:
    """(image, float32 target) for binary training: 0-1 person probability (hard 0/1, or a teacher's soft
    confidence for pseudo-labelled sets), -1 for pixels the loss skips."""
    return record.load_target() if isinstance(record, FolderRecord) else _target(*record.load())


def _folder_pairs(root: Path, group: str) -> list[FolderRecord]:
    masks = {p.stem: p for p in (root / "masks").iterdir() if p.suffix.lower() in IMAGE_EXTS}
    labels = root / LABELS_FILE
    soft = bool(json.loads(labels.read_text()).get("soft", False)) if labels.is_file() else False
    out = []
    for img in sorted((root / "images").iterdir()):
        if img.suffix.lower() in IMAGE_EXTS and img.stem in masks:
            out.append(FolderRecord(str(img), str(masks[img.stem]), group, soft))
    return out


def _video_sets(root: Path, group: str) -> list[VideoRecord]:
    out = []
    for seq in sorted(p for p in root.iterdir() if p.is_dir() and (p / "mask.npy").is_file()):
        n = np.load(seq / "mask.npy", mmap_mode="r").shape[0]
        frames = sorted(seq.glob("image_*.png"), key=lambda p: int(p.stem.split("_")[-1]))
        for f in frames:
            idx = int(f.stem.split("_")[-1])
            if idx < n:
                out.append(VideoRecord(str(f), str(seq / "mask.npy"), idx, f"{group}/{seq.name}" if group else seq.name))
    return out


def find_records(root: str | Path) -> list[Record]:
    """All labelled pairs under `root`: a set, a folder of sets one level down, or a video-set folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    name = root.name
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _folder_pairs(root, name)
    out: list[Record] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if (sub / "images").is_dir() and (sub / "masks").is_dir():
            out.extend(_folder_pairs(sub, f"{name}/{sub.name}"))
    out.extend(_video_sets(root, name))
    if not out:
        raise DataError(f"no labelled data in {root}: expected images/ + masks/ (flat or one level down), "
                        "or video_*/image_N.png + mask.npy")
    return out


def coco_records(ann_file: str | Path, image_dir: str | Path) -> list[CocoRecord]:
    """Every image of a COCO instances file (those without people are negatives: an empty mask)."""
    coco = _coco(str(ann_file))
    return [CocoRecord(str(ann_file), str(image_dir), int(i)) for i in sorted(coco.getImgIds())]


def split_records(records: list[Record], val_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Fixed validation split: per group, names sorted then shuffled by `seed`; the first fraction is val.

    Depends only on the names, the fraction and the seed, so train.evaluate can rebuild it anywhere.
    """
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.group.split("/")[0], []).append(r)
    train, val = [], []
    for g in sorted(groups):
        recs = sorted(groups[g], key=lambda r: r.name)
        order = list(range(len(recs)))
        random.Random(f"{seed}:{g}").shuffle(order)
        n_val = int(round(len(recs) * val_fraction))
        val_idx = set(order[:n_val])
        for i, r in enumerate(recs):
            (val if i in val_idx else train).append(r)
    return train, val


def write_split(path: Path, train: list[Record], val: list[Record]) -> None:
    data = {"train": [_rec_json(r) for r in train], "val": [_rec_json(r) for r in val]}
    path.write_text(json.dumps(data, indent=1))


def _rec_json(r: Record) -> dict:
    return {"type": type(r).__name__, **r.__dict__}


def read_split(path: str | Path, part: str = "val") -> list[Record]:
    kinds = {c.__name__: c for c in (FolderRecord, CocoRecord, VideoRecord)}
    out = []
    for d in json.loads(Path(path).read_text())[part]:
        d = dict(d)
        out.append(kinds[d.pop("type")](**d))
    return out


# ---------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class AugmentConfig:
    size: tuple[int, int] = (256, 256)  # training crop (h, w)
    infer_size: int = 320               # long side frames get at inference; crops are sampled at that scale
    zoom: tuple[float, float] = (0.45, 2.2)  # log-uniform zoom around the inference scale
    rotate: float = 12.0
    paste_prob: float = 0.5             # person pasted onto a negative / person moved onto a new background
    photometric: bool = True
    # Soft labels' confidence strictly inside (lo, hi) is ignored by the loss: a teacher's blurry rim then
    # teaches nothing, and the edges are learnt from the hand-labelled photos. None: train on it as it is.
    ignore_band: tuple[float, float] | None = None
    # Flat graphics drawn on the crop with this probability, as edited clips carry them (stickers, discs and
    # boxes of one colour, captions): never a person. Without them the network takes a flat coloured disc for a
    # person (the shipped v4 did, on frames without people). They are placed clear of the person (see
    # draw_graphics): one painted over a dancer's shirt would teach that a flat-coloured shirt is not a person.
    graphics_prob: float = 0.0
    # Another person pasted beside (or over) the one a labelled crop shows, with this probability: nearly every
    # training image has one person (the teacher, MediaPipe Pose, labels only one), and a network trained long on
    # them learns to keep one and drop the rest (the session-14 Lite2 candidate, on a clip of two children).
    second_person: float = 0.0
    # A labelled crop zoomed out beyond its picture's edge shows the replicated border (streaks) around a small
    # picture; with this probability, when the picture covers under 70% of the crop, a frame without people
    # fills what lies outside it instead: the small picture (people and their own background) inside a scene,
    # as in a wide shot. Needs negatives. With it on (> 0), a frame without people, behind a person (this, and
    # the person moved onto a new background) or a sample of its own, always fills the crop (`_warp`'s cover).
    scene: float = 0.0
    # A person from another labelled image pasted beside the people as a statue (`stone`: pale to mid grey, its
    # own shading kept, no colour, a stone grain; mostly inside the crop), with this probability: never a person.
    # Stone figures next to a dancer (a fountain's lions and chain in DAVIS dance-jump) were marked as people, and
    # a network trained only on real people and animals never saw a person-shaped thing that is not one.
    statue: float = 0.0
    # Thin stalks (dry grass, reeds, stems) rising from the crop's bottom edge in front of everything, sharp or out
    # of focus, with this probability (`draw_stalks`): the person behind them continues between them, the stalks
    # themselves are not the person. A dancer behind tall grass (DAVIS dance-jump) was cut off where the grass
    # began, and the stalks over her dress were marked as person: no training picture has anything in front of a
    # person but the flat graphics.
    stalks: float = 0.0


GRAPHIC_WORDS = ("POV", "wait for it", "#fyp", "#dance", "part 2", "LOL", "omg", "tutorial", "new trend",
                 "follow for more", "2x speed", "day 12", "so hard", "the end", "10/10")


def draw_graphics(img: np.ndarray, t: np.ndarray, rng: np.random.Generator,
                  max_cover: float = 0.05, tries: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """1-4 flat graphics (disc, box, ellipse, triangle or star, caption) at random places, sizes and colours over
    an RGB crop, each placed where at most `max_cover` of it falls on the person (target > 0.5; up to `tries`
    places, else that one is left out: a close-up may get none). The target (person confidence) is multiplied
    by what each one leaves visible, so the few person pixels under an edge are hidden, never added."""
    h, w = img.shape[:2]
    img, t = img.copy(), t.copy()
    for _ in range(int(rng.integers(1, 5))):
        for _ in range(tries):
            layer = _graphic_layer(h, w, rng)
            drawn = layer > 0
            if drawn.any() and (t[drawn] > 0.5).mean() <= max_cover:
                break
        else:
            continue
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.7:          # vivid: one channel high, one low
            hi, lo = rng.choice(3, 2, replace=False)
            colour = tuple(255 if c == hi else (0 if c == lo else colour[c]) for c in range(3))
        alpha = layer.astype(np.float32) / 255 * float(rng.uniform(0.7, 1.0))
        img = (img * (1 - alpha[..., None]) + np.float32(colour) * alpha[..., None]).astype(np.uint8)
        t = np.where(t < 0, t, t * (1 - alpha)).astype(np.float32)      # ignored pixels stay ignored
    return img, t


STALK_TONES = ((200, 180, 130), (170, 140, 90), (120, 95, 60), (90, 130, 50), (60, 100, 40), (225, 215, 185))


def draw_stalks(img: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A clump of thin curved stalks rising from the bottom edge of an RGB crop up to 15-60% of its height, in
    one tone (straw, brown, green, pale) varied per stalk, out of focus half the time, painted over everything.
    The target (person confidence) is multiplied by what they leave visible, as for graphics: the person goes on
    between the stalks, never more person, ignored pixels stay ignored."""
    h, w = img.shape[:2]
    tone = np.float32(STALK_TONES[int(rng.integers(len(STALK_TONES)))])
    top = h * float(rng.uniform(0.15, 0.6))
    width = max(1, round(min(h, w) / 256))
    cover = np.zeros((h, w), np.float32)
    paint = np.zeros((h, w, 3), np.float32)
    for _ in range(int(w * rng.uniform(0.1, 0.6))):
        x0, tall = float(rng.uniform(0, w)), top * float(rng.uniform(0.4, 1.0))
        lean, bend = tall * float(rng.uniform(-0.3, 0.3)), tall * float(rng.uniform(-0.15, 0.15))
        s = np.linspace(0, 1, 8)[:, None]
        pts = np.hstack([x0 + lean * s + bend * s * (1 - s) * 4, h - tall * s])   # a quadratic bend
        colour = np.clip(tone * float(rng.uniform(0.7, 1.2)) + rng.uniform(-20, 20, 3), 0, 255)
        layer = np.zeros((h, w), np.uint8)
        cv2.polylines(layer, [np.round(pts).astype(np.int32)], False, 255, int(rng.integers(1, 2 * width + 1)),
                      cv2.LINE_AA)
        a = layer.astype(np.float32) / 255
        paint = paint * (1 - a[..., None]) + colour * a[..., None]
        cover = np.maximum(cover, a)
    if rng.random() < 0.5:                  # in front of the focused dancer: out of focus
        sigma = float(rng.uniform(0.6, 2.0)) * width
        paint, cover = cv2.GaussianBlur(paint, (0, 0), sigma), cv2.GaussianBlur(cover, (0, 0), sigma)
        paint = paint / np.maximum(cover, 1e-3)[..., None]      # the blurred colour, not darkened by the blur
    img = np.clip(img * (1 - cover[..., None]) + paint * cover[..., None], 0, 255).astype(np.uint8)
    return img, np.where(t < 0, t, t * (1 - cover)).astype(np.float32)


def stone(fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB picture re-made as a statue's surface: its shading (luminance, a little smoothed: no fabric or
    hair detail) over one pale to mid stone tone, with a fine grain; float32 RGB in [0, 255]. No dark bronze: with
    dark figures labelled background a run lost a man in a dark coat at a photo's edge (session 21, model
    card)."""
    g = cv2.cvtColor(fg, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    g = cv2.GaussianBlur(g, (0, 0), float(rng.uniform(0.5, 1.5)))
    g = (g - g.mean()) * float(rng.uniform(0.6, 1.0)) + 0.5
    tone = rng.uniform(120, 225) * np.array([1.0, rng.uniform(0.94, 1.0), rng.uniform(0.84, 0.98)])  # a little warm
    grain = cv2.GaussianBlur(rng.normal(0, 1, g.shape).astype(np.float32), (0, 0), float(rng.uniform(0.7, 2.5)))
    grain *= float(rng.uniform(0.02, 0.06)) / (grain.std() + 1e-6)
    return np.clip(tone * (0.4 + 0.9 * g + grain)[..., None], 0, 255).astype(np.float32)


def place_statue(img: np.ndarray, t: np.ndarray, fg: np.ndarray, fg_t: np.ndarray, rng: np.random.Generator,
                 max_cover: float = 0.05, tries: int = 6, whole: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """A figure (`fg` with its person confidence `fg_t`, the crop's size) moved to a random place and painted
    over the crop as a statue (`stone`), where at most `max_cover` of it falls on the crop's people and at least
    `whole` of it is inside the crop (up to `tries` places, else nothing: a close-up may get none): a figure
    cut by the crop's edge, labelled background, may teach that people cut by the frame's edge are not people.
    The target is multiplied by what the statue leaves visible, as for graphics: never more person, ignored
    pixels stay ignored."""
    h, w = img.shape[:2]
    person = np.clip(fg_t, 0, 1)
    if person.max() <= 0.5:
        return img, t
    for _ in range(tries):
        m = np.float32([[1, 0, rng.uniform(-w / 2, w / 2)], [0, 1, rng.uniform(-h / 3, h / 3)]])
        alpha = cv2.warpAffine(person, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        solid = alpha > 0.5
        if solid.sum() > whole * (person > 0.5).sum() and (t[solid] > 0.5).mean() <= max_cover:
            break
    else:
        return img, t
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    figure = cv2.warpAffine(stone(fg, rng), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    img = (img * (1 - alpha[..., None]) + figure * alpha[..., None]).astype(np.uint8)
    return img, np.where(t < 0, t, t * (1 - alpha)).astype(np.float32)


def _graphic_layer(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One flat graphic's coverage (uint8, 255 inside) at a random place, size and kind."""
    layer = np.zeros((h, w), np.uint8)
    size = int(min(h, w) * rng.uniform(0.05, 0.4))
    cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
    kind = rng.choice(["disc", "box", "ellipse", "polygon", "text"])
    if kind == "disc":
        cv2.circle(layer, (cx, cy), max(2, size // 2), 255, -1, cv2.LINE_AA)
    elif kind == "box":
        cv2.rectangle(layer, (cx - size // 2, cy - size // 3), (cx + size // 2, cy + size // 3), 255, -1)
    elif kind == "ellipse":
        cv2.ellipse(layer, (cx, cy), (max(2, size // 2), max(2, size // 4)), float(rng.uniform(0, 180)), 0, 360,
                    255, -1, cv2.LINE_AA)
    elif kind == "polygon":
        n = int(rng.choice([3, 10]))        # a triangle, or a five-pointed star
        radii = np.where(np.arange(n) % 2, 0.45, 1.0) if n == 10 else np.ones(n)
        angles = np.arange(n) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi)
        pts = np.stack([cx + radii * size / 2 * np.cos(angles), cy + radii * size / 2 * np.sin(angles)], 1)
        cv2.fillPoly(layer, [pts.astype(np.int32)], 255, cv2.LINE_AA)
    else:
        scale = max(0.3, size / 60)
        text = str(rng.choice(GRAPHIC_WORDS))
        cv2.putText(layer, text, (int(rng.integers(0, max(1, w // 2))), cy), int(rng.choice([0, 2, 3, 4])),
                    scale, 255, max(1, int(scale * 2.5)), cv2.LINE_AA)
    return layer


def _warp(img: np.ndarray, mask: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
          zoom_range: tuple[float, float] | None = None,
          cover: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An aspect-preserving random crop at a random scale (zoom out shows small people with context,
    zoom in the close TikTok framing), small rotation and flip, in one affine warp: no squashing ever.
    Also gives where the crop shows the picture (True) rather than its replicated border (`_cut`).
    `cover`: the picture fills the crop (a scene behind people: a landscape frame in a portrait crop would
    otherwise end in streaks above and below); the same random draws, the scale at least the covering one and
    the centre where the crop stays inside the picture."""
    h, w = img.shape[:2]
    oh, ow = cfg.size
    lo, hi = zoom_range or cfg.zoom
    s = cfg.infer_size / max(h, w) * float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if cover:
        s = max(s, oh / h, ow / w)
    ang = float(rng.uniform(-cfg.rotate, cfg.rotate)) if rng.random() < 0.5 else 0.0
    # The crop centre stays inside the image so a crop is never mostly padding.
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    if cover:       # the same draws, mapped onto the centres that keep the crop inside the picture
        half_w, half_h = min(ow / (2 * s), w / 2), min(oh / (2 * s), h / 2)
        cx = half_w + (cx / w - 0.2) / 0.6 * (w - 2 * half_w)
        cy = half_h + (cy / h - 0.2) / 0.6 * (h - 2 * half_h)
    m = cv2.getRotationMatrix2D((cx, cy), ang, s)
    m[0, 2] += ow / 2 - cx
    m[1, 2] += oh / 2 - cy
    if rng.random() < 0.5:
        m = np.array([[-1, 0, ow - 1], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    # Replicate padding matches what the Segmenter does beyond the frame edge.
    out_img = cv2.warpAffine(img, m, (ow, oh), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    out_mask = cv2.warpAffine(mask, m, (ow, oh), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones((h, w), np.uint8), m, (ow, oh), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return out_img, out_mask, inside


def _cut(t: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """A person about to go onto another background ends where its picture did: beyond the edge the replicated
    border (right for the crop's own picture, as the Segmenter pads) would paste a streak labelled person."""
    return np.where(inside, t, np.float32(0))


def photometric_transform() -> A.Compose:
    return A.Compose([
        A.RandomBrightnessContrast(0.3, 0.3, p=0.6),
        A.RandomGamma((70, 150), p=0.3),
        A.HueSaturationValue(10, 25, 15, p=0.4),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 7)), A.MotionBlur(blur_limit=(3, 11))], p=0.35),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.2),
        A.ImageCompression(quality_range=(40, 95), p=0.3),
        A.ToGray(p=0.05),
    ])


class TrainSet(Dataset):
    """Augmented fixed-size crops. Randomness comes from (seed, epoch, index) alone, so a sample is the same
    whatever the worker count or process, and a resumed run sees exactly the data it would have seen.

    An index may be an int or (int, orientation): orientation 1 turns the crop (h, w) into (w, h), so a loader
    can give whole batches of landscape crops between batches of portrait ones (`oriented_order`).
    Binary sets train on a float target (`load_target`: hard photos 0/1, pseudo-labels the teacher's soft
    confidence, -1 ignored); each sample gives it as "soft" beside the thresholded class ids in "mask"."""

    def __init__(self, records: list[Record], cfg: AugmentConfig, *, negatives: list[Record] = (),
                 seed: int = 0, binary: bool = True) -> None:
        self.records = list(records) + list(negatives)
        self.positives = list(records)
        self.n_pos = len(records)
        self.negatives = list(negatives)
        self.cfg = cfg
        self.seed = seed
        self.epoch = 0
        self.binary = binary
        self.photo = photometric_transform() if cfg.photometric else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def _target(self, record: Record) -> tuple[np.ndarray, np.ndarray]:
        img, t = load_target(record)
        band = self.cfg.ignore_band
        if band and getattr(record, "soft", False):
            t = np.where((t > band[0]) & (t < band[1]), np.float32(-1), t)
        return img, t

    def _scene(self, cfg: AugmentConfig, rng: np.random.Generator, cover: bool) -> tuple[np.ndarray, np.ndarray]:
        """A random frame without people, warped to the crop at the backgrounds' zoom (0.8-1.6)."""
        bimg, bt, _ = _warp(*load_target(self.negatives[int(rng.integers(len(self.negatives)))]), cfg, rng,
                            zoom_range=(0.8, 1.6), cover=cover)
        return bimg, bt

    def _other_person(self, cfg: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A person from another labelled image (a photo or a pseudo-labelled frame) at a random size and place
        in a crop of this one's size: the picture and its person confidence, ending where its picture does."""
        img, t = self._target(self.positives[int(rng.integers(len(self.positives)))])
        # The smallest pasted person follows --zoom when it goes below the default, so a run asking for small
        # people (video frames: a dancer ~80 px tall at long side 320) also gets them on real backgrounds.
        fg, ft, inside = _warp(img, t, cfg, rng, zoom_range=(min(0.35, cfg.zoom[0]), 1.3))
        return fg, _cut(ft, inside)

    def _paste(self, bg: np.ndarray, bg_t: np.ndarray, cfg: AugmentConfig,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Copy-paste: another person over this crop; the label's confidence is the paste's alpha."""
        return _over(*self._other_person(cfg, rng), bg, bg_t)

    def _statue(self, img: np.ndarray, t: np.ndarray, cfg: AugmentConfig,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Another person set beside this crop's people as a statue (`place_statue`): background."""
        return place_statue(img, t, *self._other_person(cfg, rng), rng)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i, turn = item if isinstance(item, tuple) else (item, 0)
        cfg = self.cfg if not turn else dataclasses.replace(self.cfg, size=self.cfg.size[::-1])
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if not self.binary:
            img, mask, _ = _warp(*self.records[i].load(), cfg, rng)
            return self._out(img, mask.astype(np.int64), None, rng)
        # With --scene a frame without people, as a sample of its own, fills its crop too (people get pasted in)
        img, t, inside = _warp(*self._target(self.records[i]), cfg, rng, cover=i >= self.n_pos and self.cfg.scene > 0)
        if i < self.n_pos and self.negatives and self.cfg.scene > 0 and inside.mean() < 0.7 \
                and rng.random() < self.cfg.scene:
            bimg, bt = self._scene(cfg, rng, cover=True)
            img, t = np.where(inside[..., None], img, bimg), np.where(inside, t, bt).astype(np.float32)
        if self.positives and self.cfg.paste_prob > 0 and rng.random() < self.cfg.paste_prob:
            if i >= self.n_pos:
                img, t = self._paste(img, t, cfg, rng)
            elif self.negatives:
                # The person moves to a new background: breaks the photo sets' background/person shortcuts.
                bimg, bt = self._scene(cfg, rng, cover=self.cfg.scene > 0)
                img, t = _over(img, _cut(t, inside), bimg, bt)
        if i < self.n_pos and self.cfg.second_person > 0 and rng.random() < self.cfg.second_person:
            img, t = self._paste(img, t, cfg, rng)      # two people in the crop: both are people
        if self.positives and self.cfg.statue > 0 and rng.random() < self.cfg.statue:
            img, t = self._statue(img, t, cfg, rng)
        if self.cfg.stalks > 0 and rng.random() < self.cfg.stalks:
            img, t = draw_stalks(img, t, rng)
        if self.cfg.graphics_prob > 0 and rng.random() < self.cfg.graphics_prob:
            img, t = draw_graphics(img, t, rng)
        mask = np.where(t < 0, IGNORE, t > 0.5).astype(np.int64)
        return self._out(img, mask, np.clip(t, 0, 1), rng)

    def _out(self, img: np.ndarray, mask: np.ndarray, soft: np.ndarray | None,
             rng: np.random.Generator) -> dict[str, torch.Tensor]:
        if self.photo is not None:
            self.photo.set_random_seed(int(rng.integers(2**31)))
            img = self.photo(image=img)["image"]
        out = {"image": torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1),
               "mask": torch.from_numpy(np.ascontiguousarray(mask))}
        if soft is not None:
            out["soft"] = torch.from_numpy(np.ascontiguousarray(soft, dtype=np.float32))
        return out


def _over(fg: np.ndarray, fg_t: np.ndarray, bg: np.ndarray, bg_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A labelled person (target = its confidence) composited over a labelled background crop."""
    person = np.clip(fg_t, 0, 1)
    # A slightly soft edge so the network cannot learn to find people by their hard paste seam.
    alpha = cv2.GaussianBlur(person, (3, 3), 0)[..., None]
    img = (fg * alpha + bg * (1 - alpha)).astype(np.uint8)
    return img, np.where((bg_t < 0) & (person <= 0.5), -1.0, np.maximum(person, bg_t)).astype(np.float32)


def oriented_order(indices: list[int], batch: int, turn_every: int) -> list[tuple[int, int]]:
    """Sampler items for TrainSet: every `turn_every`-th batch gets turned (landscape) crops; 0 never turns."""
    return [(i, int(bool(turn_every) and (k // batch) % turn_every == turn_every - 1)) for k, i in enumerate(indices)]


class FrameSet(Dataset):
    """Full frames as they are, for evaluation the way the Segmenter infers."""

    def __init__(self, records: list[Record]) -> None:
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str, str]:
        img, mask = self.records[i].load()
        r = self.records[i]
        return img, mask, r.group, r.name
