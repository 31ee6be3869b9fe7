"""The speed benchmark runs end to end and prints its table (figures themselves are not asserted: timing)."""

import re

from conftest import make_clip

from bench.__main__ import main


def test_bench_prints_transcode_pipeline_and_model_figures(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", size="240x320", seconds=1)
    main(["--input", str(clip), "--presets", "fast", "--repeat", "2", "--backends", "int8", "--frames", "4",
          "--workdir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["fast"])
    fields = row.split()
    assert fields[1:4] == ["320", "4", "30"]                  # size, keyframe interval, frames
    ratio, spread = float(fields[8]), fields[9]
    lo, hi = map(float, spread.split("-"))
    assert lo <= ratio <= hi and ratio > 0                    # the median lies within its 2 runs' range
    assert "backend int8" in out and re.search(r"^\s+int8\s+\d+\.\d", out, re.M)
