"""Benchmarks: python -m bench (speed), bench.memory, bench.soak, bench.flicker, bench.presets, bench.people,
bench.graphics, bench.zoomout, bench.vs_mediapipe. Each entry point calls `model.settings.tune_process()` first,
as the app does."""
