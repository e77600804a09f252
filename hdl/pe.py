"""Processing elements for the output-stationary and weight-stationary arrays.

Both PEs register everything they pass on, so each hop across the array costs exactly one
cycle, and both hold still while ``en`` is low (the array's global stall, raised when the
result stream is back-pressured).

With a pipelined MAC (``mac.stages`` = S > 1) the sum of an operand pair is ready S - 1
enabled cycles after the pair entered. The output-stationary PE then keeps S accumulators
and S results, one per *row group*: consecutive operand pairs belong to groups 0, 1, ...,
S - 1, 0, ... (``group_in`` says which), so two pairs of one group are at least S cycles
apart and each accumulation reads the sum its predecessor wrote (a C-slow loop: the order
of every accumulation, ascending k with one rounding a step, is that of one stage). The
weight-stationary PE needs no such change: its partial sum leaves S cycles after it came.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .mac import FloatMac, IntegerMac


def _check_mac(mac: object) -> IntegerMac | FloatMac:
    if not hasattr(mac, "accumulate") or not hasattr(mac, "acc_shape"):
        raise TypeError(f"mac must be a MAC unit such as IntegerMac or FloatMac, not {mac!r}")
    return mac  # type: ignore[return-value]


def pipe(m: Module, value: Value, cycles: int, en: Value, name: str) -> Value:
    """``value`` seen through ``cycles`` registers that hold while ``en`` is low."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}_p{n + 1}")
        with m.If(en):
            m.d.sync += reg.eq(value)
        value = reg
    return value


class OutputStationaryPE(wiring.Component):
    """One output-stationary processing element.

    Operand ``a`` enters from the left with its ``valid``/``last`` tags and leaves to the
    right; ``b`` enters from above and leaves below; each one cycle later. While a valid
    operand pair is present the PE accumulates ``a * b``; on the pair tagged ``last`` it
    writes the finished sum to ``result`` and clears its accumulator, so the next tile
    starts without a bubble.

    Parameters
    ----------
    mac : IntegerMac or FloatMac
        Arithmetic unit (operand/accumulator shapes, overflow behaviour).

    Attributes
    ----------
    en : In(1)
        Clock enable (global stall when low).
    a_in, b_in : In(mac.input_shape)
    valid_in, last_in : In(1)
    a_out, b_out : Out(mac.input_shape)
        Registered copies of the inputs.
    valid_out, last_out : Out(1)
        Registered tags; ``last_out`` is high for one (enabled) cycle after the PE wrote
        a finished sum to ``result``.
    result : Out(mac.acc_shape)
        Last finished sum; stable until the next ``last`` operand.

    With ``mac.stages`` = S > 1 (see the module notes) the PE also has ``group_in`` /
    ``group_out`` (the row group of the operand pair, 0..S-1, registered on like the
    others), ``result`` becomes S sums (``ArrayLayout(mac.acc_shape, S)``, entry g that of
    group g), and ``done`` is high for one enabled cycle once group S - 1's ``last`` sum
    is in ``result`` (S cycles after that pair entered; every other group's came earlier).
    """

    def __init__(self, *, mac: IntegerMac | FloatMac):
        self._mac = _check_mac(mac)
        shape = mac.input_shape
        S = mac.stages
        ports = {
            "en": In(1),
            "a_in": In(shape), "b_in": In(shape), "valid_in": In(1), "last_in": In(1),
            "a_out": Out(shape), "b_out": Out(shape), "valid_out": Out(1), "last_out": Out(1),
            "result": Out(mac.acc_shape),
        }
        if S > 1:
            ports.update({"group_in": In(range(S)), "group_out": Out(range(S)),
                          "result": Out(data.ArrayLayout(mac.acc_shape, S)), "done": Out(1)})
        super().__init__(ports)

    def elaborate(self, platform):
        if self._mac.stages > 1:
            return self._elaborate_groups()
        m = Module()
        acc = Signal(self._mac.acc_shape)
        total = self._mac.accumulate(m, acc, self.a_in, self.b_in)
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.b_out.eq(self.b_in),
                self.valid_out.eq(self.valid_in),
                self.last_out.eq(self.valid_in & self.last_in),
            ]
            with m.If(self.valid_in):
                with m.If(self.last_in):
                    m.d.sync += [self.result.eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        return m

    def _elaborate_groups(self) -> Module:
        """The C-slow PE: S accumulators in the S-stage loop (see the module notes)."""
        m = Module()
        S, shape = self._mac.stages, self._mac.acc_shape
        acc = [Signal(shape, name=f"acc{g}") for g in range(S)]
        total = self._mac.accumulate(m, Cat(*acc).word_select(self.group_in, shape.width),
                                     self.a_in, self.b_in, self.en)
        # the pair's tags travel beside the sum, S - 1 registers, and meet it at the exit
        tags = pipe(m, Cat(self.valid_in, self.last_in, self.group_in), S - 1, self.en, "tags")
        valid, last, group = tags[0], tags[1], tags[2:]
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.b_out.eq(self.b_in),
                self.valid_out.eq(self.valid_in),
                self.last_out.eq(self.valid_in & self.last_in),
                self.group_out.eq(self.group_in),
                self.done.eq(valid & last & (group == S - 1)),
            ]
            for g in range(S):
                with m.If(valid & (group == g)):
                    with m.If(last):
                        m.d.sync += [self.result[g].eq(total), acc[g].eq(0)]
                    with m.Else():
                        m.d.sync += acc[g].eq(total)
        return m


