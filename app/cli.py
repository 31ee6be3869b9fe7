"""Cut people out of clips and photos from the command line.

    python -m app.cli dance.mp4 --mode cutout --out dance_cutout.mp4
    python -m app.cli dance.mp4 photo.jpg --mode transparent --format webm --out results/
    python -m app.cli clips/ --mode blur --out blurred/            # every clip and photo in a folder
    python -m app.cli dance.mp4 --mode replace --background beach.jpg --out beach.mp4

The output type follows --out's extension unless --format says otherwise. With several inputs or a folder,
--out is a folder and each result is named <input>_<mode>.<format>. Exit status: 0 all done, 1 some input
failed (each failure is one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from tqdm import tqdm

from app.options import DEFAULT_PRESET, IMAGE_FORMATS, MODES, PRESETS, VIDEO_FORMATS, InputError, Preset, \
    RenderOptions, format_from_path, parse_colour
from app.pipeline import Progress, is_still_image, load_segmenter, segment_file
from app.video_io import FFmpegError
from model.refine import RAW, RefineOptions
from model.settings import tune_process

MEDIA_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif", ".jpg", ".jpeg", ".png", ".webp",
                  ".bmp", ".tif", ".tiff"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("inputs", nargs="+", type=Path, help="clips, photos or folders of them")
    p.add_argument("--out", "-o", type=Path, required=True, help="output file, or folder for several inputs")
    p.add_argument("--mode", "-m", choices=MODES, default="cutout")
    p.add_argument("--format", "-f", choices=VIDEO_FORMATS + IMAGE_FORMATS,
                   help="output format (default: from --out's extension; in a folder: mp4 for clips, png for photos)")
    p.add_argument("--background", "-b", default="white",
                   help="cutout colour (white, #00ff00, 0,255,0), or a picture or video file, which implies --mode "
                        "replace (a video plays behind the dancer: looped when shorter, cut when longer)")
    p.add_argument("--tint", default="red", help="overlay colour")
    p.add_argument("--weights", "-w", type=Path, help="a .safetensors checkpoint (default: weights/default.safetensors)")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                   help="speed/quality trade-off: the size frames are shrunk to for the model, and how often it "
                        "runs on a video (default %(default)s; see README, 'Speed')")
    p.add_argument("--keyframes", type=int, metavar="K",
                   help="run the model on every K-th video frame and carry the matte along the motion between "
                        "(default: the preset's; 1 = every frame)")
    p.add_argument("--focus", action=argparse.BooleanOptionalAction, default=None,
                   help="look again, closer, at people who are small in the frame: a second model pass on a crop "
                        "around them (default: the preset's)")
    p.add_argument("--batch", type=int, default=4, help="frames per model call")
    p.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better (default 20)")
    r = p.add_argument_group("matte refinement (see README, 'Steady edges')")
    r.add_argument("--smooth", type=float, default=RefineOptions.temporal,
                   help="temporal smoothing in still areas, 0 (off) to 0.9 (default %(default)s)")
    r.add_argument("--edges", choices=["guided", "bilinear"], default=RefineOptions.edges,
                   help="edge-aware (guided filter) or plain upsampling of the matte (default %(default)s)")
    r.add_argument("--keep", choices=["all", "largest"], default=RefineOptions.keep,
                   help="keep all people or only the largest (default %(default)s)")
    r.add_argument("--min-blob", type=float, default=RefineOptions.min_blob,
                   help="drop specks smaller than this fraction of the frame, e.g. 0.002 (default %(default)s: off)")
    r.add_argument("--feather", type=float, default=0.0, help="soften the edge by this many pixels")
    r.add_argument("--threshold", type=float, help="hard 0/1 matte at this level instead of soft alpha")
    r.add_argument("--levels", type=float, nargs=2, default=RefineOptions.levels, metavar=("LOW", "HIGH"),
                   help="soft alpha below LOW becomes 0 and above HIGH 1, linear between: cuts the faint haze "
                        "over the background (default %(default)s; 0 1 = off)")
    r.add_argument("--raw", action="store_true",
                   help="per-frame output: the model on every frame, no smoothing, clean-up or guided edges")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--timing", action="store_true",
                   help="print to stderr the wall-clock time (Unix seconds) at which each input's first frames came "
                        "through the network: `python -m bench` times start-up with it")
    return p.parse_args(argv)


def collect_inputs(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"input not found: {path}")
    if not files:
        raise InputError("no clips or photos found in the given folders")
    return files


def build_preset(args: argparse.Namespace) -> Preset:
    """--preset, with --keyframes and --focus (or --raw) in place of its own."""
    preset = PRESETS[args.preset]
    if args.raw:
        return dataclasses.replace(preset, keyframe_every=1, focus=False)
    return dataclasses.replace(preset, keyframe_every=args.keyframes or preset.keyframe_every,
                               focus=preset.focus if args.focus is None else args.focus)


def build_options(args: argparse.Namespace) -> RenderOptions:
    mode, background_image, colour = args.mode, None, (255, 255, 255)
    if Path(args.background).is_file():
        background_image = str(args.background)
        if mode == "cutout":
            mode = "replace"
    else:
        colour = parse_colour(args.background)
    try:
        refine = RAW if args.raw else RefineOptions(temporal=args.smooth, edges=args.edges, keep=args.keep,
                                                    min_blob=args.min_blob, feather=args.feather,
                                                    threshold=args.threshold, levels=tuple(args.levels))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return RenderOptions(mode=mode, background=colour, background_image=background_image,
                         tint=parse_colour(args.tint), batch_size=args.batch, crf=args.crf, refine=refine,
                         preset=build_preset(args))


def plan_outputs(files: list[Path], out: Path, fmt: str | None, many: bool, mode: str) -> list[tuple[Path, Path, str]]:
    """(input, output, format) for each input."""
    if not many:
        chosen = fmt or format_from_path(out)
        return [(files[0], out, chosen)]
    if out.suffix and not out.is_dir():
        raise InputError(f"with several inputs --out must be a folder, not {out.name}")
    jobs = []
    for f in files:
        kind_fmt = fmt or ("png" if is_still_image(f) else "mp4")
        jobs.append((f, out / f"{f.stem}_{mode}.{kind_fmt}", kind_fmt))
    return jobs


def main(argv: list[str] | None = None) -> int:
    tune_process()
    args = parse_args(argv)
    try:
        files = collect_inputs(args.inputs)
        many = len(files) > 1 or any(p.is_dir() for p in args.inputs)
        options = build_options(args)
        jobs = plan_outputs(files, args.out, args.format, many, args.mode)
        segmenter = load_segmenter(args.weights, preset=options.preset)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for src, dst, fmt in jobs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        stamp = args.timing
        try:
            with tqdm(desc=src.name, unit="frame", disable=args.quiet, leave=False, file=sys.stderr) as bar:
                def progress(p: Progress, bar=bar) -> None:
                    nonlocal stamp
                    if stamp:
                        print(f"timing: {src.name}: first frames through the network at {time.time():.3f}",
                              file=sys.stderr, flush=True)
                        stamp = False
                    bar.total = p.total
                    bar.update(p.done - bar.n)
                result = segment_file(src, dst, options, progress, segmenter=segmenter, fmt=fmt)
        except (InputError, FFmpegError) as exc:
            failures += 1
            print(f"error: {src.name}: {exc}", file=sys.stderr)
            continue
        print(f"{src.name} -> {dst}: {result.frames} frames in {result.seconds:.1f} s ({result.speed:.1f} fps)")
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
