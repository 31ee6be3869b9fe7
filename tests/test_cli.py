"""The command line: outputs, batch folders, and one clear sentence (never a traceback) on bad input."""

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import REPO, ffmpeg

from app.video_io import stream_info
from model.segmenter import default_device


def cli(*args, cwd=REPO):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


def test_single_clip_with_format_override(tmp_path, media, tiny_weights):
    out = tmp_path / "result.bin"
    run = cli(media / "clip.mp4", "--mode", "overlay", "--format", "webm", "--out", out, "-w", tiny_weights, "-q")
    assert run.returncode == 0, run.stderr
    assert "90 frames" in run.stdout and "fps" in run.stdout
    assert stream_info(out)["streams"][0]["codec_name"] == "vp9"


def test_folder_batch(tmp_path, media, tiny_weights):
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    (src / "clip.mp4").write_bytes((media / "clip.mp4").read_bytes())
    Image.new("RGB", (40, 30), "red").save(src / "photo.jpg")
    (src / "notes.txt").write_text("ignored: not media")
    run = cli(src, "--mode", "mask", "--out", tmp_path / "out", "-w", tiny_weights, "-q")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_mask.mp4", "photo_mask.png"]
    assert len(run.stdout.strip().splitlines()) == 2                        # one summary line per file


def test_background_image_means_replace(tmp_path, media, tiny_weights):
    from PIL import Image

    bg = tmp_path / "bg.png"
    Image.new("RGB", (64, 64), "blue").save(bg)
    run = cli(media / "clip.mp4", "--background", bg, "--out", tmp_path / "r.gif", "-w", tiny_weights, "-q")
    assert run.returncode == 0, run.stderr
    assert stream_info(tmp_path / "r.gif")["streams"][0]["codec_name"] == "gif"


# What the CPU path must not load: torch and segmentation-models-pytorch (with timm and torchvision) cost seconds
# of imports at every start, the onnx package a second more; ONNX Runtime alone runs the shipped INT8 copy.
HEAVY = ("torch", "segmentation_models_pytorch", "timm", "torchvision", "onnx")


@pytest.mark.skipif(default_device() != "cpu", reason="with a GPU, the app runs the network in torch")
def test_cpu_path_imports_neither_torch_nor_smp(tmp_path, media):
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    (src / "clip.mp4").write_bytes((media / "clip.mp4").read_bytes())
    Image.new("RGB", (64, 48), "red").save(src / "photo.png")
    script = ("import sys\nfrom app.cli import main\nrc = main(sys.argv[1:])\n"
              f"print('heavy modules:', sorted(m for m in {HEAVY!r} if m in sys.modules))\nsys.exit(rc)")
    start = time.time()
    run = subprocess.run([sys.executable, "-c", script, str(src), "--out", str(tmp_path / "out"), "-q", "--timing"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    end = time.time()
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_cutout.mp4", "photo_cutout.png"]
    assert "heavy modules: []" in run.stdout, run.stdout         # the shipped weights, the INT8 copy: no torch
    stamps = [float(t) for t in re.findall(r"first frames through the network at ([0-9.]+)", run.stderr)]
    assert len(stamps) == 2 and start < stamps[0] <= stamps[1] < end, run.stderr    # --timing, once per input


@pytest.fixture
def bad_inputs(tmp_path, media):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("hello, I am not a video\n" * 20)
    data = (media / "clip.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(d / "audio.m4a"))
    return d


@pytest.mark.parametrize("name, words", [
    ("empty.mp4", "is empty"),
    ("text.mp4", "not a video"),
    ("truncated.mp4", "cut short"),
    ("audio.m4a", "no video track"),
])
def test_bad_input_one_sentence_nonzero_nothing_left(tmp_path, bad_inputs, tiny_weights, name, words):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = set(os.listdir(tmp_path))
    run = cli(bad_inputs / name, "--out", out_dir / "x.mp4", "-w", tiny_weights, "-q")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]
    assert list(out_dir.iterdir()) == [] and set(os.listdir(tmp_path)) == before


def test_missing_weights_says_how_to_get_them(tmp_path, media):
    run = cli(media / "clip.mp4", "--out", tmp_path / "x.mp4", "-w", tmp_path / "nope.safetensors")
    assert run.returncode == 2 and "weights file not found" in run.stderr and "Traceback" not in run.stderr


def test_unknown_mode_and_bad_colour(tmp_path, media, tiny_weights):
    run = cli(media / "clip.mp4", "--mode", "sparkles", "--out", tmp_path / "x.mp4")
    assert run.returncode == 2 and "invalid choice" in run.stderr
    run = cli(media / "clip.mp4", "--background", "not-a-colour", "--out", tmp_path / "x.mp4", "-w", tiny_weights)
    assert run.returncode == 2 and "is not a colour" in run.stderr and "Traceback" not in run.stderr


def test_refinement_flags_reach_the_options():
    """--levels and friends become the RefineOptions the engine runs; a bad value is one sentence."""
    from app.cli import build_options, parse_args
    from app.options import InputError
    from model.refine import RefineOptions

    assert build_options(parse_args(["x.mp4", "-o", "y.mp4"])).refine == RefineOptions()
    opts = build_options(parse_args(["x.mp4", "-o", "y.mp4", "--levels", "0", "1", "--feather", "2"])).refine
    assert opts.levels == (0.0, 1.0) and opts.feather == 2.0
    with pytest.raises(InputError, match="levels"):
        build_options(parse_args(["x.mp4", "-o", "y.mp4", "--levels", "0.8", "0.2"]))
