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
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .array import OutputStationaryArray, WeightStationaryArray
from .mac import IntegerMac

ADDR_BITS = 32
DIM_BITS = 16
COUNTER_BITS = 48
COUNTERS = ("cycles", "busy_cycles", "stall_cycles", "macs", "bytes_read", "bytes_written")


def descriptor_layout() -> data.StructLayout:
    return data.StructLayout({
        "m": DIM_BITS, "n": DIM_BITS, "k": DIM_BITS,
        "a_addr": ADDR_BITS, "lda": ADDR_BITS,
        "b_addr": ADDR_BITS, "ldb": ADDR_BITS,
        "c_addr": ADDR_BITS, "ldc": ADDR_BITS,
    })


def memory_port_signature(beat_bytes: int, addr_bits: int = ADDR_BITS) -> wiring.Signature:
    """The requester's side of a memory port (the core's, and the chip's DMA's to DRAM).

    Reads: a command {addr, beats} is answered by ``beats`` data beats, in order, beat j
    holding the bytes at addr + j * beat_bytes (addresses need no alignment). Writes: a
    command {addr, beats} followed by that many beats with a byte strobe each; a beat may
    follow its command from the next cycle on.
    """
    cmd = data.StructLayout({"addr": addr_bits, "beats": DIM_BITS})
    return wiring.Signature({
        "rd_cmd": Out(stream.Signature(cmd)),
        "rd_data": In(stream.Signature(8 * beat_bytes)),
        "wr_cmd": Out(stream.Signature(cmd)),
        "wr_data": Out(stream.Signature(data.StructLayout({"data": 8 * beat_bytes, "strobe": beat_bytes}))),
    })


