"""The host side of a command stream and a ``done`` strobe under cocotb (the core and chip
benches): reset, submit a descriptor, wait for it to finish."""
from __future__ import annotations

from typing import Any

from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from .cocotb_memory import logic_int
from .sim_top import CLOCK_NS


class CommandHost:
    """Drives ``dut.cmd__*`` (valid/ready/payload) and watches ``dut.done``.

    Timing contract (as :class:`~systolab.sim.amaranth_host.CommandHost` in Amaranth's
    simulator): :meth:`submit` returns after the clock edge that accepted the command;
    :meth:`wait_done` returns in the read-only phase after the clock edge that ends the
    cycle in which ``done`` is high, where the counters read as Amaranth's ``ctx.get``
    reads them after its tick; :meth:`writable` then moves 1 ns on, before the next edge.
    """

    def __init__(self, dut: Any):
        self.dut = dut
        self.clock_inside = False

    async def start(self, reset_cycles: int = 2, *, impl: str | None = None) -> None:
        """Start the clock (``CLOCK_NS``) and hold reset for ``reset_cycles`` edges.
        ``impl="gpi"`` toggles the clock in the simulator's C++ interface, without a Python
        wake-up per edge (cocotb's default toggles it from Python); ``impl="inside"``: the
        design toggles its clock itself, at the same period
        (:func:`~systolab.sim.sim_top.wrap_top`), and cocotb only watches it."""
        self.clock_inside = impl == "inside"
        if not self.clock_inside:
            Clock(self.dut.clk, CLOCK_NS, unit="ns", impl=impl).start()  # type: ignore[arg-type]  # cocotb 2: starts its own task
        self.dut.rst.value = 1
        self.dut.cmd__valid.value = 0
        for _ in range(reset_cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def submit(self, bits: int) -> None:
        """Offer the packed command ``bits`` until the DUT accepts it.

        ``ready`` is the value the accepting edge samples. A clock written from cocotb
        wakes the bench at its edge before the design has seen it, so ``ready`` is read
        then; a clock inside the design wakes the bench after the edge has been
        evaluated, so ``ready`` is read in the read-only phase before it (nothing changes
        between that and the edge: the design's logic runs on rising edges, and the bench
        writes nothing meanwhile)."""
        dut = self.dut
        dut.cmd__payload.value = bits
        dut.cmd__valid.value = 1
        while True:
            if self.clock_inside:
                await ReadOnly()
                ready = logic_int(dut.cmd__ready)
                await RisingEdge(dut.clk)
            else:
                await RisingEdge(dut.clk)
                ready = logic_int(dut.cmd__ready)
            if ready:
                break
        dut.cmd__valid.value = 0

    async def wait_done(self, max_cycles: int, *, wake_on_rise: bool = False) -> bool:
        """Wait until ``done`` has been high for a cycle (False after ``max_cycles``).

        By default ``done`` is sampled at every clock edge (with the clock written from
        cocotb: :meth:`submit`). With ``wake_on_rise`` the bench
        sleeps until ``done`` rises, then waits one edge: far fewer Python wake-ups (their
        cost dominates a long run), exact only when ``done`` cannot glitch (it decodes one
        state register, as the chip's does)."""
        dut = self.dut
        if wake_on_rise:
            finished = RisingEdge(dut.done)
            if await First(finished, Timer(CLOCK_NS * max_cycles, unit="ns")) is not finished:
                return False
            await RisingEdge(dut.clk)
        else:
            for _ in range(max_cycles):
                await RisingEdge(dut.clk)
                if logic_int(dut.done):
                    break
            else:
                return False
        await ReadOnly()
        return True

    async def writable(self) -> None:
        """Leave the read-only phase (1 ns on, still before the next clock edge)."""
        await Timer(1, unit="ns")
