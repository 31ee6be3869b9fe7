"""How long one training step takes on this machine, in fp32 and under bf16 autocast (`python -m train --amp-cpu`).

    python -m bench.train_step                                   # Lite2, 352x224 crops, batch 8, every core
    python -m bench.train_step --encoder timm-tf_efficientnet_lite0 --threads 1 --steps 6

The training loop's own step (train.loop._step: network, BCE + Dice, AdamW with its schedule) on random crops, so
the data pipeline is not in the figure: the rounds alternate fp32 and bf16 (a shared machine drifts) and the table gives
each one's median seconds a step (the first steps of each round are warm-up and not counted) and the ratio.
Where the CPU lacks bf16 instructions (AVX512-BF16 or AMX), bf16 is emulated and slower: keep --amp-cpu off there.
"""

from __future__ import annotations

import argparse
import statistics
import time

from model.settings import tune_process

if __name__ == "__main__":     # as python -m train does, before torch loads
    tune_process(pipeline=False, passive_wait=False)

import torch  # noqa: E402

from train.loop import TrainConfig, _initial_model, _optimiser, _step  # noqa: E402


def step_seconds(net: torch.nn.Module, cfg: TrainConfig, batch: dict[str, torch.Tensor], bf16: bool, steps: int,
                 warmup: int) -> list[float]:
    """Seconds of each of `steps` calls of the training loop's own step (train.loop._step), after `warmup`."""
    optimizer, sched, _ = _optimiser(cfg, net, warmup + steps)
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        _step(net, batch, optimizer, sched, cfg.loss, torch.device("cpu"), bf16)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default="timm-tf_efficientnet_lite2")
    p.add_argument("--size", default="352x224", help="crop HxW, as python -m train --size")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=4, help="timed steps a round")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps a round")
    p.add_argument("--rounds", type=int, default=2, help="rounds of each precision, alternating")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.size.split("x"))
    torch.manual_seed(0)
    cfg = TrainConfig(train=("unused",), encoder=a.encoder, imagenet=False, lr=1e-5)
    net = _initial_model(cfg, 0).train()
    batch = {"image": torch.randint(0, 256, (a.batch, 3, h, w), dtype=torch.uint8),
             "mask": torch.randint(0, 2, (a.batch, h, w))}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(a.rounds):
        for bf16 in (False, True):
            times[bf16] += step_seconds(net, cfg, batch, bf16, a.steps, a.warmup)
    fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
    print(f"{a.encoder}, crops {h}x{w}, batch {a.batch}, {torch.get_num_threads()} threads, "
          f"{a.rounds} x {a.steps} timed steps each:")
    print(f"  fp32  {fp32:.3f} s/step\n  bf16  {bf16:.3f} s/step\n  fp32 / bf16  {fp32 / bf16:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
