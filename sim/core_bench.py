"""Runs whole GEMMs on the accelerator core (either dataflow) in Amaranth's simulator, against the
golden model."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from ..checks import check_int, check_real, check_seed, is_int
from ..config import AcceleratorConfig
from ..errors import SimulationError, UserError
from ..hdl.accelerator import COUNTERS, AcceleratorCore
from .amaranth_host import PERIOD, hosted
from .core_plan import CorePlan, CoreResult, MemoryParams
from .golden import golden_matmul
from .memory import ExternalMemory

sys.set_int_max_str_digits(0)


@dataclass(frozen=True)
class CoreRun:
    """One GEMM's outcome on the core, beside the golden model's C."""

    c: np.ndarray
    expected: np.ndarray
    counters: dict[str, int]
    violations: list[str]
    pes: int          # rows x cols of the array, for utilisation

    @property
    def passed(self) -> bool:
        return not self.violations and np.array_equal(self.c.astype(object), self.expected.astype(object))

    @property
    def utilization(self) -> float:
        return self.counters["macs"] / (self.counters["cycles"] * self.pes) if self.counters["cycles"] else 0.0


def core_shapes(config: AcceleratorConfig, *, count: int, seed: int, corners: bool = True) -> list[tuple[int, int, int]]:
    """GEMM shapes (M, N, K) for a core campaign: the corner classes (1x1x1, GEMV M = 1,
    N = 1, K = 1, tall-skinny, edges that are not multiples of the tile in every dimension,
    K over several chunks), then ``count`` random shapes up to a few tiles each way."""
    R, C, TM, KC = config.rows, config.cols, config.tile_m, config.k_chunk
    shapes = []
    if corners:
        shapes = [(1, 1, 1), (1, 2 * C + 3, 40), (2 * R + 1, 1, 7), (R + 1, C + 2, 1), (4 * R + 3, 2, 5),
                  (2 * R + 3, 2 * C + 1, min(2 * KC + 3, 80))]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shapes.append((int(rng.integers(1, 3 * min(R, TM) + 4)), int(rng.integers(1, 3 * C + 4)),
                       int(rng.integers(1, 48))))
    return shapes


def layout_products(config: AcceleratorConfig, products: list[tuple[np.ndarray, np.ndarray]], *,
                    latency: int = 10, bytes_per_cycle: float = 16.0, stall_prob: float = 0.0, seed: int = 0
                    ) -> tuple[ExternalMemory, list[dict[str, int]]]:
    """A memory holding the products (A row-major, B column-major, at odd strides so that
    nothing relies on alignment), writes allowed only in C, and one descriptor per product
    (its fields; addresses and strides in bytes)."""
    eb, ab = config.input_bytes, config.acc_bytes
    layout, addr = [], 64
    for a, b in products:
        (M, K), N = a.shape, b.shape[1]
        lda, ldb, ldc = K * eb + 3, K * eb + 5, N * ab + 7
        a_addr, b_addr = addr, addr + M * lda + 64
        c_addr = b_addr + N * ldb + 64
        layout.append(dict(m=M, n=N, k=K, a_addr=a_addr, lda=lda, b_addr=b_addr, ldb=ldb, c_addr=c_addr, ldc=ldc))
        addr = c_addr + M * ldc + 64
    mem = ExternalMemory(addr + 4096, latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob, seed=seed)
    for (a, b), d in zip(products, layout):
        mem.store(d["a_addr"], a, row_stride=d["lda"], elem_bytes=eb)
        mem.store(d["b_addr"], b.T, row_stride=d["ldb"], elem_bytes=eb)
        for r in range(d["m"]):
            mem.allow_writes(d["c_addr"] + r * d["ldc"], d["c_addr"] + r * d["ldc"] + d["n"] * ab)
    return mem, layout


def load_c(config: AcceleratorConfig, mem: ExternalMemory, desc: dict[str, int], *, step: int = 0
           ) -> list[list[int]]:
    """C of the descriptor ``desc`` out of ``mem`` (its product ``step`` for a chip's
    descriptor of several products) as row-major lists."""
    return mem.load(desc["c_addr"] + step * desc.get("c_step", 0), desc["m"], desc["n"], row_stride=desc["ldc"],
                    elem_bytes=config.acc_bytes, signed=config.acc_signed).tolist()


def memory_of(plan: CorePlan, config: AcceleratorConfig) -> tuple[ExternalMemory, list[dict[str, int]]]:
    """The memory and descriptors of ``plan`` (:func:`layout_products`)."""
    m = plan.memory
    return layout_products(config, plan.product_arrays(), latency=m.latency, bytes_per_cycle=m.bytes_per_cycle,
                           stall_prob=m.stall_prob, seed=m.seed)


def check_products(config: AcceleratorConfig, products: Iterable) -> list[tuple[np.ndarray, np.ndarray]]:
    """``products`` as a list of (A, B) integer matrices that fit the core: 2-D, A's
    columns = B's rows, 1..65535 in every dimension (the descriptor's 16-bit fields),
    values in the input format's range."""
    if isinstance(products, (str, bytes)) or not hasattr(products, "__iter__"):
        raise TypeError(f"products must be a list of (A, B) pairs, not {type(products).__name__}")
    out = []
    dt = config.input_dtype
    for i, pair in enumerate(products):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise UserError(f"products[{i}]: must be a pair (A, B), not {type(pair).__name__}")
        a, b = (np.asarray(x) for x in pair)
        for name, x in (("A", a), ("B", b)):
            if x.ndim != 2:
                raise UserError(f"products[{i}]: {name} must be a 2-D matrix, not {x.ndim}-D with shape {x.shape}")
            if not all(1 <= d <= 65535 for d in x.shape):
                raise UserError(f"products[{i}]: {name} has shape {x.shape}; every dimension must be in 1..65535")
            if x.dtype.kind not in "iu" and not (x.dtype == object and all(is_int(v) for v in x.flat)):
                raise UserError(f"products[{i}]: {name} must hold integers, not {x.dtype}")
            lo, hi = int(x.min()), int(x.max())
            low, high = dt.code_range
            if lo < low or hi > high:
                what = " raw bits" if config.is_float else ""
                raise UserError(f"products[{i}]: {name} holds {lo if lo < low else hi}, outside {config.dtype}{what} "
                                f"({low}..{high})")
        if a.shape[1] != b.shape[0]:
            raise UserError(f"products[{i}]: A is {a.shape[0]}x{a.shape[1]} but B is {b.shape[0]}x{b.shape[1]} "
                            "(A's columns must equal B's rows)")
        out.append((a.astype(np.int64), b.astype(np.int64)))
    if not out:
        raise UserError("products: give at least one (A, B) pair")
    return out


