"""Outputs for editors: ProRes MOV (4444 with alpha for a transparent cutout) and a ZIP of numbered PNGs, with
the source's frames and audio; the alpha an editor decodes is the matte."""

import subprocess

import numpy as np
import pytest
from conftest import brightness_segmenter

from app.options import RenderOptions, format_from_path
from app.pipeline import segment_video
from app.video_io import stream_info
from tests.ui_helpers import decode_rgba, zip_frames


def _streams(path):
    info = stream_info(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return video, [s for s in info["streams"] if s["codec_type"] == "audio"]


def test_transparent_mov_is_prores_4444_whose_alpha_is_the_matte(tmp_path, media):
    seg = brightness_segmenter(128)
    mov = segment_video(media / "clip.mp4", tmp_path / "cut.mov", RenderOptions(mode="transparent"), segmenter=seg)
    png = segment_video(media / "clip.mp4", tmp_path / "cut.zip", RenderOptions(mode="transparent"), segmenter=seg)
    video, audio = _streams(mov.path)
    assert video["codec_name"] == "prores" and video["profile"] == "4444"
    assert video["pix_fmt"].startswith("yuva444")                     # an alpha plane, full chroma
    assert int(video["nb_read_frames"]) == mov.frames == 90
    assert [a["codec_name"] for a in audio] == ["aac"] and mov.has_audio
    names, frames = zip_frames(png.path)
    assert names == [f"frame_{i:06d}.png" for i in range(1, 91)] + ["audio.m4a"]
    assert all(f.shape == (240, 320, 4) for f in frames)             # RGBA, the clip's size
    matte = np.stack([f[..., 3] for f in frames]).astype(int)
    assert 0.05 < (matte > 127).mean() < 0.95                         # a real matte: some person, some not
    decoded = decode_rgba(mov.path, 320, 240)
    assert len(decoded) == 90
    assert np.abs(decoded[..., 3].astype(int) - matte).max() <= 2     # ProRes keeps the alpha exactly enough
    # The colour where the dancer is: within ProRes's (lossy, 10-bit) error of the PNG's.
    person = matte > 200
    assert np.abs(decoded[..., :3].astype(int) - np.stack(frames)[..., :3])[person].mean() < 4


def test_other_modes_give_prores_422_and_rgb_pngs_and_no_audio_file_for_a_silent_clip(tmp_path, media):
    seg = brightness_segmenter(128)
    mov = segment_video(media / "clip.mp4", tmp_path / "cut.mov", RenderOptions(mode="cutout"), segmenter=seg)
    video, audio = _streams(mov.path)
    assert video["codec_name"] == "prores" and video["profile"] == "HQ" and video["pix_fmt"].startswith("yuv422")
    assert int(video["nb_read_frames"]) == 90 and len(audio) == 1
    png = segment_video(media / "silent.mp4", tmp_path / "mask.zip", RenderOptions(mode="mask"), segmenter=seg)
    names, frames = zip_frames(png.path)
    assert len(names) == len(frames) == png.frames == 90 and "audio.m4a" not in names
    assert all(f.shape == (240, 320, 3) for f in frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mov", "mask.zip"]    # no temp file left beside them


@pytest.mark.parametrize("name, fmt", [("clip.MOV", "mov"), ("frames.zip", "zip")])
def test_the_file_name_asks_for_the_format(name, fmt):
    assert format_from_path(name) == fmt


def _grey_clip(path, levels: list[int], size: str = "64x48", rate: int = 30):
    w, h = map(int, size.split("x"))
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", size, "-r", str(rate),
                            "-i", "-", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(path)],
                           stdin=subprocess.PIPE)
    enc.communicate(b"".join(np.full((h, w), v, np.uint8).tobytes() for v in levels))
    assert enc.returncode == 0
    return path


@pytest.mark.parametrize("frames", [10, 200])
def test_a_clip_as_the_background_loops_when_shorter_and_is_cut_when_longer(tmp_path, frames):
    """Nobody in the foreground (black frames: the brightness model sees no one), so the output is the background
    clip itself: frame i shows background frame i (mod its length), fitted to the 320x240 output."""
    from conftest import make_clip

    fg = make_clip(tmp_path / "fg.mp4", source="color", size="320x240", seconds=3)      # black
    levels = [40 + (i * 17) % 180 for i in range(frames)]
    bg = _grey_clip(tmp_path / "bg.mp4", levels)
    out = segment_video(fg, tmp_path / "out.mp4", RenderOptions(mode="replace", background_image=str(bg)),
                        segmenter=brightness_segmenter(64))
    video, audio = _streams(out.path)
    assert out.frames == int(video["nb_read_frames"]) == 90 and float(video["duration"]) == pytest.approx(3.0, abs=0.05)
    assert len(audio) == 1                                            # the foreground's audio; the background's ignored
    grey = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out.path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          capture_output=True, check=True).stdout
    means = np.frombuffer(grey, np.uint8).reshape(90, 240, 320).mean(axis=(1, 2))
    assert np.abs(means - [levels[i % frames] for i in range(90)]).max() < 3


def test_a_background_that_is_no_picture_or_clip_is_one_clear_sentence(tmp_path, media):
    from app.options import InputError

    bad = tmp_path / "holiday.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match=r"^the background holiday.mp4 is neither a picture nor a video"):
        segment_video(media / "clip.mp4", tmp_path / "out.mp4", RenderOptions(mode="replace", background_image=str(bad)),
                      segmenter=brightness_segmenter(64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.mp4"]
