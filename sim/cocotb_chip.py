"""cocotb testbench for the chip: descriptors through the generated Verilog of ``hdl/chip.py``.

The plan (a :class:`~systolab.sim.chip_plan.ChipPlan` as JSON, path in ``SYSTOLAB_PLAN``)
names the chip's parameters, the DRAM's stalls, the DRAM harness and the cases (products
and blocking of each descriptor). The :class:`~systolab.sim.chip_plan.ChipResult` (C
matrices, counters, status, write violations) goes to ``SYSTOLAB_RESULT``.

Two harnesses, the same contract (``plan.dram``):

* ``"hdl"`` (the design is :class:`~systolab.sim.hdl_dram.SimChip`): the DRAM is in the
  simulated design; per case the bench writes the DRAM image to files the design loads in
  one cycle (``$fread``), arms the stall generators, submits the descriptor, sleeps
  until ``done`` and has the design write C's rows to a file in one cycle (``$writememh``).
  Python wakes a dozen times per case, never once per cycle. On Verilator the design
  toggles its clock itself (``SYSTOLAB_CLOCK_INSIDE``, :mod:`systolab.sim.sim_top`), so
  no VPI call happens per edge either.
* ``"python"`` (the bare chip): each case gets its own
  :class:`~systolab.sim.memory.ExternalMemory` (:func:`systolab.sim.chip_bench.layout`),
  which drives every DRAM port in every cycle: slow, and the independent check of the
  first.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, RisingEdge

from ..hdl.chip import CHIP_COUNTERS
from ..hdl.dma import ADDR, descriptor_layout
from .chip_bench import c_of, dram_image, layout
from .chip_plan import ChipParams, ChipPlan, ChipResult, DescriptorResult
from .cocotb_host import CommandHost
from .cocotb_memory import logic_int, serve_memory
from .core_bench import load_c
from .hdl_dram import read_dump_file, write_load_files
from .memory import ExternalMemory

STALL_SCALE = 1 << 16


@cocotb.test()
async def run_chip_plan(dut):
    plan = ChipPlan.from_json(Path(os.environ["SYSTOLAB_PLAN"]).read_text())
    run = run_with_hdl_dram if plan.dram == "hdl" else run_with_python_dram
    results = await run(dut, plan)
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(ChipResult(results, cocotb.SIM_NAME).to_json())


def stall_seeds(seed: int, channels: int) -> int:
    """The stall generators' seeds, 64 bits a channel (channel 0 lowest), from ``seed``."""
    out = 0
    for ch in range(channels):
        s = int(np.random.SeedSequence([seed, ch]).generate_state(1, np.uint64)[0]) or 1
        out |= s << (64 * ch)
    return out


async def load_dram(dut, image: np.ndarray, writable: np.ndarray, W: int, rows: int) -> None:
    """Load DRAM rows 0 to ``rows`` (of ``W`` bytes) with ``image`` and its ``writable``
    bits (zero and not writable past them) in one cycle: files the design reads
    (:func:`~systolab.sim.hdl_dram.write_load_files`, the simulator's working folder)."""
    write_load_files(Path.cwd(), image, writable, W, rows)
    await FallingEdge(dut.clk)
    dut.bulk_load.value = 1
    await FallingEdge(dut.clk)                 # loaded at the rising edge between
    dut.bulk_load.value = 0


async def read_dram(dut, start: int, end: int, W: int) -> tuple[np.ndarray, int]:
    """The bytes of DRAM from ``start`` to ``end`` (whole rows around them) and the address
    of the first, written to a file by the design in one cycle."""
    first, last = start // W, -(-end // W) - 1
    await FallingEdge(dut.clk)
    dut.bulk_first.value = first
    dut.bulk_last.value = last
    dut.bulk_read.value = 1
    await FallingEdge(dut.clk)                 # written at the rising edge between
    dut.bulk_read.value = 0
    return read_dump_file(Path.cwd(), W), first * W


