"""Shared fixtures: tiny random models and generated media (run anywhere), and the real datasets.

Tests that need `../shared/datasets` use the `datasets` fixture: when the folder is missing they FAIL
(never skip), so a CI run without the data cannot pass silently. Point TIKTOK_DATA elsewhere if needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def datasets() -> Path:
    root = Path(os.environ.get("TIKTOK_DATA", REPO.parent / "shared" / "datasets"))
    if not (root / "README.md").is_file():
        pytest.fail(f"datasets not found at {root}: set TIKTOK_DATA to the shared datasets folder")
    return root


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small randomly initialised checkpoint, for tests that exercise plumbing rather than quality."""
    import torch

    from model import ModelSpec, build_model, save_checkpoint

    torch.manual_seed(0)
    spec = ModelSpec(encoder="mobilenet_v2", decoder_channels=(32, 16, 16, 8, 8), infer_size=128)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(path, build_model(spec), spec, name="tiny-random", metrics={"val_iou": 0.0})
    return path
