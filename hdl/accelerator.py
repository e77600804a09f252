"""Output-stationary accelerator core: operand buffers, an external memory port and a
controller that runs a whole tiled GEMM (work in progress toward the complete core).

Memory layout of a GEMM descriptor (byte addresses, strides in bytes):

* A is row-major: A[m, k] at ``a_addr + m * lda + k * in_bytes``;
* B is column-major (B^T row-major): B[k, n] at ``b_addr + n * ldb + k * in_bytes``;
* C is row-major: C[m, n] at ``c_addr + m * ldc + n * acc_bytes``.

So every operand row of a tile (A row m, B column n, over a chunk of K) is one contiguous
burst. The output is cut into rows x cols tiles (M outer, N inner), K into chunks of at
most ``k_chunk``. A *loader* issues one read burst per valid A row and B column of a
chunk into one of two buffer banks (double buffering); a *feeder* streams the other bank
into the array, one k-slice per cycle, raising ``last`` on the final chunk of a tile (the
PEs keep accumulating across chunks); a *writer* stores each finished row of the tile
with byte strobes that mask the N edge. Rows and columns past the M and N edges are fed
as zeros and never written.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .array import OutputStationaryArray
from .mac import IntegerMac

ADDR_BITS = 32
DIM_BITS = 16
COUNTER_BITS = 48


def descriptor_layout() -> data.StructLayout:
    return data.StructLayout({
        "m": DIM_BITS, "n": DIM_BITS, "k": DIM_BITS,
        "a_addr": ADDR_BITS, "lda": ADDR_BITS,
        "b_addr": ADDR_BITS, "ldb": ADDR_BITS,
        "c_addr": ADDR_BITS, "ldc": ADDR_BITS,
    })


def memory_port_signature(beat_bytes: int) -> wiring.Signature:
    """The accelerator's side of the external memory port (it is the requester).

    Reads: a command {addr, beats} is answered by ``beats`` data beats, in order, beat j
    holding the bytes at addr + j * beat_bytes (addresses need no alignment). Writes: a
    command {addr, beats} followed by that many beats with a byte strobe each.
    """
    cmd = data.StructLayout({"addr": ADDR_BITS, "beats": DIM_BITS})
    return wiring.Signature({
        "rd_cmd": Out(stream.Signature(cmd)),
        "rd_data": In(stream.Signature(8 * beat_bytes)),
        "wr_cmd": Out(stream.Signature(cmd)),
        "wr_data": Out(stream.Signature(data.StructLayout({"data": 8 * beat_bytes, "strobe": beat_bytes}))),
    })


def _ceil_div(x, d: int):
    return (x + (d - 1)) // d if d > 1 else x


class OSAcceleratorCore(wiring.Component):
    """An output-stationary array with double-buffered operand buffers, a memory port and a
    tiled-GEMM controller.

    Parameters
    ----------
    config : AcceleratorConfig
        Array size and arithmetic; must be output-stationary.
    beat_bytes : int
        Width of one memory data beat (a power of two, >= the input element size).
    k_chunk : int
        K elements per buffered chunk (a multiple of beat_bytes / element size).

    Attributes
    ----------
    cmd : In(stream.Signature(descriptor_layout()))
        GEMM descriptors; one runs at a time.
    mem : Out(memory_port_signature(beat_bytes))
    done : Out(1)
        High for one cycle when a GEMM's last result is written.
    cycles, busy_cycles, stall_cycles, macs, bytes_read, bytes_written : Out(48)
        Performance counters of the last (or running) GEMM: cycles from accepting the
        descriptor to done; cycles the array accepted a k-slice; cycles the feeder waited
        for a buffer bank still loading; useful multiply-accumulates; bytes moved.
    """

    def __init__(self, config: AcceleratorConfig, *, beat_bytes: int = 16, k_chunk: int = 64):
        if not isinstance(config, AcceleratorConfig) or config.dataflow != "os":
            raise ValueError(f"config must be an output-stationary AcceleratorConfig, not {config!r}")
        eb = config.input_dtype.bits // 8
        if beat_bytes not in (2, 4, 8, 16, 32, 64) or beat_bytes < eb:
            raise ValueError(f"beat_bytes must be a power of two in 2..64 and >= {eb}, not {beat_bytes!r}")
        per_beat = beat_bytes // eb
        if isinstance(k_chunk, bool) or not isinstance(k_chunk, int) or k_chunk < per_beat or k_chunk % per_beat:
            raise ValueError(f"k_chunk must be a positive multiple of {per_beat}, not {k_chunk!r}")
        self._config, self._beat, self._k_chunk = config, beat_bytes, k_chunk
        super().__init__({
            "cmd": In(stream.Signature(descriptor_layout())),
            "mem": Out(memory_port_signature(beat_bytes)),
            "done": Out(1),
            **{name: Out(COUNTER_BITS) for name in
               ("cycles", "busy_cycles", "stall_cycles", "macs", "bytes_read", "bytes_written")},
        })

    def elaborate(self, platform):
        m = Module()
        cfg, W, KC = self._config, self._beat, self._k_chunk
        R, C = cfg.rows, cfg.cols
        eb = cfg.input_dtype.bits // 8
        ab = (cfg.acc_bits + 7) // 8
        E = W // eb                       # elements per beat
        depth = KC // E                   # buffer words per lane
        mac = IntegerMac.from_config(cfg)
        m.submodules.array = array = OutputStationaryArray(rows=R, cols=C, mac=mac)

        desc = Signal(descriptor_layout())
        running = Signal()
        m.d.comb += self.cmd.ready.eq(~running)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [desc.eq(self.cmd.payload), running.eq(1)]
            m.d.sync += [getattr(self, c).eq(0) for c in
                         ("cycles", "busy_cycles", "stall_cycles", "macs", "bytes_read", "bytes_written")]
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        # -- chunk sequencer: (m0, n0, k0) in tile order, one chunk descriptor at a time --------
        chunk = data.StructLayout({"m0": DIM_BITS, "n0": DIM_BITS, "k0": DIM_BITS, "klen": range(KC + 1),
                                   "rows": range(R + 1), "cols": range(C + 1), "last": 1, "bank": 1})
        seq_m0, seq_n0, seq_k0 = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        seq_bank = Signal()
        seq_active = Signal()
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [seq_m0.eq(0), seq_n0.eq(0), seq_k0.eq(0), seq_active.eq(1)]
        rem_m = desc.m - seq_m0
        rem_n = desc.n - seq_n0
        rem_k = desc.k - seq_k0
        cur = Signal(chunk)
        m.d.comb += [
            cur.m0.eq(seq_m0), cur.n0.eq(seq_n0), cur.k0.eq(seq_k0), cur.bank.eq(seq_bank),
            cur.klen.eq(Mux(rem_k > KC, KC, rem_k)),
            cur.rows.eq(Mux(rem_m > R, R, rem_m)),
            cur.cols.eq(Mux(rem_n > C, C, rem_n)),
            cur.last.eq(rem_k <= KC),
        ]
        # Two banks: the loader may start a chunk only into a bank the feeder has released.
        load_start = Signal()     # the loader takes `cur`
        with m.If(load_start):
            m.d.sync += seq_bank.eq(~seq_bank)
            with m.If(cur.last):
                m.d.sync += seq_k0.eq(0)
                with m.If(rem_n <= C):
                    m.d.sync += seq_n0.eq(0)
                    with m.If(rem_m <= R):
                        m.d.sync += seq_active.eq(0)
                    with m.Else():
                        m.d.sync += seq_m0.eq(seq_m0 + R)
                with m.Else():
                    m.d.sync += seq_n0.eq(seq_n0 + C)
            with m.Else():
                m.d.sync += seq_k0.eq(seq_k0 + KC)

        # Two banks: the receiver fills a chunk only into a bank the feeder has released.
        free_banks = Signal(range(3), init=2)
        feed_release = Signal()   # the feeder finished a chunk
        rx_take = Signal()        # the receiver started a chunk

        # -- buffers: one memory per array row (A) and column (B) per bank ----------------------
        lanes_a = [[Memory(shape=8 * W, depth=depth, init=[]) for _ in range(R)] for _ in range(2)]
        lanes_b = [[Memory(shape=8 * W, depth=depth, init=[]) for _ in range(C)] for _ in range(2)]
        for bnk in range(2):
            for i, mem in enumerate(lanes_a[bnk]):
                m.submodules[f"buf_a{bnk}_{i}"] = mem
            for j, mem in enumerate(lanes_b[bnk]):
                m.submodules[f"buf_b{bnk}_{j}"] = mem

        # -- loader: one read burst per valid A row, then per valid B column --------------------
        # The receiver follows the same order through a FIFO of chunk descriptors.
        m.submodules.loaded_q = loaded_q = fifo.SyncFIFOBuffered(width=chunk.size, depth=4)
        ld = Signal(chunk)
        ld_busy = Signal()
        ld_lane = Signal(range(R + C + 1))
        ld_is_b = Signal()
        # Reads go out as early as the command queue allows (hiding memory latency); the
        # receiver holds the data until the chunk's bank is free.
        m.d.comb += load_start.eq(seq_active & ~ld_busy & loaded_q.w_rdy)
        with m.If(load_start):
            m.d.sync += [ld.eq(cur), ld_busy.eq(1), ld_lane.eq(0), ld_is_b.eq(0)]
        m.d.comb += [loaded_q.w_data.eq(cur), loaded_q.w_en.eq(load_start)]
        beats_per_lane = _ceil_div(ld.klen * eb, W)
        lane_limit = Mux(ld_is_b, ld.cols, ld.rows)
        rd = self.mem.rd_cmd
        a_addr = desc.a_addr + (ld.m0 + ld_lane) * desc.lda + ld.k0 * eb
        b_addr = desc.b_addr + (ld.n0 + ld_lane) * desc.ldb + ld.k0 * eb
        m.d.comb += [rd.payload.addr.eq(Mux(ld_is_b, b_addr, a_addr)), rd.payload.beats.eq(beats_per_lane),
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
        rx_busy, rx_is_b = Signal(), Signal()
        rx_lane = Signal(range(R + C + 1))
        rx_word = Signal(range(depth + 1))
        rx_done = Signal()
        m.submodules.filled_q = filled_q = fifo.SyncFIFOBuffered(width=chunk.size, depth=2)
        rx_limit = Mux(rx_is_b, rx.cols, rx.rows)
        rx_beats = _ceil_div(rx.klen * eb, W)
        rx_start = Signal()
        m.d.comb += [rx_start.eq(~rx_busy & loaded_q.r_rdy & filled_q.w_rdy & (free_banks != 0)),
                     loaded_q.r_en.eq(rx_start), rx_take.eq(rx_start)]
        m.d.sync += free_banks.eq(free_banks - rx_take + feed_release)
        with m.If(rx_start):
            m.d.sync += [rx.eq(loaded_q.r_data), rx_busy.eq(1), rx_lane.eq(0), rx_word.eq(0), rx_is_b.eq(0)]
        rdd = self.mem.rd_data
        lane_done = rx_lane >= rx_limit
        m.d.comb += rdd.ready.eq(rx_busy & ~lane_done)
        beat_fire = rdd.valid & rdd.ready
        for bnk in range(2):
            for i, mem in enumerate(lanes_a[bnk]):
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(rx_word), wp.data.eq(rdd.payload),
                             wp.en.eq(beat_fire & (rx.bank == bnk) & ~rx_is_b & (rx_lane == i))]
            for j, mem in enumerate(lanes_b[bnk]):
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(rx_word), wp.data.eq(rdd.payload),
                             wp.en.eq(beat_fire & (rx.bank == bnk) & rx_is_b & (rx_lane == j))]
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

        # -- feeder: one k-slice per cycle from the filled bank into the array ------------------
        tile = data.StructLayout({"m0": DIM_BITS, "n0": DIM_BITS, "rows": range(R + 1), "cols": range(C + 1)})
        m.submodules.tiles_q = tiles_q = fifo.SyncFIFOBuffered(width=tile.size, depth=4)
        fd = Signal(chunk)
        fd_busy = Signal()
        fd_k = Signal(range(KC + 1))
        fd_next = Signal()        # the current chunk's final slice goes into the array now
        ops = array.operands
        word = fd_k // E if E > 1 else fd_k
        sub = fd_k % E if E > 1 else 0
        def lane_element(lanes, index):
            """Element ``fd_k`` of lane ``index`` in the feeder's bank."""
            words = []
            for bnk in range(2):
                rp = lanes[bnk][index].read_port(domain="comb")
                m.d.comb += rp.addr.eq(word)
                words.append(rp.data)
            return Mux(fd.bank, words[1], words[0]).word_select(sub, 8 * eb)

        for i in range(R):
            m.d.comb += ops.payload.a[i].eq(Mux(i < fd.rows, lane_element(lanes_a, i), 0))
        for j in range(C):
            m.d.comb += ops.payload.b[j].eq(Mux(j < fd.cols, lane_element(lanes_b, j), 0))
        slice_last = fd_k == fd.klen - 1
        # a tile's last slice also needs room to queue the tile for the writer
        m.d.comb += [ops.valid.eq(fd_busy & (~(fd.last & slice_last) | tiles_q.w_rdy)),
                     ops.payload.last.eq(fd.last & slice_last)]
        op_fire = ops.valid & ops.ready
        m.d.comb += [feed_release.eq(op_fire & slice_last), fd_next.eq(op_fire & slice_last),
                     filled_q.r_en.eq(filled_q.r_rdy & (~fd_busy | fd_next))]
        with m.If(op_fire):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
            with m.If(slice_last):
                m.d.sync += [fd_busy.eq(0), self.macs.eq(self.macs + fd.rows * fd.cols * fd.klen)]
            with m.Else():
                m.d.sync += fd_k.eq(fd_k + 1)
        with m.If(filled_q.r_en):  # after the block above: taking the next chunk wins
            m.d.sync += [fd.eq(filled_q.r_data), fd_busy.eq(1), fd_k.eq(0)]
        with m.If(running & ~fd_busy & ~filled_q.r_rdy & (seq_active | ld_busy | rx_busy | loaded_q.r_rdy)):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)

        # -- writer: finished rows of each tile to C -------------------------------------------
        t_in = Signal(tile)
        m.d.comb += [t_in.m0.eq(fd.m0), t_in.n0.eq(fd.n0), t_in.rows.eq(fd.rows), t_in.cols.eq(fd.cols),
                     tiles_q.w_data.eq(t_in), tiles_q.w_en.eq(op_fire & fd.last & slice_last)]
        row_bytes = C * ab
        row_beats_max = -(-row_bytes // W)
        flat = Signal(8 * W * row_beats_max)
        wt = Signal(tile)
        wr_row = Signal(range(R + 1))
        wr_beat = Signal(range(row_beats_max + 1))
        wr_state = Signal(2)      # 0: wait row, 1: command, 2: data
        # Finished rows queue here so that writing them never stalls the array.
        row_layout = data.StructLayout({"c": data.ArrayLayout(mac.acc_shape, C), "last": 1})
        m.submodules.rows_q = rows_q = fifo.SyncFIFOBuffered(width=row_layout.size, depth=2 * R)
        m.d.comb += [rows_q.w_data.eq(array.results.payload), rows_q.w_en.eq(array.results.valid),
                     array.results.ready.eq(rows_q.w_rdy)]
        res_payload = Signal(row_layout)
        m.d.comb += res_payload.eq(rows_q.r_data)
        res = stream.Signature(row_layout).create()
        m.d.comb += [res.valid.eq(rows_q.r_rdy), res.payload.eq(res_payload), rows_q.r_en.eq(res.valid & res.ready)]
        # each accumulator value widened to whole bytes (sign-extended when signed)
        ext = [Signal(signed(8 * ab) if cfg.acc_signed else unsigned(8 * ab), name=f"c_ext{j}") for j in range(C)]
        m.d.comb += [e.eq(res.payload.c[j]) for j, e in enumerate(ext)]
        have_tile = Signal()
        m.d.comb += tiles_q.r_en.eq(~have_tile & tiles_q.r_rdy)
        with m.If(tiles_q.r_en):
            m.d.sync += [wt.eq(tiles_q.r_data), have_tile.eq(1), wr_row.eq(0)]
        m.d.comb += res.ready.eq(have_tile & (wr_state == 0))
        tiles_left = Signal(2 * DIM_BITS)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += tiles_left.eq(_ceil_div(self.cmd.payload.m, R) * _ceil_div(self.cmd.payload.n, C))
        m.d.comb += self.done.eq(0)
        with m.If(res.valid & res.ready):
            m.d.sync += flat.eq(Cat(*ext))
            with m.If(wr_row < wt.rows):
                m.d.sync += [wr_state.eq(1), wr_beat.eq(0)]
            with m.Else():
                m.d.sync += wr_row.eq(wr_row + 1)
            with m.If(res.payload.last & (wr_row >= wt.rows)):
                m.d.sync += [have_tile.eq(0), tiles_left.eq(tiles_left - 1)]
        nbytes = wt.cols * ab
        wc, wd = self.mem.wr_cmd, self.mem.wr_data
        m.d.comb += [wc.valid.eq(wr_state == 1),
                     wc.payload.addr.eq(desc.c_addr + (wt.m0 + wr_row) * desc.ldc + wt.n0 * ab),
                     wc.payload.beats.eq(_ceil_div(nbytes, W))]
        with m.If(wc.valid & wc.ready):
            m.d.sync += wr_state.eq(2)
        beat_lo = wr_beat * W
        strobe = Signal(W)
        for byte in range(W):
            m.d.comb += strobe[byte].eq(beat_lo + byte < nbytes)
        m.d.comb += [wd.valid.eq(wr_state == 2), wd.payload.data.eq(flat.word_select(wr_beat, 8 * W)),
                     wd.payload.strobe.eq(strobe)]
        last_beat = wr_beat == _ceil_div(nbytes, W) - 1
        with m.If(wd.valid & wd.ready):
            m.d.sync += self.bytes_written.eq(self.bytes_written + Mux(last_beat, nbytes - beat_lo, W))
            with m.If(last_beat):
                m.d.sync += [wr_state.eq(0), wr_row.eq(wr_row + 1)]
                with m.If(wr_row == R - 1):
                    m.d.sync += [have_tile.eq(0), tiles_left.eq(tiles_left - 1)]
            with m.Else():
                m.d.sync += wr_beat.eq(wr_beat + 1)
        finished = running & ~seq_active & (tiles_left == 0) & ~have_tile
        with m.If(finished):
            m.d.sync += running.eq(0)
            m.d.comb += self.done.eq(1)
        return m
