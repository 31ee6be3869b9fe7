"""Benchmarks: python -m bench.memory (and the speed benchmark)."""

import os

# Before anything loads torch: see model/__init__.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
