"""Runs GEMMs on the chip RTL (``hdl/chip.py``) in Amaranth's simulator: DRAM is
:class:`~systolab.sim.memory.ExternalMemory` with reads and writes sharing its bandwidth;
results are checked against the golden model."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from ..errors import SimulationError, UserError
from ..hdl.chip import CHIP_COUNTERS, REJECT, ChipTop
from .golden import golden_matmul

sys.set_int_max_str_digits(0)


@dataclass(frozen=True)
class Blocking:
    """How a GEMM is blocked and split over the chip's cores (the descriptor's fields):
    blocks of ``mb`` x ``nb`` x ``kb``; a grid of ``gp`` products x ``gm`` row groups of
    ``mc`` rows x ``gn`` column groups of ``nc`` columns."""

    mb: int
    nb: int
    kb: int
    mc: int
    nc: int
    gp: int = 1
    gm: int = 1
    gn: int = 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ChipRun:
    """One descriptor's outcome on the chip RTL."""

    c: list                       # C of every product (object arrays)
    expected: list
    counters: dict
    busy: list                    # per core
    status: int
    violations: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.status == 0 and not self.violations
                and all(np.array_equal(c.astype(object), e.astype(object)) for c, e in zip(self.c, self.expected)))

    @property
    def reason(self) -> str | None:
        return REJECT.get(self.status)


def layout(chip, products, *, latency: int, bytes_per_cycle: float, stall_prob: float, seed: int):
    """DRAM holding ``products`` (equal shapes) at odd strides, writes allowed in C only,
    and the descriptor's address fields."""
    from .memory import ExternalMemory

    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    (M, K), N = products[0][0].shape, products[0][1].shape[1]
    lda, ldb, ldc = K * eb + 3, K * eb + 5, N * ab + 7
    a_bytes, b_bytes, c_bytes = M * lda + 64, N * ldb + 64, M * ldc + 64
    a_step = b_step = c_step = a_bytes + b_bytes + c_bytes
    base = 64
    mem = ExternalMemory(base + len(products) * a_step + 4096, latency=latency, bytes_per_cycle=bytes_per_cycle,
                         stall_prob=stall_prob, seed=seed, charge_writes=True)
    for p, (a, b) in enumerate(products):
        a_addr = base + p * a_step
        mem.store(a_addr, a, row_stride=lda, elem_bytes=eb)
        mem.store(a_addr + a_bytes, b.T, row_stride=ldb, elem_bytes=eb)
        c_addr = a_addr + a_bytes + b_bytes
        for r in range(M):
            mem.allow_writes(c_addr + r * ldc, c_addr + r * ldc + N * ab)
    desc = dict(m=M, n=N, k=K, count=len(products), a_addr=base, lda=lda, a_step=a_step, b_addr=base + a_bytes,
                ldb=ldb, b_step=b_step, c_addr=base + a_bytes + b_bytes, ldc=ldc, c_step=c_step)
    return mem, desc


def run_chip_gemm(chip, products, blocking: Blocking, *, latency: int | None = None,
                  bytes_per_cycle: float | None = None, stall_prob: float = 0.0, seed: int = 0,
                  reset_after_cycles: int | None = None, max_cycles: int = 5_000_000,
                  vcd: str | Path | None = None) -> ChipRun:
    """``products`` (a list of (A, B) of one shape: ``count`` independent GEMMs) on the chip
    RTL as one descriptor with ``blocking``. DRAM latency and bandwidth default to the
    chip's (``dram_latency_cycles``, ``dram_bytes_per_cycle``). With
    ``reset_after_cycles`` the descriptor is abandoned by a reset that many cycles in, then
    run again from the start."""
    from .core_bench import check_memory, check_products

    products = check_products(chip.core, products)
    if len({(a.shape, b.shape) for a, b in products}) != 1:
        raise UserError("products: one descriptor runs products of one shape")
    latency = chip.dram_latency_cycles if latency is None else latency
    bytes_per_cycle = chip.dram_bytes_per_cycle if bytes_per_cycle is None else bytes_per_cycle
    check_memory(latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob, seed=seed)
    mem, desc = layout(chip, products, latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob,
                       seed=seed)
    desc.update(blocking.to_dict())
    dut = ChipTop(chip)
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.dut = dut
    state: dict = {"done": False}

    async def host(ctx):
        async def submit():
            ctx.set(dut.cmd.payload, desc)
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)

        if reset_after_cycles is not None:
            await submit()
            await ctx.tick().repeat(reset_after_cycles)
            mem.hold_reset(True)
            ctx.set(cd.rst, 1)
            await ctx.delay(2e-8)
            ctx.set(cd.rst, 0)
            await ctx.tick()
            mem.hold_reset(False)
        await submit()
        for _ in range(max_cycles):
            _, _, done = await ctx.tick().sample(dut.done)
            if done:
                break
        else:
            raise SimulationError(f"chip GEMM {desc['m']}x{desc['n']}x{desc['k']} x{desc['count']} did not finish "
                                  f"in {max_cycles} cycles (seed {seed})")
        state["counters"] = {c: ctx.get(getattr(dut, c)) for c in CHIP_COUNTERS}
        state["busy"] = [ctx.get(getattr(dut, f"busy{c}")) for c in range(chip.cores)]
        state["status"] = ctx.get(dut.status)
        state["done"] = True

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(mem.process(dut.mem, chip.dma_beat_bytes, lambda: state["done"]), background=True)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    cfg = chip.core
    ab = cfg.acc_bytes
    M, N = desc["m"], desc["n"]
    cs = [mem.load(desc["c_addr"] + p * desc["c_step"], M, N, row_stride=desc["ldc"], elem_bytes=ab,
                   signed=cfg.acc_signed) for p in range(len(products))]
    return ChipRun(cs, [golden_matmul(a, b, cfg) for a, b in products], state["counters"], state["busy"],
                   state["status"], list(mem.violations))
