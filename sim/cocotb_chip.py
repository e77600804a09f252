"""cocotb testbench for the chip: descriptors through the generated Verilog of ``hdl/chip.py``.

The plan (JSON, path in ``SYSTOLAB_PLAN``) names the chip, the DRAM's stalls and the cases
(products and blocking of each descriptor); each case gets its own DRAM image
(:func:`systolab.sim.chip_bench.layout`), swapped in while the chip is idle. Results (C
matrices, counters, status, write violations) go to ``SYSTOLAB_RESULT``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from ..hdl.chip import CHIP_COUNTERS
from ..hdl.dma import ADDR, descriptor_layout
from ..models.chip.config import ChipConfig
from .chip_bench import layout
from .cocotb_memory import logic_int, serve_memory


@cocotb.test()
async def run_chip_plan(dut):
    plan = json.loads(Path(os.environ["SYSTOLAB_PLAN"]).read_text())
    table = {k: v for k, v in plan["chip"].items() if k not in ("name", "description")}
    chip = ChipConfig.from_dict(plan["chip"]["name"], table)
    Wd = chip.dma_beat_bytes
    desc_layout = descriptor_layout()
    state: dict = {"done": False, "ports": None}
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.cmd__valid.value = 0
    results = []
    for case in plan["cases"]:
        products = [(np.array(p["a"], dtype=np.int64), np.array(p["b"], dtype=np.int64)) for p in case["products"]]
        mem, ports, desc = layout(chip, products, stall_prob=plan["stall_prob"], seed=plan["seed"])
        for port in ports:
            port.start_port(Wd)
        desc.update(case["blocking"])
        first = state["ports"] is None
        state["ports"] = ports
        if first:
            for _ in range(2):
                await RisingEdge(dut.clk)
            dut.rst.value = 0
            for ch in range(chip.dma_channels):
                cocotb.start_soon(serve_memory(dut, lambda ch=ch: state["ports"][ch], Wd, ADDR, lambda: state["done"],
                                               port=f"mem{ch}"))
        dut.cmd__payload.value = desc_layout.const(desc).as_value().value
        dut.cmd__valid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if logic_int(dut.cmd__ready):
                break
        dut.cmd__valid.value = 0
        # wait on `done` itself, not on every clock: a Python wake-up per cycle is the bench's main cost
        finished = RisingEdge(dut.done)
        if await First(finished, Timer(10 * plan["max_cycles"], unit="ns")) is not finished:
            raise AssertionError(f"chip GEMM {desc['m']}x{desc['n']}x{desc['k']} x{desc['count']} did not finish")
        await RisingEdge(dut.clk)               # the counters as they stand after the `done` cycle
        await ReadOnly()
        counters = {c: logic_int(getattr(dut, c)) for c in CHIP_COUNTERS}
        busy = [logic_int(getattr(dut, f"busy{c}")) for c in range(chip.cores)]
        status = logic_int(dut.status)
        await Timer(1, unit="ns")
        ab = chip.core.acc_bytes
        cs = [mem.load(desc["c_addr"] + p * desc["c_step"], desc["m"], desc["n"], row_stride=desc["ldc"],
                       elem_bytes=ab, signed=chip.core.acc_signed).tolist() for p in range(desc["count"])]
        results.append({"c": cs, "counters": counters, "busy": busy, "status": status,
                        "violations": list(mem.violations)})
        # a few idle cycles between descriptors, as the Amaranth bench's host takes
        await RisingEdge(dut.clk)
    state["done"] = True
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(json.dumps({"results": results, "simulator": cocotb.SIM_NAME}))
