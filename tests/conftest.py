"""Shared fixtures: an isolated build cache per test session (kept between runs)."""
from __future__ import annotations

import os
from pathlib import Path

# Simulator builds land in the repository's build/ folder (git-ignored) unless the user
# points SYSTOLAB_CACHE elsewhere; Verilator builds are reused across runs.
os.environ.setdefault("SYSTOLAB_CACHE", str(Path(__file__).resolve().parents[1] / "build" / "cache"))


def pytest_report_header(config):
    from systolab.sim.runner import simulator_status

    return "simulators: " + ", ".join(
        f"{name}={'yes' if why is None else 'no'}" for name, why in simulator_status().items())
