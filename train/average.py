"""Average the weights of several checkpoints of one run: the ends of its epochs, a cheap ensemble in one network
(stochastic weight averaging, Izmailov et al. 2018, over the points a run already saved).

    python -m train.average --out runs/ship/best.safetensors runs/gpu/ep1.safetensors runs/gpu/ep2.safetensors

Every float tensor (weights, BatchNorm's running mean and variance) is the weighted mean of the inputs', in
float32; integer buffers (BatchNorm's step counters) are the last input's. The inputs must be the same network
(one ModelSpec). The output keeps the last input's metadata (its run's config and data, which `train.ship` reads)
and records what it was averaged from.

Why it is here: the session-11 GPU run (EfficientNet-Lite2, two epochs) gave epoch 1 photo val 0.9264 / held-out
clips 0.9170 and epoch 2 0.9457 / 0.9144; their mean scored 0.9425 / 0.9233 (python -m train.evaluate on each,
the card's commands), above both on the clips. Recomputing BatchNorm's statistics on 3,200 training crops
afterwards (SWA's usual last step) changed nothing that mattered (0.9432 / 0.9213), so it is not done.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from model import load_checkpoint, save_checkpoint
from model.checkpoint import Checkpoint


def average_checkpoints(paths: Sequence[str | Path], weights: Sequence[float] | None = None) -> Checkpoint:
    """The weighted mean of `paths`' networks (equal weights by default); metadata as the module says."""
    if len(paths) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or any(w <= 0 for w in weights):
        raise ValueError("give one positive weight per checkpoint")
    total = sum(weights)
    ckpts = [load_checkpoint(p) for p in paths]
    spec = ckpts[0].spec
    for c in ckpts[1:]:
        if c.spec != spec:
            raise ValueError(f"{c.path} is {c.spec}, but {ckpts[0].path} is {spec}: only one network can be averaged")
    states = [c.model.state_dict() for c in ckpts]
    mean: dict[str, torch.Tensor] = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            mean[key] = sum(w / total * s[key].float() for w, s in zip(weights, states)).to(last.dtype)
        else:
            mean[key] = last.clone()
    model = ckpts[-1].model
    model.load_state_dict(mean)
    metadata = {k: v for k, v in ckpts[-1].metadata.items() if k not in ("spec", "format", "date")}
    metadata["averaged_from"] = [{"file": Path(c.path).name, "epoch": c.metadata.get("epoch"), "weight": w / total,
                                  **({"averaged_from": c.metadata["averaged_from"]} if "averaged_from" in c.metadata
                                     else {})}
                                 for c, w in zip(ckpts, weights)]
    epochs = [c.metadata.get("epoch") for c in ckpts]
    if all(e is not None for e in epochs):
        metadata["epoch"] = "+".join(str(e) for e in epochs)
    return Checkpoint(model=model, spec=spec, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.average", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="two or more .safetensors of the same network")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--weights", nargs="+", type=float, help="one per checkpoint (default: equal)")
    a = p.parse_args(argv)
    try:
        avg = average_checkpoints(a.checkpoints, a.weights)
    except ValueError as exc:         # CheckpointError too: a missing or foreign file
        p.error(str(exc))
    save_checkpoint(a.out, avg.model, avg.spec, **avg.metadata)
    print(f"wrote {a.out}: the mean of {', '.join(str(c) for c in a.checkpoints)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
