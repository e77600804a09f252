"""A small first-in first-out queue whose head is readable the cycle after a push."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class Queue(wiring.Component):
    """A queue of ``layout`` entries: a memory with a combinational read port and two
    pointers, so an entry pushed in cycle t is at the head (if the queue was empty) from
    cycle t + 1, and a pop in cycle t shows the next entry in cycle t + 1.

    Parameters
    ----------
    layout : data.Layout
    depth : int

    Attributes
    ----------
    push : In(1), push_data : In(layout)
        Push an entry (ignored while ``full``).
    pop : In(1)
        Drop the head (only while ``nonempty``).
    head : Out(layout), nonempty : Out(1), full : Out(1)
    """

    def __init__(self, layout: data.Layout, depth: int):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self._layout, self._depth = layout, depth
        super().__init__({"push": In(1), "push_data": In(layout), "pop": In(1), "head": Out(layout),
                          "nonempty": Out(1), "full": Out(1)})

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.mem = mem = Memory(shape=self._layout, depth=depth, init=[])
        wp, rp = mem.write_port(), mem.read_port(domain="comb")
        wr, rd = Signal(range(depth)), Signal(range(depth))
        count = Signal(range(depth + 1))
        push = Signal()
        m.d.comb += [push.eq(self.push & (count != depth)), wp.addr.eq(wr), wp.data.eq(self.push_data),
                     wp.en.eq(push), rp.addr.eq(rd), self.head.eq(rp.data), self.nonempty.eq(count != 0),
                     self.full.eq(count == depth)]
        with m.If(push):
            m.d.sync += wr.eq(Mux(wr == depth - 1, 0, wr + 1))
        with m.If(self.pop):
            m.d.sync += rd.eq(Mux(rd == depth - 1, 0, rd + 1))
        m.d.sync += count.eq(count + push - self.pop)
        return m
