"""bench.zoomout: labelled sets shrunk into a scene without people (the small-person held-out sets)."""

import json

import cv2
import numpy as np
import pytest

from bench import zoomout


def _labelled_set(root, name, frames=3, size=(120, 80)):
    d = root / name
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    h, w = size
    for i in range(frames):
        img = np.full((h, w, 3), 200, np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[20:100, 20:60] = 255                      # the "person": 80x40 px
        img[mask > 0] = (0, 0, 255)
        cv2.imwrite(str(d / "images" / f"{i:03d}.png"), img)
        cv2.imwrite(str(d / "masks" / f"{i:03d}.png"), mask)
    (d / "labels.json").write_text(json.dumps({"teacher": "test", "soft": True}))
    return d


def _backgrounds(root, n=4):
    root.mkdir()
    for i in range(n):
        cv2.imwrite(str(root / f"bg{i}.png"), np.full((60, 90, 3), 30 * i, np.uint8))
    return root


def test_variants_put_each_set_over_its_own_backgrounds(tmp_path):
    _labelled_set(tmp_path / "in", "clip")
    zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(_backgrounds(tmp_path / "bg")),
                  "--out", str(tmp_path / "out"), "--scale", "0.5", "--variants", "3", "--seed", "1"])
    sets = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sets == ["clip~0", "clip~1", "clip~2"]
    corners = set()
    for name in sets:
        d = tmp_path / "out" / name
        images = sorted((d / "images").iterdir())
        assert len(images) == 3
        img = cv2.imread(str(images[0]))
        mask = cv2.imread(str(d / "masks" / images[0].name), cv2.IMREAD_GRAYSCALE)
        assert img.shape[:2] == mask.shape == (120, 80)                # the frame keeps its size
        assert (mask > 127).sum() == pytest.approx(80 * 40 * 0.25, rel=0.1)   # the person at half size
        assert np.all(img[mask > 127][:, 2] > 150)                    # the person's pixels are under its mask
        meta = json.loads((d / "labels.json").read_text())
        assert meta["soft"] is True and meta["scale"] == 0.5
        # the background outside the pasted frame: a flat grey of one background picture
        outside = img[mask == 0]
        corners.add(int(np.median(outside)))
    assert len(corners) > 1            # not all variants over the same background


def test_one_variant_keeps_the_set_name_and_the_earlier_draw(tmp_path):
    _labelled_set(tmp_path / "in", "clip")
    bg = _backgrounds(tmp_path / "bg")
    zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "a"),
                  "--scale", "0.4"])
    zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "b"),
                  "--scale", "0.4", "--variants", "2"])
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["clip"]
    # the first of several variants is the set one variant makes (same background, same place)
    for f in sorted((tmp_path / "a" / "clip" / "images").iterdir()):
        assert np.array_equal(cv2.imread(str(f)), cv2.imread(str(tmp_path / "b" / "clip~0" / "images" / f.name)))


def test_cut_pastes_the_person_alone(tmp_path):
    """--cut: only the labelled person goes into the scene; the rest of the shrunk frame (its grey) does not."""
    _labelled_set(tmp_path / "in", "clip")
    bg = _backgrounds(tmp_path / "bg", n=1)            # one black background
    for cut, out in ((False, "rect"), (True, "cut")):
        zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / out),
                      "--scale", "0.5"] + (["--cut"] if cut else []))
        img = cv2.imread(str(tmp_path / out / "clip" / "images" / "000.png"))
        mask = cv2.imread(str(tmp_path / out / "clip" / "masks" / "000.png"), cv2.IMREAD_GRAYSCALE)
        assert (mask > 127).sum() == pytest.approx(80 * 40 * 0.25, rel=0.1)
        inner = cv2.erode((mask > 200).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0   # the seam is soft
        assert inner.sum() > 500 and np.all(img[inner][:, 2] > 250)   # the person where its label is
        grey = (np.abs(img.astype(int) - 200).max(axis=2) < 10).sum()
        # The shrunk frame's grey is 60x40 - 40x20 = 1,600 px around the person; cut, none of it comes along.
        assert grey == (0 if cut else pytest.approx(1600, rel=0.1))


def test_the_masks_beside_frames_without_people_are_no_backgrounds(tmp_path):
    """negatives/davis-no-people holds images/ and masks/: only the pictures are scenes to paste into."""
    _labelled_set(tmp_path / "in", "clip")
    bg = tmp_path / "neg"
    (bg / "images").mkdir(parents=True)
    (bg / "masks").mkdir()
    for i in range(3):
        cv2.imwrite(str(bg / "images" / f"f{i}.jpg"), np.full((60, 90, 3), 120, np.uint8))
        cv2.imwrite(str(bg / "masks" / f"f{i}.png"), np.zeros((60, 90), np.uint8))
    zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "o"),
                  "--variants", "6"])
    for d in (tmp_path / "o").iterdir():
        img = cv2.imread(str(d / "images" / "000.png"))
        mask = cv2.imread(str(d / "masks" / "000.png"), cv2.IMREAD_GRAYSCALE)
        assert np.median(img[mask == 0]) > 100        # grey scenes everywhere, never a black mask


