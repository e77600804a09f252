"""The cycle model (``models/core/perf.py``) against the RTL's own counters over a shape grid.

One simulator build per configuration, all of its shapes in one simulation (descriptors
back to back); configurations run in parallel processes. Every counter the model predicts
is compared: cycles, busy cycles, MACs, bytes read and written.
"""
from __future__ import annotations

import datetime
import functools
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..checks import check_int
from ..config import AcceleratorConfig
from ..models.chip.config import ChipConfig, get_chip
from ..models.chip.perf import chip_gemm_perf
from ..models.core.perf import MemorySystem, core_counters, core_cycles
from ..models.records import VALIDATION_RECORD, record_file, write_target, write_text
from ..models.specs import load_yaml
from ..sim.chip_bench import chip_campaign, random_products, run_chip_gemm
from ..sim.core_bench import run_gemms
from ..sim.golden import golden_matmul
from ..sim.runner import run_chip_hdl, run_core_hdl
from ..sim.stimulus import random_gemm

COMPARED = ("cycles", "busy_cycles", "macs", "bytes_read", "bytes_written")


@dataclass(frozen=True)
class ValidationReport:
    """A validation run: a cycle model's counters against the RTL's (the fields of
    ``systolab validate --json``). Errors are model minus RTL, in cycles, bytes or MACs."""

    shapes: int                         # GEMMs compared
    configurations: int                 # configurations (or chips) simulated
    simulator: str
    seed: int
    all_passed: bool                    # every GEMM's C bit-exact, no protocol violation
    max_abs_cycle_error: int
    max_rel_cycle_error: float          # of the RTL's cycles
    exact_cycles: int                   # GEMMs whose cycles the model predicts exactly
    max_abs_error: dict[str, int]       # per counter
    cases: dict[str, dict]              # per configuration: shapes, exact, max_abs_cycle_error, ...
    worst: tuple[dict, ...]             # the GEMMs of the largest cycle errors (at most 10)

    def to_dict(self) -> dict[str, Any]:
        return {"shapes": self.shapes, "configurations": self.configurations, "simulator": self.simulator,
                "seed": self.seed, "all_passed": self.all_passed, "max_abs_cycle_error": self.max_abs_cycle_error,
                "max_rel_cycle_error": self.max_rel_cycle_error, "exact_cycles": self.exact_cycles,
                "max_abs_error": dict(self.max_abs_error), "cases": dict(self.cases), "worst": list(self.worst)}


@dataclass(frozen=True)
class ValidationCase:
    """A configuration, its memory and the shapes to run on it."""

    config: AcceleratorConfig
    memory: MemorySystem
    shapes: tuple[tuple[int, int, int], ...]
    label: str


def default_cases(*, shapes_per_case: int = 50, seed: int = 0) -> list[ValidationCase]:
    """Six configurations — both dataflows, square and non-square arrays (R < C and R > C),
    compute-bound (16 B/cycle on 16-byte beats) and memory-bound (4 B/cycle on 8-byte
    beats, 3 B/cycle on 32-byte beats), small buffers so that K-chunks and M-blocks repeat,
    latency 1 to 50, C rows of one and of several beats — each with the same random shapes
    (1..40 in every dimension, after the corner classes)."""
    rng = np.random.default_rng(seed)
    grid = [(1, 1, 1), (1, 17, 40), (23, 1, 7), (9, 6, 1), (40, 2, 5), (16, 16, 16), (8, 8, 64), (13, 11, 33)]
    while len(grid) < shapes_per_case:
        m, n, k = (int(v) for v in rng.integers(1, 41, 3))
        grid.append((m, n, k))
    shapes = tuple(grid[:shapes_per_case])
    small_os: dict[str, Any] = dict(dtype="int16", beat_bytes=8, a_buffer_kib=3 * 2 * 2 * 16 / 1024, b_buffer_kib=5 * 2 * 2 * 16 / 1024)
    small_ws: dict[str, Any] = dict(beat_bytes=8, a_buffer_kib=2 * 5 * 8 / 1024, acc_buffer_kib=3 * 4 * 8 / 1024)
    return [
        ValidationCase(AcceleratorConfig(rows=4, cols=4), MemorySystem(10, 16), shapes, "os 4x4, compute-bound"),
        ValidationCase(AcceleratorConfig(rows=3, cols=5, **small_os), MemorySystem(30, 4), shapes,
                       "os 3x5 int16, K-chunk 16, memory-bound"),
        ValidationCase(AcceleratorConfig(rows=4, cols=4, dataflow="ws"), MemorySystem(10, 16), shapes,
                       "ws 4x4, compute-bound"),
        ValidationCase(AcceleratorConfig(rows=5, cols=3, dataflow="ws", **small_ws), MemorySystem(20, 4), shapes,
                       "ws 5x3, M-block 8, memory-bound"),
        ValidationCase(AcceleratorConfig(rows=6, cols=2, beat_bytes=32), MemorySystem(50, 3), shapes,
                       "os 6x2, 32-byte beats at 3 B/cycle, latency 50"),
        ValidationCase(AcceleratorConfig(rows=8, cols=8, dataflow="ws", dtype="int16"), MemorySystem(1, 16), shapes,
                       "ws 8x8 int16, 2-beat C rows, latency 1"),
    ]


