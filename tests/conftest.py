"""Shared fixtures: an isolated build cache (kept between runs) and user data folder per test session."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Simulator builds land in the repository's build/ folder (git-ignored) unless the user
# points SYSTOLAB_CACHE elsewhere; Verilator builds are reused across runs.
os.environ.setdefault("SYSTOLAB_CACHE", str(Path(__file__).resolve().parents[1] / "build" / "cache"))
# Records and fits that runs write go to a folder of this session, never the user's data
# folder: readers then take the shipped copies, whatever the user has recorded.
os.environ["SYSTOLAB_DATA_DIR"] = tempfile.mkdtemp(prefix="systolab-test-data-")
atexit.register(shutil.rmtree, os.environ["SYSTOLAB_DATA_DIR"], True)


def pytest_report_header(config):
    from systolab.sim.runner import simulator_status

    return "simulators: " + ", ".join(
        f"{name}={'yes' if why is None else 'no'}" for name, why in simulator_status().items())
