"""The accelerator core: double-buffered operand buffers, an external memory port and a
controller that runs a whole tiled GEMM, for both dataflows.

Memory layout of a GEMM descriptor (byte addresses, strides in bytes):

* A is row-major: A[m, k] at ``a_addr + m * lda + k * in_bytes``;
* B is column-major (B^T row-major): B[k, n] at ``b_addr + n * ldb + k * in_bytes``;
* C is row-major: C[m, n] at ``c_addr + m * ldc + n * acc_bytes``.

So every operand row of a chunk (A row m, B column n, over a run of K) is one contiguous
burst. The output is cut into ``tile_m`` x cols tiles (M outer, N inner) and K into chunks
of ``k_chunk`` (see :class:`~systolab.config.AcceleratorConfig`). Per chunk a *loader*
issues one read burst per valid A row and B column into one of two buffer banks (double
buffering; reads go out ahead of the free bank so memory latency hides) and a *receiver*
routes the data beats into the bank. Rows and columns past the M and N edges are fed as
zeros (OS) or not fed (WS), and never written; K past the edge is masked to zero.

* Output-stationary: tile_m = rows. A *feeder* streams a bank into the array one k-slice
  per cycle; the PEs accumulate across the K chunks of a tile and ``last`` marks the final
  chunk. A and B lanes are one memory per array row / column per bank.
* Weight-stationary: k_chunk = rows. A *weight feeder* loads a chunk's B tile into the
  array's idle weight bank (R cycles, while the previous chunk computes), then a *row
  feeder* streams the chunk's A rows, one per cycle, with the partial sums of the earlier
  K chunks from the accumulator buffer as ``psum`` (so saturation happens per addition in
  ascending k, exactly as the golden model). A row of a later chunk waits until the same
  row of the previous chunk has left the array (fewer than ``rows`` rows in flight): this
  only binds when an M-block is shorter than the array's latency R + C - 1.

Results of a tile's final chunk go through a row queue to a *writer* that issues one write
command per row as soon as the row exists and sends its beats (byte strobes mask the N
edge), so writing never stalls the array while the queue has room.

The sequencer, loader, receiver and writer are components of their own
(:mod:`systolab.hdl.core_parts`, with their timing contracts); the feeders, which read
the buffers in the array's rhythm, are built here.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .array import OutputStationaryArray, WeightStationaryArray
from .core_parts import ChunkLoader, ChunkReceiver, ChunkSequencer, ResultWriter, chunk_layout
from .mac import mac_for
from .ports import ADDR_BITS, DIM_BITS, ceil_div, descriptor_layout, memory_port_signature

__all__ = ["ADDR_BITS", "COUNTERS", "COUNTER_BITS", "DIM_BITS", "AcceleratorCore", "descriptor_layout",
           "memory_port_signature"]

COUNTER_BITS = 48
COUNTERS = ("cycles", "busy_cycles", "stall_cycles", "macs", "bytes_read", "bytes_written")


class AcceleratorCore(wiring.Component):
    """A systolic array (either dataflow) with double-buffered operand buffers, a memory
    port and a tiled-GEMM controller; the buffer sizes and beat width come from ``config``.

    Parameters
    ----------
    config : AcceleratorConfig

    Attributes
    ----------
    cmd : In(stream.Signature(descriptor_layout()))
        GEMM descriptors (M, N, K >= 1); one runs at a time, the next waits on ``ready``.
    mem : Out(memory_port_signature(config.beat_bytes))
    done : Out(1)
        High for one cycle when a GEMM's last result beat has been written.
    cycles, busy_cycles, stall_cycles, macs, bytes_read, bytes_written : Out(48)
        Counters of the last (or running) GEMM: cycles from accepting the descriptor to
        ``done``; cycles the array accepted operands (a k-slice for OS, an A row for WS);
        cycles the array had no operands because no chunk had arrived from memory yet;
        useful multiply-accumulates; bytes moved over the port (reads count whole beats,
        writes the strobed bytes).
    """

    def __init__(self, config: AcceleratorConfig):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
        self._config = config
        super().__init__({
            "cmd": In(stream.Signature(descriptor_layout())),
            "mem": Out(memory_port_signature(config.beat_bytes)),
            "done": Out(1),
            **{name: Out(COUNTER_BITS) for name in COUNTERS},
        })

    @property
    def config(self) -> AcceleratorConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        mac = mac_for(cfg)
        array_type = OutputStationaryArray if cfg.dataflow == "os" else WeightStationaryArray
        m.submodules.array = array = array_type(rows=R, cols=C, mac=mac)
        m.submodules.sequencer = seq = ChunkSequencer(cfg)
        m.submodules.loader = loader = ChunkLoader(cfg)
        m.submodules.receiver = rx = ChunkReceiver(cfg)
        m.submodules.writer = writer = ResultWriter(cfg)

        desc = Signal(descriptor_layout())
        running = Signal()
        accept = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), accept.eq(self.cmd.valid & self.cmd.ready)]
        rows_left = Signal(2 * DIM_BITS)   # C rows still to write: M per column tile
        with m.If(accept):
            m.d.sync += [desc.eq(self.cmd.payload), running.eq(1),
                         rows_left.eq(self.cmd.payload.m * ceil_div(self.cmd.payload.n, C))]
            m.d.sync += [getattr(self, c).eq(0) for c in COUNTERS]
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        m.d.comb += [seq.start.eq(accept), seq.dims.eq(desc), loader.desc.eq(desc), writer.desc.eq(desc)]
        wiring.connect(m, seq.chunks, loader.chunks)
        wiring.connect(m, loader.rd_cmd, wiring.flipped(self.mem.rd_cmd))
        wiring.connect(m, loader.loaded, rx.loaded)
        wiring.connect(m, wiring.flipped(self.mem.rd_data), rx.rd_data)
        wiring.connect(m, array.results, writer.results)
        wiring.connect(m, writer.wr_cmd, wiring.flipped(self.mem.wr_cmd))
        wiring.connect(m, writer.wr_data, wiring.flipped(self.mem.wr_data))

        lanes_a, lanes_b = self._buffers(m, rx.write)
        with m.If(rx.write.en):
            m.d.sync += self.bytes_read.eq(self.bytes_read + cfg.beat_bytes)

        ops = array.operands
        op_fire = Signal()
        m.d.comb += op_fire.eq(ops.valid & ops.ready)
        with m.If(op_fire):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        front_idle = Signal()     # no chunk on chip for the array to take
        pending = seq.chunks.valid | loader.busy | rx.busy | loader.loaded.valid
        with m.If(running & front_idle & pending):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
        feed = self._feed_os if cfg.dataflow == "os" else self._feed_ws
        feed(m, array, lanes_a, lanes_b, rx, writer, op_fire, front_idle)

        with m.If(writer.wr_data.valid & writer.wr_data.ready):
            m.d.sync += self.bytes_written.eq(self.bytes_written + writer.wrote)
        with m.If(writer.row_written):
            m.d.sync += rows_left.eq(rows_left - 1)
        m.d.comb += self.done.eq(0)
        with m.If(running & ~seq.chunks.valid & (rows_left == 0)):
            m.d.sync += running.eq(0)
            m.d.comb += self.done.eq(1)
        return m

    def _buffers(self, m: Module, write) -> tuple[list, list]:
        """Two banks of operand buffers, written by the receiver's ``write`` beats. B (both
        dataflows) and A (OS): one memory per array column / row per bank, words of one
        beat. A (WS): per bank one memory of M-block rows, each row R elements wide, written
        element-granular from the beats of that row's burst."""
        cfg = self._config
        os_ = cfg.dataflow == "os"
        R, C, W, KC, TM = cfg.rows, cfg.cols, cfg.beat_bytes, cfg.k_chunk, cfg.tile_m
        eb, E = cfg.input_bytes, cfg.elements_per_beat
        b_depth = KC // E if os_ else cfg.weight_words
        lanes_b = [[Memory(shape=8 * W, depth=b_depth, init=[]) for _ in range(C)] for _ in range(2)]
        if os_:     # one lane per row of the tile (S R with a pipelined MAC: S row groups)
            lanes_a = [[Memory(shape=8 * W, depth=KC // E, init=[]) for _ in range(TM)] for _ in range(2)]
        else:
            lanes_a = [[Memory(shape=8 * eb * R, depth=TM, init=[])] for _ in range(2)]
        for bnk in range(2):
            into = write.en & (write.bank == bnk)
            for i, mem in enumerate(lanes_a[bnk]):
                m.submodules[f"buf_a{bnk}_{i}"] = mem
                if os_:
                    wp = mem.write_port()
                    m.d.comb += [wp.addr.eq(write.word), wp.data.eq(write.data),
                                 wp.en.eq(into & ~write.is_b & (write.lane == i))]
                else:
                    wp = mem.write_port(granularity=8 * eb)
                    m.d.comb += [wp.addr.eq(write.lane),
                                 wp.data.eq(Cat(*(write.data.word_select(e % E, 8 * eb) for e in range(R))))]
                    m.d.comb += [wp.en[e].eq(into & ~write.is_b & (write.word == e // E)) for e in range(R)]
            for j, mem in enumerate(lanes_b[bnk]):
                m.submodules[f"buf_b{bnk}_{j}"] = mem
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(write.word), wp.data.eq(write.data),
                             wp.en.eq(into & write.is_b & (write.lane == j))]
        return lanes_a, lanes_b

    def _lane_element(self, m: Module, lanes, index, bank, k):
        """Element ``k`` of lane ``index`` in ``bank`` (a combinational read)."""
        E, eb = self._config.elements_per_beat, self._config.input_bytes
        words = []
        for bnk in range(2):
            rp = lanes[bnk][index].read_port(domain="comb")
            m.d.comb += rp.addr.eq(k // E if E > 1 else k)
            words.append(rp.data)
        return Mux(bank, words[1], words[0]).word_select(k % E if E > 1 else 0, 8 * eb)

    @staticmethod
    def _queue_tile(m: Module, writer, ch, when):
        m.d.comb += [writer.tile.m0.eq(ch.m0), writer.tile.n0.eq(ch.n0), writer.tile.rows.eq(ch.rows),
                     writer.tile.cols.eq(ch.cols), writer.tile_push.eq(when)]

    def _feed_os(self, m, array, lanes_a, lanes_b, rx, writer, op_fire, front_idle):
        """Output-stationary feeder: one k-slice per cycle from the filled bank into the
        array; the PEs accumulate across a tile's chunks, and ``last`` marks the final one."""
        cfg = self._config
        ops = array.operands
        fd = Signal(chunk_layout(cfg))
        fd_busy = Signal()
        fd_k = Signal(range(cfg.k_chunk + 1))
        S, R = cfg.mac_stages, cfg.rows
        fd_g = Signal(range(S))       # the row group of the beat (a pipelined MAC: S groups)
        for i in range(R):
            a = [Mux(g * R + i < fd.rows, self._lane_element(m, lanes_a, g * R + i, fd.bank, fd_k), 0)
                 for g in range(S)]
            m.d.comb += ops.payload.a[i].eq(a[0] if S == 1 else Cat(*a).word_select(fd_g, len(a[0])))
        for j in range(cfg.cols):
            m.d.comb += ops.payload.b[j].eq(Mux(j < fd.cols, self._lane_element(m, lanes_b, j, fd.bank, fd_k), 0))
        k_last = fd_k == fd.klen - 1
        slice_last = k_last & (fd_g == S - 1)
        tile_end = fd.last & slice_last
        # a tile's last slice also needs room to queue the tile for the writer
        m.d.comb += [ops.valid.eq(fd_busy & (~tile_end | writer.tile_room)), ops.payload.last.eq(fd.last & k_last)]
        m.d.comb += [rx.release.eq(op_fire & slice_last), rx.filled.ready.eq(~fd_busy | (op_fire & slice_last))]
        self._queue_tile(m, writer, fd, op_fire & tile_end)
        with m.If(op_fire):
            if S > 1:
                m.d.sync += fd_g.eq(Mux(fd_g == S - 1, 0, fd_g + 1))
            with m.If(slice_last):
                m.d.sync += [fd_busy.eq(0), self.macs.eq(self.macs + fd.rows * fd.cols * fd.klen)]
            with m.Elif(fd_g == S - 1):
                m.d.sync += fd_k.eq(fd_k + 1)
        with m.If(rx.filled.valid & rx.filled.ready):  # after the block above: taking the next chunk wins
            m.d.sync += [fd.eq(rx.filled.payload), fd_busy.eq(1), fd_k.eq(0)]
        m.d.comb += [front_idle.eq(~fd_busy & ~rx.filled.valid), writer.final.eq(1), writer.known.eq(1)]

    def _feed_ws(self, m, array, lanes_a, lanes_b, rx, writer, op_fire, front_idle):
        """Weight-stationary feeders: a *weight feeder* loads a chunk's B tile into the
        array's idle weight bank, then a *row feeder* streams the chunk's A rows with the
        partial sums of earlier chunks from the accumulator buffer."""
        cfg = self._config
        R, C, TM = cfg.rows, cfg.cols, cfg.tile_m
        chunk = chunk_layout(cfg)
        mac = mac_for(cfg)
        ops = array.operands
        # -- weight feeder: a chunk's B tile into the array's idle weight bank ----------------
        m.submodules.weighted_q = weighted_q = fifo.SyncFIFOBuffered(width=chunk.size, depth=2)
        wf = Signal(chunk)
        wf_busy, wf_next = Signal(), Signal()
        wf_k = Signal(range(R))
        wts = array.weights
        for j in range(C):
            m.d.comb += wts.payload[j].eq(Mux((j < wf.cols) & (wf_k < wf.klen),
                                              self._lane_element(m, lanes_b, j, wf.bank, wf_k), 0))
        wf_last = wf_k == R - 1
        m.d.comb += [wts.valid.eq(wf_busy & (~wf_last | weighted_q.w_rdy)),
                     wf_next.eq(wts.valid & wts.ready & wf_last),
                     weighted_q.w_data.eq(wf), weighted_q.w_en.eq(wf_next),
                     rx.filled.ready.eq(~wf_busy | wf_next)]
        with m.If(wts.valid & wts.ready):
            m.d.sync += wf_k.eq(Mux(wf_last, 0, wf_k + 1))
            with m.If(wf_last):
                m.d.sync += wf_busy.eq(0)
        with m.If(rx.filled.valid & rx.filled.ready):
            m.d.sync += [wf.eq(rx.filled.payload), wf_busy.eq(1), wf_k.eq(0)]

        # -- row feeder: A rows with their partial sums ---------------------------------------
        acc = Memory(shape=data.ArrayLayout(mac.acc_shape, C), depth=TM, init=[])
        m.submodules.acc_buf = acc
        lat = cfg.mac_stages * R + C - 1          # the array's latency
        m.submodules.final_q = final_q = fifo.SyncFIFOBuffered(width=1, depth=lat + 3)
        rf = Signal(chunk)
        rf_busy, rf_next = Signal(), Signal()
        rf_m = Signal(range(TM + 1))
        res_m = Signal(range(TM + 1))
        in_flight = Signal(range(TM + lat + 5))
        a_words = []
        for bnk in range(2):
            rp = lanes_a[bnk][0].read_port(domain="comb")
            m.d.comb += rp.addr.eq(rf_m)
            a_words.append(rp.data)
        a_row = Mux(rf.bank, a_words[1], a_words[0])
        for k in range(R):
            m.d.comb += ops.payload.a[k].eq(Mux(k < rf.klen, a_row.word_select(k, 8 * cfg.input_bytes), 0))
        acc_rd = acc.read_port(domain="comb")
        m.d.comb += [acc_rd.addr.eq(rf_m), ops.payload.psum.eq(Mux(rf.first, 0, acc_rd.data))]
        row_last = rf_m == rf.rows - 1
        # row m of a later chunk reads the sum row m of the previous chunk leaves behind
        hazard_free = rf.first | (in_flight < rf.rows)
        starts = rf_m == 0
        room = ~starts | (final_q.w_rdy & (~rf.last | writer.tile_room))
        m.d.comb += [ops.valid.eq(rf_busy & hazard_free & room), ops.payload.last.eq(row_last),
                     rx.release.eq(op_fire & row_last), rf_next.eq(op_fire & row_last),
                     weighted_q.r_en.eq(weighted_q.r_rdy & (~rf_busy | rf_next)),
                     final_q.w_data.eq(rf.last), final_q.w_en.eq(op_fire & starts)]
        self._queue_tile(m, writer, rf, op_fire & starts & rf.last)
        res = array.results
        res_fire = res.valid & res.ready
        m.d.sync += in_flight.eq(in_flight + op_fire - res_fire)
        with m.If(op_fire):
            with m.If(row_last):
                m.d.sync += [rf_busy.eq(0), self.macs.eq(self.macs + rf.rows * rf.cols * rf.klen)]
            with m.Else():
                m.d.sync += rf_m.eq(rf_m + 1)
        with m.If(weighted_q.r_en):
            m.d.sync += [rf.eq(weighted_q.r_data), rf_busy.eq(1), rf_m.eq(0)]
        m.d.comb += [front_idle.eq(~rf_busy & ~weighted_q.r_rdy & ~wf_busy & ~rx.filled.valid),
                     writer.final.eq(final_q.r_data), writer.known.eq(final_q.r_rdy)]
        # non-final chunks: the result row goes back to the accumulator buffer
        acc_wp = acc.write_port()
        m.d.comb += [acc_wp.addr.eq(res_m), acc_wp.data.eq(res.payload.c),
                     acc_wp.en.eq(res_fire & ~final_q.r_data), final_q.r_en.eq(res_fire & res.payload.last)]
        with m.If(res_fire):
            m.d.sync += res_m.eq(Mux(res.payload.last, 0, res_m + 1))
