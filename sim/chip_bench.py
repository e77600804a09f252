"""Runs GEMMs on the chip RTL (``hdl/chip.py``) in Amaranth's simulator: DRAM is
:class:`~systolab.sim.memory.ExternalMemory` with reads and writes sharing its bandwidth;
results are checked against the golden model."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.sim import Simulator

from ..blocking import REJECT, Blocking, blocking_status
from ..errors import SimulationError, UserError
from ..hdl.chip import CHIP_COUNTERS, ChipTop
from .amaranth_host import PERIOD, hosted
from .chip_plan import Chip, ChipCase, ChipPlan, DescriptorResult
from .core_bench import check_memory, check_products, load_c
from .golden import golden_matmul
from .memory import ExternalMemory
from .messages import Matrices
from .stimulus import random_gemm

sys.set_int_max_str_digits(0)


@dataclass(frozen=True)
class ChipRun:
    """One descriptor's outcome on the chip RTL, beside the golden model's C."""

    c: list[np.ndarray]           # C of every product (object arrays)
    expected: list[np.ndarray]
    counters: dict[str, int]
    busy: list[int]               # cycles, per core
    status: int
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.status == 0 and not self.violations
                and all(np.array_equal(c.astype(object), e.astype(object)) for c, e in zip(self.c, self.expected)))

    @property
    def reason(self) -> str | None:
        return REJECT.get(self.status)


def placement(chip: Chip, M: int, N: int, K: int, count: int) -> tuple[dict[str, int], int]:
    """Where ``count`` products of M x N x K lie in DRAM, at odd strides: the descriptor's
    address fields (bytes) and the bytes the layout spans (a zero tail after the last)."""
    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    lda, ldb, ldc = K * eb + 3, K * eb + 5, N * ab + 7
    a_bytes, b_bytes, c_bytes = M * lda + 64, N * ldb + 64, M * ldc + 64
    step = a_bytes + b_bytes + c_bytes
    base = 64
    desc = dict(m=M, n=N, k=K, count=count, a_addr=base, lda=lda, a_step=step, b_addr=base + a_bytes,
                ldb=ldb, b_step=step, c_addr=base + a_bytes + b_bytes, ldc=ldc, c_step=step)
    return desc, base + count * step + 4096


def layout(chip: Chip, products: list[tuple[np.ndarray, np.ndarray]], *, stall_prob: float, seed: int
           ) -> tuple[ExternalMemory, list[ExternalMemory], dict[str, int]]:
    """DRAM holding ``products`` (equal shapes) at odd strides (:func:`placement`), writes
    allowed in C only, its ports (one per DMA channel: the chip's latency and per-channel
    bandwidth) and the descriptor's address fields (bytes)."""
    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    (M, K), N = products[0][0].shape, products[0][1].shape[1]
    desc, size = placement(chip, M, N, K, len(products))
    mem = ExternalMemory(size, latency=chip.dram_latency_cycles, bytes_per_cycle=chip.channel_bytes_per_cycle,
                         stall_prob=stall_prob, seed=seed, charge_writes=True)
    for p, (a, b) in enumerate(products):
        mem.store(desc["a_addr"] + p * desc["a_step"], a, row_stride=desc["lda"], elem_bytes=eb)
        mem.store(desc["b_addr"] + p * desc["b_step"], b.T, row_stride=desc["ldb"], elem_bytes=eb)
        c_addr = desc["c_addr"] + p * desc["c_step"]
        for r in range(M):
            mem.allow_writes(c_addr + r * desc["ldc"], c_addr + r * desc["ldc"] + N * ab)
    return mem, mem.ports(chip.dma_channels, chip.channel_bytes_per_cycle), desc


def _rows_of(matrix: np.ndarray, elem_bytes: int) -> np.ndarray:
    """A matrix's elements as little-endian two's complement bytes, (rows, cols * elem_bytes)."""
    values = np.asarray(matrix, dtype=np.int64) & ((1 << (8 * elem_bytes)) - 1)
    shifts = 8 * np.arange(elem_bytes, dtype=np.int64)
    return ((values[..., None] >> shifts) & 0xFF).astype(np.uint8).reshape(values.shape[0], -1)


