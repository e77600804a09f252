"""Floating-point multiply-accumulate: bf16, fp16 or OCP fp8 products accumulated in fp32.

Each step computes ``acc' = round(acc + a * b)`` with a single rounding (a fused
multiply-add): the product of two inputs is exact (at most 11 x 11 significand bits), the
sum is formed exactly up to a sticky bit, and the result is rounded once to IEEE binary32,
round-to-nearest-even. A dot product is a chain of such steps in ascending k, the order
both dataflows use, which :func:`systolab.sim.golden.golden_matmul` reproduces bit for bit.

Special values (inputs, accumulator and result):

* NaN in, ``Inf x 0`` or ``Inf - Inf`` give the canonical quiet NaN ``0x7FC00000``;
* an Inf operand gives a signed Inf; a finite sum beyond the fp32 range rounds to Inf
  (only bf16 products can get there);
* an exact zero sum is +0, except ``-0 + -0`` = -0; a result that rounds to zero keeps
  the sign of the exact sum (IEEE 754 round-to-nearest rules);
* fp8 E4M3 (OCP) has no Inf: its exponent 1111 holds finite values up to 448 and only
  ``S.1111.111`` is NaN; E5M2, fp16 and bf16 follow IEEE 754;
* ``subnormals="keep"`` implements gradual underflow; ``"flush"`` counts subnormal inputs
  and accumulators as zeros of their sign and flushes a subnormal result to a zero of its
  sign after rounding (as many accelerators do, to save the normalisation logic).

Datapath (added to the PE's own module so the hierarchy stays one module per PE): unpack,
multiply significands, normalise both addends to 24-bit significands, align
the smaller one into a window 26 bits below the larger one's (bits shifted further are
ORed into its lowest bit: it then sits at least two bits below the rounding position, so
the rounding is that of the exact sum), add or subtract, find the leading one, place the
rounding position at the normal or, below 2**-126, the subnormal ulp, round, and encode;
the encoding adds the rounded significand to the exponent field, so a carry out of the
significand bumps the exponent and a subnormal rounding up becomes the smallest normal.

Pipelining (``stages``): with one stage the datapath is combinational. With S > 1 it is cut
into S stages by S - 1 register layers at named boundaries of the datapath (:data:`CUTS`:
after the unpack and the significand product, after normalising, after aligning, after the
add, after finding the rounding position, after rounding), chosen per S to balance the
stages' depth in generic gates (measured with ``systolab area``; benchmarks/README.md).
Every register holds while the PE's enable is low. The arithmetic, and so every result
bit, is the same at every S: only where the registers sit changes.
"""
from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned

from ..config import MAX_MAC_STAGES, SUBNORMAL_MODES, AcceleratorConfig
from ..dtypes import HARDWARE_DTYPES, DType, get_dtype

FP32 = get_dtype("fp32")
CANONICAL_NAN = 0x7FC00000
INF_BITS = 0x7F800000
_SIG = FP32.man_bits + 1                  # 24: normalised significand width
_GUARD = 26                               # window bits below the larger addend's significand
_EXP = signed(12)                         # unbiased exponents: bf16 products reach 2**±266
_EMIN_ULP = -(FP32.bias - 1 + FP32.man_bits)   # -149: the exponent of the smallest subnormal


#: The datapath's boundaries, in order, where a pipeline register layer may sit.
BOUNDARIES = ("product", "normalise", "align", "add", "position", "round")

#: The boundaries cut at each pipeline depth (S stages: S - 1 cuts), chosen to balance the
#: stages' generic-gate depth (benchmarks/README.md, "Pipelined floating-point MAC"). In
#: bf16 the segments between boundaries measure about 42 (unpack, product, normalise), 46
#: (align), 77 (add and magnitude), 56 (rounding position) and 60 gates (round, encode):
#: from 5 stages on, the add is the deepest stage and more cuts no longer shorten the path.
CUTS: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("add",),
    3: ("align", "add"),
    4: ("align", "add", "position"),
    5: ("normalise", "align", "add", "position"),
    6: ("product", "normalise", "align", "add", "position"),
    7: BOUNDARIES,
}


