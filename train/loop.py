"""The training loop: one `train(config)` entry point, metrics per epoch, last/best checkpoints, exact resume.

    >>> from train.loop import TrainConfig, train
    >>> summary = train(TrainConfig(train=("data/set",), out="runs/demo", epochs=2, encoder="mobilenet_v2"))

A run folder holds: `config.json`, `split.json` (the exact validation records), `metrics.csv`,
`results.txt`, `curves.png`, `last.safetensors` / `best.safetensors` (model + metadata, what the app
loads) and `state.pt` (optimiser, scheduler, RNG and position inside the epoch, what `--resume` reads).
Every file is written to a temp name and renamed, so a kill at any moment leaves the previous good copy.
Data order and augmentation depend only on (seed, epoch, index), so resuming from the end of an epoch gives
the same numbers as never stopping; a mid-epoch resume (after a crash) continues at the next batch.

`train` reads top to bottom: each epoch `train_one_epoch` takes the steps and `evaluate` scores the held-out
sets, each returning a dict of metrics; together they are one row of `metrics.csv` and `results.txt`, whatever
keys they hold. A `CheckpointSaver` writes the model files and reads `state.pt` back.
"""

from __future__ import annotations


import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from model import ModelSpec, Segmenter, build_model, save_checkpoint, settings
from model.focus import Focus
from model.matte import Frame, MatteStream
from model.refine import RAW, FlickerMeter, Matte, RefineOptions
from train.data import (
    IGNORE, AugmentConfig, FrameSet, Record, TrainSet, coco_records, find_records, oriented_order, split_records,
    write_split,
)
from train.metrics import Confusion, counts, multiclass_iou, scores

STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TrainConfig:
    train: tuple[str, ...] = ()
    out: str = "runs/train"
    val: tuple[str, ...] = ()           # empty: hold out `val_fraction` of `train`, seeded by `split_seed`
    test: tuple[str, ...] = ()          # reported every epoch, never used to choose weights
    negatives: tuple[str, ...] = ()     # frames without people: trained on, never held out
    pseudo: tuple[str, ...] = ()        # pseudo-labelled clips (train.label): trained on whole, never split
    video_val: tuple[str, ...] = ()     # held-out pseudo-labelled clips: with val, they choose the best epoch
    coco_ann: str | None = None
    coco_images: str | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    epochs: int = 10
    lr: float = 1e-3
    batch: int = 8
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    warmup_steps: int = 50
    loss: str = "bce+dice"
    encoder: str = "timm-tf_efficientnet_lite0"
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 8)
    arch: str = "Unet"
    classes: int = 1
    infer_size: int = 320
    size: tuple[int, int] = (256, 256)
    turn_every: int = 0                 # every n-th batch gets crops turned to (w, h): both orientations
    train_repeat: int = 1               # the --train sets count this many times against the pseudo-labelled ones
    ignore_band: tuple[float, float] | None = None   # soft labels inside (lo, hi) are not trained on
    freeze_bn: bool = False             # BatchNorm keeps its running statistics (fine-tuning on small batches)
    zoom: tuple[float, float] = (0.45, 2.2)
    paste_prob: float = 0.5
    graphics_prob: float = 0.0          # flat graphics (stickers, captions) beside the people (train.data)
    second_person: float = 0.0          # another person pasted into a labelled crop (train.data)
    scene: float = 0.0                  # a zoomed-out crop's border filled with a frame without people (train.data)
    statue: float = 0.0                 # a person pasted beside the people as a stone statue: background (train.data)
    stalks: float = 0.0                 # thin stalks (grass) in front of everything: background (train.data)
    photometric: bool = True
    imagenet: bool = True
    seed: int = 0
    workers: int = 0
    threads: int = 0                    # 0: torch's default
    steps_per_epoch: int = 0            # 0: one pass over the training set
    patience: int = 0                   # early stopping after this many epochs without a better val score
    ckpt_minutes: float = 10.0
    amp: bool = True                    # bf16 autocast on a GPU
    amp_cpu: bool = False               # bf16 autocast on the CPU too (fast where it has AVX512-BF16 or AMX)
    resume: str | None = None
    init: str | None = None             # start from these weights (fine-tuning); fresh optimiser and schedule
    name: str = ""
    command: str = ""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(LOSSES)}")
        if self.scheduler not in ("cosine", "plateau", "none"):
            raise ValueError("scheduler must be cosine, plateau or none")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError("optimizer must be adam or adamw")
        if not self.train and not self.coco_ann:
            raise ValueError("nothing to train on: give --train DIR (or --coco-ann with --coco-images)")
        if self.epochs < 1 or self.batch < 1 or self.train_repeat < 1:
            raise ValueError("epochs, batch and train_repeat must be at least 1")
        if self.ignore_band and not 0 <= self.ignore_band[0] < self.ignore_band[1] <= 1:
            raise ValueError("the ignore band is LO,HI with 0 <= LO < HI <= 1")
        if not all(0 <= p <= 1 for p in (self.graphics_prob, self.paste_prob, self.second_person, self.scene,
                                         self.statue, self.stalks)):
            raise ValueError("paste, graphics, second-person, scene, statue and stalks probabilities must be between "
                             "0 and 1")
        if self.scene > 0 and not self.negatives:
            raise ValueError("--scene needs --negatives: the frames without people it puts around the pictures")

    def spec(self) -> ModelSpec:
        return ModelSpec(arch=self.arch, encoder=self.encoder, decoder_channels=self.decoder_channels,
                         classes=self.classes, infer_size=self.infer_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- losses


# Binary losses take class ids (0, 1, IGNORE) and, optionally, `soft`: the person probability each pixel is
# trained towards (a teacher's confidence on pseudo-labelled frames, 0/1 on hand-labelled ones). With `soft`,
# BCE is the cross-entropy against that probability and Dice the soft Dice; IGNORE pixels are skipped either way.


def _valid_binary(logits: torch.Tensor, target: torch.Tensor,
                  soft: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    valid = (target != IGNORE).float()
    t = (target == 1).float() if soft is None else soft.float() * valid
    return logits[:, 0], t, valid


def bce_loss(logits: torch.Tensor, target: torch.Tensor, soft: torch.Tensor | None = None) -> torch.Tensor:
    x, t, v = _valid_binary(logits, target, soft)
    loss = F.binary_cross_entropy_with_logits(x.float(), t, reduction="none")
    return (loss * v).sum() / v.sum().clamp_min(1)


def _soft_overlap(logits: torch.Tensor, target: torch.Tensor,
                  soft: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    x, t, v = _valid_binary(logits, target, soft)
    p = torch.sigmoid(x.float()) * v
    t = t * v
    # Pooled over the whole batch: a per-image dice is undefined on frames without people (negatives).
    return (p * t).sum(), p.sum() + t.sum()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, soft: torch.Tensor | None = None) -> torch.Tensor:
    inter, total = _soft_overlap(logits, target, soft)
    return 1 - (2 * inter + 1) / (total + 1)


def jaccard_loss(logits: torch.Tensor, target: torch.Tensor, soft: torch.Tensor | None = None) -> torch.Tensor:
    inter, total = _soft_overlap(logits, target, soft)
    return 1 - (inter + 1) / (total - inter + 1)


def _multiclass(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    ce = F.cross_entropy(logits.float(), target, ignore_index=IGNORE)
    if kind == "bce":
        return ce
    valid = (target != IGNORE)
    prob = logits.float().softmax(1) * valid[:, None]
    onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2).float()
    onehot = onehot * valid[:, None]
    inter = (prob * onehot).sum((0, 2, 3))
    total = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    if kind == "jaccard":
        overlap = 1 - ((inter + 1) / (total - inter + 1)).mean()
    else:
        overlap = 1 - ((2 * inter + 1) / (total + 1)).mean()
    return overlap if kind in ("dice", "jaccard") else ce + overlap


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "bce": bce_loss,
    "dice": dice_loss,
    "jaccard": jaccard_loss,
    "bce+dice": lambda x, t, soft=None: bce_loss(x, t, soft) + dice_loss(x, t, soft),
}


def compute_loss(kind: str, logits: torch.Tensor, target: torch.Tensor,
                 soft: torch.Tensor | None = None) -> torch.Tensor:
    if logits.shape[1] > 1:
        return _multiclass(logits, target, kind)
    return LOSSES[kind](logits, target, soft)


# ---------------------------------------------------------------- evaluation


def evaluate_frames(segmenter: Segmenter, records: list[Record], *, loss: str = "bce+dice",
                    progress: bool = False, refine: RefineOptions | None = None,
                    flicker: bool = False, every: int = 1, focus: Focus | None = None,
                    per_frame: list[dict[str, Any]] | None = None) -> dict[str, dict[str, float]]:
    """Metrics on full frames, exactly as the app infers (Segmenter: long side resize, pad, threshold 0.5).

    Returns {"<group>": metrics, ..., "overall": metrics}; the loss is measured at inference resolution.
    Each group's frames go through one model.matte.MatteStream, as a clip's do in the app. `refine`: the app's
    matte refinement (model.refine, frames in name order); None = the raw per-frame output, bilinear upsampling.
    `flicker`: add each group's flicker (model.refine.FlickerMeter on the predicted alpha, and on the ground
    truth for reference): meaningful for sequences.
    `every`: the app's keyframes (model.matte.Keyframes): the network's matte on every k-th frame of a
    sequence, carried along optical flow to the frames between (implies `refine`, default options if None).
    `focus`: the app's person-focused second pass (model.focus) on every frame the network sees.
    `per_frame`: a list that gets one row per frame (binary masks): frame_row's columns.
    """
    if every > 1 and refine is None:
        refine = RefineOptions()
    streams: dict[str, MatteStream] = {}     # one per sequence (frames come in name order, group by group)
    meters: dict[str, tuple[FlickerMeter, FlickerMeter]] = {}
    per_group: dict[str, Confusion] = {}
    losses: dict[str, list[float]] = {}
    mc: dict[str, list[dict[str, float]]] = {}
    classes = segmenter.spec.classes

    def score(group: str, frame: Frame, matte: Matte) -> None:
        img, (mask, name), alpha = frame.image, frame.tag, matte.alpha(frame.guide)
        if per_frame is not None:
            per_frame.append({"set": group, "name": name, **frame_row(alpha > 0.5, mask)})
        if flicker:
            pred_meter, gt_meter = meters.setdefault(group, (FlickerMeter(), FlickerMeter()))
            pred_meter.update(alpha, img)
            gt_meter.update((mask == 1).astype(np.float32), img)
        per_group.setdefault(group, Confusion()).update(torch.from_numpy(alpha > 0.5),
                                                        torch.from_numpy(mask.astype(np.int64)))

    for img, mask, group, name in tqdm(FrameSet(records), disable=not progress, desc="eval", leave=False):
        out, shapes = segmenter.logits([img])
        h, w = shapes[0]
        logits = out[:, :, :h, :w].float().cpu()     # the loss is taken on the CPU, where the target is
        small = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        losses.setdefault(group, []).append(float(compute_loss(loss, logits, torch.from_numpy(small).long()[None])))
        if classes == 1:
            if group not in streams:
                streams[group] = MatteStream(segmenter, every=every, refine=refine or RAW, focus=focus)
            # the network's output is at hand (for the loss): the stream uses it rather than running it again
            for ready in streams[group].push([Frame.rgb(img, segmenter, tag=(mask, name))],
                                             [torch.sigmoid(logits[0, 0]).numpy()]):
                score(group, *ready)
        else:
            lab = logits[0].argmax(0).to(torch.uint8).numpy()
            lab = cv2.resize(lab, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
            mc.setdefault(group, []).append(multiclass_iou(torch.from_numpy(lab), torch.from_numpy(mask), classes))
            target = torch.from_numpy(np.where(mask == IGNORE, IGNORE, mask > 0).astype(np.int64))
            per_group.setdefault(group, Confusion()).update(torch.from_numpy(lab > 0), target)
    for group, stream in streams.items():     # the last frames of each sequence: no later keyframe
        for ready in stream.flush():
            score(group, *ready)
    return _results(per_group, losses, mc, meters)


def frame_row(pred: np.ndarray, truth: np.ndarray, margin: float = 0.25) -> dict[str, float]:
    """One frame's scores (`pred` boolean, `truth` a mask of the same size: 1 person, IGNORE not scored): IoU,
    precision and recall (train.metrics.scores, as the tables count them), the same IoU inside the truth's box
    grown by `margin` of its long side (`box_iou`), and the predicted pixels outside that box (`outside`, a
    fraction of the frame). They tell a person missed or cut (low box_iou) from things or other people found
    away from the labelled one (box_iou high, IoU lower, outside > 0). An empty truth: the box is the frame."""
    target = torch.from_numpy(np.asarray(truth, np.int64))
    ys, xs = np.nonzero(np.asarray(truth) == 1)
    box = np.zeros(target.shape, bool)
    if len(ys):
        pad = margin * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
        box[max(0, int(ys.min() - pad)):int(ys.max() + pad) + 1, max(0, int(xs.min() - pad)):int(xs.max() + pad) + 1] = True
    else:
        box[:] = True
    p = torch.from_numpy(pred)
    whole = scores(*counts(p, target))
    in_box = scores(*counts(p, torch.where(torch.from_numpy(box), target, IGNORE)))
    return {"iou": whole["iou"], "precision": whole["precision"], "recall": whole["recall"],
            "box_iou": in_box["iou"], "outside": float((pred & ~box).mean())}


def _results(per_group: dict[str, Confusion], losses: dict[str, list[float]], mc: dict[str, list[dict[str, float]]],
             meters: dict[str, tuple[FlickerMeter, FlickerMeter]]) -> dict[str, dict[str, float]]:
    """evaluate_frames' table: each group's metrics, then all groups pooled ("overall")."""
    results: dict[str, dict[str, float]] = {}
    overall = Confusion()
    for g in sorted(per_group):
        results[g] = {"loss": float(np.mean(losses[g])), **per_group[g].summary()}
        if g in mc:
            results[g]["miou_fg"] = float(np.mean([m["miou_fg"] for m in mc[g]]))
        if g in meters:
            results[g]["flicker"], results[g]["flicker_gt"] = meters[g][0].value, meters[g][1].value
        overall.merge(per_group[g])
    all_losses = [v for g in losses for v in losses[g]]
    results["overall"] = {"loss": float(np.mean(all_losses)) if all_losses else float("nan"), **overall.summary()}
    if mc:
        results["overall"]["miou_fg"] = float(np.mean([m["miou_fg"] for g in mc for m in mc[g]]))
    return results


# ---------------------------------------------------------------- helpers


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write` fills a temp file beside `path`, then a rename puts it in place: a kill leaves the previous copy."""
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")     # the suffix: savefig picks the format by it
    write(tmp)
    os.replace(tmp, path)


def _lr_lambda(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.scheduler != "cosine":
            return 1.0
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def load_records(cfg: TrainConfig) -> tuple[list[Record], list[Record], list[Record], list[Record]]:
    """(train, val, test, negatives) records for a config; the val split is deterministic."""
    recs: list[Record] = [r for d in cfg.train for r in find_records(d)]
    if cfg.coco_ann:
        if not cfg.coco_images:
            raise ValueError("--coco-ann needs --coco-images (the folder of its images)")
        recs += coco_records(cfg.coco_ann, cfg.coco_images)
    if cfg.val:
        train_recs, val_recs = recs, [r for d in cfg.val for r in find_records(d)]
    else:
        train_recs, val_recs = split_records(recs, cfg.val_fraction, cfg.split_seed)
    test_recs = [r for d in cfg.test for r in find_records(d)]
    neg = [r for d in cfg.negatives for r in find_records(d)]
    return train_recs, val_recs, test_recs, neg


# ---------------------------------------------------------------- logs


def _split_key(key: str) -> tuple[str, str]:
    """A row key as (part, metric): val_mean_iou -> (val, mean_iou), test[davis/a_b]_iou -> (test[davis/a_b], iou);
    a key without a part, such as lr, -> ("", lr)."""
    if "]_" in key:
        part, metric = key.split("]_", 1)
        return part + "]", metric
    part, _, metric = key.partition("_")
    return (part, metric) if metric else ("", key)


# results.txt keeps its long-standing look for these keys; any other key is written as "name value".
_HEAD_FORMAT = {"epoch": "epoch {:3d}", "lr": "lr {:.2e}", "seconds": "{:.0f}s"}
_SHORT_NAME = {"precision": "prec", "recall": "rec", "accuracy": "acc", "mean_iou": "mIoU/img"}


def _results_line(row: dict[str, Any]) -> str:
    """One epoch for people: the keys without a part first ("epoch   3 | step 900 | lr 1.00e-04 | 95s"), then
    each part's metrics together ("train: loss 0.2100 iou 0.8000 ..."), every key of the row."""
    head: list[str] = []
    parts: dict[str, list[str]] = {}
    for key, v in row.items():
        part, metric = _split_key(key)
        if part:
            value = f"{v:.4f}" if isinstance(v, float) else str(v)
            parts.setdefault(part, []).append(f"{_SHORT_NAME.get(metric, metric)} {value}")
        else:
            head.append(_HEAD_FORMAT[key].format(v) if key in _HEAD_FORMAT else f"{key} {_fmt(v)}")
    return " | ".join(head + [f"{part}: {' '.join(m)}" for part, m in parts.items()])


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ep = [r["epoch"] for r in rows]
    parts = [k.removesuffix("_loss") for k in rows[0] if k.endswith("_loss")]
    for part in (p for p in parts if f"{p}_iou" in rows[0]):
        axes[0].plot(ep, [r[f"{part}_loss"] for r in rows], marker="o", label=part)
        axes[1].plot(ep, [r[f"{part}_iou"] for r in rows], marker="o", label=part)
    axes[0].set_title("loss")
    axes[1].set_title("IoU (pooled)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, dpi=80))
    plt.close(fig)


def write_logs(out: Path, rows: list[dict[str, Any]]) -> None:
    """metrics.csv (a column per key any row holds), results.txt (a line per epoch) and curves.png."""
    keys = list(rows[0].keys())
    for r in rows:
        keys += [k for k in r if k not in keys]
    lines = [",".join(keys)] + [",".join(_fmt(r.get(k, "")) for k in keys) for r in rows]
    _atomic(out / "metrics.csv", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    _atomic(out / "results.txt", lambda tmp: tmp.write_text("\n".join(_results_line(r) for r in rows) + "\n"))
    _plot(rows, out / "curves.png")


def _fmt(v: Any) -> str:
    return f"{v:.6f}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------- checkpoints


@dataclass
class _Progress:
    """Where a run stands; state.pt stores it as a dict (its field names are the file format)."""
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    # Train accumulators of the current epoch, so a mid-epoch resume still reports the whole epoch.
    loss_sum: float = 0.0
    loss_n: int = 0
    conf: tuple[int, int, int, int] = (0, 0, 0, 0)

    def end_epoch(self, row: dict[str, Any], score: float) -> bool:
        """Book a finished epoch (its row and the score that chooses the best one); True if it is the best yet."""
        self.epoch, self.step_in_epoch = row["epoch"], 0
        improved = score > self.best
        if improved:
            self.best, self.best_epoch, self.bad_epochs = float(score), row["epoch"], 0
        else:
            self.bad_epochs += 1
        self.rows.append(row)
        return improved


class CheckpointSaver:
    """The run folder's model files: config.json, last/best weights after each epoch (what the app loads) and
    state.pt (what `--resume` reads), also every `ckpt_minutes` inside an epoch. Only rank 0 writes."""

    def __init__(self, cfg: TrainConfig, out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                 sched: torch.optim.lr_scheduler.LambdaLR, plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
                 *, rank: int = 0) -> None:
        self.cfg, self.out, self.model, self.rank = cfg, out, model, rank
        self.optimizer, self.sched, self.plateau = optimizer, sched, plateau
        self.last_save = time.monotonic()
        if rank == 0:
            _atomic(out / "config.json", lambda tmp: tmp.write_text(json.dumps(cfg.to_dict(), indent=1)))

    def resume(self, path: str | os.PathLike) -> _Progress:
        """Load a state.pt (or its run folder) into the model, optimiser, schedulers and RNG; its progress."""
        path = Path(path)
        path = path / STATE_FILE if path.is_dir() else path
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.plateau is not None and state.get("plateau"):
            self.plateau.load_state_dict(state["plateau"])
        torch.set_rng_state(state["rng"])
        prog = _Progress(**state["progress"])
        prog.conf = tuple(prog.conf)
        if self.rank == 0:
            print(f"resumed from {path}: epoch {prog.epoch}, step {prog.step_in_epoch}", flush=True)
        return prog

    def save_state(self, prog: _Progress) -> None:
        self.last_save = time.monotonic()
        if self.rank != 0:
            return
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.sched.state_dict(),
                 "plateau": self.plateau.state_dict() if self.plateau is not None else {},
                 "rng": torch.get_rng_state(), "progress": dataclasses.asdict(prog),
                 "config": json.dumps(self.cfg.to_dict())}
        _atomic(self.out / STATE_FILE, lambda tmp: torch.save(state, tmp))

    def save_state_if_due(self, prog: _Progress) -> None:
        if self.cfg.ckpt_minutes and time.monotonic() - self.last_save > self.cfg.ckpt_minutes * 60:
            self.save_state(prog)

    def save_weights(self, row: dict[str, Any], best: bool) -> None:
        """last.safetensors, and best.safetensors when `best`, with the epoch's metrics in their metadata."""
        if self.rank != 0:
            return
        metrics = {k: v for k, v in row.items() if k.startswith(("val_", "test", "train_"))}
        for name in ("last", "best") if best else ("last",):
            save_checkpoint(self.out / f"{name}.safetensors", self.model, self.cfg.spec(),
                            name=self.cfg.name or self.out.name, metrics=metrics, epoch=row["epoch"],
                            data=_data_desc(self.cfg), command=self.cfg.command, config=self.cfg.to_dict())


def _data_desc(cfg: TrainConfig) -> dict[str, Any]:
    return {"train": list(cfg.train), "pseudo": list(cfg.pseudo), "video_val": list(cfg.video_val),
            "val": list(cfg.val) or f"{cfg.val_fraction:g} of train, split seed {cfg.split_seed}",
            "negatives": list(cfg.negatives), "test": list(cfg.test), "coco": cfg.coco_ann}


# ---------------------------------------------------------------- training


def _initial_model(cfg: TrainConfig, rank: int) -> nn.Module:
    """The network to start from: --init weights, else ImageNet encoder weights (a resume loads its own later)."""
    spec = cfg.spec()
    model = build_model(spec)
    if cfg.init and not cfg.resume:
        from model import load_checkpoint

        init = load_checkpoint(cfg.init)
        # The inference size is not part of the network: weights trained at 320 px may go on at 384.
        if dataclasses.replace(init.spec, infer_size=spec.infer_size) != spec:
            raise ValueError(f"--init weights are {init.spec}, but this run builds {spec}")
        model.load_state_dict(init.model.state_dict())
    elif cfg.imagenet and not cfg.resume:
        from train.imagenet import load_imagenet_encoder

        report = load_imagenet_encoder(model, cfg.encoder)
        if rank == 0:
            print(f"ImageNet init: {report.loaded}/{report.total} encoder tensors from {report.source}", flush=True)
    return model


def _load_data(cfg: TrainConfig, out: Path, rank: int) -> tuple[TrainSet, dict[str, list[Record]]]:
    """The training set and the evaluated ones ({"val", "vval", "test"}); rank 0 writes split.json."""
    train_recs, val_recs, test_recs, neg = load_records(cfg)
    pseudo_recs = [r for d in cfg.pseudo for r in find_records(d)]
    vval_recs = [r for d in cfg.video_val for r in find_records(d)]
    if rank == 0:
        write_split(out / "split.json", train_recs, val_recs)
        print(f"data: {len(train_recs)} train + {len(pseudo_recs)} pseudo-labelled + {len(neg)} negatives, "
              f"{len(val_recs)} val, {len(vval_recs)} video val, {len(test_recs)} test", flush=True)
    aug = AugmentConfig(size=cfg.size, infer_size=cfg.infer_size, zoom=cfg.zoom, paste_prob=cfg.paste_prob,
                        ignore_band=tuple(cfg.ignore_band) if cfg.ignore_band else None,
                        graphics_prob=cfg.graphics_prob, second_person=cfg.second_person, scene=cfg.scene,
                        statue=cfg.statue, stalks=cfg.stalks, photometric=cfg.photometric)
    trainset = TrainSet(train_recs * cfg.train_repeat + pseudo_recs, aug, negatives=neg, seed=cfg.seed,
                        binary=cfg.classes == 1)
    return trainset, {"val": val_recs, "vval": vval_recs, "test": test_recs}


def _optimiser(cfg: TrainConfig, model: nn.Module, total_steps: int) -> tuple[
        torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, torch.optim.lr_scheduler.ReduceLROnPlateau | None]:
    """(optimiser, per-step warmup + cosine schedule, per-epoch plateau schedule or None)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay if cfg.optimizer == "adamw" else 0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, total_steps))
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
               if cfg.scheduler == "plateau" else None)
    return optimizer, sched, plateau


def epoch_loader(trainset: TrainSet, cfg: TrainConfig, epoch: int, steps: int, *, start: int = 0,
                 rank: int = 0, world: int = 1) -> DataLoader:
    """This rank's batches of `epoch` from step `start` on. The order depends only on (seed, epoch), so a
    resumed run sees the batches it would have seen."""
    trainset.set_epoch(epoch)
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    order = torch.randperm(len(trainset), generator=g)
    need = steps * cfg.batch * world
    if need > len(order):  # --steps-per-epoch beyond one pass: repeat the permutation
        order = order.repeat(math.ceil(need / len(order)))
    order = oriented_order(order[:need][rank::world].tolist(), cfg.batch, cfg.turn_every)
    return DataLoader(trainset, batch_size=cfg.batch, sampler=order[start * cfg.batch:], num_workers=cfg.workers,
                      drop_last=True, persistent_workers=False,
                      generator=torch.Generator().manual_seed(cfg.seed + epoch))


def _step(net: nn.Module, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
          sched: torch.optim.lr_scheduler.LambdaLR, loss_kind: str, device: torch.device,
          amp: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch; (loss, logits, target) for the epoch's sums."""
    x = batch["image"].to(device, non_blocking=True).float().div_(255)
    y = batch["mask"].to(device, non_blocking=True)
    soft = batch["soft"].to(device, non_blocking=True) if "soft" in batch else None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        logits = net(x)
    loss = compute_loss(loss_kind, logits.float(), y, soft)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    sched.step()
    return loss, logits, y


def autocast_on(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training steps run under bf16 autocast: on a GPU unless --no-amp, on the CPU only with --amp-cpu."""
    return cfg.amp and (device.type == "cuda" or cfg.amp_cpu)


def freeze_batchnorm(net: nn.Module) -> None:
    """Every BatchNorm layer of `net` to eval mode: it normalises with its running statistics and no longer
    updates them (its scale and shift still learn). For fine-tuning with small batches, whose statistics are
    noisy (a batch of 8 crops on CPU against the 32 the weights may have been trained with)."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def train_one_epoch(net: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LambdaLR, prog: _Progress, saver: CheckpointSaver,
                    cfg: TrainConfig, *, epoch: int, steps: int, device: torch.device,
                    show: bool = True) -> dict[str, Any]:
    """The steps of one epoch (the rest of it after a mid-epoch resume); {"step", "lr", "train_<metric>", ...}.

    `prog` holds the position and the epoch's running sums, so the saver's mid-epoch state resumes at the
    next batch and the metrics still cover the whole epoch.
    """
    if prog.step_in_epoch == 0:
        prog.loss_sum, prog.loss_n, prog.conf = 0.0, 0, (0, 0, 0, 0)
    amp = autocast_on(cfg, device)
    net.train()
    if cfg.freeze_bn:
        freeze_batchnorm(net)
    conf = Confusion(*prog.conf)
    bar = tqdm(loader, total=steps - prog.step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not show, mininterval=1.0 if sys.stderr.isatty() else 60.0)
    for batch in bar:
        loss, logits, y = _step(net, batch, optimizer, sched, cfg.loss, device, amp)
        prog.step_in_epoch += 1
        prog.global_step += 1
        prog.loss_sum += float(loss.detach())
        prog.loss_n += 1
        with torch.no_grad():
            pred = (logits[:, 0] > 0) if logits.shape[1] == 1 else (logits.argmax(1) > 0)
            tgt = y if logits.shape[1] == 1 else torch.where(y == IGNORE, y, (y > 0).long())
            conf.update(pred, tgt, per_image=False)     # on the training device: no copy of the batch
        prog.conf = (conf.tp, conf.fp, conf.fn, conf.tn)
        bar.set_postfix(loss=f"{prog.loss_sum / prog.loss_n:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}", refresh=False)
        saver.save_state_if_due(prog)
    bar.close()
    return {"step": prog.global_step, "lr": float(optimizer.param_groups[0]["lr"]),
            "train_loss": prog.loss_sum / max(1, prog.loss_n),
            **{f"train_{k}": v for k, v in conf.summary().items() if k != "images"}}


def evaluate(model: nn.Module, spec: ModelSpec, sets: dict[str, list[Record]], *, loss: str,
             device: torch.device, per_group: tuple[str, ...] = ("vval", "test")) -> dict[str, Any]:
    """Each non-empty set scored as the app infers (evaluate_frames): {"<set>_<metric>": value, ...}, and for
    the sets in `per_group` also each sequence's {"<set>[<group>]_mean_iou": value}."""
    was_training = model.training
    seg = Segmenter(model, spec, device=device)
    metrics: dict[str, Any] = {}
    for part, recs in sets.items():
        if not recs:
            continue
        res = evaluate_frames(seg, recs, loss=loss)
        metrics.update({f"{part}_{k}": v for k, v in res["overall"].items() if k != "images"})
        if part in per_group:
            metrics.update({f"{part}[{g}]_mean_iou": m["mean_iou"] for g, m in res.items() if g != "overall"})
    model.train(was_training)
    return metrics


def _selection_score(row: dict[str, Any]) -> float:
    # Photos and held-out clips weigh the same in the choice of the best epoch; the test set never does.
    chosen = [row[k] for k in ("val_mean_iou", "vval_mean_iou") if k in row]
    return float(np.mean(chosen)) if chosen else row.get("val_iou", -row["train_loss"])


def _print_row(row: dict[str, Any]) -> None:
    print(" | ".join(f"{k} {_fmt(v)}" for k, v in row.items() if not k.startswith("train_") or k == "train_loss"),
          flush=True)


def train(cfg: TrainConfig, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train per `cfg`; returns {"best": val score, "best_epoch": n, "rows": per-epoch metrics, "out": dir}."""
    rank, world = _dist_info()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(f"cuda:{settings.distributed().local_rank}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    model = _initial_model(cfg, rank).to(device)
    trainset, eval_sets = _load_data(cfg, out, rank)
    steps = cfg.steps_per_epoch or max(1, len(trainset) // world // cfg.batch)
    optimizer, sched, plateau = _optimiser(cfg, model, steps * cfg.epochs)
    saver = CheckpointSaver(cfg, out, model, optimizer, sched, plateau, rank=rank)
    prog = saver.resume(cfg.resume) if cfg.resume else _Progress()
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    for epoch in range(prog.epoch, cfg.epochs):
        t0 = time.time()
        loader = epoch_loader(trainset, cfg, epoch, steps, start=prog.step_in_epoch, rank=rank, world=world)
        row = {"epoch": epoch + 1, **train_one_epoch(net, loader, optimizer, sched, prog, saver, cfg, epoch=epoch,
                                                     steps=steps, device=device, show=rank == 0)}
        row.update(evaluate(model, cfg.spec(), eval_sets, loss=cfg.loss, device=device))
        row["seconds"] = time.time() - t0
        score = _selection_score(row)
        improved = prog.end_epoch(row, score)
        if plateau is not None:
            plateau.step(score)
        saver.save_weights(row, best=improved)
        if rank == 0:
            write_logs(out, prog.rows)
            _print_row(row)
        saver.save_state(prog)
        if on_epoch:
            on_epoch(row)
        if cfg.patience and prog.bad_epochs >= cfg.patience:
            if rank == 0:
                print(f"early stop: no better val score for {cfg.patience} epochs", flush=True)
            break
    return {"best": prog.best, "best_epoch": prog.best_epoch, "rows": prog.rows, "out": str(out)}
