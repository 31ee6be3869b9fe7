"""How many training steps fit before a deadline: times real steps (the run's own data pipeline, network and
batch) and prints the steps per epoch on its last line.

    python -m train.gpu.calibrate DEADLINE_UNIX_S EPOCHS <the python -m train flags>

The run's start (~30 s) and one evaluation per epoch (~12 s on a GPU) are set aside, and 8% more for safety.
On the H200 the bare step ran 14.4 steps/s at batch 32 while the training loop of the time ran 7.9 (it copied
every batch to the CPU for its metrics; it no longer does): check the loop's rate in the first epoch's log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from train.__main__ import config_from_args
from train.loop import _initial_model, _load_data, _optimiser, _step, autocast_on, epoch_loader


def main(argv: list[str]) -> int:
    deadline, epochs = float(argv[0]), int(argv[1])
    cfg = config_from_args(argv[2:])
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = autocast_on(cfg, dev)
    model = _initial_model(cfg, 0).to(dev)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    trainset, _ = _load_data(cfg, Path(cfg.out), 0)
    steps = 150 if dev.type == "cuda" else 6
    optimizer, sched, _ = _optimiser(cfg, model, 10_000)
    t_first, i_first, i, batch = 0.0, 0, 0, None
    for i, batch in enumerate(epoch_loader(trainset, cfg, 0, steps)):
        _step(model, batch, optimizer, sched, cfg.loss, dev, amp)
        if i == steps // 3:          # after the warm-up (allocations, cuDNN's choices)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t_first, i_first = time.time(), i
    if dev.type == "cuda":
        torch.cuda.synchronize()
    rate = (i - i_first) / (time.time() - t_first)
    t = time.time()
    for _ in range(20):              # the network alone on one batch: is the data pipeline the bottleneck?
        _step(model, batch, optimizer, sched, cfg.loss, dev, amp)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    bare = 20 / (time.time() - t)
    budget = deadline - time.time() - 30 - 12 * epochs
    per_epoch = max(1, int(rate * budget * 0.92 / epochs))
    print(f"calibration: {rate:.2f} steps/s with the loader ({rate * cfg.batch:.0f} samples/s), {bare:.2f} steps/s "
          f"network alone; budget {budget:.0f} s -> {per_epoch} steps x {epochs} epochs", flush=True)
    print(per_epoch)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