def pipelined_cases(stages: int, *, shapes_per_case: int = 50, seed: int = 0) -> list[ValidationCase]:
    """Five floating-point configurations whose MAC has ``stages`` pipeline stages (2..7;
    ``systolab validate --mac-stages``): both dataflows, bf16 and fp8_e4m3, compute- and
    memory-bound, small buffers so that K-chunks and M-blocks repeat, C rows of one and of
    two beats; the shapes of :func:`default_cases`."""
    stages = check_int("mac_stages", stages, lo=2, hi=7)
    shapes = default_cases(shapes_per_case=shapes_per_case, seed=seed)[0].shapes
    bf16: dict[str, Any] = dict(dtype="bf16", beat_bytes=8, mac_stages=stages)
    fp8: dict[str, Any] = dict(dtype="fp8_e4m3", beat_bytes=8, mac_stages=stages)
    return [
        ValidationCase(AcceleratorConfig(rows=3, cols=2, a_buffer_kib=0.25, b_buffer_kib=0.25, **bf16),
                       MemorySystem(10, 8), shapes, f"os 3x2 bf16 S={stages}, compute-bound"),
        ValidationCase(AcceleratorConfig(rows=2, cols=4, a_buffer_kib=0.125, b_buffer_kib=0.125, **fp8),
                       MemorySystem(30, 3), shapes, f"os 2x4 fp8_e4m3 S={stages}, memory-bound"),
        ValidationCase(AcceleratorConfig(rows=4, cols=4, **bf16), MemorySystem(10, 8), shapes,
                       f"os 4x4 bf16 S={stages}, 2-beat C rows"),
        ValidationCase(AcceleratorConfig(rows=3, cols=2, dataflow="ws", a_buffer_kib=0.25, acc_buffer_kib=0.125,
                                         **bf16), MemorySystem(10, 8), shapes, f"ws 3x2 bf16 S={stages}, compute-bound"),
        ValidationCase(AcceleratorConfig(rows=4, cols=3, dataflow="ws", a_buffer_kib=0.125, acc_buffer_kib=0.125,
                                         **fp8), MemorySystem(20, 4), shapes,
                       f"ws 4x3 fp8_e4m3 S={stages}, memory-bound"),
    ]


def _run_case(case: ValidationCase, simulator: str, seed: int) -> list[dict]:

    rng = np.random.default_rng(seed)
    dt = case.config.input_dtype
    products = [random_gemm(rng, dt, M, N, K) for M, N, K in case.shapes]
    params: dict[str, Any] = dict(latency=case.memory.latency_cycles, bytes_per_cycle=case.memory.bytes_per_cycle,
                                  seed=seed)
    if simulator == "amaranth":
        runs = run_gemms(case.config, products, **params)
        return [r.counters | {"passed": r.passed} for r in runs]
    out = run_core_hdl(case.config, products, simulator, **params)

    return [cnt | {"passed": np.array_equal(np.array(c, dtype=object), golden_matmul(a, b, case.config).astype(object))
                   and not out.violations}
            for (a, b), c, cnt in zip(products, out.c, out.counters)]


def _measured(cases: list, run, *, simulator: str, seed: int, jobs: int, progress, what, cost=None):
    """(case, what ``run`` measured on the RTL) for every case, run in ``jobs`` processes and
    yielded in the cases' order; ``what(case, "3/8")`` is the progress line. With ``cost``
    (a case's relative cost), the costliest cases start first, so that the last to finish
    is a cheap one (the longest-first rule)."""
    progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    order = sorted(range(len(cases)), key=lambda i: cost(cases[i]), reverse=True) if cost else range(len(cases))
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {i: pool.submit(run, cases[i], simulator, seed) for i in order}
        for done, i in enumerate(range(len(cases)), start=1):
            measured = futures[i].result()
            progress(what(cases[i], f"{done}/{len(cases)}"))
            yield cases[i], measured


