"""Build the segmentation network from a small, serialisable spec.

    >>> from model.network import ModelSpec, build_model
    >>> net = build_model(ModelSpec(encoder="mobilenet_v2"))   # random init, no download

The network takes float RGB in [0, 1] (N, 3, H, W) and returns logits (N, classes, H, W).
ImageNet normalisation lives inside the module, so every caller (torch, ONNX, training) feeds the same
thing and no preprocessing can drift between them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import segmentation_models_pytorch as smp
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network; stored inside every checkpoint."""

    arch: str = "Unet"
    encoder: str = "timm-tf_efficientnet_lite0"
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 8)
    classes: int = 1
    # Long side, in pixels, that frames are resized to for inference (aspect kept, padded to /32).
    infer_size: int = 320

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_channels", tuple(int(c) for c in self.decoder_channels))
        if self.classes < 1:
            raise ValueError(f"classes must be >= 1, got {self.classes}")
        if self.infer_size < 32 or self.infer_size % 32:
            raise ValueError(f"infer_size must be a positive multiple of 32, got {self.infer_size}")
        if len(self.decoder_channels) != 5:
            raise ValueError("decoder_channels needs 5 values (one per UNet stage)")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Normalised(nn.Module):
    """Wraps a network so that it accepts [0, 1] RGB and normalises internally."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def build_model(spec: ModelSpec) -> Normalised:
    """An smp model for `spec`, randomly initialised (encoder_weights=None: nothing is downloaded)."""
    try:
        factory = getattr(smp, spec.arch)
    except AttributeError:
        raise ValueError(f"unknown architecture {spec.arch!r}; smp has e.g. Unet, UnetPlusPlus, FPN") from None
    net = factory(
        encoder_name=spec.encoder,
        encoder_weights=None,
        decoder_channels=spec.decoder_channels,
        classes=spec.classes,
    )
    return Normalised(net)
