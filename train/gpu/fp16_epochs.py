"""Each epoch's weights back at half size while a run goes on: RUN/last.safetensors -> OUT/ep<N>.safetensors (fp16,
metadata kept; a lent machine returns files of at most 16 MiB, and Lite2 in fp32 is 23 MB). Polls every 3 s until
OUT/.stop appears, then converts once more and removes it.

    python -m train.gpu.fp16_epochs RUN OUT &
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file


def convert(run: Path, out: Path, seen: set[str]) -> None:
    src = run / "last.safetensors"
    if not src.is_file():
        return
    try:
        with safe_open(str(src), "pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - being replaced right now: the next poll reads it
        print(f"retry: {exc}", flush=True)
        return
    epoch = meta.get("epoch", "x")
    if epoch in seen:
        return
    tmp = out / f".ep{epoch}.partial"
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, str(tmp), metadata=meta)
    tmp.rename(out / f"ep{epoch}.safetensors")
    seen.add(epoch)
    print(f"epoch {epoch} saved", flush=True)


def main(argv: list[str]) -> int:
    run, out = Path(argv[0]), Path(argv[1])
    seen: set[str] = set()
    while not (out / ".stop").exists():
        convert(run, out, seen)
        time.sleep(3)
    convert(run, out, seen)
    (out / ".stop").unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
