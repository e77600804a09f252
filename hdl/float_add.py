"""fp32 addition for the chip's write-back: one adder, and the fixed-order tree that adds
the K-groups' partial sums of a split-K block (floating-point split-K).

**The adder** (:class:`Fp32Adder`) is the fp32 + fp32 addition of
:class:`~systolab.hdl.float_mac.FloatMac` (``FloatMac.add``, the one the slices use to add
a later K-block's partial sums to the stored ones): the exact sum rounded once to IEEE
binary32, round-to-nearest-even, with FloatMac's special-value and subnormal rules (NaN
in or ``Inf - Inf`` give the canonical quiet NaN ``0x7FC00000``; an exact zero sum is +0
except ``-0 + -0``; ``subnormals="flush"`` counts subnormal inputs as zeros of their sign
and flushes a subnormal result to a zero of its sign). The addition commutes bit for bit.

**The order** (:class:`Fp32SumTree`): the partial sums ``T[0] ... T[gk - 1]`` of the
``gk`` K-groups (``gk`` a power of two) are added as a balanced pairwise tree, lower
K-group on the left::

    gk = 2:  T0 + T1
    gk = 4:  (T0 + T1) + (T2 + T3)
    gk = 8:  ((T0 + T1) + (T2 + T3)) + ((T4 + T5) + (T6 + T7))

each ``+`` rounded once to fp32. Level ``l`` of the tree adds adjacent sums of ``2**(l-1)``
K-groups; the result of ``gk = 2**L`` is node 0 of level L, so one tree built for the
chip's largest float ``gk`` (its ``float_split_k``) serves every smaller one (unused leaves are never selected, never
added as zeros: ``x + 0`` would turn a -0 into +0). ``systolab.sim.golden`` adds in the
same order. With K-blocks, each K-group's partial sums are first accumulated over the
K-blocks in the slice (stored sum first, in K order); the tree adds those totals when the
block is written back.

Node 0 of level ``l`` is the adder's sum where ``gk >= 2**l`` and node 0 of level ``l - 1``
passed on otherwise, so the tree's root is the answer for every ``gk``.

On the chip the tree is pipelined (``pipelined=True``): every adder is cut in two stages
(:data:`ADDER_CUT`, after the add of the aligned significands, the cut of the two-stage
MAC) and a register sits between adder levels (not after the last), all advancing
together with ``en``, so each stage is half an fp32 adder: one whole adder measures 175 to
221 generic gates depending on what surrounds it, about the fp8 MAC's 207, and half of one
stays below every MAC (docs/timing.md). The write-back keeps its rate of one beat a cycle;
:class:`~systolab.hdl.chip_parts.WriteBackSum` adds a register after its core select, and
the DMA offers a beat ``2 log2(leaves)`` advances after its accumulator read
(:func:`~systolab.blocking.writeback_stages`; the chip's cycle model counts them).
``models/silicon/timing.py`` times the deepest stage (``writeback_sum``, docs/timing.md).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import SUBNORMAL_MODES
from ..dtypes import get_dtype
from .float_mac import FloatMac

FP32_BITS = 32


#: Where a pipelined adder is cut (one register layer inside it, the MAC's two-stage cut,
#: :data:`~systolab.hdl.float_mac.CUTS`): after the add of the aligned significands.
ADDER_CUT = ("add",)


class Fp32Adder(wiring.Component):
    """``s = round(a + b)`` on raw fp32 bit patterns (see the module notes).

    Timing: combinational; ``pipelined``: cut in two stages at :data:`ADDER_CUT`, ``s`` is
    the sum of the ``a``, ``b`` of the previous cycle with ``en`` high.

    Parameters
    ----------
    subnormals : str
        ``"keep"`` (IEEE gradual underflow) or ``"flush"`` (to zeros of their sign).
    pipelined : bool
        One register layer inside the adder (default False).

    Attributes
    ----------
    a, b : In(32)
    en : In(1)
        Advance the register layer (pipelined only).
    s : Out(32)
    """

    def __init__(self, *, subnormals: str = "keep", pipelined: bool = False):
        if subnormals not in SUBNORMAL_MODES:
            raise ValueError(f"subnormals must be one of {SUBNORMAL_MODES}, not {subnormals!r}")
        # FloatMac's fp32 addition does not depend on its input format: any float one will do.
        self._mac = FloatMac(dtype=get_dtype("bf16"), subnormals=subnormals)
        self._pipelined = bool(pipelined)
        super().__init__({"a": In(FP32_BITS), "b": In(FP32_BITS), "en": In(1), "s": Out(FP32_BITS)})

    def elaborate(self, platform):
        m = Module()
        cuts = ADDER_CUT if self._pipelined else ()
        m.d.comb += self.s.eq(self._mac.add(m, self.a, self.b, cuts=cuts, en=self.en if cuts else None))
        return m


class Fp32SumTree(wiring.Component):
    """The sum of the first ``2**lg_count`` of ``leaves`` fp32 values, in the pairwise order
    of the module notes.

    Timing: combinational, ``log2(leaves)`` adders deep; ``pipelined``: ``s`` is the sum of
    the ``x`` of ``2 log2(leaves) - 1`` advances (cycles with ``en`` high) earlier, each
    stage half an adder deep (``lg_count`` held meanwhile).

    Parameters
    ----------
    leaves : int
        The most values it adds (a power of two, >= 1).
    subnormals : str
        As for :class:`Fp32Adder`.
    pipelined : bool
        A register between adder levels (default False: combinational).

    Attributes
    ----------
    x : In(ArrayLayout(32, leaves))
        The values, K-group 0 first (raw fp32 bits).
    lg_count : In(range(log2(leaves) + 1))
        log2 of how many of them to add.
    en : In(1)
        Advance the registers (pipelined only).
    s : Out(32)
    """

    def __init__(self, *, leaves: int, subnormals: str = "keep", pipelined: bool = False):
        if isinstance(leaves, bool) or not isinstance(leaves, int) or leaves < 1 or leaves & (leaves - 1):
            raise ValueError(f"leaves must be a power of two, not {leaves!r}")
        if subnormals not in SUBNORMAL_MODES:
            raise ValueError(f"subnormals must be one of {SUBNORMAL_MODES}, not {subnormals!r}")
        self._leaves, self._subnormals, self._pipelined = leaves, subnormals, bool(pipelined)
        depth = leaves.bit_length() - 1
        super().__init__({"x": In(data.ArrayLayout(FP32_BITS, leaves)), "lg_count": In(range(depth + 1)),
                          "en": In(1), "s": Out(FP32_BITS)})

    def elaborate(self, platform):
        m = Module()
        level = [self.x[i] for i in range(self._leaves)]
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for i in range(0, len(level), 2):
                m.submodules[f"add_{depth}_{i // 2}"] = add = Fp32Adder(subnormals=self._subnormals,
                                                                         pipelined=self._pipelined)
                m.d.comb += [add.a.eq(level[i]), add.b.eq(level[i + 1]), add.en.eq(self.en)]
                node = Signal(FP32_BITS, name=f"node_{depth}_{i // 2}")
                passed = level[0]
                if self._pipelined:                          # in step with the adder's inner register
                    passed = Signal(FP32_BITS, name=f"pass_{depth}")
                    with m.If(self.en):
                        m.d.sync += passed.eq(level[0])
                # node 0 is the sum of the first 2**depth values, or the smaller sum passed on
                m.d.comb += node.eq(Mux(self.lg_count >= depth, add.s, passed) if i == 0 else add.s)
                nxt.append(node)
            if self._pipelined and len(nxt) > 1:             # a register between levels
                regs = [Signal(FP32_BITS, name=f"reg_{depth}_{j}") for j in range(len(nxt))]
                with m.If(self.en):
                    m.d.sync += [r.eq(v) for r, v in zip(regs, nxt)]
                nxt = regs
            level = nxt
        m.d.comb += self.s.eq(level[0])
        return m

