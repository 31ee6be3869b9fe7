"""ONNX export of a checkpoint, with a parity check against torch, cached so it happens once; and its INT8 copy.

    python -m model.export weights/default.safetensors            # writes weights/default.onnx, checks parity

ONNX Runtime runs this network faster than eager torch on a CPU; on a GPU the app keeps torch. The exported
graph takes the same input as the torch module ([0, 1] RGB, N x 3 x H x W, any N/H/W multiple of 32) and
returns logits, so the Segmenter's pre- and post-processing are shared by both backends.

The INT8 copy (ONNX Runtime static quantisation: int8 weights per channel, uint8 activations with ranges
calibrated on training photos) runs the network about 1.7x faster on a CPU. It needs calibration data, so it
is made once by `python -m train.int8` and shipped beside the weights; it records the checkpoint's digest, and the app uses it only
while it matches (`int8_session`).

Running an exported file needs only ONNX Runtime; torch loads only to export, to check parity or to calibrate.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.checkpoint import load_checkpoint, publish
from model.preprocess import network_input, shrink
from model.settings import cache_dir, network_threads, tune_process

if TYPE_CHECKING:
    import onnxruntime
    import torch

PARITY_ATOL = 1e-3


@functools.cache
def _digest_cached(path: Path, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def _digest(path: Path) -> str:
    path = Path(path).resolve()
    st = path.stat()
    return _digest_cached(path, st.st_mtime_ns, st.st_size)


def onnx_path_for(weights: str | os.PathLike) -> Path:
    """Where the ONNX copy of `weights` lives: beside it (`<stem>.onnx`, made at image build time or by hand) if
    that exists, else in the user's cache, keyed by the checkpoint's content so a retrained file is re-exported."""
    weights = Path(weights)
    beside = weights.with_suffix(".onnx")
    if beside.is_file() and beside.stat().st_mtime >= weights.stat().st_mtime:
        return beside
    return cache_dir() / f"{weights.stem}.{_digest(weights)}.onnx"


def export_onnx(weights: str | os.PathLike, out: str | os.PathLike | None = None, *, check: bool = True) -> Path:
    """Export `weights` to ONNX (atomically), then check it against torch on a random batch."""
    import torch

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


def _int8_candidate(weights: Path) -> Path:
    return weights.with_name(f"{weights.stem}.int8.onnx")


def int8_session(weights: str | os.PathLike, threads: int | None = None) -> onnxruntime.InferenceSession | None:
    """An ONNX Runtime session of the INT8 copy beside `weights` (`<stem>.int8.onnx`) if it was made from this
    very checkpoint, else None. The check reads the file's metadata through ONNX Runtime itself: the `onnx`
    package would add a second of imports to every start."""
    weights = Path(weights)
    path = _int8_candidate(weights)
    if not path.is_file():
        return None
    session = ort_session(path, threads)
    made_from = session.get_modelmeta().custom_metadata_map.get("checkpoint_sha256")
    return session if made_from == _digest(weights) else None


def int8_path_for(weights: str | os.PathLike) -> Path | None:
    """The INT8 copy beside `weights` if it was made from this very checkpoint (see `int8_session`), else None."""
    return _int8_candidate(Path(weights)) if int8_session(weights, threads=1) is not None else None


def _calibration_batches(images: list[Path], sizes: tuple[int, ...], count: int):
    """Network inputs for calibration: `count` of `images` spread evenly, each prepared exactly as the
    Segmenter prepares a frame (`network_input`), at one of `sizes` in turn."""
    for i, f in enumerate(images[::max(1, len(images) // count)][:count]):
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read calibration image {f}")
        x, _ = network_input([shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), sizes[i % len(sizes)])])
        yield {"image": x}


def quantize_int8(weights: str | os.PathLike, images: list[Path], out: str | os.PathLike | None = None, *,
                  sizes: tuple[int, ...] = (320, 384, 448), count: int = 64) -> Path:
    """Write `<stem>.int8.onnx` beside `weights`: static INT8 quantisation calibrated on `count` of `images`
    (training photos: never the validation split)."""
    images = sorted(map(Path, images))
    if not images:
        raise ValueError("no calibration images")
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    weights = Path(weights)
    out = Path(out) if out else weights.with_name(f"{weights.stem}.int8.onnx")
    fp32 = onnx_path_for(weights)
    if not fp32.is_file():
        fp32 = export_onnx(weights, fp32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = _calibration_batches(images, sizes, count)

        def get_next(self):
            return next(self.batches, None)

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    try:
        quantize_static(str(fp32), tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        model = onnx.load(tmp)
        used = {name for node in model.graph.node for name in node.input}
        for init in [i for i in model.graph.initializer if i.name not in used]:   # left over by quantisation
            model.graph.initializer.remove(init)
        onnx.helper.set_model_props(model, {"checkpoint_sha256": _digest(weights), "checkpoint": weights.name,
                                            "calibration": f"{min(count, len(images))} training images"})
        onnx.save(model, tmp)
        publish(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def ort_session(path: str | os.PathLike, threads: int | None = None) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or network_threads()
    # Spinning worker threads starve ffmpeg on small machines (same reason as OMP_WAIT_POLICY=PASSIVE).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3       # errors only: its notes on graph clean-up are not for users
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def parity(model: torch.nn.Module, onnx_file: str | os.PathLike, x: torch.Tensor) -> float:
    """Largest absolute difference between torch's and ONNX Runtime's logits on `x`."""
    import torch

    with torch.inference_mode():
        ref = model.eval()(x).numpy()
    got = ort_session(onnx_file).run(None, {"image": x.numpy()})[0]
    return float(np.abs(got - ref).max())


def main(argv: list[str] | None = None) -> None:
    tune_process(pipeline=False)
    p = argparse.ArgumentParser(description="Export a checkpoint to ONNX and check it against torch.")
    p.add_argument("weights", type=Path)
    p.add_argument("--out", type=Path, help="default: <weights>.onnx beside the checkpoint")
    args = p.parse_args(argv)
    out = export_onnx(args.weights, args.out or args.weights.with_suffix(".onnx"))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), parity within {PARITY_ATOL}")


if __name__ == "__main__":
    main()
