"""Probe, reader and writers on clips generated with ffmpeg's lavfi sources."""

import numpy as np
import pytest
from conftest import ffmpeg, make_clip

from app.options import InputError
from app.video_io import VideoWriter, probe, read_frames, stream_info


def test_probe_describes_the_clip(media):
    info = probe(media / "clip.mp4")
    assert (info.width, info.height, info.fps, info.frames) == (320, 240, 30.0, 90)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert info.has_audio and info.audio_codec == "aac" and info.video_codec == "h264"
    assert not probe(media / "silent.mp4").has_audio


def test_reader_yields_every_frame_as_rgb(media):
    frames = list(read_frames(probe(media / "clip.mp4")))
    assert len(frames) == 90
    assert frames[0].shape == (240, 320, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[45])          # real, moving content


def test_rotated_phone_clip_is_read_upright(tmp_path):
    # A left-white / right-black landscape clip, flagged by its container as rotated 90 degrees.
    src = tmp_path / "flat.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=320x240:rate=30:duration=1",
           "-vf", "drawbox=x=0:y=0:w=160:h=240:color=white:t=fill", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated)
    assert abs(info.rotation) == 90
    assert (info.width, info.height) == (240, 320)           # as displayed: portrait
    frame = next(read_frames(info))
    assert frame.shape == (320, 240, 3)
    top, bottom = frame[:150].mean(), frame[170:].mean()
    left, right = frame[:, :110].mean(), frame[:, 130:].mean()
    assert abs(top - bottom) > 200 and abs(left - right) < 30  # the white half moved to top or bottom


def test_variable_frame_rate_clip_is_read_at_constant_rate(tmp_path):
    src = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=1.5[a];"
           "testsrc2=size=320x240:rate=15:duration=1.5[b];[a][b]concat=n=2:v=1:a=0",
           "-vsync", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src))
    info = probe(src)
    assert info.fps != 30 and info.fps != 15                  # the average rate, between the two
    n = sum(1 for _ in read_frames(info))
    assert n / info.fps == pytest.approx(3.0, abs=1.5 / info.fps)  # the clip's 3 s, within a frame or so


# The pipeline pads MP4/WebM itself (it composes in I420); an odd-sized clip saved as MOV relies on the writer's
# padding of RGB(A) frames.
@pytest.mark.parametrize("fmt, alpha", [("mp4", False), ("webm", False), ("webm", True), ("mov", False), ("mov", True),
                                        ("gif", False), ("gif", True)])
def test_writers_odd_size(tmp_path, fmt, alpha):
    h, w, c = 77, 51, 4 if alpha else 3
    out = tmp_path / f"out.{fmt}"
    rng = np.random.default_rng(0)
    with VideoWriter(out, fmt, w, h, "30/1", alpha=alpha) as writer:
        for _ in range(30):
            writer.write(rng.integers(0, 256, (h, w, c), dtype=np.uint8))
    v = stream_info(out)["streams"][0]
    expected = {"mp4": 30, "webm": 30, "mov": 30, "gif": 15}[fmt]   # GIF is capped at 15 fps
    assert int(v["nb_read_frames"]) == expected
    if fmt != "gif":
        assert (v["width"], v["height"]) == (52, 78)              # padded to even, never cropped
    if fmt == "webm" and alpha:
        assert v["tags"].get("alpha_mode") == "1"


def test_writer_rejects_wrong_frame(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "x.mp4", "mp4", 32, 32, "30/1") as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))


@pytest.mark.parametrize("name, content, words", [
    ("empty.mp4", b"", "is empty"),
    ("text.mp4", b"this is not a video\n" * 50, "not a video"),
])
def test_probe_rejects_bad_files(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=words):
        probe(path)


def test_probe_rejects_audio_only_and_truncated(tmp_path, media):
    audio = tmp_path / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(audio))
    with pytest.raises(InputError, match="no video track"):
        probe(audio)
    data = (media / "clip.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])        # moov atom at the end: lost
    with pytest.raises(InputError, match="cut short"):
        probe(cut)


def test_truncated_faststart_clip_yields_what_it_has(tmp_path):
    src = make_clip(tmp_path / "fs.mp4", extra=("-movflags", "+faststart"))
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])        # index kept, half the media data gone
    info = probe(cut)
    n = sum(1 for _ in read_frames(info))
    assert 0 < n < 90


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_writer_colours_come_back_as_written_from_rgb_or_yuv_frames(tmp_path, fmt):
    """Frames are converted to YUV by OpenCV (BT.601) and the file says so: a player gets the same RGB back."""
    from app.compose import to_i420

    rgb = np.zeros((64, 48, 3), np.uint8)
    rgb[:] = (48, 128, 192)
    rgb[:, 24:] = (250, 40, 90)
    for source in ("rgb", "yuv"):
        path = tmp_path / f"{source}.{fmt}"
        with VideoWriter(path, fmt, 48, 64, "24/1") as writer:
            for _ in range(4):
                writer.write(rgb if source == "rgb" else to_i420(rgb))
        back = next(read_frames(probe(path))).astype(int)
        assert np.abs(back[8:-8, 4:20] - (48, 128, 192)).max() <= 3, source
        assert np.abs(back[8:-8, 28:-4] - (250, 40, 90)).max() <= 3, source
        with pytest.raises(ValueError), VideoWriter(tmp_path / f"bad.{fmt}", fmt, 48, 64, "24/1") as bad:
            bad.write(to_i420(rgb)[:-2])      # a frame of the wrong size is refused (and ffmpeg stopped)


