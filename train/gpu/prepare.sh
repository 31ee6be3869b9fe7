#!/bin/bash
# Get ready for one run.sh call on a lent GPU (the `device` tool), here, in the repository's root, in one go:
#   bash train/gpu/prepare.sh LABELS/train [DATA]     # DATA: ../shared/datasets unless given
# makes .pack/data (the photos, negatives and the Pose-labelled clips of LABELS/train, ~35 MiB; train.pack),
# .pack/init.safetensors (the ImageNet start in fp16, ENCODER, default Lite2; or INIT=W.safetensors: a run's weights
# to go on from, e.g. a weights/candidates/ file), .whl/ (the wheels the GPU machine lacks, the versions of .venv),
# and takes the shipped weights, the README's pictures and weights/candidates/ out
# of what travels (64 MiB a call: the tree, the pack, the init and the wheels together). Then there:
#   device run `DEADLINE=520 bash train/gpu/run.sh`, carry [".pack", ".whl"], timeout_s 560
# and, here, at once:
#   mkdir -p weights/candidates && for f in FILES_AT/ep*.safetensors; do cp $f weights/candidates/RUN-${f##*/}; done
#   git add -f weights/candidates && git commit    # the home folder and runs/ do not outlive a session: session 12's
#                                                  # two GPU epochs were lost (RUN: a name for the run)
#   bash train/gpu/prepare.sh --restore      # the weights and pictures tracked again, nothing else changed
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
TRIM=(weights/default.safetensors weights/default.int8.onnx weights/candidates docs/*.png docs/*.webp)
EXCLUDE=.git/info/exclude
BEGIN="# begin train/gpu/prepare.sh" END="# end train/gpu/prepare.sh"
unexclude() { [ ! -f $EXCLUDE ] || sed -i "\|^$BEGIN\$|,\|^$END\$|d" $EXCLUDE; }
if [ "${1:-}" = --restore ]; then
    unexclude
    git reset -q -- weights docs
    git status --short
    exit 0
fi
LABELS=${1:?usage: bash train/gpu/prepare.sh LABELS/train [DATA] | --restore}
DATA=${2:-../shared/datasets}
PY=${PY:-.venv/bin/python}
ENCODER=${ENCODER:-timm-tf_efficientnet_lite2}
mkdir -p "$(dirname $EXCLUDE)"
unexclude
printf '%s\n' "$BEGIN" "${TRIM[@]/#//}" "$END" >> $EXCLUDE
echo "packing the data"
rm -rf .pack && $PY -m train.pack --out .pack/data --photos $DATA/photos/ccp $DATA/photos/vikram \
    --negatives $DATA/negatives/davis-no-people --pseudo "$LABELS" ${PACK_ARGS:---photo-quality 64 --frame-crf 23}
if [ -n "${INIT:-}" ]; then          # a run's weights to start from instead (e.g. a weights/candidates/ file, fp16)
    cp "$INIT" .pack/init.safetensors
else
    $PY -m train.gpu.make_init .pack/init.safetensors --encoder $ENCODER
fi
echo "fetching wheels"
rm -rf .whl && mkdir .whl
WHEELS=$($PY -m pip freeze | grep -i -E "^(segmentation[-_]models[-_]pytorch|albumentations|albucore|pydantic|pydantic[-_]core|annotated[-_]types|typing[-_]inspection|typing[-_]extensions|simsimd|stringzilla)==")
# shellcheck disable=SC2086
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $WHEELS
git rm -r -q --cached --ignore-unmatch "${TRIM[@]}"
# what travels: the files git would carry (tracked, and untracked but not ignored) and the two carried folders
TREE=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
TOTAL=$(( TREE + $(du -sb .pack | cut -f1) + $(du -sb .whl | cut -f1) ))
echo "travels: $(( TOTAL / 1048576 )) MiB (tree $(( TREE / 1048576 )), .pack $(du -sm .pack | cut -f1), .whl $(du -sm .whl | cut -f1))"
if [ $TOTAL -gt $(( 62 * 1048576 )) ]; then
    echo "over 62 MiB: too close to the 64 MiB a call carries; shrink the pack (PACK_ARGS: --photo-quality, --frame-crf)" >&2
    exit 1
fi
