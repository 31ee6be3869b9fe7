"""Build the segmentation network from a small, serialisable spec.

    >>> from model import ModelSpec, build_model
    >>> net = build_model(ModelSpec(encoder="mobilenet_v2"))   # random init, no download

The network takes float RGB in [0, 1] (N, 3, H, W) and returns logits (N, classes, H, W).
ImageNet normalisation lives inside the module, so every caller (torch, ONNX, training) feeds the same
thing and no preprocessing can drift between them.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from model.spec import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