def _ceil_div(x, d: int):
    return (x + (d - 1)) // d if d > 1 else x


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
        os_ = cfg.dataflow == "os"
        R, C, W = cfg.rows, cfg.cols, cfg.beat_bytes
        TM, KC = cfg.tile_m, cfg.k_chunk
        eb, ab, E = cfg.input_bytes, cfg.acc_bytes, cfg.elements_per_beat
        mac = IntegerMac.from_config(cfg)
        if os_:
            m.submodules.array = array = OutputStationaryArray(rows=R, cols=C, mac=mac)
        else:
            m.submodules.array = array = WeightStationaryArray(rows=R, cols=C, mac=mac)

        desc = Signal(descriptor_layout())
        running = Signal()
        accept = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), accept.eq(self.cmd.valid & self.cmd.ready)]
        rows_left = Signal(2 * DIM_BITS)   # C rows still to write: M per column tile
        with m.If(accept):
            m.d.sync += [desc.eq(self.cmd.payload), running.eq(1),
                         rows_left.eq(self.cmd.payload.m * _ceil_div(self.cmd.payload.n, C))]
            m.d.sync += [getattr(self, c).eq(0) for c in COUNTERS]
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        # -- chunk sequencer: (m0, n0, k0) in tile order, one chunk descriptor at a time --------
        chunk = data.StructLayout({"m0": DIM_BITS, "n0": DIM_BITS, "k0": DIM_BITS, "klen": range(KC + 1),
                                   "rows": range(TM + 1), "cols": range(C + 1), "first": 1, "last": 1, "bank": 1})
        seq_m0, seq_n0, seq_k0 = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        seq_bank, seq_active = Signal(), Signal()
        with m.If(accept):
            m.d.sync += [seq_m0.eq(0), seq_n0.eq(0), seq_k0.eq(0), seq_active.eq(1)]
        rem_m, rem_n, rem_k = desc.m - seq_m0, desc.n - seq_n0, desc.k - seq_k0
        cur = Signal(chunk)
        m.d.comb += [
            cur.m0.eq(seq_m0), cur.n0.eq(seq_n0), cur.k0.eq(seq_k0), cur.bank.eq(seq_bank),
            cur.klen.eq(Mux(rem_k > KC, KC, rem_k)),
            cur.rows.eq(Mux(rem_m > TM, TM, rem_m)),
            cur.cols.eq(Mux(rem_n > C, C, rem_n)),
            cur.first.eq(seq_k0 == 0), cur.last.eq(rem_k <= KC),
        ]
        load_start = Signal()     # the loader takes `cur`
        with m.If(load_start):
            m.d.sync += seq_bank.eq(~seq_bank)
            with m.If(cur.last):
                m.d.sync += seq_k0.eq(0)
                with m.If(rem_n <= C):
                    m.d.sync += seq_n0.eq(0)
                    with m.If(rem_m <= TM):
                        m.d.sync += seq_active.eq(0)
                    with m.Else():
                        m.d.sync += seq_m0.eq(seq_m0 + TM)
                with m.Else():
                    m.d.sync += seq_n0.eq(seq_n0 + C)
            with m.Else():
                m.d.sync += seq_k0.eq(seq_k0 + KC)

        # Two banks: the receiver fills a chunk only into a bank the array side has released.
        free_banks = Signal(range(3), init=2)
        release = Signal()        # the array side finished with a bank
        rx_take = Signal()        # the receiver started filling a bank
        m.d.sync += free_banks.eq(free_banks - rx_take + release)

        # -- buffers ---------------------------------------------------------------------------
        # B (both dataflows) and A (OS): one memory per array column / row per bank, words of
        # one beat. A (WS): per bank one memory of M-block rows, each row R elements wide,
        # written element-granular from the beats of that row's burst.
        b_depth = KC // E if os_ else cfg.weight_words
        lanes_b = [[Memory(shape=8 * W, depth=b_depth, init=[]) for _ in range(C)] for _ in range(2)]
        if os_:
            lanes_a = [[Memory(shape=8 * W, depth=KC // E, init=[]) for _ in range(R)] for _ in range(2)]
        else:
            lanes_a = [[Memory(shape=8 * eb * R, depth=TM, init=[])] for _ in range(2)]
        for bnk in range(2):
            for i, mem in enumerate(lanes_a[bnk]):
                m.submodules[f"buf_a{bnk}_{i}"] = mem
            for j, mem in enumerate(lanes_b[bnk]):
                m.submodules[f"buf_b{bnk}_{j}"] = mem

        # -- loader: one read burst per valid A row, then per valid B column --------------------
        # The receiver follows the same order through a FIFO of chunk descriptors.
        m.submodules.loaded_q = loaded_q = fifo.SyncFIFOBuffered(width=chunk.size, depth=4)
        ld = Signal(chunk)
        ld_busy, ld_is_b = Signal(), Signal()
        ld_lane = Signal(range(max(TM, C) + 1))
        m.d.comb += load_start.eq(seq_active & ~ld_busy & loaded_q.w_rdy)
        with m.If(load_start):
            m.d.sync += [ld.eq(cur), ld_busy.eq(1), ld_lane.eq(0), ld_is_b.eq(0)]
        m.d.comb += [loaded_q.w_data.eq(cur), loaded_q.w_en.eq(load_start)]
        lane_limit = Mux(ld_is_b, ld.cols, ld.rows)
        rd = self.mem.rd_cmd
        a_addr = desc.a_addr + (ld.m0 + ld_lane) * desc.lda + ld.k0 * eb
        b_addr = desc.b_addr + (ld.n0 + ld_lane) * desc.ldb + ld.k0 * eb
        m.d.comb += [rd.payload.addr.eq(Mux(ld_is_b, b_addr, a_addr)), rd.payload.beats.eq(_ceil_div(ld.klen * eb, W)),
                     rd.valid.eq(ld_busy & (ld_lane < lane_limit))]
        with m.If(ld_busy):
            with m.If(ld_lane >= lane_limit):
                with m.If(ld_is_b):
                    m.d.sync += ld_busy.eq(0)
                with m.Else():
                    m.d.sync += [ld_is_b.eq(1), ld_lane.eq(0)]
            with m.Elif(rd.ready):
                m.d.sync += ld_lane.eq(ld_lane + 1)

        # -- receiver: route data beats into the lanes of the chunk's bank ----------------------
        rx = Signal(chunk)
        rx_busy, rx_is_b, rx_done, rx_start = Signal(), Signal(), Signal(), Signal()
        rx_lane = Signal(range(max(TM, C) + 1))
        rx_word = Signal(range(max(KC // E, 1) + 1))
        m.submodules.filled_q = filled_q = fifo.SyncFIFOBuffered(width=chunk.size, depth=2)
        rx_limit = Mux(rx_is_b, rx.cols, rx.rows)
        rx_beats = _ceil_div(rx.klen * eb, W)
        m.d.comb += [rx_start.eq(~rx_busy & loaded_q.r_rdy & filled_q.w_rdy & (free_banks != 0)),
                     loaded_q.r_en.eq(rx_start), rx_take.eq(rx_start)]
        with m.If(rx_start):
            m.d.sync += [rx.eq(loaded_q.r_data), rx_busy.eq(1), rx_lane.eq(0), rx_word.eq(0), rx_is_b.eq(0)]
        rdd = self.mem.rd_data
        lane_done = rx_lane >= rx_limit
        m.d.comb += rdd.ready.eq(rx_busy & ~lane_done)
        beat_fire = rdd.valid & rdd.ready
        for bnk in range(2):
            into = beat_fire & (rx.bank == bnk)
            if os_:
                for i, mem in enumerate(lanes_a[bnk]):
                    wp = mem.write_port()
                    m.d.comb += [wp.addr.eq(rx_word), wp.data.eq(rdd.payload),
                                 wp.en.eq(into & ~rx_is_b & (rx_lane == i))]
            else:
                wp = lanes_a[bnk][0].write_port(granularity=8 * eb)
                m.d.comb += [wp.addr.eq(rx_lane),
                             wp.data.eq(Cat(*(rdd.payload.word_select(e % E, 8 * eb) for e in range(R))))]
                for e in range(R):
                    m.d.comb += wp.en[e].eq(into & ~rx_is_b & (rx_word == e // E))
            for j, mem in enumerate(lanes_b[bnk]):
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(rx_word), wp.data.eq(rdd.payload),
                             wp.en.eq(into & rx_is_b & (rx_lane == j))]
        with m.If(beat_fire):
            m.d.sync += self.bytes_read.eq(self.bytes_read + W)
            with m.If(rx_word == rx_beats - 1):
                m.d.sync += [rx_word.eq(0), rx_lane.eq(rx_lane + 1)]
            with m.Else():
                m.d.sync += rx_word.eq(rx_word + 1)
        m.d.comb += rx_done.eq(rx_busy & lane_done & rx_is_b)
        with m.If(rx_busy & lane_done & ~rx_is_b):
            m.d.sync += [rx_is_b.eq(1), rx_lane.eq(0), rx_word.eq(0)]
        m.d.comb += [filled_q.w_data.eq(rx), filled_q.w_en.eq(rx_done)]
        with m.If(rx_done):
            m.d.sync += rx_busy.eq(0)

        def lane_element(lanes, index, bank, k):
            """Element ``k`` of lane ``index`` in ``bank`` (a combinational read)."""
            words = []
            for bnk in range(2):
                rp = lanes[bnk][index].read_port(domain="comb")
                m.d.comb += rp.addr.eq(k // E if E > 1 else k)
                words.append(rp.data)
            return Mux(bank, words[1], words[0]).word_select(k % E if E > 1 else 0, 8 * eb)

        # -- array side: tiles whose final chunk entered the array, in order ---------------------
        tile = data.StructLayout({"m0": DIM_BITS, "n0": DIM_BITS, "rows": range(TM + 1), "cols": range(C + 1)})
        m.submodules.tiles_q = tiles_q = fifo.SyncFIFOBuffered(width=tile.size, depth=4)
        ops = array.operands
        op_fire = Signal()
        m.d.comb += op_fire.eq(ops.valid & ops.ready)
        with m.If(op_fire):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        front_idle = Signal()     # no chunk on chip for the array to take
        pending = seq_active | ld_busy | rx_busy | loaded_q.r_rdy
        with m.If(running & front_idle & pending):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)

        def queue_tile(ch, when):
            t = Signal(tile)
            m.d.comb += [t.m0.eq(ch.m0), t.n0.eq(ch.n0), t.rows.eq(ch.rows), t.cols.eq(ch.cols),
                         tiles_q.w_data.eq(t), tiles_q.w_en.eq(when)]

        final_res = Signal()      # the result row at the array's output belongs to a final chunk
        res_known = Signal()      # ... and the controller knows which chunk it belongs to
        res_m = Signal(range(TM + 1))
        if os_:
            # -- feeder: one k-slice per cycle from the filled bank into the array --------------
            fd = Signal(chunk)
            fd_busy, fd_next = Signal(), Signal()
            fd_k = Signal(range(KC + 1))
            for i in range(R):
                m.d.comb += ops.payload.a[i].eq(Mux(i < fd.rows, lane_element(lanes_a, i, fd.bank, fd_k), 0))
            for j in range(C):
                m.d.comb += ops.payload.b[j].eq(Mux(j < fd.cols, lane_element(lanes_b, j, fd.bank, fd_k), 0))
            slice_last = fd_k == fd.klen - 1
            tile_end = fd.last & slice_last
            # a tile's last slice also needs room to queue the tile for the writer
            m.d.comb += [ops.valid.eq(fd_busy & (~tile_end | tiles_q.w_rdy)), ops.payload.last.eq(tile_end)]
            m.d.comb += [release.eq(op_fire & slice_last), fd_next.eq(op_fire & slice_last),
                         filled_q.r_en.eq(filled_q.r_rdy & (~fd_busy | fd_next))]
            queue_tile(fd, op_fire & tile_end)
            with m.If(op_fire):
                with m.If(slice_last):
                    m.d.sync += [fd_busy.eq(0), self.macs.eq(self.macs + fd.rows * fd.cols * fd.klen)]
                with m.Else():
                    m.d.sync += fd_k.eq(fd_k + 1)
            with m.If(filled_q.r_en):  # after the block above: taking the next chunk wins
                m.d.sync += [fd.eq(filled_q.r_data), fd_busy.eq(1), fd_k.eq(0)]
            m.d.comb += [front_idle.eq(~fd_busy & ~filled_q.r_rdy), final_res.eq(1), res_known.eq(1)]
        else:
            # -- weight feeder: a chunk's B tile into the array's idle weight bank ----------------
            m.submodules.weighted_q = weighted_q = fifo.SyncFIFOBuffered(width=chunk.size, depth=2)
            wf = Signal(chunk)
            wf_busy, wf_next = Signal(), Signal()
            wf_k = Signal(range(R))
            wts = array.weights
            for j in range(C):
                m.d.comb += wts.payload[j].eq(Mux((j < wf.cols) & (wf_k < wf.klen),
                                                  lane_element(lanes_b, j, wf.bank, wf_k), 0))
            wf_last = wf_k == R - 1
            m.d.comb += [wts.valid.eq(wf_busy & (~wf_last | weighted_q.w_rdy)),
                         wf_next.eq(wts.valid & wts.ready & wf_last),
                         weighted_q.w_data.eq(wf), weighted_q.w_en.eq(wf_next),
                         filled_q.r_en.eq(filled_q.r_rdy & (~wf_busy | wf_next))]
            with m.If(wts.valid & wts.ready):
                m.d.sync += wf_k.eq(Mux(wf_last, 0, wf_k + 1))
                with m.If(wf_last):
                    m.d.sync += wf_busy.eq(0)
            with m.If(filled_q.r_en):
                m.d.sync += [wf.eq(filled_q.r_data), wf_busy.eq(1), wf_k.eq(0)]

            # -- row feeder: A rows with their partial sums ---------------------------------------
            acc_layout = data.ArrayLayout(mac.acc_shape, C)
            acc = Memory(shape=acc_layout, depth=TM, init=[])
            m.submodules.acc_buf = acc
            m.submodules.final_q = final_q = fifo.SyncFIFOBuffered(width=1, depth=R + C + 2)
            rf = Signal(chunk)
            rf_busy, rf_next = Signal(), Signal()
            rf_m = Signal(range(TM + 1))
            in_flight = Signal(range(TM + R + C + 4))
            a_words = []
            for bnk in range(2):
                rp = lanes_a[bnk][0].read_port(domain="comb")
                m.d.comb += rp.addr.eq(rf_m)
                a_words.append(rp.data)
            a_row = Mux(rf.bank, a_words[1], a_words[0])
            for k in range(R):
                m.d.comb += ops.payload.a[k].eq(Mux(k < rf.klen, a_row.word_select(k, 8 * eb), 0))
            acc_rd = acc.read_port(domain="comb")
            m.d.comb += [acc_rd.addr.eq(rf_m), ops.payload.psum.eq(Mux(rf.first, 0, acc_rd.data))]
            row_last = rf_m == rf.rows - 1
            # row m of a later chunk reads the sum row m of the previous chunk leaves behind
            hazard_free = rf.first | (in_flight < rf.rows)
            starts = rf_m == 0
            room = ~starts | (final_q.w_rdy & (~rf.last | tiles_q.w_rdy))
            m.d.comb += [ops.valid.eq(rf_busy & hazard_free & room), ops.payload.last.eq(row_last),
                         release.eq(op_fire & row_last), rf_next.eq(op_fire & row_last),
                         weighted_q.r_en.eq(weighted_q.r_rdy & (~rf_busy | rf_next)),
                         final_q.w_data.eq(rf.last), final_q.w_en.eq(op_fire & starts)]
            queue_tile(rf, op_fire & starts & rf.last)
            res_fire = array.results.valid & array.results.ready
            m.d.sync += in_flight.eq(in_flight + op_fire - res_fire)
            with m.If(op_fire):
                with m.If(row_last):
                    m.d.sync += [rf_busy.eq(0), self.macs.eq(self.macs + rf.rows * rf.cols * rf.klen)]
                with m.Else():
                    m.d.sync += rf_m.eq(rf_m + 1)
            with m.If(weighted_q.r_en):
                m.d.sync += [rf.eq(weighted_q.r_data), rf_busy.eq(1), rf_m.eq(0)]
            m.d.comb += [front_idle.eq(~rf_busy & ~weighted_q.r_rdy & ~wf_busy & ~filled_q.r_rdy),
                         final_res.eq(final_q.r_data), res_known.eq(final_q.r_rdy)]
            # non-final chunks: the result row goes back to the accumulator buffer
            acc_wp = acc.write_port()
            m.d.comb += [acc_wp.addr.eq(res_m), acc_wp.data.eq(array.results.payload.c),
                         acc_wp.en.eq(res_fire & ~final_res), final_q.r_en.eq(res_fire & array.results.payload.last)]
            with m.If(res_fire):
                m.d.sync += res_m.eq(Mux(array.results.payload.last, 0, res_m + 1))

        # -- result router: rows of final chunks (inside M) to the writer ------------------------
        # Output-stationary arrays emit R rows per tile; rows past the M edge are dropped.
        rt = Signal(tile)
        have_tile = Signal()
        rt_row = Signal(range(TM + 1))
        m.d.comb += tiles_q.r_en.eq(~have_tile & tiles_q.r_rdy)
        with m.If(tiles_q.r_en):
            m.d.sync += [rt.eq(tiles_q.r_data), have_tile.eq(1), rt_row.eq(0)]
        row_q_depth = 2 * R if os_ else 2 * max(R, C)
        m.submodules.rows_q = rows_q = fifo.SyncFIFOBuffered(width=8 * ab * C, depth=row_q_depth)
        cmd_layout = data.StructLayout({"addr": ADDR_BITS, "nbytes": range(C * ab + 1)})
        m.submodules.wcmd_q = wcmd_q = fifo.SyncFIFOBuffered(width=cmd_layout.size, depth=row_q_depth)
        res = array.results
        keep = rt_row < rt.rows
        to_writer = final_res & have_tile
        m.d.comb += res.ready.eq(res_known & (~final_res | (to_writer & (~keep | (rows_q.w_rdy & wcmd_q.w_rdy)))))
        routed = res.valid & res.ready & final_res
        # each accumulator value widened to whole bytes (sign-extended when signed)
        ext = [Signal(signed(8 * ab) if cfg.acc_signed else unsigned(8 * ab), name=f"c_ext{j}") for j in range(C)]
        m.d.comb += [e.eq(res.payload.c[j]) for j, e in enumerate(ext)]
        row_cmd = Signal(cmd_layout)
        m.d.comb += [row_cmd.addr.eq(desc.c_addr + (rt.m0 + rt_row) * desc.ldc + rt.n0 * ab),
                     row_cmd.nbytes.eq(rt.cols * ab),
                     rows_q.w_data.eq(Cat(*ext)), rows_q.w_en.eq(routed & keep),
                     wcmd_q.w_data.eq(row_cmd), wcmd_q.w_en.eq(routed & keep)]
        with m.If(routed):
            m.d.sync += rt_row.eq(rt_row + 1)
            with m.If(res.payload.last):
                m.d.sync += have_tile.eq(0)

        # -- writer: a command per row as soon as the row exists, then its beats -----------------
        row_beats_max = -(-C * ab // W)
        wc, wd = self.mem.wr_cmd, self.mem.wr_data
        wq_cmd = Signal(cmd_layout)
        m.d.comb += wq_cmd.eq(wcmd_q.r_data)
        m.submodules.wlen_q = wlen_q = fifo.SyncFIFOBuffered(width=(C * ab).bit_length(),
                                                              depth=row_q_depth)
        m.d.comb += [wc.valid.eq(wcmd_q.r_rdy & wlen_q.w_rdy), wc.payload.addr.eq(wq_cmd.addr),
                     wc.payload.beats.eq(_ceil_div(wq_cmd.nbytes, W)),
                     wcmd_q.r_en.eq(wc.valid & wc.ready),
                     wlen_q.w_data.eq(wq_cmd.nbytes), wlen_q.w_en.eq(wc.valid & wc.ready)]
        nbytes = wlen_q.r_data
        wr_beat = Signal(range(row_beats_max + 1))
        beat_lo = wr_beat * W
        strobe = Signal(W)
        for byte in range(W):
            m.d.comb += strobe[byte].eq(beat_lo + byte < nbytes)
        flat = Signal(8 * W * row_beats_max)
        m.d.comb += flat.eq(rows_q.r_data)
        last_beat = wr_beat == _ceil_div(nbytes, W) - 1
        m.d.comb += [wd.valid.eq(wlen_q.r_rdy & rows_q.r_rdy), wd.payload.data.eq(flat.word_select(wr_beat, 8 * W)),
                     wd.payload.strobe.eq(strobe)]
        row_written = wd.valid & wd.ready & last_beat
        m.d.comb += [rows_q.r_en.eq(row_written), wlen_q.r_en.eq(row_written)]
        with m.If(wd.valid & wd.ready):
            m.d.sync += [self.bytes_written.eq(self.bytes_written + Mux(last_beat, nbytes - beat_lo, W)),
                         wr_beat.eq(Mux(last_beat, 0, wr_beat + 1))]
            with m.If(last_beat):
                m.d.sync += rows_left.eq(rows_left - 1)

        m.d.comb += self.done.eq(0)
        with m.If(running & ~seq_active & (rows_left == 0)):
            m.d.sync += running.eq(0)
            m.d.comb += self.done.eq(1)
        return m