def validate(cases: list[ValidationCase], *, simulator: str = "verilator", seed: int = 0, jobs: int = 2,
             progress=None) -> ValidationReport:
    """Run every case on the RTL and compare each counter with the model.

    Returns the report: ``shapes`` (GEMMs compared), ``max_abs_cycle_error``,
    ``max_rel_cycle_error``, per-counter maximum absolute errors, per-case summaries and
    the worst GEMMs.
    """
    rows = []
    for case, measured in _measured(cases, _run_case, simulator=simulator, seed=seed, jobs=jobs, progress=progress,
                                    what=lambda c, n: f"validate: {n} {c.label} ({len(c.shapes)} shapes)"):
        for shape, got in zip(case.shapes, measured):
            M, N, K = shape
            model = core_counters(case.config, M, N, K) | {"cycles": core_cycles(case.config, M, N, K, case.memory)}
            rows.append({"case": case.label, "shape": list(shape), "passed": got["passed"],
                         "rtl": {k: got[k] for k in COMPARED}, "model": {k: model[k] for k in COMPARED}})
    for r in rows:
        r["error"] = {k: r["model"][k] - r["rtl"][k] for k in COMPARED}
    return _report(rows, cases, COMPARED, simulator=simulator, seed=seed,
                   case_fields=lambda c: {"design": c.config.to_dict(), "latency_cycles": c.memory.latency_cycles,
                                          "bytes_per_cycle": c.memory.bytes_per_cycle})


def _report(rows: list[dict], cases: list, compared: tuple[str, ...], *, simulator: str, seed: int,
            case_fields) -> ValidationReport:
    """The report of ``rows`` (one a GEMM, with its ``error`` per counter): the cycle errors,
    each counter's largest error, per case (with ``case_fields(case)``) and the worst GEMMs."""
    cyc = [abs(r["error"]["cycles"]) for r in rows]
    rel = [abs(r["error"]["cycles"]) / r["rtl"]["cycles"] for r in rows]
    per_case: dict[str, dict] = {}
    for case in cases:
        errs = [abs(r["error"]["cycles"]) for r in rows if r["case"] == case.label]
        per_case[case.label] = {"shapes": len(errs), "exact": sum(e == 0 for e in errs),
                                "max_abs_cycle_error": max(errs), **case_fields(case)}
    worst = sorted(rows, key=lambda r: -abs(r["error"]["cycles"]))[:10]
    return ValidationReport(shapes=len(rows), configurations=len(cases), simulator=simulator, seed=seed,
                            all_passed=all(r["passed"] for r in rows), max_abs_cycle_error=max(cyc),
                            max_rel_cycle_error=max(rel), exact_cycles=sum(e == 0 for e in cyc),
                            max_abs_error={k: max(abs(r["error"][k]) for r in rows) for k in compared},
                            cases=per_case, worst=tuple(worst))


# -- the chip -----------------------------------------------------------------------------------
CHIP_COMPARED = ("cycles", "steps", "macs", "busy", "dram_bytes_read", "dram_bytes_written", "sram_bytes_read",
                 "sram_bytes_written")


@dataclass(frozen=True)
class ChipValidationCase:
    """A chip and the descriptors (M, N, K, count, blocking) to run on it."""

    chip: ChipConfig
    gemms: tuple
    label: str


def default_chip_cases(*, shapes_per_case: int = 50, seed: int = 0) -> list[ChipValidationCase]:
    """Four chips — 1, 2 and 4 cores; both dataflows; 1, 2 and 4 DMA channels; a global
    SRAM that holds a whole K and one that forces many K-blocks; DRAM that leaves the
    cores compute-bound and DRAM that binds — each with the corner classes (split-K among
    them) and random shapes (1..24, one to three products) under random blockings that
    fit."""

    tiny, small = get_chip("sl-tiny"), get_chip("sl-small")
    chips = [
        (tiny, "sl-tiny: 2 OS 4x4 cores, 2 channels, 16 KiB, 12 B/cycle DRAM (binds), latency 20"),
        (tiny.derive(dataflow="ws", cores=1, dma_channels=1, global_sram_mib=0.25, dram_GBps_per_stack=64,
                     dram_latency_ns=5, name="sl-tiny-ws-1core"),
         "1 WS 4x4 core, 1 channel, 256 KiB (one K-block), 64 B/cycle DRAM, latency 5"),
        (small, "sl-small: 4 OS 8x8 cores, 2 channels, 128 KiB, one beat a cycle per channel, latency 40"),
        (small.derive(dataflow="ws", global_sram_mib=1 / 64, dma_channels=4, dram_GBps_per_stack=8,
                      dram_latency_ns=60, name="sl-small-ws-16k"),
         "4 WS 8x8 cores, 4 channels, 16 KiB (many K-blocks), 8 B/cycle DRAM, latency 60"),
    ]
    out = []
    for chip, label in chips:
        cases = chip_campaign(chip, count=max(0, shapes_per_case - 9), seed=seed)[:shapes_per_case]
        out.append(ChipValidationCase(chip, tuple(cases), label))
    return out


