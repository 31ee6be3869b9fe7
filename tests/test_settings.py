"""model.settings: the one reader of the environment, and the process tuning that only entry points apply."""

import os
import subprocess
import sys
from dataclasses import fields

import pytest
from conftest import REPO

from app.options import Limits
from model import settings


def python(code: str, **env: str) -> str:
    """Run `code` in a fresh interpreter (no OMP_WAIT_POLICY unless given); its stdout."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SEGMENT_THREADS")}
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**base, **env})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_importing_the_packages_tunes_nothing():
    """The allocator, OpenMP and OpenCV are tuned by the entry points (tune_process), never by an import."""
    out = python("import os, cv2\n"
                 "before = cv2.getNumThreads()\n"
                 "import app, app.cli, app.pipeline, app.ui, bench.__main__, model.export\n"
                 "print(os.environ.get('OMP_WAIT_POLICY'), cv2.getNumThreads() == before)")
    assert out == "None True"


def test_tune_process_sets_openmp_and_opencv_threads():
    code = "import os, cv2\nfrom model.settings import tune_process\ntune_process()\n" \
           "print(os.environ['OMP_WAIT_POLICY'], cv2.getNumThreads())"
    assert python(code, SEGMENT_THREADS="3") == "PASSIVE 3"
    assert python(code, SEGMENT_THREADS="1", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE 1"    # an explicit setting wins


def test_training_leaves_openmp_spinning():
    """python -m train (and its step benchmark) keep OpenMP's default wait policy: PASSIVE made a step 1.7x slower."""
    for module in ("train", "bench.train_step"):
        code = ("import os, runpy, sys, contextlib, io\nsys.argv = ['x', '--help']\n"
                "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
                f"    runpy.run_module('{module}', run_name='__main__')\n"
                "print(os.environ.get('OMP_WAIT_POLICY'))")
        assert python(code) == "None", module
    code = "import os\nfrom model.settings import tune_process\ntune_process(pipeline=False)\n" \
           "print(os.environ['OMP_WAIT_POLICY'])"
    assert python(code) == "PASSIVE"       # evaluation, labelling, export: as before


def test_every_limit_has_its_variable(monkeypatch):
    assert set(settings.LIMIT_VARIABLES) == {f.name for f in fields(Limits)}
    for name, (variable, kind) in settings.LIMIT_VARIABLES.items():
        monkeypatch.setenv(variable, "7")
        assert getattr(Limits.from_env(), name) == kind(7)
    for variable, _ in settings.LIMIT_VARIABLES.values():
        monkeypatch.delenv(variable)
    assert Limits.from_env() == Limits()


@pytest.mark.parametrize("env, expected", [({}, (0, 0, 1, False)),
                                           ({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}, (3, 1, 4, True))])
def test_distributed_reads_torchrun_variables(monkeypatch, env, expected):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    d = settings.distributed()
    assert (d.rank, d.local_rank, d.world_size, d.enabled) == expected


def test_app_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("SEGMENT_WEIGHTS", raising=False)
    monkeypatch.delenv("SEGMENT_SESSION_FILES_TTL_S", raising=False)
    assert settings.weights() is None and settings.session_files_ttl_s() == 3600
    monkeypatch.setenv("SEGMENT_WEIGHTS", str(tmp_path / "w.safetensors"))
    monkeypatch.setenv("SEGMENT_SESSION_FILES_TTL_S", "60")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert settings.weights() == tmp_path / "w.safetensors" and settings.session_files_ttl_s() == 60
    assert settings.cache_dir() == tmp_path / "tiktok-cutout"


def test_the_network_gets_every_core_and_opencv_half_unless_told(monkeypatch):
    monkeypatch.delenv("SEGMENT_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert (settings.network_threads(), settings.opencv_threads()) == (8, 4)
    monkeypatch.setattr(os, "cpu_count", lambda: None)          # unknown: one of each
    assert (settings.network_threads(), settings.opencv_threads()) == (1, 1)
    monkeypatch.setenv("SEGMENT_THREADS", "3")
    assert (settings.network_threads(), settings.opencv_threads()) == (3, 3)
