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
from ..hdl.accelerator import COUNTERS, descriptor_layout
from .core_bench import layout_products


def _u(sig) -> int:
    """The signal as an unsigned integer; X/Z bits (Icarus: FIFO storage never written, seen
    only on payloads whose valid is low) read as 0."""
    bits = str(sig.value).upper().replace("X", "0").replace("Z", "0")
    return int(bits, 2)


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

    async def memory():
        rc, wc, wd = "mem__rd_cmd__", "mem__wr_cmd__", "mem__wr_data__"
        while not state["done"]:
            out = mem.drive()
            getattr(dut, rc + "ready").value = out["rd_cmd_ready"]
            getattr(dut, wc + "ready").value = out["wr_cmd_ready"]
            getattr(dut, wd + "ready").value = out["wr_data_ready"]
            dut.mem__rd_data__valid.value = out["rd_data_valid"]
            dut.mem__rd_data__payload.value = out["rd_data"]
            await RisingEdge(dut.clk)
            rcp, wcp = _u(getattr(dut, rc + "payload")), _u(getattr(dut, wc + "payload"))
            wdp = _u(getattr(dut, wd + "payload"))
            mem.observe(rd_cmd_valid=_u(getattr(dut, rc + "valid")), rd_cmd_addr=rcp & 0xFFFFFFFF,
                        rd_cmd_beats=rcp >> 32, rd_data_ready=_u(dut.mem__rd_data__ready),
                        wr_cmd_valid=_u(getattr(dut, wc + "valid")), wr_cmd_addr=wcp & 0xFFFFFFFF,
                        wr_cmd_beats=wcp >> 32, wr_data_valid=_u(getattr(dut, wd + "valid")),
                        wr_data=wdp & ((1 << (8 * W)) - 1), wr_strobe=wdp >> (8 * W))

    cocotb.start_soon(memory())
    counters = []
    for d in layout:
        dut.cmd__payload.value = desc.const(d).as_value().value
        dut.cmd__valid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if _u(dut.cmd__ready):
                break
        dut.cmd__valid.value = 0
        for _ in range(plan["max_cycles"]):
            await RisingEdge(dut.clk)
            if _u(dut.done):
                break
        else:
            raise AssertionError(f"GEMM {d['m']}x{d['n']}x{d['k']} did not finish")
        await ReadOnly()  # the counters as the final edge left them (as Amaranth's ctx.get sees them)
        counters.append({c: _u(getattr(dut, c)) for c in COUNTERS})
        await Timer(1, unit="ns")  # back to a writable phase, still before the next edge
    state["done"] = True
    ab = (cfg.acc_bits + 7) // 8
    out = {"c": [mem.load(d["c_addr"], d["m"], d["n"], row_stride=d["ldc"], elem_bytes=ab,
                          signed=cfg.acc_signed).tolist() for d in layout],
           "counters": counters, "violations": mem.violations, "simulator": cocotb.SIM_NAME}
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(json.dumps(out))
