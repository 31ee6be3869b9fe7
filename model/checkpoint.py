"""Self-describing checkpoints: one `.safetensors` file, weights plus JSON metadata in its header.

    >>> from model import ModelSpec, build_model, save_checkpoint, load_checkpoint
    >>> spec = ModelSpec(encoder="mobilenet_v2")
    >>> save_checkpoint("/tmp/m.safetensors", build_model(spec), spec, metrics={"val_iou": 0.5})
    >>> ckpt = load_checkpoint("/tmp/m.safetensors")        # ckpt.model is ready for eval

safetensors never unpickles, so a checkpoint from anywhere is safe to open. The metadata (spec, metrics,
data, date, anything else) travels inside the same file, so weights can never lose their description.
Reading it (`read_metadata`, `describe_checkpoint`) needs no torch; loading the weights does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from model.spec import ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from model.network import Normalised


class CheckpointError(ValueError):
    """The file is missing, not a checkpoint, or does not match its own spec."""


@dataclass
class Checkpoint:
    model: Normalised | None        # None from describe_checkpoint (no weights loaded)
    spec: ModelSpec
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or (self.path.stem if self.path else "model"))


def publish(tmp: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename a finished temp file into place with ordinary permissions (mkstemp makes files 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dst)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    spec: ModelSpec,
    *,
    half: bool = False,
    **metadata: Any,
) -> Path:
    """Write weights + metadata atomically (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    header = {"spec": spec.to_json(), "format": "tiktok-seg/1"}
    header["date"] = metadata.pop("date", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    for key, value in metadata.items():
        header[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=header)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint without loading its weights (JSON values decoded)."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = f.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"weights file not found: {path}") from None
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({exc})") from None
    if "spec" not in raw:
        raise CheckpointError(f"{path} has no model spec in its metadata; was it written by save_checkpoint?")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def describe_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The checkpoint's spec and metadata, without its weights (`model` is None): no torch needed."""
    meta = read_metadata(path)
    return Checkpoint(model=None, spec=ModelSpec.from_json(json.dumps(meta["spec"])), metadata=meta, path=Path(path))


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model from the spec stored in the file and load its weights (as float32, eval mode)."""
    from model.network import build_model

    ckpt = describe_checkpoint(path)
    model = build_model(ckpt.spec)
    state = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            t = f.get_tensor(key)
            state[key] = t.float() if t.is_floating_point() else t
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match its spec: {len(missing)} missing and {len(unexpected)} unexpected tensors"
        )
    ckpt.model = model.to(device).eval()
    return ckpt
