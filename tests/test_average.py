"""train.average: the mean of a run's checkpoints is a working checkpoint of the same network."""

from __future__ import annotations

import pytest
import torch

from model import ModelSpec, load_checkpoint, save_checkpoint
from model.network import build_model
from train.average import average_checkpoints, main

SPEC = ModelSpec(encoder="mobilenet_v2", decoder_channels=(32, 16, 16, 8, 8), infer_size=64)


def _saved(path, seed: int, spec: ModelSpec = SPEC, epoch: int = 1):
    torch.manual_seed(seed)
    net = build_model(spec)
    with torch.no_grad():       # distinct BatchNorm statistics too, so their averaging is checked
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.num_batches_tracked.fill_(100 * seed)
    return save_checkpoint(path, net, spec, epoch=epoch, config={"train": ["photos"], "seed": seed})


def test_the_average_is_the_weighted_mean_of_every_float_tensor(tmp_path):
    a, b = _saved(tmp_path / "a.safetensors", 1, epoch=1), _saved(tmp_path / "b.safetensors", 2, epoch=2)
    sa, sb = (load_checkpoint(p).model.state_dict() for p in (a, b))
    avg = average_checkpoints([a, b], [1, 3])
    got = avg.model.state_dict()
    floats = [k for k in got if got[k].is_floating_point()]
    assert any("running_var" in k for k in floats) and len(floats) > 100
    for k in floats:
        torch.testing.assert_close(got[k], 0.25 * sa[k] + 0.75 * sb[k])
    counter = next(k for k in got if k.endswith("num_batches_tracked"))
    assert int(got[counter]) == 200                        # the last input's, not a mean
    assert avg.metadata["epoch"] == "1+2" and avg.metadata["config"]["seed"] == 2
    assert [s["weight"] for s in avg.metadata["averaged_from"]] == [0.25, 0.75]


def test_the_cli_writes_a_checkpoint_that_loads_and_says_where_it_came_from(tmp_path, capsys):
    a, b = _saved(tmp_path / "a.safetensors", 1), _saved(tmp_path / "b.safetensors", 2, epoch=2)
    out = tmp_path / "avg" / "best.safetensors"
    assert main([str(a), str(b), "--out", str(out)]) == 0
    ck = load_checkpoint(out)
    assert ck.spec == SPEC and [s["file"] for s in ck.metadata["averaged_from"]] == ["a.safetensors", "b.safetensors"]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y = ck.model(x)
    assert y.shape == (1, 1, 64, 64) and torch.isfinite(y).all()
    assert "wrote" in capsys.readouterr().out
    # A mean of a mean keeps the inner record, and train.ship's card line spells the whole mix out.
    c = _saved(tmp_path / "c.safetensors", 3, epoch=3)
    outer = tmp_path / "outer.safetensors"
    assert main([str(out), str(c), "--out", str(outer), "--weights", "0.6", "0.4"]) == 0
    mix = load_checkpoint(outer).metadata["averaged_from"]
    assert [s["file"] for s in mix[0]["averaged_from"]] == ["a.safetensors", "b.safetensors"]
    assert "averaged_from" not in mix[1]
    from train.ship import card_block
    line = card_block({"epoch": "1+2+3", "date": "today", "val": {}, "averaged_from": mix}).splitlines()[0]
    assert line.startswith("The weighted mean 0.60 x `best.safetensors` = (0.50 x `a.safetensors` (epoch 1) + "
                           "0.50 x `b.safetensors` (epoch 2)) + 0.40 x `c.safetensors` (epoch 3)"), line


def test_different_networks_or_bad_weights_are_refused(tmp_path):
    a = _saved(tmp_path / "a.safetensors", 1)
    other = _saved(tmp_path / "c.safetensors", 3, ModelSpec(encoder="mobilenet_v2", decoder_channels=(16, 16, 8, 8, 8),
                                                            infer_size=64))
    with pytest.raises(ValueError, match="only one network"):
        average_checkpoints([a, other])
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([a])
    with pytest.raises(ValueError, match="one positive weight"):
        average_checkpoints([a, a], [1, 0])
    with pytest.raises(SystemExit):
        main([str(a), str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "o.safetensors")])
    assert not (tmp_path / "o.safetensors").exists()
