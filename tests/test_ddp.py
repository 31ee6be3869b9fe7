"""`torchrun -m train`: two CPU processes on gloo train a few steps with DistributedDataParallel."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from model import load_checkpoint
from model.checkpoint import read_metadata
from tests.train_helpers import write_folder_set

pytestmark = pytest.mark.slow      # torchrun: two training processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes(tmp_path):
    write_folder_set(tmp_path / "set", 16, seed=0)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "train", "--train", str(tmp_path / "set"),
           "--out", str(out), "--epochs", "2", "--steps-per-epoch", "2", "--batch", "2", "--val-fraction", "0.25",
           "--encoder", "mobilenet_v2", "--decoder-channels", "16,8,8,8,8", "--infer-size", "64", "--size", "64x64",
           "--no-imagenet", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    # Only rank 0 writes: one line per epoch, not two.
    lines = (out / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3
    assert proc.stdout.count("best val score") == 1
    header = lines[0].split(",")
    row = dict(zip(header, lines[-1].split(",")))
    # Each rank takes its own half of the data: 2 steps x 2 per epoch, 2 epochs.
    assert int(row["step"]) == 4
    assert 0.0 <= float(row["val_iou"]) <= 1.0
    ckpt = load_checkpoint(out / "last.safetensors")
    assert ckpt.spec.encoder == "mobilenet_v2"
    assert read_metadata(out / "last.safetensors")["epoch"] == 2
