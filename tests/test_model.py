"""model/: spec, checkpoints, and the Segmenter's resizing contract."""

import numpy as np
import pytest
import torch

from model import ModelSpec, Segmenter, build_model, load_checkpoint, save_checkpoint
from model.checkpoint import CheckpointError, read_metadata
from model.preprocess import inference_shape

TINY = dict(encoder="mobilenet_v2", decoder_channels=(16, 16, 8, 8, 8), infer_size=64)


def test_spec_roundtrip_and_validation():
    spec = ModelSpec(**TINY)
    assert ModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError):
        ModelSpec(infer_size=100)
    with pytest.raises(ValueError):
        ModelSpec(classes=0)


def test_normalisation_is_inside_the_model():
    model = build_model(ModelSpec(**TINY)).eval()
    grey = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 64, 64)
    normalised = (grey - model.mean) / model.std
    assert torch.allclose(normalised, torch.zeros_like(normalised), atol=1e-6)


def test_checkpoint_roundtrip_fp16(tmp_path):
    torch.manual_seed(0)
    spec = ModelSpec(**TINY)
    model = build_model(spec).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, spec, half=True, metrics={"val_iou": 0.9}, data="unit")
    meta = read_metadata(path)
    assert meta["metrics"] == {"val_iou": 0.9} and meta["data"] == "unit" and "date" in meta
    ckpt = load_checkpoint(path)
    assert ckpt.spec == spec
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ckpt.model(x), atol=5e-2)   # fp16 storage, fp32 compute
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # written atomically, no temp left


def test_checkpoint_rejects_other_files(tmp_path):
    pickle = tmp_path / "evil.safetensors"
    pickle.write_bytes(b"\x80\x04\x95 not safetensors")
    with pytest.raises(CheckpointError):
        load_checkpoint(pickle)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("h, w, expected", [(1920, 1080, (320, 180)), (480, 854, (180, 320)), (1, 5000, (1, 320))])
def test_inference_shape_keeps_aspect(h, w, expected):
    assert inference_shape(h, w, 320) == expected


def test_predict_returns_alpha_at_each_frames_size(tiny_segmenter):
    frames = [np.zeros((605, 1077, 3), np.uint8), np.full((1, 300, 3), 200, np.uint8), np.zeros((64, 48, 3), np.uint8)]
    alphas = tiny_segmenter.predict(frames)
    assert [a.shape for a in alphas] == [(605, 1077), (1, 300), (64, 48)]
    assert all(a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1 for a in alphas)


def test_batching_does_not_change_results(tiny_segmenter):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 90, 3), dtype=np.uint8) for _ in range(3)]
    together = tiny_segmenter.predict(frames)
    alone = [tiny_segmenter.predict([f])[0] for f in frames]
    for a, b in zip(together, alone):
        assert np.allclose(a, b, atol=1e-4)


def test_multiclass_argmax_at_low_resolution():
    torch.manual_seed(0)
    spec = ModelSpec(**{**TINY, "classes": 3})
    seg = Segmenter(build_model(spec), spec)
    frame = np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    labels = seg.predict_labels([frame])[0]
    assert labels.shape == (100, 150) and labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2}
    logits, shapes = seg.logits([frame])
    low = logits[0, :, : shapes[0][0], : shapes[0][1]].argmax(0).numpy()
    assert set(np.unique(labels)) == set(np.unique(low))          # nearest upsampling adds no new classes
    alpha = seg.predict([frame])[0]
    assert np.array_equal(alpha > 0, labels > 0)


def test_onnx_backend_matches_torch(tmp_path, tiny_weights):
    from model.export import export_onnx

    onnx_file = export_onnx(tiny_weights, tmp_path / "tiny.onnx")        # raises if parity is off
    torch_seg = Segmenter.from_checkpoint(tiny_weights, device="cpu", backend="torch")
    import model.export as export

    onnx_seg = Segmenter(torch_seg.model, torch_seg.spec, session=export.ort_session(onnx_file))
    assert onnx_seg.backend == "onnx" and torch_seg.backend == "torch"
    frames = [np.random.default_rng(i).integers(0, 256, (200 + 37 * i, 150, 3), dtype=np.uint8) for i in range(3)]
    for a, b in zip(torch_seg.predict_lowres(frames), onnx_seg.predict_lowres(frames)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]


