"""Verification runs: products through the RTL, checked against the golden model."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_int, check_real, check_seed
from ..config import AcceleratorConfig
from ..errors import UserError
from ..models.chip.blocking import blocking_traffic, dram_traffic_lower_bound
from ..models.chip.perf import chip_gemm_perf
from ..sim.amaranth_bench import run_plan_amaranth
from ..sim.checker import Scoreboard
from ..sim.chip_bench import random_products, run_chip_plan_amaranth
from ..sim.chip_plan import ChipPlan, DescriptorResult
from ..sim.core_bench import check_memory, run_core_plan_amaranth
from ..sim.core_plan import CorePlan, CoreResult, MemoryParams
from ..sim.golden import golden_matmul, show_value
from ..sim.plan import Plan
from ..sim.protocol import ArrayProtocol
from ..sim.runner import resolve_simulator, run_chip_plan_hdl, run_core_plan_hdl, run_plan_hdl, waveform_path
from ..sim.stimulus import Product, random_gemm, sprinkle_specials


@dataclass
class VerifyReport:
    """Outcome of a verification run (the fields of ``systolab verify --json``)."""

    passed: bool
    gemms: int
    mismatches: int
    seed: int
    simulator: str
    cycles: list[int]
    shapes: list[list[int]]
    labels: list[str]
    first_mismatches: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    waveform: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def verify_products(config: AcceleratorConfig, products: list[Product], *, seed: int,
                    simulator: str | None = None, stall_prob: float = 0.2, waves: bool = False,
                    reset_midway: bool = False) -> VerifyReport:
    """Run ``products`` on the generated array and compare every element.

    Parameters
    ----------
    config : AcceleratorConfig
    products : list of Product
        Each must fit one pass of the bare array (see ``stimulus.array_limits``).
    seed : int
        Seeds the stall pattern; reported in every failure message.
    simulator : {"verilator", "icarus", "amaranth"} or None
        None picks the best available.
    stall_prob : float
        Probability of a gap on each input stream and of back-pressure on the output,
        per beat.
    waves : bool
        Dump a waveform (cocotb simulators: VCD/FST in the build folder; Amaranth: VCD).
    reset_midway : bool
        First push half of an extra product, reset the DUT with it in flight, then run.
    """
    if not products:
        raise UserError("products: give at least one product")
    check_seed("seed", seed)
    check_real("stall_prob", stall_prob, lo=0.0, hi=1.0, hi_open=True)
    sim_name = resolve_simulator(simulator)
    junk = products[0] if reset_midway else None
    reset_after = max(1, len(ArrayProtocol(config).operand_beats(junk)) // 2) if junk is not None else None
    plan = Plan.build(config, products, seed=seed, stall_prob=stall_prob,
                      reset_after_beats=reset_after, junk=junk)
    t0 = time.perf_counter()
    waveform = None
    if sim_name == "amaranth":
        vcd = waveform_path(config, "amaranth", "array", seed) if waves else None
        if vcd is not None:
            vcd.parent.mkdir(parents=True, exist_ok=True)
        result = run_plan_amaranth(plan, vcd=None if vcd is None else str(vcd))
        waveform = None if vcd is None else str(vcd)
    else:
        result, wpath = run_plan_hdl(plan, sim_name, waves=waves)
        waveform = str(wpath) if wpath else None
    seconds = time.perf_counter() - t0

    proto = ArrayProtocol(config)
    board = Scoreboard(config, products, seed=seed, waveform=waveform)
    for i, p in enumerate(products):
        beats = result.beats[i]
        got = None
        if len(beats) == proto.result_beats(p):
            got = proto.assemble(p, [proto.decode_result(b)[0] for b in beats])
        board.check(i, got)
    first = board.mismatches[:10]
    return VerifyReport(
        passed=board.passed,
        gemms=len(products),
        mismatches=len(board.mismatches),
        seed=seed,
        simulator=sim_name,
        cycles=result.cycles,
        shapes=[list(p.shape) for p in products],
        labels=[p.label for p in products],
        first_mismatches=[mm.to_dict() for mm in first],
        messages=[board.describe(mm) for mm in first],
        waveform=waveform,
        seconds=round(seconds, 3),
    )


def _check_products(products, outputs, config: AcceleratorConfig, *, label, note: str, shown: int,
                    k_block: int | None = None, k_part: int | None = None) -> tuple[int, list[str]]:
    """(elements that differ from the golden model, messages for the first ``shown`` of
    each product: ``label(q, a, b)``, the element, expected and got, ``note``)."""
    mismatches, messages = 0, []
    for q, ((a, b), c) in enumerate(zip(products, outputs)):
        expected = golden_matmul(a, b, config, k_block=k_block, k_part=k_part)
        wrong = np.argwhere(c != expected.astype(object))
        mismatches += len(wrong)
        messages += [f"{label(q, a, b)}: C[{r},{s}] expected {show_value(expected[r, s], config)}, "
                     f"got {show_value(c[r][s], config)} ({note})" for r, s in wrong[:shown]]
    return mismatches, messages


@dataclass
class VerifyOutcome:
    """What every verification run reports: whether it passed, of how many GEMMs, the
    elements that mismatched, the seed and simulator, and each GEMM's shape (M, N, K)."""

    passed: bool
    gemms: int
    mismatches: int
    seed: int
    simulator: str
    shapes: list[list[int]]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CoreVerifyReport(VerifyOutcome):
    """Outcome of whole GEMMs on the accelerator core (``systolab verify --json``).

    Every per-GEMM field is a list in GEMM order, whatever the number of GEMMs."""

    design: dict
    cycles: list[int]
    utilization: list[float]
    counters: list[dict]
    k_chunk: int
    tile_m: int
    memory: dict
    messages: list[str] = field(default_factory=list)
    waveform: str | None = None
    seconds: float = 0.0
    unit: str = "core"


