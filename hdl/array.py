"""R x C systolic arrays (output-stationary and weight-stationary) with streaming ports.

Both arrays skew their operands in hardware: a stream beat carries one aligned slice
(a column of A and a row of B, or a row of A), and row ``i`` / column ``j`` of it is
delayed by ``i`` / ``j`` cycles on its way in. Gaps in the operand stream become bubbles
that travel through the array; back-pressure on the result stream freezes the whole array
(a global clock enable), so the schedule never depends on when the consumer is ready.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import MAX_ARRAY_DIM, AcceleratorConfig
from .mac import FloatMac, IntegerMac, mac_for
from .pe import OutputStationaryPE, WeightStationaryPE


def _check_dim(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ARRAY_DIM:
        raise ValueError(f"Array {name} must be an integer in 1..{MAX_ARRAY_DIM}, not {value!r}")
    return value


def result_stream(mac: IntegerMac | FloatMac, cols: int) -> stream.Signature:
    return stream.Signature(data.StructLayout({"c": data.ArrayLayout(mac.acc_shape, cols), "last": 1}))


def _delayed(m: Module, value: Value, cycles: int, en: Value, name: str) -> Value:
    """``value`` seen through ``cycles`` enabled registers (combinational when 0)."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{n + 1}")
        with m.If(en):
            m.d.sync += reg.eq(value)
        value = reg
    return value


class _Array(wiring.Component):
    """What both arrays share: validated size, the MAC unit, ports from ``signature_for``."""

    def __init__(self, *, rows: int, cols: int, mac: IntegerMac | FloatMac):
        self._rows = _check_dim("rows", rows)
        self._cols = _check_dim("cols", cols)
        self._mac = mac
        super().__init__(self.signature_for(rows=rows, cols=cols, mac=mac))

    @staticmethod
    def signature_for(*, rows: int, cols: int, mac: IntegerMac | FloatMac) -> wiring.Signature:
        raise NotImplementedError

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols


