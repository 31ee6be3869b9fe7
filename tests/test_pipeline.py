"""segment_video / segment_image end to end, with a tiny random model (plumbing, not quality); inspect's verdicts."""

import os
from fractions import Fraction

import numpy as np
import pytest
from conftest import ffmpeg, make_clip
from PIL import Image

from app.options import MODES, InputError, Limits, Preset, RenderOptions
from app.pipeline import inspect, segment_file, segment_image, segment_video
from app.video_io import stream_info
from tests.test_corpus import build, png_header_only


def facts(path):
    info = stream_info(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    return video, audio, info["format"]


@pytest.fixture(scope="module")
def background_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("bg") / "beach.png"
    Image.fromarray(np.full((50, 80, 3), (30, 144, 255), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_frames_fps_duration_and_audio(tmp_path, media, tiny_segmenter, background_png, mode):
    options = RenderOptions(mode=mode, background_image=str(background_png) if mode == "replace" else None)
    out = tmp_path / f"{mode}.mp4"
    seen = []
    result = segment_video(media / "clip.mp4", out, options, seen.append, segmenter=tiny_segmenter)
    video, audio, fmt = facts(out)
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert abs(int(video["nb_read_frames"]) - 90) <= 1 and result.frames == 90
    assert Fraction(video["r_frame_rate"]) == 30
    assert float(video["duration"]) == pytest.approx(3.0, abs=1 / 30)
    assert [a["codec_name"] for a in audio] == ["aac"]
    assert float(audio[0]["duration"]) == pytest.approx(3.0, abs=0.1)
    assert (video["width"], video["height"]) == ((960, 240) if mode == "collage" else (320, 240))
    assert seen[-1].done == seen[-1].total == 90 and seen[0].done < 90      # progress was reported along the way
    assert [p.name for p in tmp_path.iterdir()] == [out.name]                # no temp file left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask                      # permissions of any new file, not 0600


@pytest.mark.parametrize("every", [1, 3])
def test_keyframes_run_the_network_on_every_kth_frame_of_a_clip(tmp_path, media, tiny_segmenter, every):
    passes = []

    class Counting:                     # the shared segmenter, counting the frames it is asked to segment
        infer_size = tiny_segmenter.infer_size

        def shrink(self, frame):
            return tiny_segmenter.shrink(frame)

        def predict_small(self, smalls):
            passes.append(len(smalls))
            return tiny_segmenter.predict_small(smalls)

    result = segment_video(media / "clip.mp4", tmp_path / "k.mp4", RenderOptions(mode="mask", preset=Preset(1.0, every)),
                           segmenter=Counting())
    assert result.frames == 90 and int(facts(tmp_path / "k.mp4")[0]["nb_read_frames"]) == 90
    assert sum(passes) == 90 // every                  # a moving test pattern, no scene cuts


def test_clip_without_audio(tmp_path, media, tiny_segmenter):
    out = tmp_path / "silent.mp4"
    result = segment_video(media / "silent.mp4", out, RenderOptions(mode="mask"), segmenter=tiny_segmenter)
    video, audio, _ = facts(out)
    assert int(video["nb_read_frames"]) == 90 and audio == [] and not result.has_audio


@pytest.mark.parametrize("mode", ["cutout", "transparent"])
def test_gif_and_webm(tmp_path, media, tiny_segmenter, mode):
    gif = segment_video(media / "clip.mp4", tmp_path / "a.gif", RenderOptions(mode=mode), segmenter=tiny_segmenter)
    video, audio, _ = facts(gif.path)
    assert video["codec_name"] == "gif" and int(video["nb_read_frames"]) == 45 and audio == []   # 15 fps cap
    webm = segment_video(media / "clip.mp4", tmp_path / "a.webm", RenderOptions(mode=mode), segmenter=tiny_segmenter)
    video, audio, _ = facts(webm.path)
    assert video["codec_name"] == "vp9" and int(video["nb_read_frames"]) == 90
    assert [a["codec_name"] for a in audio] == ["opus"]
    assert (video.get("tags", {}).get("alpha_mode") == "1") == (mode == "transparent")


def test_transparent_mp4_is_drawn_on_a_checkerboard_with_a_note(tmp_path, media, tiny_segmenter):
    result = segment_video(media / "clip.mp4", tmp_path / "t.mp4", RenderOptions(mode="transparent"),
                           segmenter=tiny_segmenter)
    assert result.notes and "checkerboard" in result.notes[0]


def test_odd_size_clip(tmp_path, tiny_segmenter):
    src = make_clip(tmp_path / "odd.mp4", source="testsrc", size="605x1077", seconds=1,
                    vcodec=("-c:v", "libx264", "-pix_fmt", "yuv444p"))
    src_video, _, _ = facts(src)
    assert (src_video["width"], src_video["height"]) == (605, 1077)
    segment_video(src, tmp_path / "out.mp4", RenderOptions(mode="cutout"), segmenter=tiny_segmenter)
    video, audio, _ = facts(tmp_path / "out.mp4")
    assert (video["width"], video["height"]) == (606, 1078) and int(video["nb_read_frames"]) == 30
    assert audio


def test_rotated_and_vfr_clips(tmp_path, media, tiny_segmenter):
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(media / "clip.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    segment_video(rotated, tmp_path / "r.mp4", RenderOptions(mode="mask"), segmenter=tiny_segmenter)
    video, audio, _ = facts(tmp_path / "r.mp4")
    assert (video["width"], video["height"]) == (240, 320) and int(video["nb_read_frames"]) == 90 and audio

    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=1.5[a];"
           "testsrc2=size=320x240:rate=15:duration=1.5[b];[a][b]concat=n=2:v=1:a=0",
           "-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac", "-shortest",
           "-vsync", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(vfr))
    segment_video(vfr, tmp_path / "v.mp4", RenderOptions(mode="cutout"), segmenter=tiny_segmenter)
    video, audio, _ = facts(tmp_path / "v.mp4")
    assert float(video["duration"]) == pytest.approx(3.0, abs=0.1) and audio


def _save(path, array, mode=None, **kw):
    Image.fromarray(array, mode).save(path, **kw) if mode else Image.fromarray(array).save(path, **kw)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    grey16 = (np.arange(61 * 47, dtype=np.uint32).reshape(61, 47) * 20).astype(np.uint16)
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    rgba = np.dstack([rgb, np.full((61, 47), 255, np.uint8)])
    return {
        "grey": _save(d / "grey.png", rgb[..., 0]),
        "rgba": _save(d / "rgba.png", rgba),
        "grey16": _save(d / "grey16.png", grey16),
        "cmyk": d / "cmyk.jpg",
        "webp": _save(d / "photo.webp", rgb, lossless=True),
        "rgb": _save(d / "rgb.png", rgb),
        "_rgb": rgb, "_grey16": grey16,
    }


@pytest.mark.parametrize("kind", ["grey", "rgba", "grey16", "cmyk", "webp", "rgb"])
def test_photos_of_every_kind(tmp_path, photos, tiny_segmenter, kind):
    out = tmp_path / "out.png"
    result = segment_file(photos[kind], out, RenderOptions(mode="transparent"), segmenter=tiny_segmenter)
    assert result.kind == "image"
    got = np.asarray(Image.open(out))
    assert got.shape == (61, 47, 4)
    if kind in ("rgb", "webp", "rgba"):
        assert np.array_equal(got[..., :3], photos["_rgb"])
    if kind == "grey16":
        # 16-bit levels are scaled to 8 bits, not clipped to white.
        assert np.array_equal(got[..., 0], (photos["_grey16"] >> 8).astype(np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_photo_formats_and_mismatches(tmp_path, photos, media, tiny_segmenter):
    res = segment_image(photos["rgb"], tmp_path / "x.jpg", RenderOptions(mode="cutout"), segmenter=tiny_segmenter)
    assert Image.open(res.path).format == "JPEG"
    with pytest.raises(InputError, match="photo can be saved as"):
        segment_file(photos["rgb"], tmp_path / "x.mp4", segmenter=tiny_segmenter)
    with pytest.raises(InputError, match="video can be saved as"):
        segment_file(media / "clip.mp4", tmp_path / "x.png", segmenter=tiny_segmenter)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg"]


def test_animated_gif_is_a_video(tmp_path, tiny_segmenter):
    frames = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (0, 120, 240)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = segment_file(gif, tmp_path / "anim.mp4", RenderOptions(mode="cutout"), segmenter=tiny_segmenter)
    assert result.kind == "video" and result.frames == 3


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 40])
def test_bad_video_leaves_nothing_behind(tmp_path, tiny_segmenter, content):
    src = tmp_path / "in" / "bad.mp4"
    src.parent.mkdir()
    src.write_bytes(content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError):
        segment_file(src, out_dir / "result.mp4", segmenter=tiny_segmenter)
    assert list(out_dir.iterdir()) == []


def test_writer_failure_removes_partial_output(tmp_path, media, tiny_segmenter):
    def boom(progress):
        if progress.done >= 8:
            raise RuntimeError("cancelled")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(RuntimeError, match="cancelled"):
        segment_video(media / "clip.mp4", out_dir / "r.mp4", RenderOptions(), boom, segmenter=tiny_segmenter)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("tags", [(), ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709")])
def test_a_yuv_clip_keeps_its_own_pixels_and_colour_matrix(tmp_path, tiny_segmenter, tags):
    """An ordinary 4:2:0 clip is composed in its own YUV: where the mask keeps the person the output holds the
    clip's pixels (up to the encoder), and the output declares the clip's matrix (BT.709 stays BT.709)."""
    from app.video_io import probe, read_frames

    src = make_clip(tmp_path / "in.mp4", seconds=1, extra=tags + ("-crf", "0"))
    info = probe(src)
    assert info.yuv_matrix == ("bt709" if tags else "bt601")
    out = tmp_path / "mask_kept.mp4"
    # Opacity 0 overlay: the frame itself whatever the matte, so the output must be the input picture.
    segment_video(src, out, RenderOptions(mode="overlay", opacity=0.0, crf=0), segmenter=tiny_segmenter)
    got = probe(out)
    assert got.color_space == ("bt709" if tags else "smpte170m")
    a = np.stack(list(read_frames(info, pix_fmt="yuv420p"))).astype(int)
    b = np.stack(list(read_frames(got, pix_fmt="yuv420p"))).astype(int)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1


# ------------------------------------------------------------------------------------------------ inspect

TEMP_NAME = "upload-3f9a2c7e1b0d4e5f"       # how the web page saves an upload: a random name, never the user's


def _as_upload(src, tmp_path, suffix):
    """`src`'s bytes saved as the web page saves an upload."""
    path = tmp_path / f"{TEMP_NAME}{suffix}"
    path.write_bytes(src.read_bytes())
    return path


def test_inspect_tells_a_clip_from_a_photo_by_content(tmp_path, media, photos):
    clip = inspect(_as_upload(media / "clip.mp4", tmp_path, ".png"), Limits(), name="My clip.png")
    assert (clip.kind, clip.width, clip.height, clip.name) == ("video", 320, 240, "My clip.png")
    assert clip.info.frames == 90 and clip.info.has_audio and clip.info.name == "My clip.png"
    photo = inspect(photos["rgb"], Limits())
    assert (photo.kind, photo.width, photo.height, photo.name, photo.info) == ("image", 47, 61, "rgb.png", None)


def _refused(kind, d, media):
    if kind == "clip":                          # 320x240, 3 s, 90 frames
        return media / "clip.mp4"
    if kind == "photo over the pixel limit":
        return png_header_only(d / "big.png", 9_000, 9_000)       # 81 megapixels, claimed by a 100-byte file
    if kind == "not media":
        (d / "notes.txt").write_text("not a video at all\n" * 40)
        return d / "notes.txt"
    return build(kind, d)


@pytest.mark.parametrize("kind, limits, sentence", [
    ("photo over the pixel limit", Limits(), "{} is 9000x9000; images are limited to 50 megapixels"),
    ("decompression bomb", Limits(), "{} is far too large: images are limited to 50 megapixels"),
    ("clip", Limits(max_side=300), "{} is 320x240; the largest frame side allowed is 300 pixels"),
    ("clip", Limits(max_duration_s=2), "{} lasts 3 s; the limit is 2 s"),
    ("clip", Limits(max_frames=60), "{} has 90 frames; the limit is 60"),
    ("not media", Limits(), "{} could not be read as a video: it is damaged or not a video file"),
    ("audio only", Limits(), "{} has no video track (an audio file): upload a video or a photo"),
    ("empty", Limits(), "{} is empty"),
])
def test_inspect_refuses_in_one_sentence_naming_the_file_as_its_owner_does(tmp_path, media, kind, limits, sentence):
    src = _as_upload(_refused(kind, tmp_path, media), tmp_path, ".mp4")
    with pytest.raises(InputError) as err:
        inspect(src, limits, name="My clip.mp4")
    assert str(err.value) == sentence.format("My clip.mp4") and TEMP_NAME not in str(err.value)
    with pytest.raises(InputError, match=f"^{TEMP_NAME}.mp4 "):
        inspect(src, limits)                    # no name given: the file's own


def test_the_job_names_the_file_as_its_owner_does(tmp_path, tiny_segmenter):
    hollow = _as_upload(build("index without frames", tmp_path), tmp_path, ".mp4")
    assert inspect(hollow, Limits()).kind == "video", "ffprobe finds nothing wrong: the job finds out"
    with pytest.raises(InputError) as err:
        segment_file(hollow, tmp_path / "out.mp4", segmenter=tiny_segmenter, name="My clip.mp4")
    message = str(err.value)
    assert message.startswith("My clip.mp4 has no frames that could be decoded") and TEMP_NAME not in message

    hollow = png_header_only(tmp_path / f"{TEMP_NAME}.png", 64, 64)     # a sound header, 64 bytes of pixels
    assert inspect(hollow, Limits()).kind == "image"
    with pytest.raises(InputError, match="^My photo.png could not be read as an image"):
        segment_file(hollow, tmp_path / "out.png", segmenter=tiny_segmenter, name="My photo.png")
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.png").exists()


def test_segment_video_and_segment_image_take_their_own_kind(tmp_path, media, photos, tiny_segmenter):
    with pytest.raises(InputError, match="^rgb.png is a photo, not a video: segment_file takes either$"):
        segment_video(photos["rgb"], tmp_path / "out.mp4", segmenter=tiny_segmenter)
    with pytest.raises(InputError, match="^Mine.mp4 is a video, not a photo"):
        segment_image(media / "clip.mp4", tmp_path / "out.png", segmenter=tiny_segmenter, name="Mine.mp4")
    with pytest.raises(InputError, match="^Mine.mp4 lasts 3 s"):
        segment_video(media / "clip.mp4", tmp_path / "out.mp4", segmenter=tiny_segmenter, name="Mine.mp4",
                      limits=Limits(max_duration_s=1))
    assert list(tmp_path.iterdir()) == []


def test_the_background_is_named_as_its_owner_does(tmp_path, media, tiny_segmenter):
    bg = png_header_only(tmp_path / "background-0a1b2c3d.png", 9_000, 9_000)
    options = RenderOptions(mode="replace", background_image=str(bg), background_name="Beach.png")
    with pytest.raises(InputError, match=r"^the background Beach.png is 9000x9000; images are limited to 50 "):
        segment_video(media / "clip.mp4", tmp_path / "out.mp4", options, segmenter=tiny_segmenter)


def test_a_photo_is_seen_mirrored_too_and_a_clip_is_not(tiny_segmenter):
    """The app's photos take the network twice (Segmenter.mirrored): a mirrored photo's matte is the photo's
    matte mirrored, refinement included; a clip's frames take it once, as the speed bench times them."""
    from app.options import PRESETS
    from app.pipeline import matte_stream, photo_matte

    assert matte_stream(tiny_segmenter, PRESETS["balanced"], still=True).keyframes.segmenter.mirror
    assert not matte_stream(tiny_segmenter, PRESETS["balanced"]).keyframes.segmenter.mirror
    photo = np.random.default_rng(3).integers(0, 256, (150, 110, 3), dtype=np.uint8)
    options = RenderOptions(preset=PRESETS["fast"])
    a, b = photo_matte(tiny_segmenter, photo, options), photo_matte(tiny_segmenter, photo[:, ::-1].copy(), options)
    assert a.shape == photo.shape[:2] and np.abs(a - b[:, ::-1]).max() < 1e-3
