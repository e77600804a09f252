"""The chip's DMA: ``C`` channels (a power of two), each with its own DRAM port, moving
operand blocks from DRAM into the cores' SRAM slices and finished output blocks back.

**The grid.** A step's block is split over ``gp`` products x ``gm`` row groups x ``gn``
column groups x ``gk`` K-groups of cores (``gp``, ``gm``, ``gk`` powers of two): core

    c = ((j * gk + kk) * gp + q) * gm + i

computes rows ``i * mc ...`` and columns ``j * nc ...`` of product q over the K-range
``kk * kc ...`` of the block. An *A group* ``a = (kk * gp + q) * gm + i`` (those A rows,
that K-range) goes to every core with ``c % (gk * gp * gm) == a``; a *B group*
``b = (j * gk + kk) * gp + q`` to every core with ``c >> log2(gm) == b``.

**The channels.** Channel ``ch`` moves the A groups with ``a % C == ch`` and the B groups
with ``b % C == ch``; it writes back the outputs of its B groups with ``kk == 0``, adding
the ``gk`` partial sums (the cores ``c + kk * gp * gm``) as it reads them (split-K: the
reduction is in the write path, in the accumulators' width). So a slice's A rows all come
from one channel and its B columns from one other, fixed for a descriptor: the chip
routes each channel to a slice through a mux of ``log2(C) + 1`` (A) or
``log2(cores) + 1`` (B) inputs, not a crossbar.

**A job** is one step's transfers, on every channel at once, in two phases each:

1. **write-back** of the finished output block: one DRAM write per (output row, core
   group) segment; strobes mask the end of the row;
2. **load** of the next step's operands: one DRAM read per A row (its K-range) of the
   channel's A groups, then one per B column of its B groups; each beat is written, in
   the cycle it arrives, into every slice of the group (a multicast write: a slice has a
   write port for A and one for B). A job loads only the operands the next step does
   not share with the current one (``ld_a``, ``ld_b``): a block kept on chip is read
   where it is, from its own buffer (``ld_abuf``, ``ld_bbuf``).

A channel's generator issues one segment per cycle on its memory's command stream,
skipping empty groups without a bubble, and hands each segment to its data side through
a queue; the data side moves the beats in order.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .ports import DIM_BITS, memory_port_signature
from .queue import Queue

ADDR = 40            # DRAM byte addresses on the chip's port
COUNT_BITS = 48
IDLE, WRITE_BACK, WB_DRAIN, LOAD_A, LOAD_B, LD_DRAIN = range(6)
LOG_BITS = 5          # log2 of a grid size (cores < 2**24)


def descriptor_layout() -> data.StructLayout:
    """A GEMM on the chip: ``count`` independent products C = A @ B of M x N x K (A row-
    major, B column-major, C row-major, product p at ``a_addr + p * a_step`` ...), cut into
    blocks of ``mb`` x ``nb`` x ``kb``, each block split over a grid of ``gp`` products x
    ``gm`` row groups (``mc`` rows each) x ``gn`` column groups (``nc`` columns each) x
    ``gk`` K-groups (``kc`` of the block's K each) of cores (``gp``, ``gm`` and ``gk``
    powers of two); the blocks in ``order`` 0 (M-blocks outside N-blocks) or 1 (inside)."""
    return data.StructLayout({
        "m": 24, "n": 24, "k": 24, "count": 24,
        "a_addr": ADDR, "lda": ADDR, "a_step": ADDR,
        "b_addr": ADDR, "ldb": ADDR, "b_step": ADDR,
        "c_addr": ADDR, "ldc": ADDR, "c_step": ADDR,
        "mb": DIM_BITS, "nb": DIM_BITS, "kb": DIM_BITS, "mc": DIM_BITS, "nc": DIM_BITS,
        "gp": DIM_BITS, "gm": DIM_BITS, "gn": DIM_BITS, "gk": DIM_BITS, "kc": DIM_BITS, "order": 1,
    })


def job_layout() -> data.StructLayout:
    """One step's DMA work: write back an output block (``wb``) and/or load a step's
    operands (``ld``: its A block if ``ld_a``, its B block if ``ld_b``); origins, extents
    and buffers."""
    return data.StructLayout({
        "wb": 1, "wb_p": 24, "wb_m0": 24, "wb_n0": 24, "wb_mlen": DIM_BITS, "wb_nlen": DIM_BITS, "wb_buf": 1,
        "ld": 1, "ld_p": 24, "ld_m0": 24, "ld_n0": 24, "ld_k0": 24, "ld_mlen": DIM_BITS, "ld_nlen": DIM_BITS,
        "ld_klen": DIM_BITS, "ld_a": 1, "ld_b": 1, "ld_abuf": 1, "ld_bbuf": 1,
    })



def shares(ch: int, lg_channels: int, fields: list, m: Module) -> list:
    """Channel ``ch``'s part of the groups whose index packs ``fields`` (log2 of each
    field's size as Amaranth values, lowest first; the last field unbounded): per field,
    (first, step) of the values it takes, i.e. the groups whose index is ``ch`` modulo the
    channel count (the model counts them that way, ``models/chip/perf.py``). The
    channel's ``lg_channels`` index bits fill the fields from the bottom; the comb logic
    goes into ``m``."""
    out: list = []
    used: object = 0
    for n, lg in enumerate(fields):
        last = n == len(fields) - 1
        room, bits = Signal(range(lg_channels + 1)), Signal(range(lg_channels + 1))
        step, first = Signal(DIM_BITS), Signal(DIM_BITS)
        m.d.comb += [room.eq(lg_channels - used), bits.eq(room if last else Mux(lg < room, lg, room)),
                     step.eq(Const(1) << bits), first.eq((Const(ch) >> used) & (step - 1))]
        out.append((first, step))
        used = used + bits
    return out


class DmaChannel(wiring.Component):
    """One DMA channel: its DRAM port, the A groups, B groups and write-backs that are its
    share of every job (see the module docstring).

    Parameters
    ----------
    channel, channels : int
        This channel's index and the number of channels (a power of two).
    cores : int
    word_bytes : int
        The channel's DRAM beat, in bytes: ``banks`` slice words (core beats) of
        ``core_beat`` bytes.
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
    desc : In(descriptor_layout()), lg_gp, lg_gm, lg_gk : In(LOG_BITS)
        The GEMM being run and log2 of its ``gp``, ``gm`` and ``gk`` (held by the controller).
    start : In(1), job : In(job_layout())
        A job starts when ``start`` is high while ``busy`` is low.
    busy : Out(1)
    op_b, op_group, op_addr, op_words, op_data, op_en : Out
        The operand write of this cycle: ``op_words`` consecutive words from word
        ``op_addr`` of every slice of group ``op_group``, a B group if ``op_b`` else an A
        group; ``op_en`` when a beat arrives.
    acc_core, acc_addr : Out, acc_data : In
        Accumulator read: a beat's worth of words from word ``acc_addr`` of core
        ``acc_core`` and of the ``gk - 1`` cores of its other K-groups, summed
        (combinational; the chip adds them).
    bytes_read, bytes_written, sram_read : Out(48)
        Since the last ``clear``: DRAM bytes read (whole beats) and written (strobed
        bytes), and accumulator bytes read from the slices (whole words, every K-group's).

    Timing contract (no stalls on the port), per channel and job: the write-back's
    segments issue one per cycle from the cycle after ``start``; its data beats follow
    from the cycle after their command, one per cycle when the memory takes them; the
    load's segments issue one per cycle from the second cycle after the write-back's last
    beat was taken (the first after ``start`` if the channel has no write-back in this
    job); its beats are written into the slices the cycle they arrive; ``busy`` falls the
    cycle after the load's last beat (or the write-back's, if there is no load), and never
    rises for a job that has nothing for this channel.
    """

    def __init__(self, *, channel: int, channels: int, cores: int, word_bytes: int, core_beat: int,
                 input_bytes: int, acc_bytes: int, op_half: int, acc_half: int, queue_depth: int):
        if channels < 1 or channels & (channels - 1) or not 0 <= channel < channels:
            raise ValueError(f"channel {channel} of {channels}: channels must be a power of two")
        self._ch, self._nch = channel, channels
        self._n, self._wd, self._eb, self._ab, self._w = cores, word_bytes, input_bytes, acc_bytes, core_beat
        self._op_half, self._acc_half, self._queue_depth = op_half, acc_half, queue_depth
        super().__init__({
            "mem": Out(memory_port_signature(word_bytes, ADDR)),
            "desc": In(descriptor_layout()), "lg_gp": In(LOG_BITS), "lg_gm": In(LOG_BITS), "lg_gk": In(LOG_BITS),
            "start": In(1), "job": In(job_layout()), "busy": Out(1), "clear": In(1),
            "op_b": Out(1), "op_group": Out(DIM_BITS), "op_addr": Out(range(2 * op_half)),
            "op_words": Out(range(word_bytes // core_beat + 1)), "op_data": Out(8 * word_bytes), "op_en": Out(1),
            "acc_core": Out(range(cores)), "acc_addr": Out(range(2 * acc_half)), "acc_data": In(8 * word_bytes),
            **{name: Out(COUNT_BITS) for name in ("bytes_read", "bytes_written", "sram_read")},
        })

    def elaborate(self, platform):
        m = Module()
        ch, lgC = self._ch, (self._nch - 1).bit_length()
        Wd, eb, ab, W = self._wd, self._eb, self._ab, self._w
        lanes = Wd // W                    # slice words a DRAM beat spans
        d = self.desc
        job = Signal(job_layout())
        wshift = (Wd - 1).bit_length()
        lg_gp, lg_gm, lg_gk = self.lg_gp, self.lg_gm, self.lg_gk

        def beats(nbytes):                  # DRAM beats of a segment
            return (nbytes + (Wd - 1)) >> wshift if Wd > 1 else nbytes

        def words(nbytes):                  # slice words of a segment
            return (nbytes + (W - 1)) >> (W - 1).bit_length() if W > 1 else nbytes

        def clamp(rest, size):              # min(size, rest), rest >= 0
            return Mux(rest < size, rest, size)

        # -- this channel's groups: A a = (kk*gp + q)*gm + i, B b = (j*gk + kk)*gp + q, = ch (mod C)
        (i0, istep), (qa0, qastep), (ka0, kastep) = shares(ch, lgC, [lg_gm, lg_gp, None], m)
        (qb0, qbstep), (kb0, kbstep), (j0, jstep) = shares(ch, lgC, [lg_gp, lg_gk, None], m)

        def live(p):                                    # products of the group that exist
            return clamp(d.count - p, d.gp)

        def k_ok(kk, klen):                             # K-group kk has part of a K-block of klen
            return (kk < d.gk) & (kk * d.kc < klen)

        def nonempty(jb):
            """(write-back, A, B) hold work for this channel in job ``jb``: the channel's
            first group of each kind exists (its B groups write back only with kk = 0)."""
            return ((kb0 == 0) & (qb0 < live(jb.wb_p)) & (j0 * d.nc < jb.wb_nlen),
                    (i0 * d.mc < jb.ld_mlen) & (qa0 < live(jb.ld_p)) & k_ok(ka0, jb.ld_klen),
                    (qb0 < live(jb.ld_p)) & k_ok(kb0, jb.ld_klen) & (j0 * d.nc < jb.ld_nlen))

        phase = Signal(range(6))
        m.d.comb += self.busy.eq(phase != IDLE)
        ra, ia, qa, ka = (Signal(DIM_BITS, name=f"a_{n}") for n in ("r", "i", "q", "kk"))     # load: A
        rb, qb, kb, jb = (Signal(DIM_BITS, name=f"b_{n}") for n in ("r", "q", "kk", "j"))     # load: B
        rw, iw, jw, qw = (Signal(DIM_BITS, name=f"w_{n}") for n in ("r", "i", "j", "q"))      # write-back

        def advance(levels, at_end):
            """Step a loop nest (innermost first: (counter, first, step, valid(next))) to its
            next valid position in one cycle, or call ``at_end`` past the last."""
            for n, (sig, _, step, ok) in enumerate(levels):
                with (m.If if n == 0 else m.Elif)(ok(sig + step)):
                    m.d.sync += sig.eq(sig + step)
                    for inner, first, _, _ in levels[:n]:
                        m.d.sync += inner.eq(first)
            with m.Else():
                for sig, first, _, _ in levels:
                    m.d.sync += sig.eq(first)
                at_end()

        seg = data.StructLayout({"beats": DIM_BITS, "word": 24, "words": DIM_BITS, "nbytes": 24,
                                 "core": range(self._n), "group": DIM_BITS, "b": 1})
        m.submodules.wq = wq = Queue(seg, self._queue_depth)
        m.submodules.rq = rq = Queue(seg, self._queue_depth)
        lg_qg = Signal(LOG_BITS + 2)                    # log2(gk * gp * gm): the cores of one column group
        m.d.comb += lg_qg.eq(lg_gk + lg_gp + lg_gm)

        # -- write-back segments: row rw of row group iw of product qw, column group jw (kk = 0) ----
        w_cols = clamp(job.wb_nlen - jw * d.nc, d.nc)
        w_rows = clamp(job.wb_mlen - iw * d.mc, d.mc)
        wc = self.mem.wr_cmd
        wseg = Signal(seg)
        m.d.comb += [wseg.nbytes.eq(w_cols * ab), wseg.beats.eq(beats(w_cols * ab)), wseg.words.eq(words(w_cols * ab)),
                     wseg.core.eq((jw << lg_qg) | (qw << lg_gm) | iw),
                     wseg.word.eq(job.wb_buf * self._acc_half + rw * words(d.nc * ab)),
                     wc.payload.addr.eq(d.c_addr + (job.wb_p + qw) * d.c_step + (job.wb_m0 + iw * d.mc + rw) * d.ldc
                                        + (job.wb_n0 + jw * d.nc) * ab),
                     wc.payload.beats.eq(wseg.beats)]
        m.d.comb += [wc.valid.eq((phase == WRITE_BACK) & ~wq.full),
                     wq.push.eq(wc.valid & wc.ready), wq.push_data.eq(wseg)]

        # -- load segments: A row ra of group (ka, qa, ia), then B column rb of group (jb, kb, qb) --
        on_b = phase == LOAD_B
        kpart = Signal(DIM_BITS)            # the K-range of a core in this step (the last may be shorter)
        m.d.comb += kpart.eq(clamp(job.ld_klen, d.kc))
        pitch_k = Signal(DIM_BITS)
        m.d.comb += pitch_k.eq(words(kpart * eb))
        kk = Mux(on_b, kb, ka)
        seg_k = Signal(DIM_BITS)
        m.d.comb += seg_k.eq(clamp(job.ld_klen - kk * d.kc, d.kc))
        rc = self.mem.rd_cmd
        rseg = Signal(seg)
        k_at = (job.ld_k0 + kk * d.kc) * eb
        a_row = d.a_addr + (job.ld_p + qa) * d.a_step + (job.ld_m0 + ia * d.mc + ra) * d.lda + k_at
        b_col = d.b_addr + (job.ld_p + qb) * d.b_step + (job.ld_n0 + jb * d.nc + rb) * d.ldb + k_at
        m.d.comb += [rseg.beats.eq(beats(seg_k * eb)), rseg.words.eq(words(seg_k * eb)), rseg.b.eq(on_b),
                     rseg.group.eq(Mux(on_b, (((jb << lg_gk) | kb) << lg_gp) | qb,
                                       (((ka << lg_gp) | qa) << lg_gm) | ia)),
                     rseg.word.eq(Mux(on_b, job.ld_bbuf * self._op_half + (d.mc + rb) * pitch_k,
                                      job.ld_abuf * self._op_half + ra * pitch_k)),
                     rc.payload.addr.eq(Mux(on_b, b_col, a_row)), rc.payload.beats.eq(rseg.beats)]
        m.d.comb += [rc.valid.eq(((phase == LOAD_A) | on_b) & ~rq.full),
                     rq.push.eq(rc.valid & rc.ready), rq.push_data.eq(rseg)]

        # -- the generator ----------------------------------------------------------------------
        def load_phase(jb_):
            _, has_a, has_b = nonempty(jb_)
            return Mux(jb_.ld & jb_.ld_a & has_a, LOAD_A, Mux(jb_.ld & jb_.ld_b & has_b, LOAD_B, IDLE))

        w_busy, r_busy = Signal(), Signal()
        with m.Switch(phase):
            with m.Case(IDLE):
                with m.If(self.start):
                    has_w, _, _ = nonempty(self.job)
                    m.d.sync += [job.eq(self.job), ra.eq(0), ia.eq(i0), qa.eq(qa0), ka.eq(ka0),
                                 rb.eq(0), qb.eq(qb0), kb.eq(kb0), jb.eq(j0), rw.eq(0), iw.eq(0), jw.eq(j0), qw.eq(qb0),
                                 phase.eq(Mux(self.job.wb & has_w, WRITE_BACK, load_phase(self.job)))]
            with m.Case(WRITE_BACK):
                with m.If(wq.push):
                    advance([(rw, 0, 1, lambda v: v < w_rows),
                             (iw, 0, 1, lambda v: v * d.mc < job.wb_mlen),
                             (jw, j0, jstep, lambda v: v * d.nc < job.wb_nlen),
                             (qw, qb0, qbstep, lambda v: v < live(job.wb_p))],
                            lambda: m.d.sync.__iadd__(phase.eq(WB_DRAIN)))
            with m.Case(WB_DRAIN):
                with m.If(~wq.nonempty & ~w_busy):
                    m.d.sync += phase.eq(load_phase(job))
            with m.Case(LOAD_A):
                with m.If(rq.push):
                    _, _, has_b = nonempty(job)
                    advance([(ra, 0, 1, lambda v: v < clamp(job.ld_mlen - ia * d.mc, d.mc)),
                             (ia, i0, istep, lambda v: v * d.mc < job.ld_mlen),
                             (qa, qa0, qastep, lambda v: v < live(job.ld_p)),
                             (ka, ka0, kastep, lambda v: k_ok(v, job.ld_klen))],
                            lambda: m.d.sync.__iadd__(phase.eq(Mux(job.ld_b & has_b, LOAD_B, LD_DRAIN))))
            with m.Case(LOAD_B):
                with m.If(rq.push):
                    advance([(rb, 0, 1, lambda v: v < clamp(job.ld_nlen - jb * d.nc, d.nc)),
                             (qb, qb0, qbstep, lambda v: v < live(job.ld_p)),
                             (kb, kb0, kbstep, lambda v: k_ok(v, job.ld_klen)),
                             (jb, j0, jstep, lambda v: v * d.nc < job.ld_nlen)],
                            lambda: m.d.sync.__iadd__(phase.eq(LD_DRAIN)))
            with m.Case(LD_DRAIN):
                with m.If(~rq.nonempty & ~r_busy):
                    m.d.sync += phase.eq(IDLE)

        # -- data side: write-back beats, the K-groups' partial sums added by the chip ------------
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
        m.d.comb += [self.acc_core.eq(wcur.core), self.acc_addr.eq(wcur.word + wk * lanes)]
        left = Signal(24)
        m.d.comb += left.eq(wcur.nbytes - (wk << wshift))
        for b in range(Wd):
            m.d.comb += wdp.payload.strobe[b].eq(b < left)
        m.d.comb += [wdp.valid.eq(w_busy), wdp.payload.data.eq(self.acc_data)]

        # -- data side: load beats into the slices of the segment's group -----------------------
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
        m.d.comb += [self.op_b.eq(rcur.b), self.op_group.eq(rcur.group), self.op_addr.eq(rcur.word + rk * lanes),
                     self.op_words.eq(clamp(rcur.words - rk * lanes, lanes)), self.op_data.eq(rdp.payload),
                     self.op_en.eq(r_take)]

        # -- counters ------------------------------------------------------------------------------
        strobed = sum(wdp.payload.strobe[b] for b in range(Wd))
        with m.If(self.clear):
            m.d.sync += [self.bytes_read.eq(0), self.bytes_written.eq(0), self.sram_read.eq(0)]
        with m.Else():
            with m.If(r_take):
                m.d.sync += self.bytes_read.eq(self.bytes_read + Wd)
            with m.If(w_take):
                m.d.sync += [self.bytes_written.eq(self.bytes_written + strobed),
                             self.sram_read.eq(self.sram_read + d.gk * clamp(wcur.words - wk * lanes, lanes) * W)]
        return m