class OutputStationaryArray(_Array):
    """Output-stationary array: PE (i, j) accumulates C[i, j] of one R x C output tile.

    Operands arrive as one *k-slice* per beat: column k of the A tile (``a``, R values)
    and row k of the B tile (``b``, C values), with ``last`` on the final slice of the
    tile (K slices in all, any K >= 1). Results leave as R beats, one per output row in
    order (``c``: C accumulator values), ``last`` on row R-1.

    Timing contract (cycles counted while the array is not stalled):

    * the slice accepted in cycle t meets PE (i, j) in cycle t + i + j;
    * if the ``last`` slice is accepted in cycle L, output row i is valid in cycle
      L + C + i; so a K-slice tile fed without gaps yields its first result row
      K + C - 1 cycles after its first slice, and its last R - 1 cycles later;
    * a new tile may start while the previous drains: the next ``last`` slice is accepted
      no earlier than max(R, C) cycles after the previous one (``operands.ready`` drops
      for a ``last`` slice until then), so tiles with K >= max(R, C) stream back to back
      at one slice per cycle, i.e. full MAC utilisation;
    * while ``results`` is valid but not ready, the whole array stalls.

    Parameters
    ----------
    rows, cols : int
        Array size, each 1..64.
    mac : IntegerMac or FloatMac

    Attributes
    ----------
    operands : In(stream.Signature({"a": ArrayLayout(mac.input_shape, rows),
                                    "b": ArrayLayout(mac.input_shape, cols), "last": 1}))
    results : Out(stream.Signature({"c": ArrayLayout(mac.acc_shape, cols), "last": 1}))
    """

    @staticmethod
    def signature_for(*, rows: int, cols: int, mac: IntegerMac | FloatMac) -> wiring.Signature:
        """The ports of an array with these parameters (testbenches read layouts here)."""
        return wiring.Signature({
            "operands": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(mac.input_shape, rows),
                "b": data.ArrayLayout(mac.input_shape, cols),
                "last": 1,
            }))),
            "results": Out(result_stream(mac, cols)),
        })

    @property
    def min_tile_period(self) -> int:
        """Fewest cycles between two ``last`` slices (see the timing contract)."""
        return max(self._rows, self._cols)

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        en = Signal()
        m.d.comb += en.eq(~(self.results.valid & ~self.results.ready))

        # Spacing between `last` slices, so that result rows never overlap.
        guard = Signal(range(self.min_tile_period + 1))
        payload = self.operands.payload
        m.d.comb += self.operands.ready.eq(en & ~(payload.last & (guard != 0)))
        fire = Signal()
        m.d.comb += fire.eq(self.operands.valid & self.operands.ready)
        with m.If(fire & payload.last):
            m.d.sync += guard.eq(self.min_tile_period - 1)
        with m.Elif(en & (guard != 0)):
            m.d.sync += guard.eq(guard - 1)

        pes = [[OutputStationaryPE(mac=self._mac) for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                m.submodules[f"pe_{i}_{j}"] = pe = pes[i][j]
                m.d.comb += pe.en.eq(en)
                if j == 0:
                    m.d.comb += [
                        pe.a_in.eq(_delayed(m, payload.a[i], i, en, f"skew_a{i}")),
                        pe.valid_in.eq(_delayed(m, fire, i, en, f"skew_v{i}")),
                        pe.last_in.eq(_delayed(m, fire & payload.last, i, en, f"skew_l{i}")),
                    ]
                else:
                    left = pes[i][j - 1]
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.valid_in.eq(left.valid_out),
                                 pe.last_in.eq(left.last_out)]
                if i == 0:
                    m.d.comb += pe.b_in.eq(_delayed(m, payload.b[j], j, en, f"skew_b{j}"))
                else:
                    m.d.comb += pe.b_in.eq(pes[i - 1][j].b_out)

        # Row i of a tile finishes when the `last` tag leaves its rightmost PE; rows finish
        # one cycle apart and never overlap, so the rows' done flags are one-hot.
        any_done = 0
        for i in range(R):
            done = pes[i][C - 1].last_out
            with m.If(done):
                m.d.comb += [self.results.payload.c[j].eq(pes[i][j].result) for j in range(C)]
            any_done = any_done | done
        m.d.comb += [
            self.results.valid.eq(any_done),
            self.results.payload.last.eq(pes[R - 1][C - 1].last_out),
        ]
        return m


class WeightStationaryArray(_Array):
    """Weight-stationary array: PE (k, j) holds weight B[k, j] of an R x C weight tile.

    Weights arrive on ``weights`` as R beats, beat k holding row k of the tile (C values);
    pad a tile with fewer than R rows with zeros. They load into the idle one of two weight
    banks, so the next tile loads while the current one computes. Operands then arrive as
    one row of A per beat (``a``: R values, element k multiplies weight row k) with the
    initial partial sums for that output row (``psum``: C accumulator values; zero, or the
    accumulator from a previous K-tile) and ``last`` on the final row that uses this weight
    tile. Each result beat is one output row, ``c[j] = psum[j] + sum_k a[k] * B[k, j]``,
    accumulated in ascending k (this order matters only for ``saturate``).

    Timing contract (cycles counted while the array is not stalled):

    * an operand row accepted in cycle t leaves as a result in cycle t + R + C - 1, in
      order, one per cycle at full rate; operands wait (``ready`` low) until a loaded
      weight bank is available;
    * a bank is loaded in R cycles, and is free for reloading R + C - 2 cycles after the
      ``last`` operand row that used it was accepted, so tiles of M >= 2R + C - 2 rows
      stream back to back at one row per cycle;
    * while ``results`` is valid but not ready, the whole array stalls (weight loads too).

    Parameters
    ----------
    rows, cols : int
        Array size, each 1..64 (rows span K, cols span N).
    mac : IntegerMac or FloatMac

    Attributes
    ----------
    weights : In(stream.Signature(ArrayLayout(mac.input_shape, cols)))
    operands : In(stream.Signature({"a": ArrayLayout(mac.input_shape, rows),
                                    "psum": ArrayLayout(mac.acc_shape, cols), "last": 1}))
    results : Out(stream.Signature({"c": ArrayLayout(mac.acc_shape, cols), "last": 1}))
    """

    @staticmethod
    def signature_for(*, rows: int, cols: int, mac: IntegerMac | FloatMac) -> wiring.Signature:
        """The ports of an array with these parameters (testbenches read layouts here)."""
        return wiring.Signature({
            "weights": In(stream.Signature(data.ArrayLayout(mac.input_shape, cols))),
            "operands": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(mac.input_shape, rows),
                "psum": data.ArrayLayout(mac.acc_shape, cols),
                "last": 1,
            }))),
            "results": Out(result_stream(mac, cols)),
        })

    @property
    def bank_release_cycles(self) -> int:
        """Cycles after a tile's ``last`` row until its bank may be rewritten."""
        return max(0, self._rows + self._cols - 3) + 1

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        en = Signal()
        m.d.comb += en.eq(~(self.results.valid & ~self.results.ready))

        # Weight-bank bookkeeping: banks are loaded and consumed alternately.
        loaded = Signal(2)
        drain = [Signal(range(R + C + 1), name=f"drain{b}") for b in range(2)]
        load_bank = Signal()
        load_row = Signal(range(R))
        cur_bank = Signal()
        free = [~loaded[b] & (drain[b] == 0) for b in range(2)]
        m.d.comb += self.weights.ready.eq(en & Mux(load_bank, free[1], free[0]))
        w_fire = Signal()
        m.d.comb += w_fire.eq(self.weights.valid & self.weights.ready)
        with m.If(w_fire):
            with m.If(load_row == R - 1):
                m.d.sync += [loaded.bit_select(load_bank, 1).eq(1), load_bank.eq(~load_bank), load_row.eq(0)]
            with m.Else():
                m.d.sync += load_row.eq(load_row + 1)

        payload = self.operands.payload
        m.d.comb += self.operands.ready.eq(en & loaded.bit_select(cur_bank, 1))
        fire = Signal()
        m.d.comb += fire.eq(self.operands.valid & self.operands.ready)
        for b in range(2):
            with m.If(fire & payload.last & (cur_bank == b)):
                m.d.sync += drain[b].eq(self.bank_release_cycles - 1)
            with m.Elif(en & (drain[b] != 0)):
                m.d.sync += drain[b].eq(drain[b] - 1)
        with m.If(fire & payload.last):
            m.d.sync += [loaded.bit_select(cur_bank, 1).eq(0), cur_bank.eq(~cur_bank)]

        pes = [[WeightStationaryPE(mac=self._mac) for _ in range(C)] for _ in range(R)]
        for k in range(R):
            for j in range(C):
                m.submodules[f"pe_{k}_{j}"] = pe = pes[k][j]
                m.d.comb += [
                    pe.en.eq(en),
                    pe.w_data.eq(self.weights.payload[j]),
                ]
                with m.If(w_fire & (load_row == k)):
                    m.d.comb += pe.w_we.eq(Mux(load_bank, 0b10, 0b01))
                if j == 0:
                    m.d.comb += [
                        pe.a_in.eq(_delayed(m, payload.a[k], k, en, f"skew_a{k}")),
                        pe.valid_in.eq(_delayed(m, fire, k, en, f"skew_v{k}")),
                        pe.last_in.eq(_delayed(m, fire & payload.last, k, en, f"skew_l{k}")),
                        pe.bank_in.eq(_delayed(m, cur_bank, k, en, f"skew_bank{k}")),
                    ]
                else:
                    left = pes[k][j - 1]
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.valid_in.eq(left.valid_out),
                                 pe.last_in.eq(left.last_out), pe.bank_in.eq(left.bank_out)]
                if k == 0:
                    m.d.comb += pe.psum_in.eq(_delayed(m, payload.psum[j], j, en, f"skew_p{j}"))
                else:
                    m.d.comb += pe.psum_in.eq(pes[k - 1][j].psum_out)

        # De-skew: column j leaves the bottom j cycles before column C-1.
        bottom = pes[R - 1]
        m.d.comb += [
            self.results.payload.c[j].eq(_delayed(m, bottom[j].psum_out, C - 1 - j, en, f"deskew{j}"))
            for j in range(C)
        ]
        m.d.comb += [
            self.results.valid.eq(bottom[C - 1].valid_out),
            self.results.payload.last.eq(bottom[C - 1].last_out),
        ]
        return m


def _array_class(config: AcceleratorConfig) -> type[OutputStationaryArray] | type[WeightStationaryArray]:
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    return OutputStationaryArray if config.dataflow == "os" else WeightStationaryArray


def build_array(config: AcceleratorConfig) -> OutputStationaryArray | WeightStationaryArray:
    """The systolic array described by ``config``."""
    return _array_class(config)(rows=config.rows, cols=config.cols, mac=mac_for(config))


def array_signature(config: AcceleratorConfig) -> wiring.Signature:
    """The ports of the array ``config`` describes, without building it."""
    return _array_class(config).signature_for(rows=config.rows, cols=config.cols,
                                              mac=mac_for(config))