async def run_with_hdl_dram(dut, plan: ChipPlan) -> list[DescriptorResult]:
    chip = plan.chip
    W = chip.dma_beat_bytes
    host = CommandHost(dut)
    # no Python per clock edge: the whole run stays in the simulator; where the design
    # toggles its own clock (SYSTOLAB_CLOCK_INSIDE, sim/sim_top.py), no VPI call per edge either
    await host.start(impl="inside" if os.environ.get("SYSTOLAB_CLOCK_INSIDE") == "1" else "gpi")
    dut.stall_threshold.value = min(STALL_SCALE - 1, round(plan.stall_prob * STALL_SCALE))
    dut.seeds.value = stall_seeds(plan.seed, chip.dma_channels)
    results: list[DescriptorResult] = []
    dirty = 0                                  # rows loaded so far: a smaller image zeroes the rest
    for case in plan.cases:
        products = case.product_arrays()

        t0 = time.perf_counter()
        image, writable, desc = dram_image(chip, products)
        rows = max(dirty, -(-len(image) // W))
        dirty = rows
        t1 = time.perf_counter()
        await load_dram(dut, image, writable, W, rows)
        t2, cpu2 = time.perf_counter(), time.process_time()
        dut.arm.value = 1                      # every case from the same stall sequence, as the Python DRAM's
        await FallingEdge(dut.clk)
        dut.arm.value = 0
        desc.update(case.blocking)
        await host.submit(descriptor_layout().const(desc).as_value().value)
        if not await host.wait_done(plan.max_cycles, wake_on_rise=True):
            raise AssertionError(f"chip GEMM {desc['m']}x{desc['n']}x{desc['k']} x{desc['count']} did not finish")
        t3, cpu3 = time.perf_counter(), time.process_time()
        result = _finished(dut, chip)
        await host.writable()
        last_c = desc["c_addr"] + (desc["count"] - 1) * desc["c_step"] + desc["m"] * desc["ldc"]
        memory, start = await read_dram(dut, desc["c_addr"], last_c, W)
        c = [c_of(chip, memory, desc, p, start=start) for p in range(desc["count"])]
        t4 = time.perf_counter()
        # where a case's time goes (sim.log): Python's part should stay small beside the run
        dut._log.info(f"case {len(results)}: image {t1 - t0:.3f} s, load {t2 - t1:.3f} s ({rows} rows), "
                      f"run {t3 - t2:.3f} s ({cpu3 - cpu2:.3f} s of CPU), read-back {t4 - t3:.3f} s")
        outside = logic_int(dut.violations)
        violations = ([f"{outside} byte writes outside C, the first in the beat to "
                       f"0x{logic_int(dut.violation_addr):x}"] if outside else [])
        results.append(DescriptorResult(c, *result, violations))
    return results


def _finished(dut, chip: ChipParams) -> tuple[dict[str, int], list[int], int]:
    """(counters, busy cycles per core, status) as the chip reports them after ``done``."""
    counters = {c: logic_int(getattr(dut, c)) for c in CHIP_COUNTERS}
    busy = [logic_int(getattr(dut, f"busy{c}")) for c in range(chip.cores)]
    return counters, busy, logic_int(dut.status)


async def run_with_python_dram(dut, plan: ChipPlan) -> list[DescriptorResult]:
    chip = plan.chip
    Wd = chip.dma_beat_bytes
    desc_layout = descriptor_layout()
    done = False
    serving: list[ExternalMemory] = []   # the ports the memory processes serve: this case's
    host = CommandHost(dut)
    await host.start()
    results: list[DescriptorResult] = []
    for case in plan.cases:
        products = case.product_arrays()
        mem, ports, desc = layout(chip, products, stall_prob=plan.stall_prob, seed=plan.seed)
        for port in ports:
            port.start_port(Wd)
        desc.update(case.blocking)
        serving[:] = ports
        if not results:
            for ch in range(chip.dma_channels):
                cocotb.start_soon(serve_memory(dut, lambda ch=ch: serving[ch], Wd, ADDR, lambda: done, port=f"mem{ch}"))
        await host.submit(desc_layout.const(desc).as_value().value)
        # wait on `done` itself, not on every clock: a Python wake-up per cycle is the bench's main cost
        if not await host.wait_done(plan.max_cycles, wake_on_rise=True):
            raise AssertionError(f"chip GEMM {desc['m']}x{desc['n']}x{desc['k']} x{desc['count']} did not finish")
        counters, busy, status = _finished(dut, chip)
        await host.writable()
        results.append(DescriptorResult([load_c(chip.core, mem, desc, step=p) for p in range(desc["count"])],
                                        counters, busy, status, list(mem.violations)))
        # a few idle cycles between descriptors, as the Amaranth bench's host takes
        await RisingEdge(dut.clk)
    done = True
    return results
