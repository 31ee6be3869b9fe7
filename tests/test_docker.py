"""The container, checked without a Docker engine: hadolint, the compose files, and the image's start command
run locally (Dockerfile CMD and ENV) answering Streamlit's health endpoint and the image's own HEALTHCHECK."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.ui_helpers import REPO, dockerfile_cmd, dockerfile_env, dockerfile_healthcheck, dockerfile_instructions, \
    local_argv, running_app

HADOLINT = Path(sys.executable).with_name("hadolint")


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((REPO / name).read_text())


def test_hadolint_passes():
    proc = subprocess.run([str(HADOLINT), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_has_what_the_issue_asks():
    steps = dockerfile_instructions()
    words = [w for w, _ in steps]
    text = "\n".join(f"{w} {r}" for w, r in steps)
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    assert "apt-get install -y --no-install-recommends ffmpeg" in text
    # CPU torch before the pinned requirements, whose torch pins it must satisfy.
    torch_at = next(i for i, (w, r) in enumerate(steps) if w == "RUN" and "torch==" in r)
    req_at = next(i for i, (w, r) in enumerate(steps) if w == "RUN" and "-r requirements.txt" in r)
    assert torch_at < req_at
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
                if line.startswith(("torch==", "torchvision==")))
    assert f"torch=={pins['torch']}" in steps[torch_at][1] and f"torchvision=={pins['torchvision']}" in steps[torch_at][1]
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
    assert "--no-deps -r requirements-nodeps.txt" in steps[req_at][1]
    assert "COPY weights/ weights/" in text
    assert "python -m model.export weights/default.safetensors" in text, "ONNX made at build time"
    user = [r for w, r in steps if w == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "COPY"), "code must stay root's"
    assert "EXPOSE 8501" in text
    env = dockerfile_env()
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert (env["STREAMLIT_SERVER_ADDRESS"], env["STREAMLIT_SERVER_PORT"]) == ("0.0.0.0", "8501")
    assert dockerfile_cmd()[:5] == ["python", "-m", "streamlit", "run", "app/ui.py"]
    _, health = dockerfile_healthcheck()
    assert "/_stcore/health" in " ".join(health) and "curl" not in health


def test_dockerignore_keeps_the_context_small():
    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and l[0] != "#"]
    assert lines[0] == "*", "allow-list: everything is excluded unless named"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    for needed in ("app", "model", "train", "weights", "requirements.txt", "requirements-nodeps.txt", ".streamlit"):
        assert needed in allowed
    for path in (".venv", ".git", "runs", "tests"):
        assert path not in allowed
    # Whatever the Dockerfile copies must be in the allow-list.
    for word, rest in dockerfile_instructions():
        if word == "COPY":
            for src in rest.split()[:-1]:
                assert src.rstrip("/") in allowed, src


def test_the_image_gets_the_weights_and_their_int8_copy_but_no_local_export():
    """Docker's rule: the last .dockerignore pattern that matches a path decides (a leading ! re-includes)."""
    from fnmatch import fnmatch

    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and l[0] != "#"]

    def sent(path: str) -> bool:
        keep = True
        for line in lines:
            pattern = line.lstrip("!").rstrip("/")
            if fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = line.startswith("!")
        return keep

    assert sent("weights/default.safetensors") and sent("weights/default.int8.onnx")
    assert not sent("weights/default.onnx") and not sent("runs/x/best.safetensors") and not sent(".venv/bin/python")


def test_compose_app_service():
    app = compose()["services"]["app"]
    assert app["build"] in (".", {"context": "."})
    assert "8501:8501" in [str(p) for p in app["ports"]]
    # No command override: the service runs the image's CMD, which is what test_start_command checks.
    assert "command" not in app and "entrypoint" not in app
    options, health = dockerfile_healthcheck()
    assert app["healthcheck"]["test"] == ["CMD", *health]
    for key in ("interval", "timeout", "start_period", "retries"):
        assert str(app["healthcheck"][key]) == options[key.replace("_", "-")]
    assert app["restart"] in ("unless-stopped", "always", "on-failure")


def test_compose_train_service():
    services = compose()["services"]
    train = services["train"]
    assert train["image"] == services["app"]["image"], "one image for both"
    assert train["profiles"] == ["train"], "not started by a plain `docker compose up`"
    assert train["entrypoint"][:3] == [dockerfile_cmd()[0], "-m", "train"]
    assert (REPO / "train" / "__main__.py").is_file()
    targets = dict(reversed(v.removesuffix(":ro").rsplit(":", 1)) for v in train["volumes"])
    assert "/data" in targets and "/app/runs" in targets and "/app/weights" in targets
    workdir = [r for w, r in dockerfile_instructions() if w == "WORKDIR"][-1]
    assert workdir == "/app", "the volumes above are mounted under the image's working directory"


def test_compose_gpu_override():
    gpu = compose("docker-compose.gpu.yml")["services"]
    for name in ("app", "train"):
        devices = gpu[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        assert "download.pytorch.org/whl/cu" in gpu[name]["build"]["args"]["TORCH_INDEX"]
    assert set(gpu) <= set(compose()["services"])


@pytest.mark.slow      # a Streamlit server
def test_start_command_answers_health_and_healthcheck(tiny_app):
    with urllib.request.urlopen(f"{tiny_app}/_stcore/health", timeout=10) as r:
        assert r.status == 200 and r.read().strip() == b"ok"
    with urllib.request.urlopen(tiny_app, timeout=10) as r:
        assert r.status == 200 and b"<html" in r.read().lower()


@pytest.mark.slow      # a Streamlit server
def test_image_healthcheck_command_fails_then_passes(tmp_path, tiny_weights):
    """The HEALTHCHECK's own command: non-zero with no server, zero once the start command runs."""
    _, health = dockerfile_healthcheck()
    with running_app(tiny_weights, tmp_path / "log") as (url, env):
        assert subprocess.run(local_argv(health), env=env, timeout=30).returncode == 0
    assert subprocess.run(local_argv(health), env=env, timeout=30, capture_output=True).returncode != 0


def test_compose_passes_the_app_limits_through():
    env = compose()["services"]["app"]["environment"]
    from app.options import Limits

    for field in Limits.__dataclass_fields__:
        assert f"SEGMENT_{field.upper()}" in env
    assert "STREAMLIT_SERVER_MAX_UPLOAD_SIZE" in env
