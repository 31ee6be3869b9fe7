"""Read the Dockerfile, and start the app locally exactly as the container does (its CMD, its ENV)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_env(path: Path = DOCKERFILE) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in dockerfile_instructions(path):
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def _exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {rest}"
    return value


def dockerfile_cmd(path: Path = DOCKERFILE) -> list[str]:
    """ENTRYPOINT + CMD, as the container starts (exec form only: signals reach the process)."""
    entry: list[str] = []
    cmd: list[str] = []
    for word, rest in dockerfile_instructions(path):
        if word == "ENTRYPOINT":
            entry = _exec_form(rest)
        elif word == "CMD":
            cmd = _exec_form(rest)
    return entry + cmd


def dockerfile_healthcheck(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[str]]:
    """(options like {'interval': '30s'}, the exec-form command)."""
    for word, rest in dockerfile_instructions(path):
        if word == "HEALTHCHECK":
            opts, _, cmd = rest.partition("CMD ")
            options = dict(o.lstrip("-").split("=", 1) for o in opts.split())
            return options, _exec_form(cmd)
    raise AssertionError("the Dockerfile has no HEALTHCHECK")


def local_argv(argv: list[str]) -> list[str]:
    """The container's command with its `python` replaced by this interpreter (the venv's)."""
    assert argv and argv[0] == "python", argv
    return [sys.executable, *argv[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(port: int, weights: Path | None, **extra: str) -> dict[str, str]:
    """The container's environment (Dockerfile ENV), bound to 127.0.0.1 on a free port for the test."""
    env = {**os.environ, **dockerfile_env()}
    env.update(STREAMLIT_SERVER_ADDRESS="127.0.0.1", STREAMLIT_SERVER_PORT=str(port))
    if weights is not None:
        env["SEGMENT_WEIGHTS"] = str(weights)
    env.update(extra)
    return env


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with status {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the app did not answer {url}/_stcore/health within {timeout:.0f} s")


@contextlib.contextmanager
def running_app(weights: Path | None, log_path: Path, **extra_env: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Start the Dockerfile's exact command from the repository root; yield (base URL, its environment)."""
    port = free_port()
    env = app_env(port, weights, **extra_env)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(local_argv(dockerfile_cmd()), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(url, proc)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n--- app log ---\n{log_path.read_text(errors='replace')[-4000:]}")
            yield url, env
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def probe_streams(path: Path) -> dict[str, dict]:
    """ffprobe's streams by type ('video', 'audio'), with exact decoded frame counts (nb_read_frames)."""
    from app.video_io import ffprobe_exe

    out = subprocess.run([ffprobe_exe(), "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def zip_frames(path: Path) -> tuple[list[str], list]:
    """A ZIP of frames: its names in order, and its PNGs decoded to arrays (H x W x 3 or 4)."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        frames = [np.asarray(Image.open(io.BytesIO(z.read(n)))) for n in names if n.endswith(".png")]
    return names, frames


def decode_rgba(path: Path, width: int, height: int):
    """Every frame of a video decoded by ffmpeg to RGBA (the alpha an editor would see): (frames, h, w, 4)."""
    import numpy as np

    from app.video_io import ffmpeg_exe

    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgba", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 4)
