#!/bin/bash
# One call on a lent GPU machine (the workplace's `device` tool; 15 minutes of device time a session, 64 MiB sent,
# files of at most 16 MiB back): unpack the data, time real training steps, train what fits by DEADLINE seconds,
# and put each epoch's weights (fp16, 11 MB for Lite2) under $OUT as it ends. Prepare here, in the repo's root, with
#   bash train/gpu/prepare.sh LABELS/train     (the data pack, the ImageNet start, the wheels; the tree trimmed)
# then: device run `DEADLINE=520 bash train/gpu/run.sh` with carry [".pack", ".whl"] and timeout_s 560; commit the
# epochs that come back at once (prepare.sh's header says how), then `bash train/gpu/prepare.sh --restore`.
# Rehearse on a CPU first: SKIP_PIP=1 PY=.venv/bin/python OUT=/tmp/o EPOCHS=2 BATCH=4 WORKERS=2 DEADLINE=200 bash train/gpu/run.sh
T0=$(date +%s)
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
PY=${PY:-python3}
if [ -z "$SKIP_PIP" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tail -1; nproc
DATA=${DATA:-/tmp/data}
$PY -m train.pack --unpack .pack/data --out $DATA || exit 1
EPOCHS=${EPOCHS:-4}
ARGS="--init .pack/init.safetensors --train-repeat 2 --train $DATA/photos/ccp $DATA/photos/vikram --pseudo $DATA/pseudo --negatives $DATA/negatives/davis-no-people --name ${NAME:-gpu} --encoder ${ENCODER:-timm-tf_efficientnet_lite2} --decoder-channels 128,64,32,16,8 --infer-size 320 --size 352x224 --turn-every 2 --batch ${BATCH:-32} --lr ${LR:-1e-3} --warmup-steps 200 --loss bce+dice --zoom 0.3,2.2 --seed ${SEED:-12} --graphics 0.3 --split-seed 0 --val-fraction 0.1 --workers ${WORKERS:-15} --ckpt-minutes 1000"
[ -n "$FORCE_SPE" ] || $PY -m train.gpu.calibrate $(( T0 + ${DEADLINE:-540} )) $EPOCHS $ARGS --out /tmp/calib 2>&1 | tee $OUT/calib.log
SPE=${FORCE_SPE:-$(tail -1 $OUT/calib.log)}
[[ "$SPE" =~ ^[0-9]+$ ]] || { echo "calibration failed"; exit 1; }
echo "training $EPOCHS x $SPE steps from $(( $(date +%s) - T0 )) s"
$PY -m train.gpu.fp16_epochs /tmp/run $OUT > $OUT/watch.log 2>&1 &
$PY -m train $ARGS --out /tmp/run --epochs $EPOCHS --steps-per-epoch $SPE 2>&1 | tee $OUT/train.log | grep -v "it/s\]$"
touch $OUT/.stop; wait
(cd /tmp/run && tar czf $OUT/run-meta.tgz --exclude='*.safetensors' --exclude=state.pt .)
echo "done at $(( $(date +%s) - T0 )) s"; ls -la $OUT
