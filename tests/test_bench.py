"""The speed benchmark runs end to end and prints its table (figures themselves are not asserted: timing)."""

import re

import pytest
from conftest import make_clip

from bench.__main__ import main


@pytest.mark.slow      # fresh CLI processes, then the pipeline twice
def test_bench_prints_startup_transcode_pipeline_and_model_figures(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", size="240x320", seconds=1)
    main(["--input", str(clip), "--presets", "fast", "--repeat", "2", "--backends", "int8", "--frames", "4",
          "--startup-runs", "2", "--workdir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    low, median = map(float, re.search(r"^ *start-up: .* min ([0-9.]+) s, median ([0-9.]+) s$", out, re.M).groups())
    assert 0 < low <= median
    row = next(line for line in out.splitlines() if line.split()[:1] == ["fast"])
    fields = row.split()
    assert fields[1:5] == ["320", "4", "off", "30"]           # size, keyframe interval, second pass, frames
    ratio, spread = float(fields[9]), fields[10]
    lo, hi = map(float, spread.split("-"))
    assert lo <= ratio <= hi and ratio > 0                    # the median lies within its 2 runs' range
    assert "backend int8" in out and re.search(r"^\s+int8\s+\d+\.\d", out, re.M)


def test_bench_pipeline_rows_run_without_torch(tmp_path):
    """The pipeline's peak RSS is the app's: torch (which the app's CPU path never loads) is imported only for the
    model-only table, after the pipeline rows."""
    import subprocess
    import sys
    clip = make_clip(tmp_path / "c.mp4", size="64x48", seconds=0.5, audio=False)
    watch = ("import sys\n"
             "class Watch:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'torch': print('TORCH IMPORTED', flush=True); sys.meta_path.remove(self)\n"
             "sys.meta_path.insert(0, Watch())\n"
             "from bench.__main__ import main\n"
             f"main(['--input', {str(clip)!r}, '--presets', 'fast', '--repeat', '1', '--startup-runs', '0', "
             f"'--backends', 'int8', '--frames', '2', '--keyframes', '2', '--workdir', {str(tmp_path / 'w')!r}])\n")
    out = subprocess.run([sys.executable, "-c", watch], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if line.split()[:1] == ["fast"])
    assert "TORCH IMPORTED" in lines[row + 1:], out
    assert lines[row].split()[2] == "2"                       # --keyframes overrides fast's every 4th frame


def test_flicker_bench_rows_for_sequences_clips_and_the_preset(tmp_path, capsys, tiny_weights):
    """bench.flicker on a generated labelled sequence and a generated clip: every setting, the preset's own row
    (at --keyframes' interval) and the ground truth's flicker, then the means relative to raw."""
    import cv2
    import numpy as np

    from bench.flicker import main as flicker_main

    seq = tmp_path / "video-gt" / "davis" / "walk"
    (seq / "images").mkdir(parents=True)
    (seq / "masks").mkdir()
    for t in range(5):
        img = np.full((48, 64, 3), 40, np.uint8)
        mask = np.zeros((48, 64), np.uint8)
        mask[10:40, 8 + 5 * t:24 + 5 * t] = 255                     # a person walking right
        img[mask > 0] = 220
        cv2.imwrite(str(seq / "images" / f"{t:05d}.jpg"), img)
        cv2.imwrite(str(seq / "masks" / f"{t:05d}.png"), mask)
    (tmp_path / "videos").mkdir()
    make_clip(tmp_path / "videos" / "tiktok_dance_0.mp4", size="64x48", seconds=0.3, audio=False)
    flicker_main(["--weights", str(tiny_weights), "--data", str(tmp_path), "--clips", "1", "--preset", "balanced",
                  "--keyframes", "2"])
    out = capsys.readouterr().out
    for name in ("walk", "tiktok_dance_0"):
        assert re.search(rf"^{name} +balanced \(every 2\) ", out, re.M), out
    assert re.search(r"^walk +ground truth +1\.0000 ", out, re.M)     # the truth scores itself 1
    assert re.search(r"^  balanced \(every 2\) +\d\.\d\d$", out, re.M)
    with pytest.raises(SystemExit):
        flicker_main(["--data", str(tmp_path), "--keyframes", "2"])          # --keyframes needs a preset


def test_mediapipe_comparison_runs_end_to_end(tmp_path, capsys, tiny_weights, fake_mediapipe_python):
    """bench.vs_mediapipe with a stand-in for MediaPipe (conftest: every bright pixel is a person): the
    DAVIS-layout table scores it against the masks, and the side-by-side picture is written."""
    import cv2
    import numpy as np

    from bench.vs_mediapipe import main as mediapipe_main

    seq = tmp_path / "data" / "video-gt" / "davis" / "seq"
    (seq / "images").mkdir(parents=True)
    (seq / "masks").mkdir()
    for i in range(3):
        mask = np.zeros((48, 64), np.uint8)
        mask[10:40, 8 + i:30 + i] = 255
        cv2.imwrite(str(seq / "images" / f"{i:05d}.png"), cv2.merge([mask] * 3))
        cv2.imwrite(str(seq / "masks" / f"{i:05d}.png"), mask)
    (tmp_path / "data" / "videos").mkdir()
    make_clip(tmp_path / "data" / "videos" / "tiktok_dance_0.mp4", size="64x48", seconds=1)

    mediapipe_main(["--mediapipe-python", str(fake_mediapipe_python), "--weights", str(tiny_weights), "--data",
                    str(tmp_path / "data"), "--picture", str(tmp_path / "side.png")])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("seq "))
    # Pose and both Selfie models (the stand-in: bright pixels, the masks exactly); ours: two numbers in [0, 1].
    assert [float(v) for v in row.split()[1:4]] == [1.0, 1.0, 1.0]
    assert all(0 <= float(v) <= 1 for v in row.split()[4:6])
    assert next(line for line in out.splitlines() if line.startswith("mean ")).split()[1:4] == ["1.0000"] * 3
    picture = cv2.imread(str(tmp_path / "side.png"))
    assert picture.shape == (3 * 150, 200, 3)                         # frame / ours / MediaPipe, 200 px wide


def test_mediapipe_comparison_says_when_mediapipe_is_missing(tiny_weights):
    import sys

    import pytest

    from bench.vs_mediapipe import main as mediapipe_main

    with pytest.raises(SystemExit, match="cannot import mediapipe"):
        mediapipe_main(["--mediapipe-python", sys.executable, "--weights", str(tiny_weights)])


@pytest.mark.slow      # a child process per format
@pytest.mark.parametrize("fmt", ["mov", "zip"])
def test_memory_bench_measures_the_editor_formats(tmp_path, capsys, fmt):
    from bench.memory import main as memory_main

    memory_main(["--minutes", "0.02", "--size", "96x160", "--format", fmt, "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"mode transparent -> {fmt.upper()}" in out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["0.02"])
    frames, wall, fps, peak, tree = row.split()[1:]
    # 1.2 s at 24 fps; the tree's RSS is sampled every 0.2 s, so on so short a job it may miss the peak
    assert int(frames) == 29 and float(peak) > 0 and float(tree) > 0


def test_graphics_check_draws_what_its_mask_says():
    """bench.graphics scores the pixels of its four graphics: its mask is where the frame was drawn on, in
    colours that change from frame to frame."""
    import numpy as np

    from bench.graphics import with_graphics

    frame = np.full((480, 854, 3), 128, np.uint8)
    drawn_in = set()
    for k in range(6):
        img, drawn = with_graphics(frame, k)
        changed = (img != frame).any(2)
        assert not (changed & ~drawn).any()                          # nothing drawn outside the mask
        assert (changed & drawn).sum() >= 0.97 * drawn.sum()          # the mask's pixels were drawn on
        assert 0.02 < drawn.mean() < 0.2
        drawn_in.add(tuple(img[70, 130]))                            # inside the box
    assert len(drawn_in) == 6 and (frame == 128).all()              # a new colour each frame; input untouched


def test_train_step_bench_times_both_precisions(capsys):
    from bench import train_step

    assert train_step.main(["--encoder", "mobilenet_v2", "--size", "64x64", "--batch", "2", "--threads", "1",
                            "--steps", "2", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    fp32, bf16, ratio = (float(re.search(pattern, out).group(1)) for pattern in
                         (r"fp32\s+([0-9.]+) s/step", r"bf16\s+([0-9.]+) s/step", r"fp32 / bf16\s+([0-9.]+)x"))
    assert fp32 > 0 and bf16 > 0 and ratio == pytest.approx(fp32 / bf16, rel=0.1)