def check_memory(*, latency: int, bytes_per_cycle: float, stall_prob: float, seed: int) -> None:
    """The external memory's parameters, each named when wrong."""
    check_int("latency", latency, lo=1, hi=100_000)
    check_real("bytes_per_cycle", bytes_per_cycle, lo=0.0, lo_open=True, hi=1024.0)
    check_real("stall_prob", stall_prob, lo=0.0, hi=1.0, hi_open=True)
    check_seed("seed", seed)


def run_gemms(config: AcceleratorConfig, products: list[tuple[np.ndarray, np.ndarray]], *, latency: int = 10,
              bytes_per_cycle: float = 16.0, stall_prob: float = 0.0, seed: int = 0,
              reset_after_cycles: int | None = None, max_cycles: int = 2_000_000,
              vcd: str | Path | None = None) -> list[CoreRun]:
    """C = A @ B for each product, descriptors submitted back to back (the second waits on
    ``cmd.ready`` while the first runs). A row-major, B column-major, C row-major, at odd
    strides so that nothing relies on alignment. With ``reset_after_cycles`` the first
    product is abandoned by a reset that many cycles into it, then all run cleanly. With
    ``vcd``, the waveform is written to that file.

    Raises
    ------
    UserError
        A product that is not a pair of 2-D integer matrices of matching inner dimension
        and in range, or a memory parameter out of range (``stall_prob`` must be < 1).
    SimulationError
        A GEMM did not finish within ``max_cycles``.
    """
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    check_memory(latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob, seed=seed)
    products = check_products(config, products)
    plan = CorePlan.build(config, products, memory=MemoryParams(latency, bytes_per_cycle, stall_prob, seed),
                          max_cycles=max_cycles)
    result = run_core_plan_amaranth(plan, reset_after_cycles=reset_after_cycles, vcd=vcd)
    return [CoreRun(c, golden_matmul(a, b, config), counters, list(result.violations), config.rows * config.cols)
            for (a, b), c, counters in zip(products, result.c_arrays(), result.counters)]


def run_core_plan_amaranth(plan: CorePlan, *, reset_after_cycles: int | None = None, vcd: str | Path | None = None
                  ) -> CoreResult:
    """``plan`` in Amaranth's simulator (unchecked: see :func:`run_gemms`); with
    ``reset_after_cycles`` the first GEMM is abandoned by a reset that many cycles in,
    with ``vcd`` the waveform is written to that file."""
    config = plan.accelerator
    mem, layout = memory_of(plan, config)
    dut = AcceleratorCore(config)
    m, host = hosted(dut)
    done = False
    counters: list[dict[str, int]] = []

    async def bench(ctx):
        nonlocal done
        if reset_after_cycles is not None:
            await host.submit(ctx, layout[0])
            await ctx.tick().repeat(reset_after_cycles)
            await host.reset(ctx, [mem])
        for d in layout:
            await host.submit(ctx, d)
            if not await host.wait_done(ctx, plan.max_cycles):
                raise SimulationError(f"GEMM {d['m']}x{d['n']}x{d['k']} did not finish in {plan.max_cycles} cycles "
                                      f"(seed {plan.memory.seed})")
            counters.append({c: ctx.get(getattr(dut, c)) for c in COUNTERS})
        done = True

    sim = Simulator(m)
    sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    sim.add_testbench(mem.process(dut.mem, config.beat_bytes, lambda: done), background=True)
    if vcd is None:
        sim.run()
    else:
        Path(vcd).parent.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(vcd)):
            sim.run()
    return CoreResult([load_c(config, mem, d) for d in layout], counters, list(mem.violations), "amaranth",
                      None if vcd is None else str(vcd))


def run_gemm(config: AcceleratorConfig, a: np.ndarray, b: np.ndarray, **kwargs) -> CoreRun:
    """One GEMM on the core (see :func:`run_gemms`)."""
    return run_gemms(config, [(a, b)], **kwargs)[0]
