"""cocotb testbench for the chip: descriptors through the generated Verilog of ``hdl/chip.py``.

The plan (a :class:`~systolab.sim.chip_plan.ChipPlan` as JSON, path in ``SYSTOLAB_PLAN``)
names the chip's parameters, the DRAM's stalls and the cases (products and blocking of
each descriptor); each case gets its own DRAM image (:func:`systolab.sim.chip_bench.layout`),
swapped in while the chip is idle. The :class:`~systolab.sim.chip_plan.ChipResult` (C
matrices, counters, status, write violations) goes to ``SYSTOLAB_RESULT``.
"""
from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from ..hdl.chip import CHIP_COUNTERS
from ..hdl.dma import ADDR, descriptor_layout
from .chip_bench import layout
from .chip_plan import ChipPlan, ChipResult, DescriptorResult
from .cocotb_host import CommandHost
from .cocotb_memory import logic_int, serve_memory
from .core_bench import load_c
from .memory import ExternalMemory


@cocotb.test()
async def run_chip_plan(dut):
    plan = ChipPlan.from_json(Path(os.environ["SYSTOLAB_PLAN"]).read_text())
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
        counters = {c: logic_int(getattr(dut, c)) for c in CHIP_COUNTERS}
        busy = [logic_int(getattr(dut, f"busy{c}")) for c in range(chip.cores)]
        status = logic_int(dut.status)
        await host.writable()
        results.append(DescriptorResult([load_c(chip.core, mem, desc, step=p) for p in range(desc["count"])],
                                        counters, busy, status, list(mem.violations)))
        # a few idle cycles between descriptors, as the Amaranth bench's host takes
        await RisingEdge(dut.clk)
    done = True
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(ChipResult(results, cocotb.SIM_NAME).to_json())
