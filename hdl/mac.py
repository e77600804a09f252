"""Multiply-accumulate units: the arithmetic a processing element is built around.

A MAC unit is a small description object, not a netlist: the processing element asks it
for its operand and accumulator shapes and for the expression ``acc + a * b`` with the
configured overflow behaviour. Swapping the unit (:class:`FloatMac` for floating point)
changes the arithmetic without touching the PE's dataflow plumbing, and adds no Verilog
module per PE: a unit that needs intermediate signals adds them to the PE's own module.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Value, signed, unsigned

from ..config import OVERFLOW_MODES, AcceleratorConfig
from ..dtypes import DType
from .float_mac import FloatMac


class IntegerMac:
    """Integer multiply-accumulate with wrap-around or saturating accumulation.

    Parameters
    ----------
    dtype : DType
        Integer input format; signedness applies to both operands and the accumulator.
    acc_bits : int
        Accumulator width (>= the exact product width, ``2 * dtype.bits``).
    overflow : str
        ``"wrap"``: the sum is truncated to ``acc_bits`` (two's-complement wrap, i.e.
        modulo 2**acc_bits). ``"saturate"``: the sum is computed exactly, one bit wider
        than the accumulator, then clamped to the accumulator's range; this happens at
        every addition, so results depend on the order of accumulation (ascending k in
        both dataflows, which the golden model reproduces).

    Raises
    ------
    ValueError
        ``dtype`` is not an integer format, or ``acc_bits``/``overflow`` are out of range.
    """

    def __init__(self, *, dtype: DType, acc_bits: int, overflow: str):
        if dtype.kind != "int":
            raise ValueError(f"IntegerMac dtype must be an integer format, not {dtype.name!r}")
        if isinstance(acc_bits, bool) or not isinstance(acc_bits, int) or acc_bits < dtype.product_bits:
            raise ValueError(f"IntegerMac acc_bits must be an integer >= {dtype.product_bits}, not {acc_bits!r}")
        if overflow not in OVERFLOW_MODES:
            raise ValueError(f"IntegerMac overflow must be one of {OVERFLOW_MODES}, not {overflow!r}")
        self._dtype = dtype
        self._acc_bits = acc_bits
        self._overflow = overflow

    @classmethod
    def from_config(cls, config: AcceleratorConfig) -> IntegerMac:
        return cls(dtype=config.input_dtype, acc_bits=config.acc_bits, overflow=config.overflow)

    @property
    def input_shape(self) -> Shape:
        return signed(self._dtype.bits) if self._dtype.signed else unsigned(self._dtype.bits)

    @property
    def acc_shape(self) -> Shape:
        return signed(self._acc_bits) if self._dtype.signed else unsigned(self._acc_bits)

    @property
    def overflow(self) -> str:
        return self._overflow

    @property
    def stages(self) -> int:
        """Pipeline stages of :meth:`accumulate`: 1 (combinational)."""
        return 1

    def accumulate(self, m: Module, acc: Value, a: Value, b: Value, en: Value | None = None) -> Value:
        """Expression for ``acc + a * b`` in the accumulator's shape (``m``, the PE's
        module, and ``en`` are unused: the expression needs no signals of its own)."""
        total = acc + a * b  # Amaranth widens: exact, no overflow inside the expression
        if self._overflow == "saturate":
            shape = self.acc_shape
            lo = Const(-(1 << (shape.width - 1)) if shape.signed else 0, shape)
            hi = Const((1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1, shape)
            total = Mux(total > hi, hi, Mux(total < lo, lo, total))
        wrapped = total[: self._acc_bits]
        return wrapped.as_signed() if self._dtype.signed else wrapped


def mac_for(config: AcceleratorConfig) -> IntegerMac | FloatMac:
    """The MAC unit that ``config``'s input format needs."""
    if config.is_float:
        return FloatMac.from_config(config)
    return IntegerMac.from_config(config)
