"""What a checkpoint's network is: a small, serialisable spec, stored inside every checkpoint.

    >>> from model.spec import ModelSpec
    >>> ModelSpec.from_json(ModelSpec(encoder="mobilenet_v2").to_json()).encoder
    'mobilenet_v2'

Its own module, apart from model.network, because reading a checkpoint's spec must not cost torch's import:
on a CPU the app runs the network in ONNX Runtime and never builds it in torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


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
