"""The deep stage of an exploration: a design point's hardware checked on its RTL.

For one design (a chip of the space), :func:`deep_check`

* runs whole GEMMs through its core's generated Verilog on Verilator (the cocotb core
  bench: external memory, buffers, tiled controller), C checked bit-exactly against the
  golden model, and compares the core's cycle counter with the cycle model's prediction
  for the same memory (they must be equal: the analytic stage's numbers stand on them);
* synthesises its core's array with Yosys (generic gates) and compares the synthesised
  area at the chip's node with the area model the analytic stage used.

The chip level (DMA, slices, controller) is the same RTL for every point and is checked
against its cycle model by ``systolab validate --chip`` over chip parameters; a point's
chip, hundreds of cores of it, is beyond what a simulator runs per point.

Each check is a job for an executor (``systolab.executors``): a module-level function of
plain data, deterministic in its seed, using one core (its Verilator build runs
``make -j1``), so that an executor's workers, not the build, are the parallelism.
"""
from __future__ import annotations

import time

#: The external memory the core bench models (cycles of latency, bytes per cycle): the
#: cycle model is given the same.
MEMORY_LATENCY_CYCLES = 10
MEMORY_BYTES_PER_CYCLE = 16.0


def deep_shapes(core) -> list[tuple[int, int, int]]:
    """GEMMs (M, N, K) that exercise a core's edges: partial tiles in every dimension,
    several K-chunks, a single row."""
    r, c, kc = core.tile_m, core.cols, core.k_chunk
    return [(r + 3, 2 * c - 1, 2 * kc + 5), (2 * r, c, kc), (1, c + 1, 3 * kc - 1)]


def deep_check(job: tuple) -> dict:
    """``job`` = (base chip name or None, design dict, seed): the core's RTL run on
    Verilator and its array synthesised, as a dict (``passed``, ``cycles_exact``, the
    cycles of both, the areas and their error, seconds)."""
    from ..models.core.perf import MemorySystem, core_cycles
    from ..models.report.chip import get_chip
    from ..models.silicon.area import model_area, synth_area_mm2
    from ..models.silicon.synthesis import synthesize
    from ..sim.runner import build_jobs
    from .verify import verify_core

    base, design, seed = job
    chip = get_chip(base).derive(**design)
    core = chip.core
    shapes = deep_shapes(core)
    t0 = time.perf_counter()
    with build_jobs(1):                     # one core per job: the executor's workers are the parallelism
        rep = verify_core(core, shapes, seed=seed, simulator="verilator", latency=MEMORY_LATENCY_CYCLES,
                          bytes_per_cycle=MEMORY_BYTES_PER_CYCLE, stall_prob=0.0)
    memory = MemorySystem(MEMORY_LATENCY_CYCLES, MEMORY_BYTES_PER_CYCLE)
    model = [core_cycles(core, M, N, K, memory) for M, N, K in shapes]
    t1 = time.perf_counter()
    syn = synthesize(core)
    synth_mm2 = synth_area_mm2(syn.transistors, chip.node)
    model_mm2 = model_area(core, node=chip.node).mm2
    return {"core": core.to_dict(), "node": chip.node, "simulator": rep.simulator, "seed": seed,
            "shapes": [list(s) for s in shapes], "passed": rep.passed, "mismatches": rep.mismatches,
            "messages": rep.messages[:5], "rtl_cycles": rep.cycles, "model_cycles": model,
            "cycles_exact": rep.cycles == model, "synth_array_mm2": synth_mm2, "model_array_mm2": model_mm2,
            "area_error": model_mm2 / synth_mm2 - 1, "verify_s": round(t1 - t0, 2),
            "synth_s": round(time.perf_counter() - t1, 2)}


__all__ = ["deep_check", "deep_shapes"]
