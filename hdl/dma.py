"""The chip's DMA engine: operand blocks from DRAM into the cores' SRAM slices, and
finished output blocks from the slices back to DRAM.

A *job* is one step's worth of transfers, in two phases, one after the other:

1. **write-back** of a finished output block: one DRAM write per (output row, column
   group) segment, i.e. the part of the row one core computed, read from that core's
   accumulator memory; strobes mask the end of the row;
2. **load** of the next step's operands: one DRAM read per A row (the K-block of it),
   then one per B column; each beat is written, in the cycle it arrives, into every slice
   that needs it (an A row into every core of its row group, a B column into every core
   of its column group: a multicast write, each slice having its own write port).

A generator issues one segment per cycle on the memory's command stream and hands the
segment to the data side through a queue; the data side moves the beats in order.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .accelerator import DIM_BITS, memory_port_signature
from .queue import Queue

ADDR = 40            # DRAM byte addresses on the chip's port
COUNT_BITS = 48
IDLE, WRITE_BACK, WB_DRAIN, LOAD, LD_DRAIN = range(5)


def descriptor_layout() -> data.StructLayout:
    """A GEMM on the chip: ``count`` independent products C = A @ B of M x N x K (A row-
    major, B column-major, C row-major, product p at ``a_addr + p * a_step`` ...), cut into
    blocks of ``mb`` x ``nb`` x ``kb``, each block split over a grid of ``gp`` products x
    ``gm`` row groups (``mc`` rows each) x ``gn`` column groups (``nc`` columns each) of
    cores."""
    return data.StructLayout({
        "m": 24, "n": 24, "k": 24, "count": 24,
        "a_addr": ADDR, "lda": ADDR, "a_step": ADDR,
        "b_addr": ADDR, "ldb": ADDR, "b_step": ADDR,
        "c_addr": ADDR, "ldc": ADDR, "c_step": ADDR,
        "mb": DIM_BITS, "nb": DIM_BITS, "kb": DIM_BITS, "mc": DIM_BITS, "nc": DIM_BITS,
        "gp": DIM_BITS, "gm": DIM_BITS, "gn": DIM_BITS,
    })


def job_layout() -> data.StructLayout:
    """One step's DMA work: write back an output block (``wb``) and/or load a step's
    operands (``ld``); origins, extents and buffers."""
    return data.StructLayout({
        "wb": 1, "wb_p": 24, "wb_m0": 24, "wb_n0": 24, "wb_mlen": DIM_BITS, "wb_nlen": DIM_BITS, "wb_buf": 1,
        "ld": 1, "ld_p": 24, "ld_m0": 24, "ld_n0": 24, "ld_k0": 24, "ld_mlen": DIM_BITS, "ld_nlen": DIM_BITS,
        "ld_klen": DIM_BITS, "ld_buf": 1,
    })


class ChipDma(wiring.Component):
    """DMA between the DRAM port and the ``cores`` SRAM slices.

    Parameters
    ----------
    cores : int
    word_bytes : int
        DRAM beat, in bytes: ``banks`` slice words (core beats) of ``core_beat`` bytes.
    core_beat : int
        A slice word (the cores' beat), in bytes.
    input_bytes, acc_bytes : int
        Bytes of one operand element and of one accumulator value.
    op_half, acc_half : int
        Words of one operand buffer and of one accumulator buffer in a slice.
    queue_depth : int
        Segments between the command side and the data side: more than the DRAM's latency
        in cycles, so that issuing never waits on the queue in a way that delays a beat.

    Attributes
    ----------
    mem : Out(memory_port_signature(word_bytes, ADDR))
    desc : In(descriptor_layout())
        The GEMM being run (held by the controller).
    start : In(1), job : In(job_layout())
        A job starts when ``start`` is high while ``busy`` is low.
    busy : Out(1)
    core_q<c>, core_i<c>, core_j<c>, core_on<c> : In
        Core c's place in the grid (product, row group, column group; ``on`` if used).
    op_addr<c>, op_words<c>, op_data<c>, op_en<c> : Out
        Operand writes into slice c: ``op_words`` consecutive words from word ``op_addr``.
    acc_addr<c> : Out, acc_data<c> : In
        Accumulator reads from slice c: a beat's worth of words from ``acc_addr``
        (combinational).
    bytes_read, bytes_written, sram_written, sram_read : Out(48)
        Since the last ``clear``: DRAM bytes read (whole beats) and written (strobed bytes),
        bytes written into slices (a multicast beat counts once per slice) and read from
        them.

    Timing contract (no stalls on the port): the write-back's segments issue one per
    cycle from the cycle after ``start``; its data beats follow from the cycle after
    their command, one per cycle when the memory takes them; the load's segments issue one
    per cycle from the second cycle after the write-back's last beat was taken (the first
    after ``start`` if there is no write-back); its beats are written into the slices the
    cycle they arrive; ``busy`` falls the cycle after the load's last beat (or the
    write-back's, if there is no load).
    """

    def __init__(self, *, cores: int, word_bytes: int, core_beat: int, input_bytes: int, acc_bytes: int,
                 op_half: int, acc_half: int, queue_depth: int):
        self._n, self._wd, self._eb, self._ab, self._w = cores, word_bytes, input_bytes, acc_bytes, core_beat
        self._op_half, self._acc_half, self._queue_depth = op_half, acc_half, queue_depth
        ports = {
            "mem": Out(memory_port_signature(word_bytes, ADDR)),
            "desc": In(descriptor_layout()), "start": In(1), "job": In(job_layout()), "busy": Out(1),
            "clear": In(1),
            **{name: Out(COUNT_BITS) for name in ("bytes_read", "bytes_written", "sram_written", "sram_read")},
        }
        for c in range(cores):
            ports.update({f"core_q{c}": In(DIM_BITS), f"core_i{c}": In(DIM_BITS), f"core_j{c}": In(DIM_BITS),
                          f"core_on{c}": In(1), f"op_addr{c}": Out(range(2 * op_half)),
                          f"op_words{c}": Out(range(word_bytes // core_beat + 1)),
                          f"op_data{c}": Out(8 * word_bytes), f"op_en{c}": Out(1),
                          f"acc_addr{c}": Out(range(2 * acc_half)), f"acc_data{c}": In(8 * word_bytes)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        N, Wd, eb, ab, W = self._n, self._wd, self._eb, self._ab, self._w
        lanes = Wd // W                    # slice words a DRAM beat spans
        d = self.desc
        job = Signal(job_layout())
        wshift = (Wd - 1).bit_length()

        def beats(nbytes):                  # DRAM beats of a segment
            return (nbytes + (Wd - 1)) >> wshift if Wd > 1 else nbytes

        def words(nbytes):                  # slice words of a segment
            return (nbytes + (W - 1)) >> (W - 1).bit_length() if W > 1 else nbytes

        phase = Signal(range(5))
        m.d.comb += self.busy.eq(phase != IDLE)
        # generator position: product q of the group, row r (row group i, local row lr),
        # column group j (write-back); during the load the B columns reuse r / i / lr.
        q, r, i, lr, j = (Signal(DIM_BITS, name=f"gen_{n}") for n in ("q", "r", "i", "lr", "j"))
        on_b = Signal()

        seg = data.StructLayout({"beats": DIM_BITS, "word": 24, "words": DIM_BITS, "nbytes": 24, "core": DIM_BITS,
                                 "mask": N})
        m.submodules.wq = wq = Queue(seg, self._queue_depth)
        m.submodules.rq = rq = Queue(seg, self._queue_depth)

        # -- write-back segments ------------------------------------------------------------------
        p_wb = job.wb_p + q
        col0 = Signal(24)
        ncols = Signal(DIM_BITS + 1)        # columns of column group j in this block
        m.d.comb += [col0.eq(j * d.nc),
                     ncols.eq(Mux(job.wb_nlen > col0, Mux(job.wb_nlen - col0 < d.nc, job.wb_nlen - col0, d.nc), 0))]
        pitch_c = Signal(DIM_BITS)
        m.d.comb += pitch_c.eq(words(d.nc * ab))
        wc = self.mem.wr_cmd
        wseg = Signal(seg)
        m.d.comb += [wseg.nbytes.eq(ncols * ab), wseg.beats.eq(beats(ncols * ab)), wseg.words.eq(words(ncols * ab)),
                     wseg.core.eq(q * d.gm * d.gn + i * d.gn + j),
                     wseg.word.eq(job.wb_buf * self._acc_half + lr * pitch_c),
                     wc.payload.addr.eq(d.c_addr + p_wb * d.c_step + (job.wb_m0 + r) * d.ldc + (job.wb_n0 + col0) * ab),
                     wc.payload.beats.eq(wseg.beats)]
        m.d.comb += [wc.valid.eq((phase == WRITE_BACK) & ~wq.full),
                     wq.push.eq(wc.valid & wc.ready), wq.push_data.eq(wseg)]

        # -- load segments --------------------------------------------------------------------------
        p_ld = job.ld_p + q
        pitch_k = Signal(DIM_BITS)
        m.d.comb += pitch_k.eq(words(job.ld_klen * eb))
        rc = self.mem.rd_cmd
        rseg = Signal(seg)
        a_row = d.a_addr + p_ld * d.a_step + (job.ld_m0 + r) * d.lda + job.ld_k0 * eb
        b_col = d.b_addr + p_ld * d.b_step + (job.ld_n0 + r) * d.ldb + job.ld_k0 * eb
        m.d.comb += [rseg.beats.eq(beats(job.ld_klen * eb)), rseg.words.eq(pitch_k),
                     rseg.word.eq(job.ld_buf * self._op_half + Mux(on_b, d.mc * pitch_k, 0) + lr * pitch_k),
                     rc.payload.addr.eq(Mux(on_b, b_col, a_row)), rc.payload.beats.eq(rseg.beats)]
        for c in range(N):
            cq, ci, cj, on = (getattr(self, f"core_{x}{c}") for x in ("q", "i", "j", "on"))
            m.d.comb += rseg.mask[c].eq(on & (cq == q) & Mux(on_b, cj == i, ci == i))
        m.d.comb += [rc.valid.eq((phase == LOAD) & ~rq.full),
                     rq.push.eq(rc.valid & rc.ready), rq.push_data.eq(rseg)]

        # -- the generator ----------------------------------------------------------------------
        def next_row(rows, group, at_end):
            """Row r + 1 (with its group and local row), or ``at_end`` past the last row."""
            with m.If(r + 1 >= rows):
                m.d.sync += [r.eq(0), i.eq(0), lr.eq(0)]
                at_end()
            with m.Else():
                m.d.sync += r.eq(r + 1)
                with m.If(lr + 1 >= group):
                    m.d.sync += [lr.eq(0), i.eq(i + 1)]
                with m.Else():
                    m.d.sync += lr.eq(lr + 1)

        def next_q(done_phase, p0):
            def go():
                with m.If((q + 1 >= d.gp) | (p0 + q + 1 >= d.count)):
                    m.d.sync += [q.eq(0), phase.eq(done_phase)]
                with m.Else():
                    m.d.sync += q.eq(q + 1)
            return go

        w_busy, r_busy = Signal(), Signal()
        # One segment a cycle, no bubbles: each move looks one position ahead (the next column
        # group holds columns, the next product exists), so that the last segment of a row,
        # of a product, of the job moves straight on.
        next_group_empty = (j + 1 >= d.gn) | ((j + 1) * d.nc >= job.wb_nlen)
        with m.Switch(phase):
            with m.Case(IDLE):
                with m.If(self.start):
                    m.d.sync += [job.eq(self.job), q.eq(0), r.eq(0), i.eq(0), lr.eq(0), j.eq(0), on_b.eq(0),
                                 phase.eq(Mux(self.job.wb, WRITE_BACK, Mux(self.job.ld, LOAD, IDLE)))]
            with m.Case(WRITE_BACK):
                with m.If(wq.push):
                    with m.If(next_group_empty):
                        m.d.sync += j.eq(0)
                        next_row(job.wb_mlen, d.mc, next_q(WB_DRAIN, job.wb_p))
                    with m.Else():
                        m.d.sync += j.eq(j + 1)
            with m.Case(WB_DRAIN):
                with m.If(~wq.nonempty & ~w_busy):
                    m.d.sync += phase.eq(Mux(job.ld, LOAD, IDLE))
            with m.Case(LOAD):
                with m.If(rq.push):
                    def after_rows():
                        with m.If(~on_b):
                            m.d.sync += on_b.eq(1)
                        with m.Else():
                            m.d.sync += on_b.eq(0)
                            next_q(LD_DRAIN, job.ld_p)()
                    next_row(Mux(on_b, job.ld_nlen, job.ld_mlen), Mux(on_b, d.nc, d.mc), after_rows)
            with m.Case(LD_DRAIN):
                with m.If(~rq.nonempty & ~r_busy):
                    m.d.sync += phase.eq(IDLE)

        # -- data side: write-back beats from the accumulator memory of the segment's core --------
        wcur = Signal(seg)
        wk = Signal(DIM_BITS)
        wdp = self.mem.wr_data
        w_last = wk == wcur.beats - 1
        w_take = wdp.valid & wdp.ready
        m.d.comb += wq.pop.eq(wq.nonempty & (~w_busy | (w_take & w_last)))
        with m.If(w_take):
            m.d.sync += wk.eq(wk + 1)
            with m.If(w_last):
                m.d.sync += w_busy.eq(0)
        with m.If(wq.pop):                               # after the block above: the next segment wins
            m.d.sync += [wcur.eq(wq.head), w_busy.eq(1), wk.eq(0)]
        word_data = Signal(8 * Wd)
        for c in range(N):
            m.d.comb += getattr(self, f"acc_addr{c}").eq(wcur.word + wk * lanes)
            with m.If(wcur.core == c):
                m.d.comb += word_data.eq(getattr(self, f"acc_data{c}"))
        left = Signal(24)
        m.d.comb += left.eq(wcur.nbytes - (wk << wshift))
        for b in range(Wd):
            m.d.comb += wdp.payload.strobe[b].eq(b < left)
        m.d.comb += [wdp.valid.eq(w_busy), wdp.payload.data.eq(word_data)]

        # -- data side: load beats into every slice of the segment's mask ----------------------
        rcur = Signal(seg)
        rk = Signal(DIM_BITS)
        rdp = self.mem.rd_data
        r_last = rk == rcur.beats - 1
        r_take = rdp.valid & rdp.ready
        m.d.comb += [rdp.ready.eq(r_busy), rq.pop.eq(rq.nonempty & (~r_busy | (r_take & r_last)))]
        with m.If(r_take):
            m.d.sync += rk.eq(rk + 1)
            with m.If(r_last):
                m.d.sync += r_busy.eq(0)
        with m.If(rq.pop):
            m.d.sync += [rcur.eq(rq.head), r_busy.eq(1), rk.eq(0)]
        r_words = Signal(range(lanes + 1))  # slice words this beat fills (fewer at a row's end)
        m.d.comb += r_words.eq(Mux(rcur.words - rk * lanes < lanes, rcur.words - rk * lanes, lanes))
        for c in range(N):
            m.d.comb += [getattr(self, f"op_addr{c}").eq(rcur.word + rk * lanes), getattr(self, f"op_data{c}").eq(rdp.payload),
                         getattr(self, f"op_words{c}").eq(r_words), getattr(self, f"op_en{c}").eq(r_take & rcur.mask[c])]
        w_words = Signal(range(lanes + 1))
        m.d.comb += w_words.eq(Mux(wcur.words - wk * lanes < lanes, wcur.words - wk * lanes, lanes))

        # -- counters ------------------------------------------------------------------------------
        copies = sum(rcur.mask[c] for c in range(N))
        strobed = sum(wdp.payload.strobe[b] for b in range(Wd))
        with m.If(self.clear):
            m.d.sync += [self.bytes_read.eq(0), self.bytes_written.eq(0), self.sram_written.eq(0),
                         self.sram_read.eq(0)]
        with m.Else():
            with m.If(r_take):
                m.d.sync += [self.bytes_read.eq(self.bytes_read + Wd),
                             self.sram_written.eq(self.sram_written + copies * r_words * W)]
            with m.If(w_take):
                m.d.sync += [self.bytes_written.eq(self.bytes_written + strobed),
                             self.sram_read.eq(self.sram_read + w_words * W)]
        return m
