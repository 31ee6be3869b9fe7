"""Segmentation metrics from confusion counts: IoU, Dice/F1, F2, precision, recall, pixel accuracy.

    >>> import torch
    >>> from train.metrics import Confusion
    >>> c = Confusion()
    >>> c.update(torch.tensor([[1, 0], [1, 1]]), torch.tensor([[1, 0], [0, 1]]))
    >>> round(c.summary()["iou"], 3)
    0.667

Counts are accumulated over all pixels (pooled) and per image (mean of per-image IoU), because the two
disagree on data with people of very different sizes and both are worth reporting. Pixels labelled
data.IGNORE never count. The test suite checks these against torchmetrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from train.data import IGNORE


def counts(pred: torch.Tensor, target: torch.Tensor) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of binary `pred` against `target` (both {0,1}, target may hold IGNORE)."""
    valid = target != IGNORE
    p = pred.bool() & valid
    t = (target == 1) & valid
    # Counted where the tensors are (a GPU during training) and read back together: one copy of four numbers.
    tp, fp, fn, n = torch.stack([(p & t).sum(), (p & ~t).sum(), (~p & t).sum(), valid.sum()]).tolist()
    return tp, fp, fn, n - tp - fp - fn


def _div(a: float, b: float, empty: float) -> float:
    return a / b if b else empty


def scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    # An image with no person and no prediction is a perfect answer, so empty unions score 1.
    p = _div(tp, tp + fp, 1.0 if fn == 0 else 0.0)
    r = _div(tp, tp + fn, 1.0 if fp == 0 else 0.0)
    return {
        "iou": _div(tp, tp + fp + fn, 1.0),
        "dice": _div(2 * tp, 2 * tp + fp + fn, 1.0),
        "f2": _div(5 * tp, 5 * tp + 4 * fn + fp, 1.0),
        "precision": p,
        "recall": r,
        "accuracy": _div(tp + tn, tp + fp + fn + tn, 1.0),
    }


@dataclass
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    per_image_iou: list[float] = field(default_factory=list)

    def update(self, pred: torch.Tensor, target: torch.Tensor, *, per_image: bool = True) -> None:
        """Add a batch (N, H, W) or one image (H, W). Without `per_image`, the batch is counted as one block."""
        if pred.dim() == 2:
            pred, target = pred[None], target[None]
        if not per_image:
            pred, target = pred.reshape(1, -1), target.reshape(1, -1)
        for p, t in zip(pred, target):
            c = counts(p, t)
            self.tp, self.fp, self.fn, self.tn = (a + b for a, b in zip((self.tp, self.fp, self.fn, self.tn), c))
            if per_image:
                self.per_image_iou.append(scores(*c)["iou"])

    def merge(self, other: "Confusion") -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn
        self.per_image_iou.extend(other.per_image_iou)

    def summary(self) -> dict[str, float]:
        out = scores(self.tp, self.fp, self.fn, self.tn)
        if self.per_image_iou:
            out["mean_iou"] = sum(self.per_image_iou) / len(self.per_image_iou)
        out["images"] = len(self.per_image_iou)
        return out


def multiclass_iou(pred: torch.Tensor, target: torch.Tensor, classes: int) -> dict[str, float]:
    """Per-class IoU (classes absent from both count as 1) and their mean over the foreground classes."""
    valid = target != IGNORE
    out = {}
    for c in range(classes):
        p, t = (pred == c) & valid, (target == c) & valid
        union = int((p | t).sum())
        out[f"iou_{c}"] = int((p & t).sum()) / union if union else 1.0
    fg = [out[f"iou_{c}"] for c in range(1, classes)]
    out["miou_fg"] = sum(fg) / len(fg) if fg else out["iou_0"]
    return out
