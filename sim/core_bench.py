"""Runs whole GEMMs on the accelerator core in Amaranth's simulator, against the golden model."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from ..config import AcceleratorConfig
from ..hdl.accelerator import OSAcceleratorCore
from .golden import golden_matmul

sys.set_int_max_str_digits(0)
COUNTERS = ("cycles", "busy_cycles", "stall_cycles", "macs", "bytes_read", "bytes_written")


@dataclass
class CoreRun:
    c: np.ndarray
    expected: np.ndarray
    counters: dict
    violations: list

    @property
    def passed(self) -> bool:
        return not self.violations and np.array_equal(self.c.astype(object), self.expected.astype(object))

    @property
    def utilization(self) -> float:
        return self.counters["macs"] / (self.counters["cycles"] * self.rows_cols) if self.counters["cycles"] else 0.0

    rows_cols: int = 1


def run_gemm(config: AcceleratorConfig, a: np.ndarray, b: np.ndarray, *, beat_bytes: int = 16, k_chunk: int = 64,
             latency: int = 10, bytes_per_cycle: float = 16.0, stall_prob: float = 0.0, seed: int = 0,
             max_cycles: int = 2_000_000) -> CoreRun:
    """C = A @ B on the core; A row-major, B column-major, C row-major in a model memory."""
    from .memory import ExternalMemory

    M, K = a.shape
    N = b.shape[1]
    eb = config.input_dtype.bits // 8
    ab = (config.acc_bits + 7) // 8
    lda, ldb, ldc = K * eb + 3, K * eb + 5, N * ab + 7       # odd strides: no alignment assumed
    a_addr = 64
    b_addr = a_addr + M * lda + 64
    c_addr = b_addr + N * ldb + 64
    size = c_addr + M * ldc + 4096
    mem = ExternalMemory(size, latency=latency, bytes_per_cycle=bytes_per_cycle, stall_prob=stall_prob, seed=seed)
    mem.store(a_addr, a, row_stride=lda, elem_bytes=eb)
    mem.store(b_addr, b.T, row_stride=ldb, elem_bytes=eb)
    for r in range(M):
        mem.allow_writes(c_addr + r * ldc, c_addr + r * ldc + N * ab)
    dut = OSAcceleratorCore(config, beat_bytes=beat_bytes, k_chunk=k_chunk)
    state = {"done": False, "counters": {}}

    async def host(ctx):
        ctx.set(dut.cmd.payload, {"m": M, "n": N, "k": K, "a_addr": a_addr, "lda": lda, "b_addr": b_addr,
                                  "ldb": ldb, "c_addr": c_addr, "ldc": ldc})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        for _ in range(max_cycles):
            _, _, done = await ctx.tick().sample(dut.done)
            if done:
                break
        else:
            raise RuntimeError(f"GEMM {M}x{N}x{K} did not finish in {max_cycles} cycles")
        state["counters"] = {c: ctx.get(getattr(dut, c)) for c in COUNTERS}
        state["done"] = True

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(mem.process(dut.mem, beat_bytes, lambda: state["done"]), background=True)
    sim.run()
    c = mem.load(c_addr, M, N, row_stride=ldc, elem_bytes=ab, signed=config.acc_signed)
    run = CoreRun(c, golden_matmul(a, b, config), state["counters"], mem.violations)
    run.rows_cols = config.rows * config.cols
    return run