def test_bad_arguments_are_refused(tmp_path):
    _labelled_set(tmp_path / "in", "clip")
    bg = _backgrounds(tmp_path / "bg")
    for extra in (["--variants", "0"], ["--scale", "1.5"]):
        with pytest.raises(SystemExit):
            zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "o")]
                         + extra)
    assert not (tmp_path / "o").exists()


def test_a_set_that_cannot_be_made_leaves_nothing_behind(tmp_path):
    """zoom_out (the function, which the command's checks do not guard) refuses a crowd that does not fit after
    the set's folder was begun: no half-made set, and the set made before it stays."""
    _labelled_set(tmp_path / "in", "a")
    _labelled_set(tmp_path / "in", "b")
    bg = _backgrounds(tmp_path / "bg")
    out = tmp_path / "o"
    zoomout.zoom_out(tmp_path / "in", bg, out, scale=0.5, log=lambda _: None)
    with pytest.raises(ValueError, match="does not fit"):
        zoomout.zoom_out(tmp_path / "in", bg, out, scale=0.5, crowd=40, crowd_scale=1.0, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]       # no .partial folder
    assert len(list((out / "a" / "images").iterdir())) == 3


def test_copies_paste_each_frame_side_by_side_every_other_one_mirrored(tmp_path):
    """--copies 2: two people apart in one frame (each in its own half of the width, the second mirrored),
    both labelled, each at the same place in every frame of the set."""
    _labelled_set(tmp_path / "in", "clip", size=(120, 200))
    bg = _backgrounds(tmp_path / "bg", n=1)
    zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "out"),
                  "--scale", "0.4", "--copies", "2", "--cut"])
    d = tmp_path / "out" / "clip"
    boxes = []
    for f in sorted((d / "images").iterdir()):
        mask = cv2.imread(str(d / "masks" / f.name), cv2.IMREAD_GRAYSCALE)
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 127).astype(np.uint8))
        assert n == 3                                                     # two people
        people = sorted(stats[1:, :4].tolist())
        assert people[0][0] + people[0][2] <= 100 <= people[1][0]          # one in each half of the width
        assert all(a == pytest.approx(80 * 40 * 0.16, rel=0.2) for a in stats[1:, 4])
        img = cv2.imread(str(f))
        inner = cv2.erode((mask > 127).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0     # past the soft edge
        assert np.all(img[inner][:, 2] > 150)                              # both are drawn where labelled
        boxes.append(people)
    assert boxes[0] == boxes[-1]                                          # they stay where they are
    assert json.loads((d / "labels.json").read_text())["copies"] == 2
    with pytest.raises(SystemExit):                                       # three at 0.4 do not fit side by side
        zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "x"),
                      "--scale", "0.4", "--copies", "3"])


