"""cocotb testbench for the accelerator core: whole GEMMs through the generated Verilog.

The plan (JSON, path in ``SYSTOLAB_PLAN``) names the configuration, the core and memory
parameters and the products; the memory is :class:`~systolab.sim.memory.ExternalMemory`,
driven once per clock. Results (C matrices, counters, write violations) go to
``SYSTOLAB_RESULT``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from ..config import AcceleratorConfig
from ..hdl.accelerator import ADDR_BITS, COUNTERS, descriptor_layout
from .cocotb_memory import logic_int, serve_memory
from .core_bench import layout_products


@cocotb.test()
async def run_core_plan(dut):
    plan = json.loads(Path(os.environ["SYSTOLAB_PLAN"]).read_text())
    cfg = AcceleratorConfig.from_dict(plan["config"])
    products = [(np.array(p["a"], dtype=np.int64), np.array(p["b"], dtype=np.int64)) for p in plan["products"]]
    mem, layout = layout_products(cfg, products, **plan["memory"])
    W = cfg.beat_bytes
    mem.start_port(W)
    desc = descriptor_layout()
    state = {"done": False}
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.cmd__valid.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    cocotb.start_soon(serve_memory(dut, lambda: mem, W, ADDR_BITS, lambda: state["done"]))
    counters = []
    for d in layout:
        dut.cmd__payload.value = desc.const(d).as_value().value
        dut.cmd__valid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if logic_int(dut.cmd__ready):
                break
        dut.cmd__valid.value = 0
        for _ in range(plan["max_cycles"]):
            await RisingEdge(dut.clk)
            if logic_int(dut.done):
                break
        else:
            raise AssertionError(f"GEMM {d['m']}x{d['n']}x{d['k']} did not finish")
        await ReadOnly()  # the counters as the final edge left them (as Amaranth's ctx.get sees them)
        counters.append({c: logic_int(getattr(dut, c)) for c in COUNTERS})
        await Timer(1, unit="ns")  # back to a writable phase, still before the next edge
    state["done"] = True
    ab = (cfg.acc_bits + 7) // 8
    out = {"c": [mem.load(d["c_addr"], d["m"], d["n"], row_stride=d["ldc"], elem_bytes=ab,
                          signed=cfg.acc_signed).tolist() for d in layout],
           "counters": counters, "violations": mem.violations, "simulator": cocotb.SIM_NAME}
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(json.dumps(out))