def _run_chip_case(case: ChipValidationCase, simulator: str, seed: int, dram: str = "hdl") -> list[dict]:

    rng = np.random.default_rng(seed)
    runs = [(random_products(case.chip, M, N, K, p, rng), blk) for M, N, K, p, blk in case.gemms]
    if simulator == "amaranth":
        results = []
        for products, blk in runs:
            r = run_chip_gemm(case.chip, products, blk)
            results.append(r.counters | {"busy": r.busy, "passed": r.passed})
        return results

    out = run_chip_hdl(case.chip, runs, simulator, dram=dram)
    return [r.counters | {"busy": r.busy, "passed": r.status == 0 and not r.violations and all(
        np.array_equal(np.array(c, dtype=object), golden_matmul(a, b, case.chip.core, k_block=blk.kb,
                                                                           k_part=blk.kc).astype(object))
        for c, (a, b) in zip(r.c, products))} for (products, blk), r in zip(runs, out)]


def validate_chip(cases: list[ChipValidationCase], *, simulator: str = "verilator", seed: int = 0, jobs: int = 2,
                  progress=None, dram: str = "hdl") -> ValidationReport:
    """Every case on the chip RTL against the chip cycle model (``models/chip/perf.py``),
    every counter compared; the report has the fields of :func:`validate`. ``dram``: the
    cocotb bench's DRAM (``"hdl"``: in the simulated design; ``"python"``: the Python
    model driving every beat, the slow independent check; see
    :class:`~systolab.sim.chip_plan.ChipPlan`)."""
    rows = []
    run = functools.partial(_run_chip_case, dram=dram)
    # the build is most of a chip's time, and its Verilog grows with the PEs and channels
    for case, measured in _measured(cases, run, simulator=simulator, seed=seed, jobs=jobs, progress=progress,
                                    what=lambda c, n: f"validate --chip: {n} {c.label} ({len(c.gemms)} GEMMs)",
                                    cost=lambda c: (c.chip.cores * c.chip.core.rows * c.chip.core.cols,
                                                    c.chip.dma_channels)):
        for (M, N, K, p, blk), got in zip(case.gemms, measured):
            model = chip_gemm_perf(case.chip, M, N, K, blk, count=p).counters()
            rows.append({"case": case.label, "shape": [M, N, K], "count": p, "blocking": str(blk),
                         "passed": got["passed"], "rtl": {k: got[k] for k in CHIP_COMPARED},
                         "model": {k: model[k] for k in CHIP_COMPARED}})
    for r in rows:
        r["error"] = {k: (max(abs(a - b) for a, b in zip(r["model"][k], r["rtl"][k])) if k == "busy"
                          else r["model"][k] - r["rtl"][k]) for k in CHIP_COMPARED}
    return _report(rows, cases, CHIP_COMPARED, simulator=simulator, seed=seed,
                   case_fields=lambda c: {"chip": c.chip.to_dict()})


# -- the record the compare report cites -------------------------------------------------------
def record(report: dict, kind: str, *, command: str, path: str | Path | None = None, write: bool = False) -> Path:
    """Store a run's summary (``kind``: ``core`` or ``chip``), with its date and command,
    atomically: what the compare report cites as the cycle models' error comes from here,
    not from hand-written text. The summary is merged into the record readers take
    (:func:`~systolab.models.records.record_file`) and written to ``path`` when given,
    else to the repository's ``models/data/validation.yaml`` with ``write`` (a
    :class:`~systolab.errors.UserError` naming ``write`` outside a checkout), else to the
    user's copy (never into the installed package). Returns the file written."""
    if kind not in ("core", "chip"):
        raise ValueError(f"kind: 'core' or 'chip', not {kind!r}")
    target = Path(path) if path else write_target(VALIDATION_RECORD, write=write)
    base = Path(path) if path else record_file()
    doc = dict(load_yaml(base)) if base.exists() else {}
    doc[kind] = {"date": datetime.date.today().isoformat(), "command": command,
                 **{k: report[k] for k in ("simulator", "seed", "shapes", "configurations", "exact_cycles",
                                            "max_abs_cycle_error", "all_passed")},
                 "max_abs_error": {k: int(v) for k, v in report["max_abs_error"].items()},
                 "cases": {label: f"{c['exact']}/{c['shapes']} exact" for label, c in report["cases"].items()}}
    return write_text(target, "# Written by `systolab validate [--chip] --record`; do not edit by hand.\n"
                      + yaml.safe_dump(doc, sort_keys=False, width=100),
                      parameter="path" if path else "write" if write else "SYSTOLAB_DATA_DIR")
