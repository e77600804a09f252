"""The accelerator core's parts, each a component with a timing contract.

A GEMM flows through them as chunks (an M-block x N-tile x K-chunk, see
:func:`chunk_layout`)::

    ChunkSequencer --chunks--> ChunkLoader --loaded--> ChunkReceiver --filled--> feeders (core)
                                   |rd_cmd                 ^rd_data   |write (buffer beats)
                                 memory                  memory
    feeders --tiles--> ResultWriter <--results-- array;   ResultWriter --wr_cmd/wr_data--> memory

Streams follow Amaranth's stream rules (a payload moves in a cycle where ``valid`` and
``ready`` are both high). Every part reacts in the cycle it is offered something and
shows its new state the cycle after, so the parts compose without added latency: the
core built from them is cycle-identical to the cycle model (``models/core/perf.py``).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .array import result_stream
from .mac import mac_for
from .ports import ADDR_BITS, DIM_BITS, ceil_div, command_layout, descriptor_layout


def chunk_layout(config: AcceleratorConfig) -> data.StructLayout:
    """A chunk: rows ``m0 ...`` (``rows`` of them), columns ``n0 ...`` (``cols``) over
    ``k0 ...`` (``klen``); ``first`` / ``last`` chunk of its tile; buffer ``bank``."""
    return data.StructLayout({"m0": DIM_BITS, "n0": DIM_BITS, "k0": DIM_BITS, "klen": range(config.k_chunk + 1),
                              "rows": range(config.tile_m + 1), "cols": range(config.cols + 1),
                              "first": 1, "last": 1, "bank": 1})


def tile_layout(config: AcceleratorConfig) -> data.StructLayout:
    """An output tile: ``rows`` x ``cols`` results from row ``m0``, column ``n0``."""
    return data.StructLayout({"m0": DIM_BITS, "n0": DIM_BITS, "rows": range(config.tile_m + 1),
                              "cols": range(config.cols + 1)})


def _check(config) -> AcceleratorConfig:
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    return config


class ChunkSequencer(wiring.Component):
    """Cuts a GEMM into chunks: M-blocks of ``tile_m`` rows outermost, then N-tiles of
    ``cols`` columns, then K-chunks of ``k_chunk``; banks alternate from chunk to chunk.

    Timing: ``start`` in cycle t (sampling nothing else) makes the first chunk valid in
    t + 1; a chunk taken in cycle t is replaced by the next one in t + 1 (one per cycle at
    most); ``chunks.valid`` falls after the last chunk is taken.

    Attributes
    ----------
    start : In(1)
        Begin a GEMM of ``dims`` (not while ``chunks.valid``).
    dims : In(descriptor_layout())
        The GEMM; only M, N and K are used, held for the whole GEMM.
    chunks : Out(stream.Signature(chunk_layout(config)))
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = _check(config)
        super().__init__({"start": In(1), "dims": In(descriptor_layout()),
                          "chunks": Out(stream.Signature(chunk_layout(config)))})

    def elaborate(self, platform):
        m = Module()
        TM, C, KC = self._config.tile_m, self._config.cols, self._config.k_chunk
        m0, n0, k0 = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        bank, active = Signal(), Signal()
        with m.If(self.start):
            m.d.sync += [m0.eq(0), n0.eq(0), k0.eq(0), active.eq(1)]
        rem_m, rem_n, rem_k = self.dims.m - m0, self.dims.n - n0, self.dims.k - k0
        cur = self.chunks.payload
        m.d.comb += [
            self.chunks.valid.eq(active),
            cur.m0.eq(m0), cur.n0.eq(n0), cur.k0.eq(k0), cur.bank.eq(bank),
            cur.klen.eq(Mux(rem_k > KC, KC, rem_k)),
            cur.rows.eq(Mux(rem_m > TM, TM, rem_m)),
            cur.cols.eq(Mux(rem_n > C, C, rem_n)),
            cur.first.eq(k0 == 0), cur.last.eq(rem_k <= KC),
        ]
        with m.If(self.chunks.valid & self.chunks.ready):
            m.d.sync += bank.eq(~bank)
            with m.If(cur.last):
                m.d.sync += k0.eq(0)
                with m.If(rem_n <= C):
                    m.d.sync += n0.eq(0)
                    with m.If(rem_m <= TM):
                        m.d.sync += active.eq(0)
                    with m.Else():
                        m.d.sync += m0.eq(m0 + TM)
                with m.Else():
                    m.d.sync += n0.eq(n0 + C)
            with m.Else():
                m.d.sync += k0.eq(k0 + KC)
        return m


