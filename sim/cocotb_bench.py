"""cocotb testbench for the systolic array, run by :mod:`systolab.sim.runner`.

Composed of one :class:`StreamDriver` per input stream, a :class:`StreamMonitor` on the
result stream, the shared :class:`~systolab.sim.plan.Recorder` and the golden-model
:class:`~systolab.sim.checker.Scoreboard`. The plan comes from the JSON file named by
``SYSTOLAB_PLAN``; raw results go to ``SYSTOLAB_RESULT`` for the caller.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from ..config import AcceleratorConfig
from .checker import Scoreboard
from .plan import Plan, Recorder
from .protocol import ArrayProtocol

CLOCK_NS = 10


def _cycle() -> int:
    return int(get_sim_time(unit="ns")) // CLOCK_NS


class _StreamPort:
    """The valid/ready/payload signals of one stream (Amaranth names them prefix__*)."""

    def __init__(self, dut, prefix: str, rng: np.random.Generator, stall_prob: float):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.rng, self.stall_prob = rng, stall_prob
        self.log = logging.getLogger(f"cocotb.tb.{prefix}")


class StreamDriver(_StreamPort):
    """Drives a valid/ready stream with seeded random gaps in ``valid``."""

    def __init__(self, dut, prefix: str, rng: np.random.Generator, stall_prob: float):
        super().__init__(dut, prefix, rng, stall_prob)
        self.valid.value = 0

    async def send(self, beats: list[int], on_accept=None) -> None:
        for i, bits in enumerate(beats):
            while self.rng.random() < self.stall_prob:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = bits
            self.valid.value = 1
            while True:
                await RisingEdge(self.clk)
                if self.ready.value == 1:
                    break
            if on_accept is not None:
                on_accept(i, _cycle() - 1)
        self.valid.value = 0


class StreamMonitor(_StreamPort):
    """Accepts result beats with seeded random back-pressure and hands them on."""

    def __init__(self, dut, prefix: str, rng: np.random.Generator, stall_prob: float):
        super().__init__(dut, prefix, rng, stall_prob)
        self.ready.value = 0

    async def run(self, on_beat, done) -> None:
        while not done():
            ready = int(self.rng.random() >= self.stall_prob)
            self.ready.value = ready
            await RisingEdge(self.clk)
            if ready and self.valid.value == 1:
                on_beat(self.payload.value.to_unsigned(), _cycle() - 1)
        self.ready.value = 0


class ArrayTestbench:
    """Drives a :class:`Plan` through the DUT and checks it against the golden model."""

    def __init__(self, dut, plan: Plan, waveform: str | None):
        self.dut, self.plan = dut, plan
        self.config = AcceleratorConfig.from_dict(plan.config)
        self.log = logging.getLogger("cocotb.tb")
        rngs = plan.stall_rngs()
        self.has_weights = hasattr(dut, "weights__valid")
        self.weights = StreamDriver(dut, "weights", rngs["weights"], plan.stall_prob) if self.has_weights else None
        self.operands = StreamDriver(dut, "operands", rngs["operands"], plan.stall_prob)
        self.results = StreamMonitor(dut, "results", rngs["results"], plan.stall_prob)
        self.recorder = Recorder(plan)
        self.products = plan.product_list()
        self.scoreboard = Scoreboard(self.config, self.products, seed=plan.seed, waveform=waveform)
        self.protocol = ArrayProtocol(self.config)

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def start(self) -> None:
        Clock(self.dut.clk, CLOCK_NS, unit="ns").start()  # cocotb 2: starts its own task
        await self.reset()

    async def reset_midway(self) -> None:
        """Push part of a junk product, then reset the DUT while it is in flight."""
        junk = self.plan.junk
        if junk is None or self.plan.reset_after_beats is None:
            return
        self.results.ready.value = 1  # junk results drain instead of stalling the array
        if self.weights is not None:
            await self.weights.send(junk.weights)
        await self.operands.send(junk.operands[: self.plan.reset_after_beats])
        self.log.info("reset with a product in flight")
        await self.reset()

    async def run(self, max_cycles: int = 2_000_000) -> None:
        plans = self.plan.products

        def owner(kind: str) -> list[int]:
            return [i for i, p in enumerate(plans) for _ in getattr(p, kind)]

        if self.weights is not None:
            w_owner = owner("weights")
            cocotb.start_soon(self.weights.send([b for p in plans for b in p.weights],
                                                lambda i, c: self.recorder.input_accepted(w_owner[i], c)))
        o_owner = owner("operands")
        cocotb.start_soon(self.operands.send([b for p in plans for b in p.operands],
                                             lambda i, c: self.recorder.input_accepted(o_owner[i], c)))
        start = _cycle()
        rec = self.recorder
        await self.results.run(rec.result_accepted, lambda: rec.done or _cycle() - start > max_cycles)

    def check(self) -> list[str]:
        errors = []
        for i, p in enumerate(self.products):
            beats = self.recorder.beats[i]
            got = None
            if len(beats) == self.protocol.result_beats(p):
                got = self.protocol.assemble(p, [self.protocol.decode_result(b)[0] for b in beats])
            errors += [self.scoreboard.describe(mm) for mm in self.scoreboard.check(i, got)]
        return errors


@cocotb.test()
async def run_plan(dut):
    """Run the plan named by SYSTOLAB_PLAN and check every product."""
    plan = Plan.from_json(Path(os.environ["SYSTOLAB_PLAN"]).read_text())
    tb = ArrayTestbench(dut, plan, os.environ.get("SYSTOLAB_WAVEFORM") or None)
    await tb.start()
    await tb.reset_midway()
    await tb.run()
    Path(os.environ["SYSTOLAB_RESULT"]).write_text(tb.recorder.result(cocotb.SIM_NAME).to_json())
    errors = tb.check()
    for e in errors[:20]:
        tb.log.error(e)
    assert not errors, f"{len(errors)} mismatching elements; first: {errors[0]}"