def test_a_crowd_sits_small_along_the_top_behind_the_person(tmp_path):
    """--crowd 3: three smaller copies (the audience) in the top quarter, one per third of the width, all
    labelled and drawn, the person at the given scale below them, each at the same place in every frame."""
    d = _labelled_set(tmp_path / "in", "clip", size=(240, 200))
    for m in (d / "masks").iterdir():                   # the person low in its frame: rows 150-230
        mask = np.zeros((240, 200), np.uint8)
        mask[150:230, 20:60] = 255
        cv2.imwrite(str(m), mask)
        img = np.full((240, 200, 3), 200, np.uint8)
        img[mask > 0] = (0, 0, 255)
        cv2.imwrite(str(d / "images" / m.name), img)
    bg = _backgrounds(tmp_path / "bg", n=1)
    zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "out"),
                  "--scale", "0.5", "--crowd", "3", "--crowd-scale", "0.5", "--cut"])
    d = tmp_path / "out" / "clip"
    places = []
    for f in sorted((d / "images").iterdir()):
        mask = cv2.imread(str(d / "masks" / f.name), cv2.IMREAD_GRAYSCALE)
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 127).astype(np.uint8))
        assert n == 5                                                   # the person and an audience of three
        people = sorted(stats[1:].tolist(), key=lambda s: -s[4])
        person, crowd = people[0], people[1:]
        assert person[4] == pytest.approx(80 * 40 * 0.25, rel=0.2) and person[1] >= 60
        for x, y, w, h, a in crowd:                                     # a quarter of the person's size, on top
            assert a == pytest.approx(80 * 40 * 0.0625, rel=0.3) and y + h <= 60
        assert sorted(x // (200 // 3) for x, *_ in crowd) == [0, 1, 2]  # one in each third of the width
        img = cv2.imread(str(f))
        inner = cv2.erode((mask > 127).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert np.all(img[inner][:, 2] > 150)                           # everyone labelled is drawn
        places.append(sorted(s[:2] for s in people))
    assert places[0] == places[-1]
    assert json.loads((d / "labels.json").read_text())["crowd"] == 3
    for extra in (["--crowd", "-1"], ["--crowd-scale", "0"], ["--crowd", "9", "--scale", "0.9", "--crowd-scale", "1"]):
        with pytest.raises(SystemExit):
            zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "x"),
                          *extra])
    assert not (tmp_path / "x").exists()


def test_statues_stand_beside_the_person_in_stone_labelled_background(tmp_path):
    """--statues 2: two still stone figures of the first frame's person on the person's ground line, painted in
    one tone (not the person's red), clear of the person's place and labelled background; the person and their
    label are exactly those of the same set made without statues."""
    d = _labelled_set(tmp_path / "in", "clip", size=(120, 240))
    for i, m in enumerate(sorted((d / "masks").iterdir())):     # the person steps right, 10 px a frame
        mask = np.zeros((120, 240), np.uint8)
        mask[20:100, 20 + 10 * i:60 + 10 * i] = 255
        img = np.full((120, 240, 3), 200, np.uint8)
        img[mask > 0] = (0, 0, 255)
        cv2.imwrite(str(m), mask)
        cv2.imwrite(str(d / "images" / m.name), img)
    bg = _backgrounds(tmp_path / "bg", n=1)
    for out, extra in (("plain", []), ("statues", ["--statues", "2"])):
        zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / out),
                      "--scale", "0.5", "--cut", "--seed", "3", *extra])
    a, b = tmp_path / "plain" / "clip", tmp_path / "statues" / "clip"
    stills = []
    for f in sorted((a / "images").iterdir()):
        mask, smask = (cv2.imread(str(d / "masks" / f.name), cv2.IMREAD_GRAYSCALE) for d in (a, b))
        img, simg = cv2.imread(str(f)).astype(int), cv2.imread(str(b / "images" / f.name)).astype(int)
        assert (mask == smask).all() and (mask > 0).any()            # the label: the person alone, unchanged
        drawn = np.abs(simg - img).sum(2) > 30
        assert not (drawn & (mask > 0)).any()                        # statues behind, beside the person
        n, labels, stats, _ = cv2.connectedComponentsWithStats(drawn.astype(np.uint8))
        figures = [s for s in stats[1:] if s[4] > 100]
        assert 1 <= len(figures) <= 2 and sum(s[4] for s in figures) >= 0.9 * 40 * 20   # a person's size each
        inner = cv2.erode(drawn.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        chroma = simg[inner] / (simg[inner].sum(1, keepdims=True) + 1)
        assert chroma.std(0).max() < 0.05 and not (simg[inner][:, 2] > 150).all()     # stone, not the red person
        person_y = np.nonzero(mask.any(1))[0]
        statue_y = np.nonzero(drawn.any(1))[0]
        assert abs(person_y[-1] - statue_y[-1]) <= 2                  # on the same ground line
        stills.append(drawn)
    assert all((s == stills[0]).all() for s in stills)                # statues stand still
    assert json.loads((b / "labels.json").read_text())["statues"] == 2
    with pytest.raises(SystemExit):
        zoomout.main(["--input", str(tmp_path / "in"), "--backgrounds", str(bg), "--out", str(tmp_path / "x"),
                      "--statues", "-1"])
