"""train.metrics agrees with torchmetrics, ignored pixels included."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import (
    BinaryAccuracy, BinaryF1Score, BinaryFBetaScore, BinaryJaccardIndex, BinaryPrecision, BinaryRecall,
    MulticlassJaccardIndex,
)

from train.data import IGNORE
from train.metrics import Confusion, multiclass_iou


def _case(seed: int, ignore: bool):
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(4, 32, 40, generator=g) > 0.6).long()
    pred = ((target + (torch.rand(4, 32, 40, generator=g) > 0.8).long()) % 2).long()
    if ignore:
        target[:, :5, :7] = IGNORE
    return pred, target


@pytest.mark.parametrize("seed,ignore", [(0, False), (1, True), (2, True)])
def test_binary_metrics_match_torchmetrics(seed, ignore):
    pred, target = _case(seed, ignore)
    c = Confusion()
    c.update(pred, target)
    got = c.summary()
    refs = {
        "iou": BinaryJaccardIndex(ignore_index=IGNORE), "dice": BinaryF1Score(ignore_index=IGNORE),
        "f2": BinaryFBetaScore(beta=2.0, ignore_index=IGNORE), "precision": BinaryPrecision(ignore_index=IGNORE),
        "recall": BinaryRecall(ignore_index=IGNORE), "accuracy": BinaryAccuracy(ignore_index=IGNORE),
    }
    for name, metric in refs.items():
        assert got[name] == pytest.approx(float(metric(pred, target)), abs=1e-6), name
    per_image = [float(BinaryJaccardIndex(ignore_index=IGNORE)(p, t)) for p, t in zip(pred, target)]
    assert got["mean_iou"] == pytest.approx(sum(per_image) / len(per_image), abs=1e-6)
    assert got["images"] == 4


def test_empty_image_scores_perfect_and_batches_accumulate():
    c = Confusion()
    c.update(torch.zeros(8, 8, dtype=torch.long), torch.zeros(8, 8, dtype=torch.long))
    assert c.summary()["iou"] == 1.0 and c.summary()["mean_iou"] == 1.0
    pred, target = _case(3, False)
    a, b = Confusion(), Confusion()
    a.update(pred, target)
    for p, t in zip(pred, target):
        b.update(p, t)
    assert a.summary() == b.summary()


def test_multiclass_iou_matches_torchmetrics():
    g = torch.Generator().manual_seed(4)
    target = torch.randint(0, 3, (16, 16), generator=g)
    pred = torch.where(torch.rand(16, 16, generator=g) > 0.7, torch.randint(0, 3, (16, 16), generator=g), target)
    ours = multiclass_iou(pred, target, 3)
    ref = MulticlassJaccardIndex(num_classes=3, average=None)(pred, target)
    for c in range(3):
        assert ours[f"iou_{c}"] == pytest.approx(float(ref[c]), abs=1e-6)
