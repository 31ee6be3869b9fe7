"""Shared fixtures: tiny random models and generated media (run anywhere), and the real datasets.

Tests that need `../shared/datasets` use the `datasets` fixture: when the folder is missing they FAIL
(never skip), so a CI run without the data cannot pass silently. Point TIKTOK_DATA elsewhere if needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model.settings import tune_process

tune_process()      # as the app's entry points do, and before torch loads (OpenMP reads its wait policy then)

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# One intra-op thread: the tests run ffmpeg beside the model, and two busy-waiting OpenMP threads competing
# with ffmpeg (or a background training run) on a 2-core machine made the suite ~20x slower.
torch.set_num_threads(1)


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


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; generated media only (lavfi sources), never user files."""
    from app.video_io import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-nostdin", *args], check=True)


def make_clip(path: Path, *, source: str = "testsrc2", size: str = "320x240", rate: str = "30", seconds: float = 3, audio: bool = True,
              extra: tuple[str, ...] = (), vcodec: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p")) -> Path:
    args = ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    ffmpeg(*args, *vcodec, *extra, str(path))
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Path:
    """A folder of generated clips shared by the tests (made once per run)."""
    root = tmp_path_factory.mktemp("media")
    make_clip(root / "clip.mp4")
    make_clip(root / "silent.mp4", audio=False)
    return root


@pytest.fixture(scope="session")
def tiny_segmenter(tiny_weights):
    from model import Segmenter

    return Segmenter.from_checkpoint(tiny_weights, device="cpu")


class Brightness(torch.nn.Module):
    """A 'network' that calls every bright pixel a person: what it finds depends only on what it is shown, so
    tests get real, predictable mattes without a trained model."""

    def forward(self, x):
        return (x.mean(1, keepdim=True) - 0.5) * 40


def brightness_segmenter(size: int = 384):
    from model import ModelSpec, Segmenter

    return Segmenter(Brightness(), ModelSpec(infer_size=size), device="cpu")


@pytest.fixture(scope="session")
def tiny_app(tiny_weights, tmp_path_factory):
    """The web app started with the Dockerfile's exact command on 127.0.0.1 (tiny random model): its URL."""
    from tests.ui_helpers import running_app

    log = tmp_path_factory.mktemp("app") / "streamlit.log"
    with running_app(tiny_weights, log) as (url, _env):
        yield url


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep ONNX exports made during tests out of the user's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def fake_mediapipe_python(tmp_path) -> Path:
    """A 'python' whose mediapipe is a stand-in, for the MediaPipe teacher (train/mediapipe_teacher.py) without
    MediaPipe's own venv. Selfie Segmentation: every bright pixel is a person (confidence 1). Pose follows one
    person, the largest bright region, at confidence 0.6 + 0.05 * (frames it has been fed before), so a test can
    tell that it saw every frame in order (video mode), and gives no mask at all (no pose) for a frame with no
    bright pixel."""
    import stat

    fake = tmp_path / "fake-mediapipe" / "mediapipe"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import types\nimport numpy as np\n"
        "class SelfieSegmentation:\n"
        "    def __init__(self, model_selection=0): pass\n"
        "    def __enter__(self): return self\n"
        "    def __exit__(self, *a): pass\n"
        "    def process(self, rgb):\n"
        "        return types.SimpleNamespace(segmentation_mask=(rgb.mean(axis=2) > 127).astype(np.float32))\n"
        "class Pose:\n"
        "    def __init__(self, static_image_mode=True, model_complexity=1, enable_segmentation=False,\n"
        "                 smooth_segmentation=True):\n"
        "        assert not static_image_mode and model_complexity == 1 and enable_segmentation\n"
        "        self.seen = 0\n"
        "    def __enter__(self): return self\n"
        "    def __exit__(self, *a): pass\n"
        "    def process(self, rgb):\n"
        "        import cv2\n"
        "        n, ids, stats, _ = cv2.connectedComponentsWithStats((rgb.mean(axis=2) > 127).astype(np.uint8))\n"
        "        person = ids == 1 + int(np.argmax(stats[1:, 4])) if n > 1 else np.zeros(rgb.shape[:2], bool)\n"
        "        conf = np.float32(min(1.0, 0.6 + 0.05 * self.seen))\n"
        "        self.seen += 1\n"
        "        return types.SimpleNamespace(segmentation_mask=person * conf if person.any() else None)\n"
        "solutions = types.SimpleNamespace(selfie_segmentation=types.SimpleNamespace("
        "SelfieSegmentation=SelfieSegmentation), pose=types.SimpleNamespace(Pose=Pose))\n")
    python = tmp_path / "fake-mediapipe" / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{fake.parent}" exec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return python
