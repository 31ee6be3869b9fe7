# syntax=docker/dockerfile:1
# One image for the web app (default) and for training (`docker compose run --rm train ...`).
#   docker build -t tiktok-cutout .          then   docker run -p 8501:8501 tiktok-cutout
# CPU torch by default; docker-compose.gpu.yml rebuilds it with a CUDA build (TORCH_INDEX).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# ffmpeg from Debian; the distribution pins its own versions within the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_WAIT_POLICY=PASSIVE \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# torch/torchvision first, from the PyTorch index (CPU wheels: no CUDA libraries, ~1.5 GB smaller);
# requirements.txt pins the same versions, which these builds (2.15.0+cpu) satisfy, so pip keeps them.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" torch==2.15.0 torchvision==0.29.2

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt

# Code and weights belong to root and are read-only for the user that runs them. runs/ is the one place
# training writes (mount a host folder there to keep the results).
COPY .streamlit/ .streamlit/
COPY model/ model/
COPY app/ app/
COPY train/ train/
COPY weights/ weights/
# The ONNX copy of the shipped weights (ONNX Runtime runs the model on CPU), made here once rather than on the
# first visit; the app finds it beside the weights. No weights yet: the app says so, and the build goes on.
# chmod: files written through mkstemp (the export, a local training run's weights) are 0600, which the
# app's user could not read; everything here is made world-readable, and stays writable by root alone.
# The video loop's compiled kernel (numba) is compiled here too, into app/__pycache__, which the app then loads.
RUN if [ -f weights/default.safetensors ]; then python -m model.export weights/default.safetensors; fi \
    && python -c "import app.fused; app.fused.warm()" \
    && chmod -R a+rX,go-w .streamlit model app train weights
# Fail the build, not the first visitor: torch must still be the PyTorch-index build (its version carries a
# local label such as +cpu; a plain PyPI wheel would mean pip swapped in the CUDA one), and everything imports.
RUN python -c "import torch; assert '+' in torch.__version__, torch.__version__" \
    && python -c "import app.ui, train.loop"
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin app \
    && mkdir -p /app/runs && chown app:app /app/runs
USER 1000:1000

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('STREAMLIT_SERVER_PORT', '8501'), timeout=4)"]

# Address and port come from the STREAMLIT_SERVER_* variables above (0.0.0.0:8501).
CMD ["python", "-m", "streamlit", "run", "app/ui.py"]
