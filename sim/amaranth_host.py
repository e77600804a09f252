"""The host side of a command stream and a ``done`` strobe in Amaranth's simulator (the
core and chip benches), and a reset of the design in the middle of a run."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from amaranth.hdl import ClockDomain, Module

from .memory import ExternalMemory

#: The clock period of every Amaranth bench, in seconds.
PERIOD = 1e-8


async def pulse_reset(ctx: Any, domain: ClockDomain) -> None:
    """Hold ``domain`` in reset for two clock periods (by delay: ticking a domain held in
    reset raises DomainReset)."""
    ctx.set(domain.rst, 1)
    await ctx.delay(2 * PERIOD)
    ctx.set(domain.rst, 0)


def hosted(dut: Any) -> tuple[Module, CommandHost]:
    """A module holding ``dut`` in its own ``sync`` domain, and the host that drives it."""
    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.dut = dut
    return m, CommandHost(dut, cd)


class CommandHost:
    """Drives ``dut.cmd`` (a valid/ready stream of descriptors) and watches ``dut.done``.

    Timing contract: :meth:`submit` returns after the clock edge that accepted the
    command; :meth:`wait_done` returns after the clock edge that ends the cycle in which
    ``done`` is high (the counters then read as that edge left them).
    """

    def __init__(self, dut: Any, domain: ClockDomain):
        self.dut, self.domain = dut, domain

    async def submit(self, ctx: Any, payload: object) -> None:
        """Offer ``payload`` (a descriptor: its fields as a dict) until it is accepted."""
        ctx.set(self.dut.cmd.payload, payload)
        ctx.set(self.dut.cmd.valid, 1)
        await ctx.tick().until(self.dut.cmd.ready)
        ctx.set(self.dut.cmd.valid, 0)

    async def wait_done(self, ctx: Any, max_cycles: int) -> bool:
        """Tick until ``done`` was high in the cycle just ended (False after ``max_cycles``)."""
        for _ in range(max_cycles):
            _, _, done = await ctx.tick().sample(self.dut.done)
            if done:
                return True
        return False

    async def reset(self, ctx: Any, memories: Iterable[ExternalMemory]) -> None:
        """Reset the design with whatever it has in flight; ``memories`` drop their
        commands in flight meanwhile and serve again from the next cycle."""
        memories = list(memories)
        for mem in memories:
            mem.hold_reset(True)
        await pulse_reset(ctx, self.domain)
        await ctx.tick()
        for mem in memories:
            mem.hold_reset(False)
