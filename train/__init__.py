"""Training, evaluation and pseudo-labelling for the person segmenter.

    python -m train --train DIR [DIR ...] --out runs/NAME          # train (see train/__main__.py)
    python -m train.evaluate --weights W --data DIR [DIR ...]       # metrics table (+ --json)
    python -m train.label --weights W --input VIDEO|DIR --out DIR   # images/ + masks/ pseudo-labels
    python -m train.ship --run runs/NAME --out weights/default.safetensors   # fp16 weights + metrics.json

`train` imports `model`, never `app`.
"""