def verify_core(config: AcceleratorConfig, shapes: list[tuple[int, int, int]], *, seed: int,
                simulator: str | None = None, latency: int = 10, bytes_per_cycle: float = 16.0,
                stall_prob: float = 0.2, waves: bool = False) -> CoreVerifyReport:
    """Whole GEMMs of ``shapes`` (M, N, K) with random operands (seeded) through the
    accelerator core (external memory, buffers, tiled controller), C checked bit-exactly
    against the golden model; cycles and utilisation from the core's own counters.
    Floating point: every other GEMM has 10 % of its operands replaced by the format's
    special values (:func:`~systolab.sim.stimulus.float_specials`).

    A mismatch message names the element, expected and got values, the seed and the
    waveform (written with ``waves``; rerun with it to get one)."""
    check_memory(latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob, seed=seed)
    check_seed("seed", seed)
    if not shapes:
        raise UserError("gemms: nothing to run")
    checked = [tuple(check_int(d, v, hi=65535) for d, v in zip("MNK", s)) for s in shapes]
    sim = resolve_simulator(simulator)
    rng = np.random.default_rng(seed)
    dt = config.input_dtype
    products = [random_gemm(rng, dt, M, N, K) for M, N, K in checked]
    if config.is_float:   # every other GEMM carries special values (NaN, ±Inf, ±0, extremes)
        products = [(sprinkle_specials(rng, dt, a), sprinkle_specials(rng, dt, b)) if i % 2 else (a, b)
                    for i, (a, b) in enumerate(products)]
    memory = MemoryParams(latency, bytes_per_cycle, stall_prob, seed)
    plan = CorePlan.build(config, products, memory=memory)
    t0 = time.perf_counter()
    result: CoreResult
    if sim == "amaranth":
        vcd = waveform_path(config, "amaranth", "core", seed) if waves else None
        result = run_core_plan_amaranth(plan, vcd=vcd)
    else:
        result = run_core_plan_hdl(plan, sim, waves=waves)
    waveform = result.waveform
    where = f"waveform {waveform}" if waveform else "rerun with --waves for a waveform"
    mismatches, messages = _check_products(products, result.c_arrays(), config, shown=5, note=f"seed {seed}; {where}",
                                           label=lambda q, a, b: f"{a.shape[0]}x{b.shape[1]}x{a.shape[1]}")
    messages += result.violations[:10]
    counters = result.counters
    return CoreVerifyReport(
        design=config.to_dict(), passed=not mismatches and not result.violations, gemms=len(shapes),
        mismatches=int(mismatches), seed=seed, simulator=sim, shapes=[list(s) for s in checked],
        cycles=[cnt["cycles"] for cnt in counters],
        utilization=[cnt["macs"] / (config.rows * config.cols * cnt["cycles"]) for cnt in counters],
        counters=counters, k_chunk=config.k_chunk, tile_m=config.tile_m,
        memory=dict(latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob), messages=messages,
        waveform=waveform, seconds=round(time.perf_counter() - t0, 3))


@dataclass
class ChipVerifyReport(VerifyOutcome):
    """Outcome of GEMMs on the chip RTL (``systolab verify --chip --json``); every per-GEMM
    field is a list in GEMM order."""

    chip: dict
    counts: list[int]
    blockings: list[dict]
    cycles: list[int]
    model_cycles: list[int]
    utilization: list[float]
    counters: list[dict]
    per_core_busy: list[list[int]]
    dram_bytes_read: list[int]
    dram_bytes_written: list[int]
    sram_bytes_read: list[int]
    sram_bytes_written: list[int]
    status: list[int]
    blocking_traffic_bytes: list[int] = field(default_factory=list)   # what the blocks must move (no padding)
    dram_bytes_lower_bound: list[int] = field(default_factory=list)   # any schedule on this chip
    messages: list[str] = field(default_factory=list)
    stall_prob: float = 0.0
    seconds: float = 0.0
    unit: str = "chip"
    dram: str = "hdl"                 # the DRAM model: in the simulated design, or Python's (ChipPlan.dram)