class ChunkLoader(wiring.Component):
    """Issues a chunk's reads: one burst per valid A row (its K-chunk), then one per valid
    B column, one command per cycle while memory accepts.

    Timing: a chunk is taken (``chunks.ready``) when the loader is idle and the queue of
    loaded chunks has room; its first command is offered the next cycle, and the loader
    is idle again the cycle after its last command was accepted. A taken chunk also enters
    ``loaded`` (a buffered queue of 4): the receiver's schedule, in order.

    Attributes
    ----------
    chunks : In(stream.Signature(chunk_layout(config)))
    desc : In(descriptor_layout())
        Addresses and strides of A and B, held for the whole GEMM.
    rd_cmd : Out(stream.Signature(command_layout()))
    loaded : Out(stream.Signature(chunk_layout(config)))
    busy : Out(1)
        Commands of a chunk still to issue.
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = _check(config)
        layout = chunk_layout(config)
        super().__init__({"chunks": In(stream.Signature(layout)), "desc": In(descriptor_layout()),
                          "rd_cmd": Out(stream.Signature(command_layout())),
                          "loaded": Out(stream.Signature(layout)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        eb, W = cfg.input_bytes, cfg.beat_bytes
        layout = chunk_layout(cfg)
        m.submodules.loaded_q = loaded_q = fifo.SyncFIFOBuffered(width=layout.size, depth=4)
        ld = Signal(layout)
        is_b = Signal()
        lane = Signal(range(max(cfg.tile_m, cfg.cols) + 1))
        take = self.chunks.valid & self.chunks.ready
        m.d.comb += [self.chunks.ready.eq(~self.busy & loaded_q.w_rdy),
                     loaded_q.w_data.eq(self.chunks.payload), loaded_q.w_en.eq(take),
                     self.loaded.valid.eq(loaded_q.r_rdy), self.loaded.payload.eq(loaded_q.r_data),
                     loaded_q.r_en.eq(self.loaded.ready & loaded_q.r_rdy)]
        with m.If(take):
            m.d.sync += [ld.eq(self.chunks.payload), self.busy.eq(1), lane.eq(0), is_b.eq(0)]
        limit = Mux(is_b, ld.cols, ld.rows)
        d, rd = self.desc, self.rd_cmd
        a_addr = d.a_addr + (ld.m0 + lane) * d.lda + ld.k0 * eb
        b_addr = d.b_addr + (ld.n0 + lane) * d.ldb + ld.k0 * eb
        m.d.comb += [rd.payload.addr.eq(Mux(is_b, b_addr, a_addr)), rd.payload.beats.eq(ceil_div(ld.klen * eb, W)),
                     rd.valid.eq(self.busy & (lane < limit))]
        with m.If(self.busy):
            with m.If(lane >= limit):
                with m.If(is_b):
                    m.d.sync += self.busy.eq(0)
                with m.Else():
                    m.d.sync += [is_b.eq(1), lane.eq(0)]
            with m.Elif(rd.ready):
                m.d.sync += lane.eq(lane + 1)
        return m


class ChunkReceiver(wiring.Component):
    """Routes a loaded chunk's data beats into a free buffer bank, A rows first, then B
    columns, in the order of the loader's commands.

    Timing: a loaded chunk is taken when the receiver is idle, a bank is free and the
    queue of filled chunks (2) has room; a beat is accepted from the next cycle and
    written (``write``) in the cycle it arrives; the chunk enters ``filled`` (a buffered
    queue of 2) once its B columns are complete. ``release`` frees a bank from the next
    cycle on.

    Attributes
    ----------
    loaded : In(stream.Signature(chunk_layout(config)))
    rd_data : In(stream.Signature(8 * beat_bytes))
    release : In(1)
        The array side finished with a bank.
    filled : Out(stream.Signature(chunk_layout(config)))
    write : Out({en, bank, is_b, lane, word, data})
        The beat of the cycle: ``word`` of A row / B column ``lane`` of ``bank``.
    busy : Out(1)
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = _check(config)
        layout = chunk_layout(config)
        lanes = max(config.tile_m, config.cols)
        write = data.StructLayout({"en": 1, "bank": 1, "is_b": 1, "lane": range(lanes + 1),
                                   "word": range(max(config.k_chunk // config.elements_per_beat, 1) + 1),
                                   "data": 8 * config.beat_bytes})
        super().__init__({"loaded": In(stream.Signature(layout)),
                          "rd_data": In(stream.Signature(8 * config.beat_bytes)), "release": In(1),
                          "filled": Out(stream.Signature(layout)), "write": Out(write), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        layout = chunk_layout(cfg)
        free_banks = Signal(range(3), init=2)
        m.submodules.filled_q = filled_q = fifo.SyncFIFOBuffered(width=layout.size, depth=2)
        rx = Signal(layout)
        is_b, done = Signal(), Signal()
        w = self.write
        limit = Mux(is_b, rx.cols, rx.rows)
        beats = ceil_div(rx.klen * cfg.input_bytes, cfg.beat_bytes)
        take = self.loaded.valid & self.loaded.ready
        m.d.comb += [self.loaded.ready.eq(~self.busy & filled_q.w_rdy & (free_banks != 0)),
                     self.filled.valid.eq(filled_q.r_rdy), self.filled.payload.eq(filled_q.r_data),
                     filled_q.r_en.eq(self.filled.ready & filled_q.r_rdy)]
        m.d.sync += free_banks.eq(free_banks - take + self.release)
        with m.If(take):
            m.d.sync += [rx.eq(self.loaded.payload), self.busy.eq(1), w.lane.eq(0), w.word.eq(0), is_b.eq(0)]
        rdd = self.rd_data
        lane_done = w.lane >= limit
        m.d.comb += [rdd.ready.eq(self.busy & ~lane_done), w.en.eq(rdd.valid & rdd.ready),
                     w.bank.eq(rx.bank), w.is_b.eq(is_b), w.data.eq(rdd.payload)]
        with m.If(w.en):
            with m.If(w.word == beats - 1):
                m.d.sync += [w.word.eq(0), w.lane.eq(w.lane + 1)]
            with m.Else():
                m.d.sync += w.word.eq(w.word + 1)
        m.d.comb += done.eq(self.busy & lane_done & is_b)
        with m.If(self.busy & lane_done & ~is_b):
            m.d.sync += [is_b.eq(1), w.lane.eq(0), w.word.eq(0)]
        m.d.comb += [filled_q.w_data.eq(rx), filled_q.w_en.eq(done)]
        with m.If(done):
            m.d.sync += self.busy.eq(0)
        return m


class ResultWriter(wiring.Component):
    """Writes the rows of finished tiles: takes the array's result rows, keeps those of
    a tile's final chunk that lie inside M, and issues one write burst per row (byte
    strobes mask the N edge) as soon as the row exists.

    Timing: tiles wait in a buffered queue of 4 and the router takes the next one only
    once the previous tile's last row has passed, so back-to-back tiles cost the router a
    one-cycle bubble (the cycle model charges it). A kept row is taken in the cycle it is
    offered while the row queues (2 ``tile_m`` for OS, 2 max(R, C) for WS) have room; its command
    and then its beats, one per cycle, leave through buffered queues.

    Attributes
    ----------
    tile_push : In(1), tile : In(tile_layout(config)), tile_room : Out(1)
        Queue a tile whose final chunk entered the array (only while ``tile_room``).
    results : In(array results stream)
    known, final : In(1)
        The row at ``results`` belongs to a known chunk, and that chunk is its tile's last;
        rows of other chunks are neither taken nor dropped here (``ready`` is low until
        ``known``; when not ``final`` the row is acknowledged for the core to keep).
    desc : In(descriptor_layout())
        C's address and row stride, held for the whole GEMM.
    wr_cmd, wr_data : the memory port's write side
    wrote : Out(range(C * acc_bytes + 1))
        Bytes written in this cycle (the strobed bytes of a beat).
    row_written : Out(1)
        A row's last beat went out.
    """

    def __init__(self, config: AcceleratorConfig):
        self._config = _check(config)
        W = config.beat_bytes
        mac = mac_for(config)
        super().__init__({
            "tile_push": In(1), "tile": In(tile_layout(config)), "tile_room": Out(1),
            "results": In(result_stream(mac, config.cols)), "known": In(1), "final": In(1),
            "desc": In(descriptor_layout()),
            "wr_cmd": Out(stream.Signature(command_layout())),
            "wr_data": Out(stream.Signature(data.StructLayout({"data": 8 * W, "strobe": W}))),
            "wrote": Out(range(config.cols * config.acc_bytes + 1)), "row_written": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C, W, ab, TM = cfg.rows, cfg.cols, cfg.beat_bytes, cfg.acc_bytes, cfg.tile_m
        tile = tile_layout(cfg)
        m.submodules.tiles_q = tiles_q = fifo.SyncFIFOBuffered(width=tile.size, depth=4)
        m.d.comb += [tiles_q.w_data.eq(self.tile), tiles_q.w_en.eq(self.tile_push), self.tile_room.eq(tiles_q.w_rdy)]

        # -- router: rows of final chunks (inside M) to the row queues --------------------------
        # Output-stationary arrays emit R rows per tile; rows past the M edge are dropped.
        rt = Signal(tile)
        have_tile = Signal()
        rt_row = Signal(range(TM + 1))
        m.d.comb += tiles_q.r_en.eq(~have_tile & tiles_q.r_rdy)
        with m.If(tiles_q.r_en):
            m.d.sync += [rt.eq(tiles_q.r_data), have_tile.eq(1), rt_row.eq(0)]
        depth = 2 * TM if cfg.dataflow == "os" else 2 * max(R, C)     # OS: TM = S R rows a tile
        m.submodules.rows_q = rows_q = fifo.SyncFIFOBuffered(width=8 * ab * C, depth=depth)
        cmd_layout = data.StructLayout({"addr": ADDR_BITS, "nbytes": range(C * ab + 1)})
        m.submodules.wcmd_q = wcmd_q = fifo.SyncFIFOBuffered(width=cmd_layout.size, depth=depth)
        res = self.results
        keep = rt_row < rt.rows
        to_writer = self.final & have_tile
        m.d.comb += res.ready.eq(self.known & (~self.final | (to_writer & (~keep | (rows_q.w_rdy & wcmd_q.w_rdy)))))
        routed = res.valid & res.ready & self.final
        # each accumulator value widened to whole bytes (sign-extended when signed)
        ext = [Signal(signed(8 * ab) if cfg.acc_signed else unsigned(8 * ab), name=f"c_ext{j}") for j in range(C)]
        m.d.comb += [e.eq(res.payload.c[j]) for j, e in enumerate(ext)]
        row_cmd = Signal(cmd_layout)
        m.d.comb += [row_cmd.addr.eq(self.desc.c_addr + (rt.m0 + rt_row) * self.desc.ldc + rt.n0 * ab),
                     row_cmd.nbytes.eq(rt.cols * ab),
                     rows_q.w_data.eq(Cat(*ext)), rows_q.w_en.eq(routed & keep),
                     wcmd_q.w_data.eq(row_cmd), wcmd_q.w_en.eq(routed & keep)]
        with m.If(routed):
            m.d.sync += rt_row.eq(rt_row + 1)
            with m.If(res.payload.last):
                m.d.sync += have_tile.eq(0)

        # -- writer: a command per row as soon as the row exists, then its beats ----------------
        row_beats_max = -(-C * ab // W)
        wc, wd = self.wr_cmd, self.wr_data
        wq_cmd = Signal(cmd_layout)
        m.d.comb += wq_cmd.eq(wcmd_q.r_data)
        m.submodules.wlen_q = wlen_q = fifo.SyncFIFOBuffered(width=(C * ab).bit_length(), depth=depth)
        m.d.comb += [wc.valid.eq(wcmd_q.r_rdy & wlen_q.w_rdy), wc.payload.addr.eq(wq_cmd.addr),
                     wc.payload.beats.eq(ceil_div(wq_cmd.nbytes, W)),
                     wcmd_q.r_en.eq(wc.valid & wc.ready),
                     wlen_q.w_data.eq(wq_cmd.nbytes), wlen_q.w_en.eq(wc.valid & wc.ready)]
        nbytes = wlen_q.r_data
        beat = Signal(range(row_beats_max + 1))
        beat_lo = beat * W
        flat = Signal(8 * W * row_beats_max)
        m.d.comb += flat.eq(rows_q.r_data)
        last_beat = beat == ceil_div(nbytes, W) - 1
        m.d.comb += [wd.valid.eq(wlen_q.r_rdy & rows_q.r_rdy), wd.payload.data.eq(flat.word_select(beat, 8 * W))]
        m.d.comb += [wd.payload.strobe[byte].eq(beat_lo + byte < nbytes) for byte in range(W)]
        fire = wd.valid & wd.ready
        m.d.comb += [self.row_written.eq(fire & last_beat), rows_q.r_en.eq(self.row_written),
                     wlen_q.r_en.eq(self.row_written), self.wrote.eq(Mux(fire, Mux(last_beat, nbytes - beat_lo, W), 0))]
        with m.If(fire):
            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
        return m