class _Stager:
    """Registers the values that cross a boundary where the pipeline is cut (``cuts``),
    each held while ``en`` is low; elsewhere passes them through untouched."""

    def __init__(self, m: Module, cuts: tuple[str, ...], en: Value | None):
        self._m, self._cuts, self._en = m, cuts, en

    def cut(self, boundary: str, *values):
        """``values`` (Values or _Operand tuples of them) after ``boundary``."""
        if boundary not in self._cuts:
            return values
        return tuple(_Operand(*(self._reg(f"{boundary}_{n}_{f}", x) for f, x in zip(_Operand._fields, v)))
                     if isinstance(v, _Operand) else self._reg(f"{boundary}_{n}", v)
                     for n, v in enumerate(values))

    def _reg(self, name: str, value: Value) -> Value:
        value = Value.cast(value)
        reg = Signal(value.shape(), name=f"st_{name}")
        with self._m.If(self._en):
            self._m.d.sync += reg.eq(value)
        return reg


class _Operand(NamedTuple):
    """An addend: value = (-1)**sign x sig x 2**exp, or a special value."""

    sign: Value
    sig: Value
    exp: Value
    zero: Value
    inf: Value
    nan: Value


def _highest_one(x: Value) -> Value:
    """Index of the most significant set bit of ``x`` (0 when ``x`` is 0): a balanced
    tree of halves, log2(width) multiplexers deep."""
    if len(x) == 1:
        return Const(0, 1)
    half = len(x) // 2
    lo, hi = x[:half], x[half:]
    return Mux(hi != 0, _highest_one(hi) + half, _highest_one(lo))