def verify_chip(chip, cases: list, *, seed: int, simulator: str | None = None, stall_prob: float = 0.2,
                dram: str = "hdl") -> ChipVerifyReport:
    """``cases`` — (M, N, K, count, blocking) — on the chip RTL with random operands
    (seeded) and random stalls on the DRAM port, C checked bit-exactly against the golden
    model; cycles and every counter from the chip's own counters, the cycle model's
    prediction beside them (equal without stalls). ``dram``: under cocotb, the DRAM inside
    the simulated design (``"hdl"``, fast) or the Python memory model driving every beat
    (``"python"``; Amaranth's simulator always runs that one)."""
    # why: the chip's models cost 0.2 s, which the array's and the core's runs do without

    check_seed("seed", seed)
    check_real("stall_prob", stall_prob, lo=0.0, hi=1.0, hi_open=True)
    if not cases:
        raise UserError("gemms: nothing to run")
    sim = resolve_simulator(simulator)
    rng = np.random.default_rng(seed)
    runs = [(random_products(chip, M, N, K, p, rng), blk) for M, N, K, p, blk in cases]
    plan = ChipPlan.build(chip, runs, stall_prob=stall_prob, seed=seed, dram="python" if sim == "amaranth" else dram)
    t0 = time.perf_counter()
    outs: list[DescriptorResult]
    if sim == "amaranth":
        outs = run_chip_plan_amaranth(chip, plan)
    else:
        outs = run_chip_plan_hdl(chip, plan, sim)
    messages: list[str] = []
    mismatches = 0
    for (M, N, K, p, blk), (products, _), out in zip(cases, runs, outs):
        if out.status:
            messages.append(f"{M}x{N}x{K} x{p} with {blk}: rejected by the controller (status {out.status})")
            mismatches += M * N * p
            continue
        wrong, shown = _check_products(products, out.c_arrays(), chip.core, k_block=blk.kb, k_part=blk.kc, shown=3,
                                       note=f"seed {seed}",
                                       label=lambda q, a, b, s=f"{M}x{N}x{K}", blk=blk: f"{s} product {q} with {blk}")
        mismatches += wrong
        messages += shown + out.violations[:5]
    counters = [o.counters for o in outs]
    pes = chip.cores * chip.core.rows * chip.core.cols
    return ChipVerifyReport(
        chip=chip.to_dict(), passed=mismatches == 0 and not any(o.violations for o in outs), gemms=len(cases),
        mismatches=int(mismatches), seed=seed, simulator=sim, shapes=[[M, N, K] for M, N, K, _, _ in cases],
        counts=[p for *_, p, _ in cases], blockings=[blk.to_dict() for *_, blk in cases],
        cycles=[c["cycles"] for c in counters],
        model_cycles=[chip_gemm_perf(chip, M, N, K, blk, count=p).cycles for M, N, K, p, blk in cases],
        utilization=[c["macs"] / (pes * c["cycles"]) for c in counters], counters=counters,
        per_core_busy=[o.busy for o in outs], dram_bytes_read=[c["dram_bytes_read"] for c in counters],
        dram_bytes_written=[c["dram_bytes_written"] for c in counters],
        sram_bytes_read=[c["sram_bytes_read"] for c in counters],
        sram_bytes_written=[c["sram_bytes_written"] for c in counters], status=[o.status for o in outs],
        blocking_traffic_bytes=[blocking_traffic(chip, M, N, K, blk, p) for M, N, K, p, blk in cases],
        dram_bytes_lower_bound=[dram_traffic_lower_bound(chip, M, N, K, p) for M, N, K, p, _ in cases],
        messages=messages, stall_prob=stall_prob, seconds=round(time.perf_counter() - t0, 3), dram=plan.dram)


#: Processing elements beyond which a chip is modelled, not simulated (Amaranth elaborates
#: about a dozen PEs a second, and Verilator's build grows with them). With the DRAM in the
#: simulated design the bench no longer costs per cycle; these build costs are what is left,
#: and they have not been measured on chips near the limit yet, so the limit stays.
MAX_SIMULATED_PES = 16_384


def check_simulable(chip, what: str) -> None:
    """Refuse (a :class:`UserError` naming ``chip``) a chip of more than
    :data:`MAX_SIMULATED_PES` processing elements for ``what`` (a command's name)."""
    pes = chip.cores * chip.core.rows * chip.core.cols
    if pes > MAX_SIMULATED_PES:
        raise UserError(f"chip: {chip.name} has {pes:,} PEs, more than the {MAX_SIMULATED_PES:,} that {what} takes "
                        "in reasonable time; use a scaled-down chip (fewer or smaller cores: ChipConfig.derive) for "
                        "the RTL, and systolab perf --chip for the full one (its model equals the RTL)",
                        parameter="chip")
