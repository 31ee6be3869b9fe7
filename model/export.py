"""ONNX export of a checkpoint, with a parity check against torch, cached so it happens once.

    python -m model.export weights/default.safetensors            # writes weights/default.onnx, checks parity

ONNX Runtime runs this network faster than eager torch on a CPU; on a GPU the app keeps torch. The exported
graph takes the same input as the torch module ([0, 1] RGB, N x 3 x H x W, any N/H/W multiple of 32) and
returns logits, so the Segmenter's pre- and post-processing are shared by both backends.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from model import inference_threads
from model.checkpoint import load_checkpoint, publish

PARITY_ATOL = 1e-3


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def onnx_path_for(weights: str | os.PathLike) -> Path:
    """Where the ONNX copy of `weights` lives: beside it (`<stem>.onnx`, made at image build time or by hand) if
    that exists, else in the user's cache, keyed by the checkpoint's content so a retrained file is re-exported."""
    weights = Path(weights)
    beside = weights.with_suffix(".onnx")
    if beside.is_file() and beside.stat().st_mtime >= weights.stat().st_mtime:
        return beside
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tiktok-cutout"
    return cache / f"{weights.stem}.{_digest(weights)}.onnx"


def export_onnx(weights: str | os.PathLike, out: str | os.PathLike | None = None, *, check: bool = True) -> Path:
    """Export `weights` to ONNX (atomically), then check it against torch on a random batch."""
    ckpt = load_checkpoint(weights)
    out = Path(out) if out else onnx_path_for(weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = ckpt.spec.infer_size
    x = torch.rand(2, 3, size, size * 3 // 4 // 32 * 32 or 32)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(ckpt.model.eval(), (x,), tmp, dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}})
        if check:
            diff = parity(ckpt.model, tmp, x)
            if diff > PARITY_ATOL:
                raise RuntimeError(f"ONNX export differs from torch by {diff:.2e} (> {PARITY_ATOL})")
        publish(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def ort_session(path: str | os.PathLike, threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or inference_threads()
    # Spinning worker threads starve ffmpeg on small machines (same reason as OMP_WAIT_POLICY=PASSIVE).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def parity(model: torch.nn.Module, onnx_file: str | os.PathLike, x: torch.Tensor) -> float:
    """Largest absolute difference between torch's and ONNX Runtime's logits on `x`."""
    with torch.inference_mode():
        ref = model.eval()(x).numpy()
    got = ort_session(onnx_file).run(None, {"image": x.numpy()})[0]
    return float(np.abs(got - ref).max())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Export a checkpoint to ONNX and check it against torch.")
    p.add_argument("weights", type=Path)
    p.add_argument("--out", type=Path, help="default: <weights>.onnx beside the checkpoint")
    args = p.parse_args(argv)
    out = export_onnx(args.weights, args.out or args.weights.with_suffix(".onnx"))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), parity within {PARITY_ATOL}")


if __name__ == "__main__":
    main()