class FloatMac:
    """Floating-point multiply-accumulate into an fp32 accumulator (see the module notes).

    Parameters
    ----------
    dtype : DType
        Input format: bf16, fp16, fp8_e4m3 or fp8_e5m2. Operands travel as raw bit
        patterns (``unsigned(dtype.bits)``), the accumulator as raw fp32 bits.
    subnormals : str
        ``"keep"`` (IEEE gradual underflow) or ``"flush"`` (to zeros of their sign).
    stages : int
        Pipeline stages of :meth:`accumulate`, 1..7: the result leaves ``stages - 1``
        enabled cycles after its operands entered (see the module notes).

    Raises
    ------
    ValueError
        ``dtype`` is not a buildable floating-point input format, ``subnormals`` is not
        one of the modes, or ``stages`` is out of range.
    """

    INPUTS = tuple(d for d in HARDWARE_DTYPES if get_dtype(d).kind == "float")

    def __init__(self, *, dtype: DType, subnormals: str = "keep", stages: int = 1):
        if not isinstance(dtype, DType) or dtype.name not in self.INPUTS:
            raise ValueError(f"FloatMac dtype must be one of {self.INPUTS}, not {getattr(dtype, 'name', dtype)!r}")
        if subnormals not in SUBNORMAL_MODES:
            raise ValueError(f"FloatMac subnormals must be one of {SUBNORMAL_MODES}, not {subnormals!r}")
        if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= MAX_MAC_STAGES:
            raise ValueError(f"FloatMac stages must be an integer in 1..{MAX_MAC_STAGES}, not {stages!r}")
        self._dtype = dtype
        self._flush = subnormals == "flush"
        self._stages = stages

    @classmethod
    def from_config(cls, config: AcceleratorConfig) -> FloatMac:
        return cls(dtype=config.input_dtype, subnormals=config.subnormals, stages=config.mac_stages)

    @property
    def stages(self) -> int:
        """Pipeline stages of :meth:`accumulate` (1: combinational)."""
        return self._stages

    @property
    def input_shape(self) -> Shape:
        return unsigned(self._dtype.bits)

    @property
    def acc_shape(self) -> Shape:
        return unsigned(FP32.bits)

    # -- datapath -------------------------------------------------------------------------
    def _unpack(self, m: Module, x: Value, dt: DType, name: str) -> _Operand:
        e, f = dt.exp_bits, dt.man_bits
        frac, ex, sign = x[:f], x[f:f + e], x[f + e]
        top = ex == (1 << e) - 1
        inf = (top & (frac == 0)) if dt.has_inf else Const(0, 1)
        nan = top & ((frac != 0) if dt.has_inf else (frac == (1 << f) - 1))
        sig = Signal(f + 1, name=f"{name}_sig")
        exp = Signal(_EXP, name=f"{name}_exp")
        m.d.comb += [
            sig.eq(Mux(ex != 0, Cat(frac, Const(1, 1)), 0 if self._flush else frac)),
            exp.eq(Mux(ex != 0, ex, 1) - (dt.bias + f)),
        ]
        return _Operand(sign, sig, exp, sig == 0, inf, nan)

    @staticmethod
    def _normalise(m: Module, x: _Operand, name: str) -> _Operand:
        """The same value with a 24-bit significand whose top bit is set (unless zero)."""
        shift = Signal(range(_SIG), name=f"{name}_lz")
        sig = Signal(_SIG, name=f"{name}_nsig")
        exp = Signal(_EXP, name=f"{name}_nexp")
        m.d.comb += [
            shift.eq(_SIG - 1 - _highest_one(x.sig)),
            sig.eq(x.sig << shift),
            exp.eq(x.exp - shift),
        ]
        return x._replace(sig=sig, exp=exp)

    def _product(self, m: Module, a: Value, b: Value) -> _Operand:
        x, y = (self._unpack(m, v, self._dtype, n) for n, v in (("a", a), ("b", b)))
        sig = Signal(2 * (self._dtype.man_bits + 1), name="p_sig")
        exp = Signal(_EXP, name="p_exp")
        m.d.comb += [sig.eq(x.sig * y.sig), exp.eq(x.exp + y.exp)]
        nan = x.nan | y.nan | (x.inf & y.zero) | (x.zero & y.inf)    # NaN and Inf are never zero
        return _Operand(x.sign ^ y.sign, sig, exp, sig == 0, (x.inf | y.inf) & ~nan, nan)

    def _sum(self, m: Module, x: _Operand, y: _Operand, st: _Stager) -> Value:
        """fp32 bits of round(x + y), both operands normalised; ``st`` cuts the pipeline."""
        W = _SIG + _GUARD
        # special values and the sign of an exact zero, decided now and carried along
        nan = x.nan | y.nan | (x.inf & y.inf & (x.sign != y.sign))
        any_inf, inf_sign = x.inf | y.inf, Mux(x.inf, x.sign, y.sign)
        zero_sign = x.zero & y.zero & x.sign & y.sign
        x_big = y.zero | (~x.zero & (x.exp >= y.exp))
        big = _Operand(*(Mux(x_big, u, v) for u, v in zip(x, y)))
        small = _Operand(*(Mux(x_big, v, u) for u, v in zip(x, y)))
        dist = Signal(range(W + 2), name="align")
        m.d.comb += dist.eq(Mux(big.exp - small.exp > W + 1, W + 1, big.exp - small.exp))
        small_full = Cat(Const(0, _GUARD), small.sig)
        aligned = Signal(W, name="aligned")
        m.d.comb += aligned.eq(small_full >> dist)
        jam = (aligned << dist)[:W] != small_full          # bits shifted out of the window
        addend = aligned | jam
        flags = (nan, any_inf, inf_sign, zero_sign)
        addend, big_sig, big_sign, big_exp, sub, *flags = st.cut(
            "align", addend, big.sig, big.sign, big.exp, big.sign ^ small.sign, *flags)
        total = Signal(signed(W + 2), name="total")
        big_w = Cat(Const(0, _GUARD), big_sig)
        m.d.comb += total.eq(Mux(sub, big_w - addend, big_w + addend))
        mag = Signal(W + 1, name="mag")
        m.d.comb += mag.eq(Mux(total < 0, -total, total))
        sign = big_sign ^ (total < 0)
        mag, sign, big_exp, *flags = st.cut("add", mag, sign, big_exp, *flags)
        e0 = big_exp - _GUARD                                # value = mag x 2**e0

        # The ulp of the result: 24 significant bits, but never below the subnormal ulp.
        lsb = Signal(signed(_EXP.width + 1), name="ulp_pos")
        normal_lsb = _highest_one(mag) - (_SIG - 1)
        sub_lsb = _EMIN_ULP - e0
        m.d.comb += lsb.eq(Mux(normal_lsb > sub_lsb, normal_lsb, sub_lsb))
        ext = Cat(Const(0, 2), mag)                          # round and sticky positions
        right = Signal(range(len(ext) + 1), name="right")
        m.d.comb += right.eq(Mux(lsb > len(ext), len(ext), Mux(lsb > 0, lsb, 0)))
        shifted = Signal(len(ext), name="shifted")
        m.d.comb += shifted.eq(ext >> right)
        lost = (shifted << right)[:len(ext)] != ext
        left = Signal(range(_SIG), name="left")           # lsb >= -23: the leading one is at bit >= 0
        m.d.comb += left.eq(Mux(lsb < 0, -lsb, 0))
        shifted, lost, left, lsb, e0, mag_zero, sign, *flags = st.cut(
            "position", shifted, lost, left, lsb, e0, mag == 0, sign, *flags)
        q = Signal(_SIG + 1, name="q")
        m.d.comb += q.eq((shifted[2:] << left)[:_SIG + 1])
        up = shifted[1] & (shifted[0] | lost | q[0])
        field = Signal(unsigned(36), name="field")
        m.d.comb += field.eq(((lsb + e0 - _EMIN_ULP) << FP32.man_bits) + q + up)
        field, mag_zero, sign, nan, any_inf, inf_sign, zero_sign = st.cut(
            "round", field, mag_zero, sign, *flags)
        magnitude = Mux(field >= INF_BITS, INF_BITS, field[:31])
        if self._flush:
            magnitude = Mux(field < (1 << FP32.man_bits), 0, magnitude)
        finite = Mux(mag_zero, Cat(Const(0, 31), zero_sign), Cat(magnitude, sign))

        out = Signal(FP32.bits, name="fma")
        m.d.comb += out.eq(Mux(nan, CANONICAL_NAN,
                               Mux(any_inf, Cat(Const(INF_BITS, 31), inf_sign), finite)))
        return out

    def accumulate(self, m: Module, acc: Value, a: Value, b: Value, en: Value | None = None) -> Value:
        """fp32 bits of ``round(acc + a * b)``; the logic is added to ``m``. With
        ``stages`` > 1 the result is that of the operands of ``stages - 1`` enabled cycles
        before (``en``, required then: the pipeline registers hold while it is low)."""
        if self._stages > 1 and en is None:
            raise ValueError("FloatMac.accumulate: a pipelined MAC needs the enable `en`")
        st = _Stager(m, CUTS[self._stages], en)
        c = self._unpack(m, acc, FP32, "acc")
        if "product" in CUTS[self._stages]:
            c, p = st.cut("product", c, self._product(m, a, b))
            c = self._normalise(m, c, "acc")
        else:                   # the order of the one-stage MAC, whose netlist stays as it was
            c = self._normalise(m, c, "acc")
            p = self._product(m, a, b)
        c, p = st.cut("normalise", c, self._normalise(m, p, "p"))
        return self._sum(m, c, p, st)

    def add(self, m: Module, x: Value, y: Value, *, cuts: tuple[str, ...] = (), en: Value | None = None) -> Value:
        """fp32 bits of ``round(x + y)`` for two fp32 values (``x`` first: the chip adds
        a later K-block's partial sums to the stored ones this way); combinational, or
        with a register layer at each of ``cuts`` (boundaries of :data:`BOUNDARIES` from
        ``align`` on; each holds while ``en`` is low), the sum of the operands of
        ``len(cuts)`` enabled cycles before (the chip's pipelined write-back tree)."""
        if not set(cuts) <= set(BOUNDARIES[2:]) or (cuts and en is None):
            raise ValueError(f"FloatMac.add: cuts must be among {BOUNDARIES[2:]}, with an enable, not {cuts!r}")
        u = self._normalise(m, self._unpack(m, x, FP32, "x"), "x")
        return self._sum(m, u, self._normalise(m, self._unpack(m, y, FP32, "y"), "y"), _Stager(m, cuts, en))
