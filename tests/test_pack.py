"""train.pack: a training set packed small (WebP stills, H.264 clips) comes back as the same records."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.train_helpers import write_folder_set
from train import pack as pack_mod
from train.data import LABELS_FILE, DataError, find_records, split_records


def _clip(root: Path, n: int, h: int, w: int) -> Path:
    """A pseudo-labelled clip as train.label writes it: a disc moving over a gradient, its soft mask."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        cx, cy = w * (0.3 + 0.4 * i / n), h * 0.5
        d = np.hypot(xx - cx, yy - cy)
        img = np.dstack([xx * 255 // w, yy * 255 // h, np.full((h, w), 90)]).astype(np.uint8)
        img[d < h / 4] = (40, 200, 230)
        mask = np.clip((h / 4 + 2 - d) / 4, 0, 1)             # soft at the edge, as the teacher's confidence
        cv2.imwrite(str(root / "images" / f"{root.name}_{2 * i:05d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{root.name}_{2 * i:05d}.png"), (mask * 255).round().astype(np.uint8))
    (root / LABELS_FILE).write_text(json.dumps({"name": root.name, "teacher": "pose", "soft": True, "path": "x"}))
    return root


@pytest.fixture
def sources(tmp_path) -> dict[str, Path]:
    return {"photos": write_folder_set(tmp_path / "src" / "ccp", 20, seed=1, size=(120, 80)),
            "negatives": write_folder_set(tmp_path / "src" / "neg", 3, seed=2, empty=True, prefix="neg"),
            "pseudo": tmp_path / "src" / "clips",
            "even": _clip(tmp_path / "src" / "clips" / "even", 9, 64, 96),
            "odd": _clip(tmp_path / "src" / "clips" / "odd", 6, 63, 95)}


def test_pack_and_unpack_give_back_the_same_records(sources, tmp_path):
    packed = pack_mod.pack(tmp_path / "pack", photos=[sources["photos"]], negatives=[sources["negatives"]],
                           pseudo=[sources["pseudo"]], photo_side=100)
    assert packed == {"photos": 20, "negatives": 3, "frames": 15}
    assert sorted(p.name for p in (tmp_path / "pack" / "pseudo" / "odd").iterdir()) == \
        ["frames.mp4", "masks.mp4", "meta.json"]
    got = pack_mod.unpack(tmp_path / "pack", tmp_path / "out", workers=2)
    assert got == {"photos": 20, "negatives": 3, "frames": 15}

    # Photos: same stems, so the seeded validation split is the same; shrunk to the side asked for.
    before, after = find_records(sources["photos"]), find_records(tmp_path / "out" / "photos" / "ccp")
    assert [r.name for r in before] == [r.name for r in after]
    assert [r.name for r in split_records(before, 0.25, 0)[1]] == [r.name for r in split_records(after, 0.25, 0)[1]]
    img, target = after[0].load_target()
    assert img.shape[:2] == target.shape == (100, 67)

    # Clips: every frame back under its own name, at its own size (odd sizes too), labels still soft.
    for name in ("even", "odd"):
        src, out = sources[name], tmp_path / "out" / "pseudo" / name
        assert sorted(p.stem for p in (src / "images").iterdir()) == sorted(p.stem for p in (out / "images").iterdir())
        assert json.loads((out / LABELS_FILE).read_text())["soft"] is True
        for stem in (p.stem for p in (src / "images").iterdir()):
            a = cv2.imread(str(src / "images" / f"{stem}.png")).astype(float)
            b = cv2.imread(str(out / "images" / f"{stem}.jpg")).astype(float)
            assert a.shape == b.shape
            psnr = 10 * np.log10(255 ** 2 / max(((a - b) ** 2).mean(), 1e-9))
            assert psnr > 26            # dB: 29 on these flat synthetic frames, 34.6-41.5 on the real clips
            ma = cv2.imread(str(src / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE).astype(float)
            mb = cv2.imread(str(out / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE).astype(float)
            assert np.abs(ma - mb).mean() < 4
            inter, union = ((ma > 127) & (mb > 127)).sum(), ((ma > 127) | (mb > 127)).sum()
            assert inter / union > 0.95
    assert all(r.soft for r in find_records(tmp_path / "out" / "pseudo"))


def test_pack_errors_are_clear(sources, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert pack_mod.main(["--out", str(tmp_path / "taken"), "--photos", str(sources["photos"])]) == 2
    assert "exists" in capsys.readouterr().err
    bad = sources["even"]
    cv2.imwrite(str(next((bad / "images").iterdir())), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(DataError, match="the clip's frames"):
        pack_mod.pack(tmp_path / "p2", photos=[], negatives=[], pseudo=[bad])
    with pytest.raises(DataError, match="no images/"):
        pack_mod.pack(tmp_path / "p3", photos=[], negatives=[], pseudo=[tmp_path / "taken"])
