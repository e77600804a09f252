"""Runs a :class:`~systolab.sim.plan.Plan` in Amaranth's own simulator (fast unit tests).

The testbench is three async processes, one per stream (weights driver, operand driver,
result monitor), each with its own seeded stall pattern, plus an optional reset of the
DUT in the middle of a junk product before the real ones start.
"""
from __future__ import annotations

import sys

from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from ..config import AcceleratorConfig
from ..hdl import build_array
from .amaranth_host import PERIOD, pulse_reset
from .plan import Plan, Recorder, RunResult

# Wide flat buses (a 64x64 array's result row) exceed Python's default int-to-str limit.
sys.set_int_max_str_digits(0)


def run_plan_amaranth(plan: Plan, *, max_cycles: int = 1_000_000, vcd: str | None = None) -> RunResult:
    """Execute ``plan`` and return the raw result beats and cycle stamps."""
    config = AcceleratorConfig.from_dict(plan.config)
    dut = build_array(config)
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.dut = dut
    cycle = Signal(32)
    m.d.sync += cycle.eq(cycle + 1)

    rec = Recorder(plan)
    rngs = plan.stall_rngs()
    state = {"go": plan.reset_after_beats is None, "finished": False}
    has_weights = hasattr(dut, "weights")

    async def push(ctx, stream, beats, rng, product_of):
        for i, bits in enumerate(beats):
            while rng.random() < plan.stall_prob:
                ctx.set(stream.valid, 0)
                await ctx.tick()
            ctx.set(stream.payload.as_value(), bits)
            ctx.set(stream.valid, 1)
            while True:
                _, _, ready, now = await ctx.tick().sample(stream.ready, cycle)
                if ready:
                    break
            if product_of is not None:
                rec.input_accepted(product_of[i], now)
        ctx.set(stream.valid, 0)

    async def wait_go(ctx):
        while not state["go"]:
            await ctx.tick()

    async def reset_phase(ctx):
        junk = plan.junk
        if junk is None or plan.reset_after_beats is None:
            return
        ctx.set(dut.results.ready, 1)  # junk results drain instead of stalling the array
        if has_weights:
            await push(ctx, dut.weights, junk.weights, rngs["weights"], None)
        await push(ctx, dut.operands, junk.operands[: plan.reset_after_beats], rngs["operands"], None)
        await pulse_reset(ctx, cd)
        state["go"] = True

    async def weights_driver(ctx):
        await wait_go(ctx)
        beats = [b for p in plan.products for b in p.weights]
        owner = [i for i, p in enumerate(plan.products) for _ in p.weights]
        await push(ctx, dut.weights, beats, rngs["weights"], owner)

    async def operands_driver(ctx):
        await wait_go(ctx)
        beats = [b for p in plan.products for b in p.operands]
        owner = [i for i, p in enumerate(plan.products) for _ in p.operands]
        await push(ctx, dut.operands, beats, rngs["operands"], owner)

    async def monitor(ctx):
        await wait_go(ctx)
        rng = rngs["results"]
        for _ in range(max_cycles):
            if rec.done:
                break
            ready = int(rng.random() >= plan.stall_prob)
            ctx.set(dut.results.ready, ready)
            _, _, valid, payload, now = await ctx.tick().sample(dut.results.valid, dut.results.payload, cycle)
            if valid and ready:
                rec.result_accepted(payload.as_value().value, now)
        ctx.set(dut.results.ready, 0)
        state["finished"] = True

    sim = Simulator(m)
    sim.add_clock(PERIOD)
    if plan.reset_after_beats is not None:
        sim.add_testbench(reset_phase)
    if has_weights:
        sim.add_testbench(weights_driver, background=True)
    sim.add_testbench(operands_driver, background=True)
    sim.add_testbench(monitor)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return rec.result("amaranth")
