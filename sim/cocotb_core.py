"""cocotb testbench for the accelerator core: whole GEMMs through the generated Verilog.

The plan (a :class:`~systolab.sim.core_plan.CorePlan` as JSON, path in ``SYSTOLAB_PLAN``)
names the configuration, the memory and the products; the memory is
:class:`~systolab.sim.memory.ExternalMemory`, driven once per clock. The
:class:`~systolab.sim.core_plan.CoreResult` (C matrices, counters, write violations) goes
to ``SYSTOLAB_RESULT``.
"""
from __future__ import annotations

import os
from pathlib import Path

import cocotb

from ..hdl.accelerator import ADDR_BITS, COUNTERS, descriptor_layout
from .cocotb_host import CommandHost
from .cocotb_memory import logic_int, serve_memory
from .core_bench import load_c, memory_of
from .core_plan import CorePlan, CoreResult


@cocotb.test()
async def run_core_plan(dut):
    plan = CorePlan.from_json(Path(os.environ["SYSTOLAB_PLAN"]).read_text())
    cfg = plan.accelerator
    mem, layout = memory_of(plan, cfg)
    mem.start_port(cfg.beat_bytes)
    desc = descriptor_layout()
    done = False
    host = CommandHost(dut)
    await host.start()

    cocotb.start_soon(serve_memory(dut, lambda: mem, cfg.beat_bytes, ADDR_BITS, lambda: done))
    counters = []
    for d in layout:
        await host.submit(desc.const(d).as_value().value)
        if not await host.wait_done(plan.max_cycles):
            raise AssertionError(f"GEMM {d['m']}x{d['n']}x{d['k']} did not finish")
        # the counters as the final edge left them (as Amaranth's ctx.get sees them)
        counters.append({c: logic_int(getattr(dut, c)) for c in COUNTERS})
        await host.writable()
    done = True
    result = CoreResult([load_c(cfg, mem, d) for d in layout], counters, list(mem.violations), cocotb.SIM_NAME)
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(result.to_json())
