"""A MAC unit's arithmetic alone, in Amaranth's simulator: vectors of (acc, a, b) in,
``acc + a * b`` out, to check the datapath against the golden model value by value.

One unit, driven one value at a time: copies side by side made each step slower than
their number (measured: 8 copies, 4x the time per value). A FloatMac takes about 2.6 ms
per value on the 2-core development VM (2026-11-30: 500 values in 1.2-1.5 s per format).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from ..hdl import FloatMac, IntegerMac


def evaluate_mac(mac: IntegerMac | FloatMac, acc: object, a: object, b: object) -> np.ndarray:
    """Outputs of ``mac.accumulate`` for each (acc, a, b), as raw bits (int64).

    Parameters
    ----------
    mac : IntegerMac or FloatMac
    acc, a, b : 1-D integer arrays of equal length
        Raw bit patterns of the accumulator and the two operands.
    """
    acc_v, a_v, b_v = (np.asarray(x, np.int64).ravel() for x in (acc, a, b))
    if not len(acc_v) == len(a_v) == len(b_v):
        raise ValueError(f"acc, a and b must have one length, not {len(acc_v)}, {len(a_v)}, {len(b_v)}")
    m = Module()
    c, x, y = Signal(mac.acc_shape), Signal(mac.input_shape), Signal(mac.input_shape)
    out = Signal(mac.acc_shape)
    m.d.comb += out.eq(mac.accumulate(m, c, x, y))
    got = np.zeros(len(acc_v), np.int64)
    sim = Simulator(m)
    mask = (1 << mac.acc_shape.width) - 1

    async def bench(ctx):
        for i in range(len(acc_v)):
            ctx.set(c, int(acc_v[i]))
            ctx.set(x, int(a_v[i]))
            ctx.set(y, int(b_v[i]))
            got[i] = ctx.get(out) & mask

    sim.add_testbench(bench)
    sim.run()
    return got
