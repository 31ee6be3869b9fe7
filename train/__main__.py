"""Train a person segmenter from the command line.

    python -m train --train ../shared/datasets/photos/ccp ../shared/datasets/photos/vikram \\
        --negatives ../shared/datasets/negatives/davis-no-people --test ../shared/datasets/video-gt/davis \\
        --out runs/effnet --epochs 8 --batch 8 --size 256x256

    python -m train --resume runs/effnet/state.pt ...same flags...      # continue where it stopped
    torchrun --nproc_per_node 2 -m train ...                            # DistributedDataParallel

The original TikTok project's flags still work: --root_dir_train, --root_dir_val, --root_dir_test,
--save_model_path, --epochs, --lr, --batch. Without --val, a fixed seeded fraction of --train is held out.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from model import settings

if __name__ == "__main__":     # an entry point: tune the process before torch loads (OpenMP reads it then)
    settings.tune_process(pipeline=False, passive_wait=False)

import torch
import torch.distributed as dist

from train.loop import LOSSES, TrainConfig, train


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x256 (HxW), got {text!r}") from None
    if h % 32 or w % 32 or h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size {text} must be positive multiples of 32")
    return h, w


def _pair(text: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in text.split(","))
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", "--root_dir_train", nargs="+", default=[], metavar="DIR")
    p.add_argument("--val", "--root_dir_val", nargs="+", default=[], metavar="DIR")
    p.add_argument("--test", "--root_dir_test", nargs="+", default=[], metavar="DIR")
    p.add_argument("--negatives", nargs="+", default=[], metavar="DIR", help="frames without people")
    p.add_argument("--pseudo", nargs="+", default=[], metavar="DIR",
                   help="pseudo-labelled sets (python -m train.label): trained on whole, soft targets")
    p.add_argument("--video-val", nargs="+", default=[], metavar="DIR",
                   help="held-out pseudo-labelled clips: with the photo val split they choose the best epoch")
    p.add_argument("--coco-ann", help="COCO instances JSON; category person becomes the mask")
    p.add_argument("--coco-images", help="folder of the COCO images")
    p.add_argument("--out", "--save_model_path", default="runs/train", metavar="DIR")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", "--batch_size", type=int, default=8)
    p.add_argument("--optimizer", choices=["adam", "adamw"], default="adamw")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--scheduler", choices=["cosine", "plateau", "none"], default="cosine")
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--loss", choices=sorted(LOSSES), default="bce+dice")
    p.add_argument("--encoder", default="timm-tf_efficientnet_lite0")
    p.add_argument("--decoder-channels", default="128,64,32,16,8")
    p.add_argument("--arch", default="Unet")
    p.add_argument("--classes", type=int, default=1, help="> 1 for multi-class video/mask.npy sets")
    p.add_argument("--infer-size", type=int, default=320, help="long side at inference (stored in the weights)")
    p.add_argument("--size", type=_size, default=(256, 256), help="training crop HxW")
    p.add_argument("--train-repeat", type=int, default=1,
                   help="count the --train sets N times per pass: weighs hand-labelled photos against --pseudo frames")
    p.add_argument("--ignore-band", type=_pair, metavar="LO,HI",
                   help="soft labels with confidence inside (LO, HI) are not trained on, e.g. 0.2,0.8")
    p.add_argument("--freeze-bn", action="store_true",
                   help="BatchNorm keeps its running statistics (fine-tuning with small batches)")
    p.add_argument("--turn-every", type=int, default=0,
                   help="every Nth batch gets its crop turned (HxW -> WxH): portrait and landscape framing")
    p.add_argument("--zoom", type=_pair, default=(0.45, 2.2), help="crop zoom range around the inference scale")
    p.add_argument("--paste-prob", type=float, default=0.5, help="copy-paste augmentation probability")
    p.add_argument("--graphics", type=float, default=0.0, metavar="P",
                   help="probability of flat graphics (stickers, captions) drawn on a crop beside the people; "
                        "never a person")
    p.add_argument("--second-person", type=float, default=0.0, metavar="P",
                   help="probability of another person pasted into a labelled crop, so that the network learns "
                        "to keep everyone (the teacher labels one person)")
    p.add_argument("--scene", type=float, default=0.0, metavar="P",
                   help="probability that a labelled crop zoomed out beyond its picture gets a frame without people "
                        "around the picture instead of its replicated border (needs --negatives)")
    p.add_argument("--statue", type=float, default=0.0, metavar="P",
                   help="probability of a person from another image set beside the people as a stone statue "
                        "(mostly inside the crop), labelled background (figures that are not people)")
    p.add_argument("--stalks", type=float, default=0.0, metavar="P",
                   help="probability of thin stalks (grass, reeds) rising from a crop's bottom edge in front of "
                        "everything, labelled background; the person goes on between them")
    p.add_argument("--no-photometric", action="store_true")
    p.add_argument("--no-imagenet", action="store_true", help="random encoder init")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--steps-per-epoch", type=int, default=0)
    p.add_argument("--patience", type=int, default=0, help="early stopping (0: off)")
    p.add_argument("--ckpt-minutes", type=float, default=10.0, help="mid-epoch state save interval")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on a GPU")
    p.add_argument("--amp-cpu", action="store_true",
                   help="bf16 autocast on the CPU too: ~1.6x faster steps where it has AVX512-BF16 or AMX")
    p.add_argument("--resume", metavar="STATE", help="state.pt (or its run folder) to continue")
    p.add_argument("--init", metavar="WEIGHTS", help="start from a .safetensors checkpoint (fine-tuning)")
    p.add_argument("--name", default="")
    return p


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    a = build_parser().parse_args(argv)
    return TrainConfig(
        train=tuple(a.train), val=tuple(a.val), test=tuple(a.test), negatives=tuple(a.negatives),
        pseudo=tuple(a.pseudo), video_val=tuple(a.video_val), turn_every=a.turn_every,
        train_repeat=a.train_repeat, ignore_band=a.ignore_band, freeze_bn=a.freeze_bn,
        coco_ann=a.coco_ann, coco_images=a.coco_images, out=a.out, val_fraction=a.val_fraction,
        split_seed=a.split_seed, epochs=a.epochs, lr=a.lr, batch=a.batch, optimizer=a.optimizer,
        weight_decay=a.weight_decay, scheduler=a.scheduler, warmup_steps=a.warmup_steps, loss=a.loss,
        encoder=a.encoder, decoder_channels=tuple(int(c) for c in a.decoder_channels.split(",")), arch=a.arch,
        classes=a.classes, infer_size=a.infer_size, size=a.size, zoom=a.zoom, paste_prob=a.paste_prob,
        graphics_prob=a.graphics, second_person=a.second_person, scene=a.scene, statue=a.statue, stalks=a.stalks,
        photometric=not a.no_photometric, imagenet=not a.no_imagenet, seed=a.seed, workers=a.workers,
        threads=a.threads, steps_per_epoch=a.steps_per_epoch, patience=a.patience, ckpt_minutes=a.ckpt_minutes,
        amp=not a.no_amp, amp_cpu=a.amp_cpu, resume=a.resume, init=a.init, name=a.name,
        command="python -m train " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])),
    )


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = config_from_args(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    distributed = settings.distributed()
    if distributed.enabled:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        summary = train(cfg)
    finally:
        if distributed.enabled:
            dist.destroy_process_group()
    if distributed.rank == 0:
        print(f"best val score {summary['best']:.4f} at epoch {summary['best_epoch']}; weights in {summary['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