class WeightStationaryPE(wiring.Component):
    """One weight-stationary processing element with two weight banks.

    ``a`` (with ``valid``, ``last`` and the weight ``bank`` it must use) enters from the
    left and leaves to the right; the partial sum enters from above and leaves below as
    ``psum_in + a * w[bank]``, each one cycle later. Two banks let the next tile's weights
    load while the current tile computes. Weight writes ignore ``en``: the array only
    writes a bank that no operand in flight still uses.

    Parameters
    ----------
    mac : IntegerMac or FloatMac

    Attributes
    ----------
    en : In(1)
    a_in : In(mac.input_shape)
    valid_in, last_in, bank_in : In(1)
    psum_in : In(mac.acc_shape)
    w_data : In(mac.input_shape)
        Weight to write.
    w_we : In(2)
        Write enable per bank.
    a_out, valid_out, last_out, bank_out, psum_out
        Registered outputs, as the inputs.
    """

    def __init__(self, *, mac: IntegerMac | FloatMac):
        self._mac = _check_mac(mac)
        shape = mac.input_shape
        super().__init__({
            "en": In(1),
            "a_in": In(shape), "valid_in": In(1), "last_in": In(1), "bank_in": In(1),
            "psum_in": In(mac.acc_shape),
            "w_data": In(shape), "w_we": In(2),
            "a_out": Out(shape), "valid_out": Out(1), "last_out": Out(1), "bank_out": Out(1),
            "psum_out": Out(mac.acc_shape),
        })

    def elaborate(self, platform):
        m = Module()
        w = [Signal(self._mac.input_shape, name=f"w{b}") for b in range(2)]
        for b in range(2):
            with m.If(self.w_we[b]):
                m.d.sync += w[b].eq(self.w_data)
        weight = Mux(self.bank_in, w[1], w[0])
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.valid_out.eq(self.valid_in),
                self.last_out.eq(self.valid_in & self.last_in),
                self.bank_out.eq(self.bank_in),
            ]
            if self._mac.stages == 1:
                m.d.sync += self.psum_out.eq(self._mac.accumulate(m, self.psum_in, self.a_in, weight))
        if self._mac.stages > 1:   # the pipeline's own registers sit outside the enable's block
            total = self._mac.accumulate(m, self.psum_in, self.a_in, weight, self.en)
            with m.If(self.en):
                m.d.sync += self.psum_out.eq(total)
        return m