def test_mirrored_averages_each_frame_with_its_mirror_image(tmp_path, tiny_weights):
    """Segmenter.mirrored (the app's photos): each frame's logits are the mean of the network's answer and its
    answer on the mirror image flipped back, also for frames of several widths padded into one batch and on the
    ONNX backend; so a mirrored photo's matte is the matte mirrored, which the plain network's is not."""
    from model.export import export_onnx, ort_session

    plain = Segmenter.from_checkpoint(tiny_weights, device="cpu", backend="torch")
    onnx = Segmenter(None, plain.spec, session=ort_session(export_onnx(tiny_weights, tmp_path / "tiny.onnx")))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((200, 150), (90, 237), (120, 91))]
    for seg in (plain, onnx):
        mirrored = seg.mirrored()
        assert mirrored.mirror and not seg.mirror and mirrored.network is seg.network
        assert mirrored.with_infer_size(96).mirror
        smalls = [seg.shrink(f) for f in frames]
        out, shapes = mirrored.logits_small(smalls)
        assert out.shape[0] == 3 and shapes == [s.shape[:2] for s in smalls]
        as_is = seg.logits_small(smalls)[0]         # padded alike: a batch pads to its largest frame
        flipped = seg.logits_small([np.ascontiguousarray(s[:, ::-1]) for s in smalls])[0]
        for k, (h, w) in enumerate(shapes):
            mean = (as_is[k, :, :h, :w] + flipped[k, :, :h, :w].flip(-1)) / 2
            assert torch.allclose(out[k, :, :h, :w], mean, atol=1e-4)
        frame = frames[1]
        a, b = mirrored.predict_lowres([frame, np.ascontiguousarray(frame[:, ::-1])])
        assert np.abs(a - b[:, ::-1]).max() < 1e-4
        a, b = seg.predict_lowres([frame, np.ascontiguousarray(frame[:, ::-1])])
        assert np.abs(a - b[:, ::-1]).max() > 1e-3       # a random network is not symmetric by itself


def test_auto_backend_caches_the_export(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    seg = Segmenter.from_checkpoint(tiny_weights, device="cpu", backend="auto")
    assert seg.backend == "onnx"
    cached = list((tmp_path / "tiktok-cutout").glob("*.onnx"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime
    Segmenter.from_checkpoint(tiny_weights, device="cpu", backend="auto")
    assert cached[0].stat().st_mtime == mtime                             # reused, not re-exported
    small = seg.with_infer_size(96)
    assert small.session is seg.session and small.infer_size == 96


def test_int8_copy_is_used_only_while_it_matches_its_checkpoint(tmp_path, tiny_weights):
    """train.int8 writes <stem>.int8.onnx beside the weights; "auto" runs it on a CPU, and ignores it as soon as
    the checkpoint beside it is another one (retrained weights must not run a stale INT8 network)."""
    import shutil

    import cv2
    import torch

    from model import build_model, load_checkpoint, save_checkpoint
    from model.export import int8_path_for, quantize_int8

    weights = tmp_path / "tiny.safetensors"
    shutil.copy(tiny_weights, weights)
    rng = np.random.default_rng(0)
    images = []
    for i in range(8):              # smooth random pictures: calibration needs no labels
        path = tmp_path / f"cal{i}.png"
        cv2.imwrite(str(path), cv2.resize(rng.integers(0, 256, (12, 9, 3), dtype=np.uint8), (180, 240)))
        images.append(path)
    with pytest.raises(FileNotFoundError, match="INT8"):
        Segmenter.from_checkpoint(weights, device="cpu", backend="int8")
    out = quantize_int8(weights, images, count=8)
    assert out == tmp_path / "tiny.int8.onnx" and int8_path_for(weights) == out
    int8 = Segmenter.from_checkpoint(weights, device="cpu", backend="auto")
    ref = Segmenter.from_checkpoint(weights, device="cpu", backend="torch")
    assert int8.backend == "int8" and int8.with_infer_size(96).backend == "int8"
    frames = [cv2.resize(rng.integers(0, 256, (10, 8, 3), dtype=np.uint8), (150, 200)) for _ in range(3)]
    a = np.concatenate([p.ravel() for p in ref.with_infer_size(128).predict_lowres(frames)])
    b = np.concatenate([p.ravel() for p in int8.with_infer_size(128).predict_lowres(frames)])
    assert a.shape == b.shape and np.corrcoef(a, b)[0, 1] > 0.9       # the same network, in 8 bits
    # Another checkpoint under the same name: the INT8 file no longer belongs to it.
    spec = load_checkpoint(weights).spec
    torch.manual_seed(1)
    save_checkpoint(weights, build_model(spec), spec, name="retrained")
    assert int8_path_for(weights) is None
    assert Segmenter.from_checkpoint(weights, device="cpu", backend="auto").backend == "onnx"


def test_the_shipped_int8_copy_belongs_to_the_shipped_weights():
    """Whoever re-ships weights/default.safetensors must remake weights/default.int8.onnx (python -m train.int8)."""
    from app.pipeline import DEFAULT_WEIGHTS
    from model.export import int8_path_for

    assert int8_path_for(DEFAULT_WEIGHTS) == DEFAULT_WEIGHTS.with_name("default.int8.onnx")
