"""Hostile and odd inputs through the engine: each works or fails with one sentence, within a time limit,
leaving nothing behind. Every file is generated here."""

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import ffmpeg, make_clip
from PIL import Image

from app.options import InputError, RenderOptions
from app.pipeline import segment_file
from app.video_io import stream_info

TIMEOUT_S = 120


def png_header_only(path, width, height):
    """A tiny PNG that claims to be width x height (a decompression bomb's calling card)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def build(kind, d):
    """Create the input for `kind` in folder d; returns its path."""
    rng = np.random.default_rng(0)
    if kind == "empty":
        (p := d / "empty.mp4").write_bytes(b"")
    elif kind == "random bytes":
        (p := d / "noise.mp4").write_bytes(rng.bytes(200_000))
    elif kind == "text named mp4":
        (p := d / "text.mp4").write_text("not a video\n" * 100)
    elif kind in ("truncated middle", "truncated no moov"):
        src = make_clip(d / "src.mp4", extra=("-movflags", "+faststart") if kind == "truncated middle" else ())
        data = src.read_bytes()
        src.unlink()
        (p := d / "cut.mp4").write_bytes(data[: len(data) // 2])
    elif kind == "index without frames":    # what ffprobe reads is all there; not one frame decodes
        src = make_clip(d / "src.mp4", seconds=1, audio=False, extra=("-movflags", "+faststart"))
        data = src.read_bytes()
        src.unlink()
        (p := d / "hollow.mp4").write_bytes(data[: data.index(b"mdat") + 4])
    elif kind == "audio only":
        ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(p := d / "song.m4a"))
    elif kind == "zero frames":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=30:duration=1", "-frames:v", "0", "-c:v", "libx264",
               str(p := d / "zero.mp4"))
    elif kind == "single frame video":
        make_clip(p := d / "one.mp4", seconds=1 / 30, audio=False)
    elif kind == "8K video":
        make_clip(p := d / "8k.mp4", size="7680x4320", seconds=1 / 30, audio=False,
                  vcodec=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))
    elif kind == "1x1 image":
        Image.new("RGB", (1, 1), "red").save(p := d / "dot.png")
    elif kind == "1x5000 image":
        Image.fromarray(rng.integers(0, 256, (1, 5000, 3), dtype=np.uint8)).save(p := d / "line.png")
    elif kind == "decompression bomb":
        p = png_header_only(d / "bomb.png", 100_000, 100_000)
    elif kind == "animated gif":
        frames = [Image.new("RGB", (32, 24), c) for c in ("red", "green", "blue", "white")]
        frames[0].save(p := d / "anim.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    elif kind == "16-bit png with alpha":
        import cv2
        a = rng.integers(0, 65536, (30, 20, 4), dtype=np.uint16)
        cv2.imwrite(str(p := d / "deep.png"), a)
    elif kind == "audio longer than video":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=1", "-f", "lavfi", "-i",
               "sine=duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(p := d / "long_audio.mp4"))
    elif kind == "unicode name":
        make_clip(p := d / "ダンス 💃 ünïcode.mp4", seconds=1)
    else:
        raise AssertionError(kind)
    return p


# kind -> None (must work) or words the error sentence must contain
CASES = {
    "empty": "empty",
    "random bytes": "not a video",
    "text named mp4": "not a video",
    "truncated middle": None,           # the index survives: the frames that are there come out
    "truncated no moov": "cut short",
    "index without frames": "has no frames that could be decoded",
    "audio only": "no video track",
    "zero frames": "no video track",
    "single frame video": None,
    "8K video": "largest frame side allowed",
    "1x1 image": None,
    "1x5000 image": None,
    "decompression bomb": "megapixels",
    "animated gif": None,
    "16-bit png with alpha": None,
    "audio longer than video": None,
    "unicode name": None,
}


@pytest.mark.parametrize("kind", list(CASES))
def test_corpus(tmp_path, tiny_segmenter, kind):
    src_dir, out_dir = tmp_path / "in", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    src = build(kind, src_dir)
    is_image = src.suffix == ".png"
    dst = out_dir / ("result.png" if is_image else "result.mp4")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(segment_file, src, dst, RenderOptions(mode="cutout"), segmenter=tiny_segmenter)
        expected = CASES[kind]
        if expected is None:
            result = future.result(timeout=TIMEOUT_S)
            assert list(out_dir.iterdir()) == [dst] and result.frames >= 1
            if not is_image:
                video = stream_info(dst)["streams"][0]
                assert video["codec_name"] == "h264" and int(video["nb_read_frames"]) == result.frames
        else:
            with pytest.raises(InputError) as err:
                future.result(timeout=TIMEOUT_S)
            message = str(err.value)
            assert expected in message and "\n" not in message and "Traceback" not in message
            assert list(out_dir.iterdir()) == []


def test_audio_longer_than_video_is_trimmed(tmp_path, tiny_segmenter):
    src = build("audio longer than video", tmp_path)
    out = segment_file(src, tmp_path / "out.mp4", segmenter=tiny_segmenter).path
    streams = {s["codec_type"]: s for s in stream_info(out)["streams"]}
    assert int(streams["video"]["nb_read_frames"]) == 30
    assert float(streams["audio"]["duration"]) <= 1.1       # cut to the picture, not 3 s of sound over a still
