"""R x C systolic arrays (output-stationary and weight-stationary) with streaming ports.

Both arrays skew their operands in hardware: a stream beat carries one aligned slice
(a column of A and a row of B, or a row of A), and row ``i`` / column ``j`` of it is
delayed by ``i`` / ``j`` cycles on its way in. Gaps in the operand stream become bubbles
that travel through the array; back-pressure on the result stream freezes the whole array
(a global clock enable), so the schedule never depends on when the consumer is ready.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
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

    With a pipelined MAC (``mac.stages`` = S > 1) the array interleaves S *row groups*
    (a C-slow schedule, :mod:`systolab.hdl.pe`): a tile is S R rows x C columns, and its
    operands arrive as one beat per cycle holding column k of the A rows of one group
    (rows g R .. g R + R - 1 of the tile) and row k of B, groups round-robin: beat
    n = S k + g; ``last`` marks the S beats of the final k. Each output's accumulation keeps
    its order (ascending k, one rounding a step), so results are those of S = 1. Timing:

    * the beat accepted in cycle t meets PE (i, j) in cycle t + i + j, as above;
    * if the tile's final beat (group S - 1) is accepted in cycle L, result row r = g R + i
      is valid in cycle L + C + S - 1 + r: the S R rows leave one a cycle, in order;
    * the next tile's first ``last`` beat is accepted no earlier than
      :attr:`tile_guard` = max(C + (S - 1)(R - 1), S (R - 1) + 1) cycles after L, so tiles
      of S K >= :attr:`min_tile_period` = (S - 1) R + max(R, C) beats stream back to back.

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
    def stages(self) -> int:
        """Pipeline stages of the MAC: the row groups interleaved (S, see below)."""
        return self._mac.stages

    @property
    def min_tile_period(self) -> int:
        """Fewest cycles between two tiles' final beats when they stream back to back
        (see the timing contract): max(R, C), plus (S - 1) R with a pipelined MAC."""
        return (self.stages - 1) * self._rows + max(self._rows, self._cols)

    @property
    def tile_guard(self) -> int:
        """Fewest cycles from a tile's final beat to the next tile's first ``last`` beat."""
        S, R, C = self.stages, self._rows, self._cols
        return max(C + (S - 1) * (R - 1), S * (R - 1) + 1)

    def elaborate(self, platform):
        if self.stages > 1:
            return self._elaborate_groups()
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

        pes = self._grid(m, en, fire)

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

    def _grid(self, m: Module, en: Value, fire: Value, group: Value | None = None) -> list[list[OutputStationaryPE]]:
        """The R x C PEs, wired: ``a`` and its tags (``group`` too for C-slow PEs) enter
        on the left skewed by row, ``b`` at the top skewed by column, each passed on by
        the PEs one cycle a hop."""
        R, C, payload = self._rows, self._cols, self.operands.payload
        tags = ["a", "valid", "last"] + (["group"] if group is not None else [])
        pes = [[OutputStationaryPE(mac=self._mac) for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                m.submodules[f"pe_{i}_{j}"] = pe = pes[i][j]
                m.d.comb += pe.en.eq(en)
                if j == 0:
                    entry = {"a": payload.a[i], "valid": fire, "last": fire & payload.last, "group": group}
                    m.d.comb += [getattr(pe, f"{t}_in").eq(_delayed(m, entry[t], i, en, f"skew_{t[0]}{i}"))
                                 for t in tags]
                else:
                    m.d.comb += [getattr(pe, f"{t}_in").eq(getattr(pes[i][j - 1], f"{t}_out")) for t in tags]
                if i == 0:
                    m.d.comb += pe.b_in.eq(_delayed(m, payload.b[j], j, en, f"skew_b{j}"))
                else:
                    m.d.comb += pe.b_in.eq(pes[i - 1][j].b_out)
        return pes

    def _elaborate_groups(self) -> Module:
        """The array of C-slow PEs (S > 1 row groups, see the timing contract)."""
        m = Module()
        R, C, S = self._rows, self._cols, self.stages
        en = Signal()
        m.d.comb += en.eq(~(self.results.valid & ~self.results.ready))
        payload = self.operands.payload
        group = Signal(range(S))            # the row group of the beat at the input
        guard = Signal(range(self.tile_guard + 1))
        m.d.comb += self.operands.ready.eq(en & ~(payload.last & (group == 0) & (guard != 0)))
        fire = Signal()
        m.d.comb += fire.eq(self.operands.valid & self.operands.ready)
        tile_end = fire & payload.last & (group == S - 1)
        with m.If(fire):
            m.d.sync += group.eq(Mux(group == S - 1, 0, group + 1))
        with m.If(tile_end):
            m.d.sync += guard.eq(self.tile_guard - 1)
        with m.Elif(en & (guard != 0)):
            m.d.sync += guard.eq(guard - 1)

        pes = self._grid(m, en, fire, group)

        # Result rows leave group by group (row g R + i of the tile: group g, array row i),
        # one a cycle from when PE (0, C-1) has its last group's sum: every earlier row is
        # finished by then and every later one by its turn; the guard keeps the next tile
        # from overwriting a sum before its turn.
        emitting = Signal()
        count = Signal(range(S * R))
        row = Mux(emitting, count, 0)
        valid = emitting | pes[0][C - 1].done
        for j in range(C):
            column = Cat(*(Value.cast(pes[i][j].result[g]) for g in range(S) for i in range(R)))
            m.d.comb += self.results.payload.c[j].eq(column.word_select(row, self._mac.acc_shape.width))
        final = row == S * R - 1
        m.d.comb += [self.results.valid.eq(valid), self.results.payload.last.eq(final)]
        with m.If(valid & en):
            m.d.sync += [emitting.eq(~final), count.eq(Mux(final, 0, row + 1))]
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
    * with a pipelined MAC (``mac.stages`` = S > 1) a partial sum takes S cycles per row
      of PEs, and element k of an operand row enters row k of PEs k S cycles late (not k)
      to meet it: the result leaves in cycle t + S R + C - 1 (:attr:`latency`), and the
      bank is free S (R - 1) + C - 2 cycles after its last row; the rest is unchanged;
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
    def stages(self) -> int:
        """Pipeline stages of the MAC: cycles a partial sum takes per row of PEs."""
        return self._mac.stages

    @property
    def latency(self) -> int:
        """Cycles from accepting an operand row to its result: S R + C - 1."""
        return self.stages * self._rows + self._cols - 1

    @property
    def bank_release_cycles(self) -> int:
        """Cycles after a tile's ``last`` row until its bank may be rewritten."""
        return max(0, self.stages * (self._rows - 1) + self._cols - 2) + 1

    def elaborate(self, platform):
        m = Module()
        R, C, S = self._rows, self._cols, self.stages
        en = Signal()
        m.d.comb += en.eq(~(self.results.valid & ~self.results.ready))

        # Weight-bank bookkeeping: banks are loaded and consumed alternately.
        loaded = Signal(2)
        drain = [Signal(range(max(R + C, self.bank_release_cycles) + 1), name=f"drain{b}") for b in range(2)]
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
                        pe.a_in.eq(_delayed(m, payload.a[k], k * S, en, f"skew_a{k}")),
                        pe.valid_in.eq(_delayed(m, fire, k * S, en, f"skew_v{k}")),
                        pe.last_in.eq(_delayed(m, fire & payload.last, k * S, en, f"skew_l{k}")),
                        pe.bank_in.eq(_delayed(m, cur_bank, k * S, en, f"skew_bank{k}")),
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
        # the tags leave the PE one cycle after they entered, the sum S cycles after
        m.d.comb += [
            self.results.valid.eq(_delayed(m, bottom[C - 1].valid_out, S - 1, en, "out_v")),
            self.results.payload.last.eq(_delayed(m, bottom[C - 1].last_out, S - 1, en, "out_l")),
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