def dram_image(chip: Chip, products: list[tuple[np.ndarray, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """What :func:`layout` stores, as arrays: the bytes (uint8), whether the chip may write
    each (C only) and the descriptor's address fields."""
    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    (M, K), N = products[0][0].shape, products[0][1].shape[1]
    desc, size = placement(chip, M, N, K, len(products))
    image, writable = np.zeros(size, dtype=np.uint8), np.zeros(size, dtype=bool)

    def put(addr: int, rows: np.ndarray, stride: int) -> None:
        at = addr + stride * np.arange(rows.shape[0])[:, None] + np.arange(rows.shape[1])[None, :]
        image[at] = rows

    for p, (a, b) in enumerate(products):
        put(desc["a_addr"] + p * desc["a_step"], _rows_of(a, eb), desc["lda"])
        put(desc["b_addr"] + p * desc["b_step"], _rows_of(np.asarray(b).T, eb), desc["ldb"])
        c_addr = desc["c_addr"] + p * desc["c_step"]
        at = c_addr + desc["ldc"] * np.arange(M)[:, None] + np.arange(N * ab)[None, :]
        writable[at] = True
    return image, writable, desc


def c_of(chip: Chip, memory: np.ndarray, desc: dict[str, int], step: int, *, start: int = 0) -> list[list[int]]:
    """C of product ``step`` of ``desc`` out of ``memory`` (uint8, holding DRAM from byte
    ``start`` on), as row-major lists."""
    cfg = chip.core
    M, N, ab = desc["m"], desc["n"], cfg.acc_bytes
    at = desc["c_addr"] + step * desc["c_step"] - start + desc["ldc"] * np.arange(M)[:, None, None] \
        + ab * np.arange(N)[None, :, None] + np.arange(ab)[None, None, :]
    raw = memory[at].astype(object)
    values = sum(raw[..., i] << (8 * i) for i in range(ab))
    if cfg.acc_signed:
        values = np.where(values >= 1 << (8 * ab - 1), values - (1 << (8 * ab)), values)
    return values.tolist()


def run_chip_gemm(chip: Any, products: list[tuple[np.ndarray, np.ndarray]], blocking: Blocking, *,
                  stall_prob: float = 0.0, seed: int = 0, reset_after_cycles: int | None = None,
                  max_cycles: int = 5_000_000, vcd: str | Path | None = None) -> ChipRun:
    """``products`` (a list of (A, B) of one shape: ``count`` independent GEMMs) on the chip
    RTL as one descriptor with ``blocking``. DRAM latency and bandwidth are the chip's
    (``dram_latency_cycles``, ``channel_bytes_per_cycle`` on each channel's port; derive a
    chip to change them), with ``stall_prob`` random stalls on every port. With
    ``reset_after_cycles`` the descriptor is abandoned by a reset that many cycles in, then
    run again from the start. ``chip`` is a ``ChipConfig`` (the RTL reads all of it)."""
    products = check_products(chip.core, products)
    if len({(a.shape, b.shape) for a, b in products}) != 1:
        raise UserError("products: one descriptor runs products of one shape")
    check_memory(latency=chip.dram_latency_cycles, bytes_per_cycle=chip.channel_bytes_per_cycle,
                 stall_prob=stall_prob, seed=seed)
    case = ChipCase([Matrices.of(a, b) for a, b in products], blocking.to_dict())
    r = run_chip_case_amaranth(chip, case, stall_prob=stall_prob, seed=seed, reset_after_cycles=reset_after_cycles,
                               max_cycles=max_cycles, vcd=vcd)
    return ChipRun(r.c_arrays(), [golden_matmul(a, b, chip.core, k_block=blocking.kb, k_part=blocking.kc)
                                  for a, b in products],
                   r.counters, r.busy, r.status, list(r.violations))


def run_chip_plan_amaranth(chip: Any, plan: ChipPlan) -> list[DescriptorResult]:
    """Every case of ``plan`` on ``chip`` (a ``ChipConfig``: the RTL reads all of it), one
    simulation each, in Amaranth's simulator (products unchecked: see :func:`run_chip_gemm`)."""
    check_memory(latency=chip.dram_latency_cycles, bytes_per_cycle=chip.channel_bytes_per_cycle,
                 stall_prob=plan.stall_prob, seed=plan.seed)
    return [run_chip_case_amaranth(chip, case, stall_prob=plan.stall_prob, seed=plan.seed, max_cycles=plan.max_cycles)
            for case in plan.cases]


def run_chip_case_amaranth(chip: Any, case: ChipCase, *, stall_prob: float = 0.0, seed: int = 0,
                           reset_after_cycles: int | None = None, max_cycles: int = 5_000_000,
                           vcd: str | Path | None = None) -> DescriptorResult:
    """One descriptor in Amaranth's simulator (see :func:`run_chip_gemm`)."""
    products = case.product_arrays()
    mem, ports, desc = layout(chip, products, stall_prob=stall_prob, seed=seed)
    desc.update(case.blocking)
    dut = ChipTop(chip)
    m, host = hosted(dut)
    done = False
    seen: dict[str, Any] = {}

    async def bench(ctx):
        nonlocal done
        if reset_after_cycles is not None:
            await host.submit(ctx, desc)
            await ctx.tick().repeat(reset_after_cycles)
            await host.reset(ctx, ports)
        await host.submit(ctx, desc)
        if not await host.wait_done(ctx, max_cycles):
            raise SimulationError(f"chip GEMM {desc['m']}x{desc['n']}x{desc['k']} x{desc['count']} did not finish "
                                  f"in {max_cycles} cycles (seed {seed})")
        seen["counters"] = {c: ctx.get(getattr(dut, c)) for c in CHIP_COUNTERS}
        seen["busy"] = [ctx.get(getattr(dut, f"busy{c}")) for c in range(chip.cores)]
        seen["status"] = ctx.get(dut.status)
        done = True

    sim = Simulator(m)
    sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    for ch, port in enumerate(ports):
        sim.add_testbench(port.process(getattr(dut, f"mem{ch}"), chip.dma_beat_bytes, lambda: done),
                          background=True)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(str(vcd)):
            sim.run()
    return DescriptorResult([load_c(chip.core, mem, desc, step=p) for p in range(len(products))],
                            seen["counters"], seen["busy"], seen["status"], list(mem.violations))


def fit_blocking(chip, M: int, N: int, K: int, count: int, *, mb: int, nb: int, kb: int, gp: int = 1, gm: int = 1,
                 gn: int = 1, gk: int = 1, order: int = 0) -> Blocking:
    """The blocking with these block sizes and grid (per-core groups as even as they go;
    fewer K-groups if the K-block has too little for them, or a floating-point chip's
    write-back adds fewer: ``float_split_k``), its blocks shrunk (K first, then the larger
    of M and N) until they fit a slice."""
    mb, nb, kb = min(mb, M), min(nb, N), min(kb, K)
    if chip.core.is_float:
        gk = min(gk, chip.float_split_k)
    while True:
        while gk > 1 and -(-kb // gk) * (gk - 1) >= kb:
            gk //= 2
        b = Blocking(mb, nb, kb, -(-mb // gm), -(-nb // gn), gp, gm, gn, gk, -(-kb // gk), order)
        status = blocking_status(chip, M, N, K, count, b)
        if status not in (4, 5):
            return b
        if status == 4 and kb > 1 and chip.core.overflow != "saturate":
            kb = max(1, kb // 2)
        elif nb >= mb and nb > 1:
            nb = max(1, nb // 2)
        elif mb > 1:
            mb = max(1, mb // 2)
        else:
            return b                       # even 1x1 does not fit: the caller sees the status


def chip_campaign(chip, *, count: int, seed: int, corners: bool = True, max_dim: int = 24):
    """(M, N, K, products, blocking) cases for the chip: the corner classes (1x1x1, M = 1,
    N = 1, K = 1, one block and several blocks in every dimension, edges off the block,
    several products over the grid, split-K, operand blocks kept on chip in both loop
    orders), then ``count`` random ones (grids of every shape the controller takes:
    ``gp``, ``gm`` and ``gk`` powers of two; either loop order; a third with one K-block,
    where operands stay on chip from step to step)."""
    rng = np.random.default_rng(seed)
    n = chip.cores
    p2 = 1 << (n.bit_length() - 1)                 # the largest power of two <= cores
    cases = []
    if corners:
        R, C = chip.core.rows, chip.core.cols
        for (M, N, K, p, kw) in [
            (1, 1, 1, 1, dict(mb=1, nb=1, kb=1)),
            (1, 3 * C + 1, 20, 1, dict(mb=1, nb=C, kb=8, gn=n)),                   # GEMV: M = 1, blocks in N and K
            (2 * R + 1, 1, 9, 1, dict(mb=R, nb=1, kb=4, gm=p2)),                   # N = 1, blocks in M and K
            (R + 3, C + 2, 1, 1, dict(mb=R + 3, nb=C + 2, kb=1, gn=min(2, n))),    # K = 1, one block
            (2 * R + 3, 2 * C + 1, 40, 1, dict(mb=R, nb=C, kb=16, gm=min(2, p2), gn=max(1, n // 2))),
            (3, 5, 7, 2 * n + 1, dict(mb=3, nb=5, kb=7, gp=p2)),                   # products over the grid
            (R, C, 3 * chip.core.k_chunk + 5, 1, dict(mb=R, nb=C, kb=10**6)),      # one block, K over chunks
            (1, 2 * C + 1, 45, 1, dict(mb=1, nb=2 * C + 1, kb=20, gn=max(1, n // p2), gk=p2)),  # split-K GEMV
            (R + 1, C + 3, 50, 1, dict(mb=R + 1, nb=C + 3, kb=50, gm=min(2, p2), gk=max(1, p2 // 2))),  # split-K
            (2 * R + 1, 2 * C + 3, 9, 2, dict(mb=R, nb=C, kb=9, gm=min(2, p2))),           # A kept along N
            (2 * R + 1, 2 * C + 3, 9, 2, dict(mb=R, nb=C, kb=9, gn=min(2, n), order=1)),   # B kept along M
            (3 * R + 2, C, 7, 1, dict(mb=R, nb=C, kb=7, gn=n)),                         # B kept, one N-block
        ]:
            cases.append((M, N, K, p, fit_blocking(chip, M, N, K, p, **kw)))

    def pow2_upto(limit: int) -> int:
        return 1 << int(rng.integers(0, limit.bit_length()))

    for _ in range(count):
        M, N, K = (int(v) for v in rng.integers(1, max_dim + 1, 3))
        p = int(rng.choice([1, 1, 1, 2, 3]))
        gp = pow2_upto(min(p, n))
        gm = pow2_upto(n // gp)
        gk = pow2_upto(n // (gp * gm)) if rng.random() < 0.3 else 1
        gn = int(rng.integers(1, n // (gp * gm * gk) + 1))
        kb = K if rng.random() < 1 / 3 else int(rng.integers(1, K + 1))
        kw = dict(mb=int(rng.integers(1, M + 1)), nb=int(rng.integers(1, N + 1)), kb=kb,
                  gp=gp, gm=gm, gn=gn, gk=gk, order=int(rng.integers(0, 2)))
        cases.append((M, N, K, p, fit_blocking(chip, M, N, K, p, **kw)))
    return cases


def random_products(chip, M: int, N: int, K: int, count: int, rng) -> list:
    dt = chip.core.input_dtype
    return [random_gemm(rng, dt, M, N, K) for _ in range(count)]
