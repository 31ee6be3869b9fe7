"""bench.heldout: the held-out selection sets built in one command (labels by a stand-in MediaPipe) and scored."""

import json
import sys

import cv2
import numpy as np
import pytest

from bench import heldout
from conftest import make_clip
from tests.train_helpers import write_folder_set
from train.data import find_records, load_target, split_records
from train.evaluate import evaluate


@pytest.fixture()
def data(tmp_path):
    """A tiny ../shared/datasets: five clips, two photo sets, frames without people."""
    d = tmp_path / "datasets"
    (d / "videos-unlabelled").mkdir(parents=True)
    (d / "videos").mkdir()
    for name in ("dance_dispose_1080x1920", "juggle_sam2", "bedroom_sam2", "catwalk_ubc"):
        make_clip(d / "videos-unlabelled" / f"{name}.mp4", size="96x64", rate="10", seconds=0.4, audio=False)
    make_clip(d / "videos" / "tiktok_dance_0.mp4", size="96x64", rate="10", seconds=0.4, audio=False)
    write_folder_set(d / "photos" / "ccp", 10, seed=1, prefix="ccp")
    write_folder_set(d / "photos" / "vikram", 10, seed=2, prefix="vikram")
    neg = d / "negatives" / "davis-no-people"
    (neg / "masks").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(neg / f"bg{i}.jpg"), np.full((64, 96, 3), 40 * i + 20, np.uint8))
        cv2.imwrite(str(neg / "masks" / f"bg{i}.png"), np.zeros((64, 96), np.uint8))   # not a background
    return d


def test_build_labels_the_clips_and_makes_every_set(tmp_path, data, fake_mediapipe_python):
    labels = tmp_path / "L"
    lines = []
    heldout.build(labels, data, str(fake_mediapipe_python), log=lines.append)
    # the teacher labelled every 2nd frame of each clip; bedroom_sam2 also with two people followed
    assert sorted(p.name for p in (labels / "u").iterdir() if p.is_dir()) == \
        ["bedroom_sam2", "catwalk_ubc", "dance_dispose_1080x1920", "juggle_sam2"]
    assert (labels / "two" / "bedroom2" / "images").is_dir()
    assert not [p for p in labels.iterdir() if p.name.startswith(".")]     # no scratch folder left
    # held-out clips only in val/, the two-person clip in neither, the rest in train/
    assert sorted(p.name for p in (labels / "val").iterdir()) == ["dance_dispose_1080x1920", "juggle_sam2"]
    assert sorted(p.name for p in (labels / "train").iterdir()) == ["catwalk_ubc", "tiktok_dance_0"]
    assert (labels / "train" / "catwalk_ubc").resolve() == (labels / "u" / "catwalk_ubc").resolve()
    # pval: exactly train's own photo val split, one set per photo
    photos = find_records(data / "photos" / "ccp") + find_records(data / "photos" / "vikram")
    val = {r.name for r in split_records(photos, 0.1, 0)[1]}
    assert {p.name for p in (labels / "pval").iterdir()} == {n.split(".")[0] for n in val} and len(val) == 2
    # the shrunk sets: every input set over its own scenes, the frames' size kept, labels under the people
    for name, src, kw in heldout.SHRUNK:
        made = sorted(p.name for p in (labels / name).iterdir() if not p.name.startswith("."))
        inputs = sorted(p.name for p in (labels / src).iterdir())
        assert made == sorted(f"{s}~{k}" for s in inputs for k in range(kw["variants"])), name
        assert any(f"{name}:" in line for line in lines)
    shrunk = find_records(labels / "val-small4")
    img, mask = load_target(shrunk[0])
    full = load_target(find_records(labels / "val")[0])[1]
    assert img.shape[:2] == mask.shape == full.shape[:2]
    assert 0 < (mask > 0.5).sum() < (full > 0.5).sum()              # the person is there, and smaller

    # a second build leaves the labels alone and makes the same sets (fixed seeds)
    before = cv2.imread(str(sorted((labels / "two-cut4" / "bedroom2~1" / "images").iterdir())[0]))
    heldout.build(labels, data, None, log=lines.append)
    after = cv2.imread(str(sorted((labels / "two-cut4" / "bedroom2~1" / "images").iterdir())[0]))
    assert np.array_equal(before, after)


def test_build_without_labels_or_teacher_says_how(tmp_path, data, capsys):
    assert heldout.main(["build", "--labels", str(tmp_path / "L"), "--data", str(data)]) == 1
    assert "--mediapipe-python" in capsys.readouterr().err
    # a teacher that fails (a python without mediapipe): an error, and nothing that would pass for labels
    assert heldout.main(["build", "--labels", str(tmp_path / "L"), "--data", str(data),
                         "--mediapipe-python", sys.executable]) == 1
    assert "mediapipe" in capsys.readouterr().err
    assert list((tmp_path / "L").iterdir()) == []


def test_score_runs_each_set_as_the_app_does_and_prints_one_row(tmp_path, data, fake_mediapipe_python,
                                                                 tiny_weights, capsys):
    labels = tmp_path / "L"
    heldout.build(labels, data, str(fake_mediapipe_python), log=lambda _: None)
    out = tmp_path / "row.json"
    assert heldout.main(["score", "--weights", str(tiny_weights), "--labels", str(labels), "--data", str(data),
                         "--sets", "val", "pval-cut", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert list(scores) == ["val", "pval-cut", "mean", "pv"]
    assert scores["mean"] == pytest.approx((scores["val"] + scores["pval-cut"]) / 2)
    # the same numbers as train.evaluate run by hand the card's way
    from model.focus import Focus
    from model.refine import RefineOptions
    kw = dict(infer_size=384, refine=RefineOptions(), focus=Focus(), backend="torch")
    assert scores["val"] == pytest.approx(evaluate(tiny_weights, [labels / "val"], every=3, **kw)["overall"]["mean_iou"])
    # photos as the app makes them: also seen mirrored (still)
    assert scores["pval-cut"] == pytest.approx(evaluate(tiny_weights, [labels / "pval-cut"], still=True,
                                                        **kw)["overall"]["mean_iou"])
    assert scores["pv"] == pytest.approx(evaluate(tiny_weights, [data / "photos" / "ccp", data / "photos" / "vikram"],
                                                  val_split=True, still=True, **kw)["overall"]["mean_iou"])
    with pytest.raises(ValueError, match="keyframes"):
        evaluate(tiny_weights, [labels / "pval-cut"], still=True, every=3, **kw)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "| weights | val | pval-cut | mean | pv |"
    assert printed[1] == f"| {tiny_weights.name} | " + " | ".join(f"{v:.4f}" for v in scores.values()) + " |"


def test_score_refuses_unknown_or_unbuilt_sets(tmp_path, data, tiny_weights, capsys):
    with pytest.raises(SystemExit):
        heldout.main(["score", "--weights", str(tiny_weights), "--labels", str(tmp_path), "--sets", "nope"])
    assert "unknown set" in capsys.readouterr().err
    assert heldout.main(["score", "--weights", str(tiny_weights), "--labels", str(tmp_path), "--sets", "val"]) == 1
    assert "bench.heldout build" in capsys.readouterr().err
