"""train.gpu: the helpers of a one-call training run on a lent GPU machine, exercised on the CPU."""

from __future__ import annotations

import time

import torch
from safetensors import safe_open

from model import load_checkpoint
from model.checkpoint import read_metadata, save_checkpoint
from tests.train_helpers import write_folder_set
from train.gpu import calibrate, fp16_epochs, make_init
from train.imagenet import load_imagenet_encoder
from train.loop import TrainConfig, _initial_model


def test_make_init_writes_the_imagenet_encoder_in_fp16(tmp_path):
    out = tmp_path / "init.safetensors"
    assert make_init.main([str(out), "--encoder", "timm-tf_efficientnet_lite0"]) == 0
    ck = load_checkpoint(out)
    assert ck.spec.encoder == "timm-tf_efficientnet_lite0" and ck.spec.infer_size == 320
    with safe_open(str(out), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()} == {torch.float16}
    ref = _initial_model(TrainConfig(train=("x",), imagenet=False), 0)
    load_imagenet_encoder(ref, "timm-tf_efficientnet_lite0")
    got, want = ck.model.state_dict(), ref.state_dict()
    for k in want:
        if k.startswith("encoder.") and want[k].is_floating_point():
            assert torch.allclose(got[k], want[k].half().float()), k


def test_fp16_epochs_copies_each_epoch_once_at_half_size(tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    out.mkdir()
    cfg = TrainConfig(train=("x",), encoder="mobilenet_v2", decoder_channels=(16, 8, 8, 8, 8), infer_size=64,
                      imagenet=False)
    model = _initial_model(cfg, 0)
    seen: set[str] = set()
    fp16_epochs.convert(run, out, seen)                     # nothing yet
    assert list(out.iterdir()) == []
    save_checkpoint(run / "last.safetensors", model, cfg.spec(), epoch=1, name="t")
    fp16_epochs.convert(run, out, seen)
    first = (out / "ep1.safetensors").stat().st_mtime_ns
    time.sleep(0.01)
    fp16_epochs.convert(run, out, seen)                     # same epoch: left alone
    assert (out / "ep1.safetensors").stat().st_mtime_ns == first
    assert read_metadata(out / "ep1.safetensors")["epoch"] == 1
    assert (out / "ep1.safetensors").stat().st_size < 0.6 * (run / "last.safetensors").stat().st_size
    got = load_checkpoint(out / "ep1.safetensors").model.state_dict()
    for k, v in model.state_dict().items():
        assert torch.allclose(got[k].float(), v.float(), rtol=1e-3, atol=1e-3), k
    save_checkpoint(run / "last.safetensors", model, cfg.spec(), epoch=2, name="t")
    (out / ".stop").touch()
    assert fp16_epochs.main([str(run), str(out)]) == 0      # converts once more, then stops
    assert sorted(p.name for p in out.iterdir()) == ["ep1.safetensors", "ep2.safetensors"]


def test_calibrate_prints_the_steps_that_fit(tmp_path, capsys):
    data = write_folder_set(tmp_path / "set", 12, seed=1)
    flags = ["--train", str(data), "--encoder", "mobilenet_v2", "--decoder-channels", "16,8,8,8,8",
             "--infer-size", "64", "--size", "64x64", "--batch", "2", "--no-imagenet", "--out", str(tmp_path / "c")]
    assert calibrate.main([str(time.time() + 1000), "2", *flags]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("calibration:")
    assert int(lines[-1]) > 1
    # a deadline already past leaves the minimum
    assert calibrate.main([str(time.time()), "2", *flags]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1"


def test_prepare_trims_what_travels_and_restore_puts_it_back(tmp_path):
    """train/gpu/prepare.sh in a scratch repository, with a stand-in python that makes a pack of a chosen size and
    no wheels: the shipped weights and pictures leave what a device call carries, and --restore brings them
    back with nothing else changed; a pack too big for a call is refused."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    repo = tmp_path / "repo"
    (repo / "train" / "gpu").mkdir(parents=True)
    (repo / "train" / "gpu" / "prepare.sh").write_text((root / "train" / "gpu" / "prepare.sh").read_text())
    for name, size in (("weights/default.safetensors", 1000), ("weights/default.int8.onnx", 500),
                       ("docs/app.png", 300), ("docs/hero.webp", 200), ("model/code.py", 100)):
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_bytes(b"x" * size)
    (repo / ".gitignore").write_text("/.pack/\n/.whl/\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    fake = tmp_path / "python"          # `-m train.pack` writes PACK_MB of data, everything else does nothing
    fake.write_text('#!/bin/bash\nif [ "$2" = train.pack ]; then mkdir -p .pack/data && '
                    'head -c $((PACK_MB * 1048576)) /dev/zero > .pack/data/blob; fi\n'
                    '[ "$3" = freeze ] && echo simsimd==6.5.16; exit 0\n')
    fake.chmod(0o755)

    def prepare(*args, mb=1):
        env = {**os.environ, "PY": str(fake), "PACK_MB": str(mb)}
        return subprocess.run(["bash", "train/gpu/prepare.sh", *args], cwd=repo, env=env,
                              capture_output=True, text=True)

    def carried():
        out = subprocess.run([*git, "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True)
        return set(out.stdout.split())

    done = prepare("labels")
    assert done.returncode == 0, done.stderr
    assert "travels: 1 MiB" in done.stdout
    assert carried() == {"model/code.py", "train/gpu/prepare.sh", ".gitignore"}
    back = prepare("--restore")
    assert back.returncode == 0, back.stderr
    assert carried() == {"model/code.py", "train/gpu/prepare.sh", ".gitignore", "weights/default.safetensors",
                         "weights/default.int8.onnx", "docs/app.png", "docs/hero.webp"}
    status = subprocess.run([*git, "status", "--short"], capture_output=True, text=True).stdout.split("\n")
    assert [s for s in status if s] == []
    too_big = prepare("labels", mb=63)
    assert too_big.returncode == 1 and "over 62 MiB" in too_big.stderr
    prepare("--restore")