def test_which_clips_are_used_in_their_own_yuv():
    """8-bit limited-range 4:2:0 at even sizes, in a matrix we know: used as decoded; anything else: RGB."""
    from dataclasses import replace
    from pathlib import Path

    from app.video_io import MediaInfo

    base = MediaInfo(path=Path("c.mp4"), name="c.mp4", width=720, height=1280, fps_fraction="30/1", frames=30, duration=1.0,
                     pix_fmt="yuv420p")
    assert base.yuv_matrix == "bt601"                                           # undeclared: what ffmpeg assumes
    assert replace(base, color_space="bt709", color_range="tv").yuv_matrix == "bt709"
    assert replace(base, color_space="smpte170m").yuv_matrix == "bt601"
    for other in ({"color_range": "pc"}, {"pix_fmt": "yuvj420p"}, {"pix_fmt": "yuv420p10le"},
                  {"pix_fmt": "yuv444p"}, {"color_space": "bt2020nc"}, {"width": 721}, {"height": 1279}):
        assert replace(base, **other).yuv_matrix is None, other


def test_reader_yields_decoded_yuv_as_i420(tmp_path):
    import cv2

    from app import compose

    src = make_clip(tmp_path / "c.mp4", audio=False, seconds=0.5)
    info = probe(src)
    assert (info.pix_fmt, info.yuv_matrix) == ("yuv420p", "bt601")
    yuv = list(read_frames(info, pix_fmt="yuv420p"))
    rgb = list(read_frames(info))
    assert len(yuv) == len(rgb) == 15 and yuv[0].shape == (360, 320)
    # ffmpeg's own conversion to RGB of the same frames agrees with converting the I420 ourselves.
    mine = cv2.cvtColor(yuv[7], cv2.COLOR_YUV2RGB_I420).astype(int)
    assert np.abs(mine - rgb[7]).mean() < 3
    y, _, _ = compose.planes(yuv[7])
    assert np.array_equal(y, yuv[7][:240])


def test_writer_declares_bt709_and_players_get_the_colours_back(tmp_path):
    from app.compose import to_i420

    rgb = np.zeros((64, 48, 3), np.uint8)
    rgb[:] = (48, 128, 192)
    rgb[:, 24:] = (250, 40, 90)
    path = tmp_path / "709.mp4"
    with VideoWriter(path, "mp4", 48, 64, "24/1", matrix="bt709") as writer:
        for i in range(4):
            writer.write(rgb if i % 2 else to_i420(rgb, "bt709"))
    info = probe(path)
    assert (info.color_space, info.color_range, info.yuv_matrix) == ("bt709", "tv", "bt709")
    back = next(read_frames(info)).astype(int)      # ffmpeg converts with the matrix the file declares
    assert np.abs(back[8:-8, 4:20] - (48, 128, 192)).max() <= 3
    assert np.abs(back[8:-8, 28:-4] - (250, 40, 90)).max() <= 3


@pytest.mark.parametrize("line, expected", [
    ("Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1080x1920 [SAR 1:1 DAR 9:16], 24 fps",
     {"pix_fmt": "yuv420p"}),
    ("Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080, 30 fps",
     {"pix_fmt": "yuv420p", "color_range": "tv", "color_space": "bt709"}),
    ("Video: h264 (High), yuvj420p(pc, bt470bg/unknown/unknown, progressive), 640x480", {
        "pix_fmt": "yuvj420p", "color_range": "pc", "color_space": "bt470bg"}),
    ("Video: hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67), 1080x1920", {
        "pix_fmt": "yuv420p10le", "color_range": "tv", "color_space": "bt2020nc"}),
    ("Video: h264 (High 4:4:4 Predictive), yuv444p(pc, gbr/bt709/bt709, progressive), 320x240",
     {"pix_fmt": "yuv444p", "color_range": "pc", "color_space": "gbr"}),
    ("Video: rawvideo (RGB[24] / 0x18424752), rgb24, 320x240, 55296 kb/s", {"pix_fmt": "rgb24"}),
])
def test_banner_gives_the_picture_format(line, expected):
    """Without ffprobe (imageio-ffmpeg's lone ffmpeg) the picture format comes from `ffmpeg -i`'s stream line,
    so ordinary 4:2:0 clips still take the YUV path instead of being converted to RGB and back."""
    from app.video_io import _banner_picture
    assert _banner_picture(f"  Stream #0:0[0x1](und): {line}\n") == expected


@pytest.mark.parametrize("extra, matrix", [([], "bt601"), (["-colorspace", "bt709", "-color_range", "tv"], "bt709"),
                                           (["-color_range", "pc"], None)])
def test_probe_without_ffprobe_finds_the_yuv_matrix(tmp_path, monkeypatch, extra, matrix):
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=0.5", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", *extra, str(clip))
    import app.video_io as vio
    with_ffprobe = probe(clip) if vio.ffprobe_exe() else None
    monkeypatch.setattr(vio, "ffprobe_exe", lambda: None)
    info = probe(clip)
    assert info.pix_fmt in ("yuv420p", "yuvj420p") and info.yuv_matrix == matrix    # full range: yuvj420p
    if with_ffprobe is not None:       # both ways of probing agree on what the pipeline decides from
        assert (info.pix_fmt, info.yuv_matrix) == (with_ffprobe.pix_fmt, with_ffprobe.yuv_matrix)
