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
