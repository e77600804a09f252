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
from dataclasses import dataclass
from typing import Any

from ..models.core.perf import MemorySystem, core_cycles
from ..models.report.chip import get_chip

#: The external memory the core bench models (cycles of latency, bytes per cycle): the
#: cycle model is given the same.
MEMORY_LATENCY_CYCLES = 10
MEMORY_BYTES_PER_CYCLE = 16.0


def deep_shapes(core) -> list[tuple[int, int, int]]:
    """GEMMs (M, N, K) that exercise a core's edges: partial tiles in every dimension,
    several K-chunks, a single row."""
    r, c, kc = core.tile_m, core.cols, core.k_chunk
    return [(r + 3, 2 * c - 1, 2 * kc + 5), (2 * r, c, kc), (1, c + 1, 3 * kc - 1)]


@dataclass(frozen=True)
class DeepCheck:
    """One design point's hardware checked on its RTL (:func:`deep_check`)."""

    core: dict                              # the core's configuration (AcceleratorConfig.to_dict)
    node: str                               # the chip's process node
    simulator: str
    seed: int
    shapes: tuple[tuple[int, int, int], ...]  # GEMMs (M, N, K) run
    passed: bool                            # C bit-exact against the golden model, every GEMM
    mismatches: int                         # mismatching elements
    messages: tuple[str, ...]               # the bench's first messages (at most 5)
    rtl_cycles: tuple[int, ...]             # the core's cycle counter, per GEMM
    model_cycles: tuple[int, ...]           # the cycle model's prediction, per GEMM
    synth_array_mm2: float                  # the synthesised array's area at the node, mm²
    model_array_mm2: float                  # the area model's, mm²
    verify_s: float                         # seconds of the simulation
    synth_s: float                          # seconds of the synthesis

    @property
    def cycles_exact(self) -> bool:
        """The RTL's cycles equal the model's for every GEMM."""
        return self.rtl_cycles == self.model_cycles

    @property
    def area_error(self) -> float:
        """The area model's relative error against synthesis (model / synthesis - 1)."""
        return self.model_array_mm2 / self.synth_array_mm2 - 1

    def to_dict(self) -> dict[str, Any]:
        return {"core": self.core, "node": self.node, "simulator": self.simulator, "seed": self.seed,
                "shapes": [list(s) for s in self.shapes], "passed": self.passed, "mismatches": self.mismatches,
                "messages": list(self.messages), "rtl_cycles": list(self.rtl_cycles),
                "model_cycles": list(self.model_cycles), "cycles_exact": self.cycles_exact,
                "synth_array_mm2": self.synth_array_mm2, "model_array_mm2": self.model_array_mm2,
                "area_error": self.area_error, "verify_s": self.verify_s, "synth_s": self.synth_s}


def deep_check(job: tuple) -> DeepCheck:
    """``job`` = (base chip name or None, design dict, seed): the core's RTL run on
    Verilator and its array synthesised (the deep stage of
    :func:`systolab.models.explore.run_explore`, a module-level function so that it
    pickles to an executor's workers)."""
    from ..models.silicon.area import model_area, synth_area_mm2  # noqa: PLC0415  lazy: the benches and synthesis take 2 s to import; the CLI, systolab.explore and executor workers import this module before any check runs
    from ..models.silicon.synthesis import synthesize  # noqa: PLC0415  lazy: as above
    from ..sim.runner import build_jobs  # noqa: PLC0415  lazy: as above
    from .verify import verify_core  # noqa: PLC0415  lazy: as above

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
    transistors = synthesize(core).transistors
    model_mm2 = model_area(core, node=chip.node).mm2
    assert transistors is not None and model_mm2 is not None     # the generic flow, at a node
    synth_mm2 = synth_area_mm2(transistors, chip.node)
    return DeepCheck(core=core.to_dict(), node=chip.node, simulator=rep.simulator, seed=seed, shapes=tuple(shapes),
                     passed=rep.passed, mismatches=rep.mismatches, messages=tuple(rep.messages[:5]),
                     rtl_cycles=tuple(rep.cycles), model_cycles=tuple(model), synth_array_mm2=synth_mm2,
                     model_array_mm2=model_mm2, verify_s=round(t1 - t0, 2), synth_s=round(time.perf_counter() - t1, 2))


__all__ = ["DeepCheck", "deep_check", "deep_shapes"]
