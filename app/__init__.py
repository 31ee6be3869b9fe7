"""The app: video I/O, compositing, the pipeline, the CLI and the Streamlit page."""

import os

# Before anything loads torch: see model/__init__.py (spinning OpenMP threads starve ffmpeg on small machines).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
