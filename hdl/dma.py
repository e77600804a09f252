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
reduction is in the write path: integers in the accumulators' width, fp32 in the fixed
pairwise tree of :mod:`systolab.hdl.float_add`). So a slice's A rows all come
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

A channel's generator (:class:`SegmentGenerator`) issues one segment per cycle on its
memory's command stream, skipping empty groups without a bubble, and hands each segment
to its data side through a queue; the data side (:mod:`systolab.hdl.dma_parts`) moves the
beats in order.
"""
from __future__ import annotations

from typing import Any

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .dma_parts import LoadEngine, WriteBackEngine, segment_queue_signature
from .ports import DIM_BITS, command_layout, memory_port_signature

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
    used: Any = 0
    for n, lg in enumerate(fields):
        last = n == len(fields) - 1
        room, bits = Signal(range(lg_channels + 1)), Signal(range(lg_channels + 1))
        step, first = Signal(DIM_BITS), Signal(DIM_BITS)
        m.d.comb += [room.eq(lg_channels - used), bits.eq(room if last else Mux(lg < room, lg, room)),
                     step.eq(Const(1) << bits), first.eq((Const(ch) >> used) & (step - 1))]
        out.append((first, step))
        used = used + bits
    return out


class SegmentGenerator(wiring.Component):
    """A channel's command side: walks its share of a job's write-back, then of its loads
    (A groups, then B groups), one segment per cycle, each onto the memory's command
    stream and into the queue of the engine that moves its beats.

    Timing: ``start`` in cycle t while not ``busy`` takes ``job``; ``busy`` is high from
    t + 1 unless the job has nothing for the channel. The write-back's segments are
    offered on ``wr_cmd`` from t + 1, the next one in the cycle after one is taken (a
    segment is taken in a cycle where the memory is ready and the queue not ``full``).
    From the cycle after the last is taken, the generator looks at ``wb.idle`` each cycle;
    the cycle after it first sees it high, it offers the load's segments on ``rd_cmd`` (from
    t + 1 if the channel has no write-back), A rows then B columns, the same way. From the
    cycle after the last is taken it looks at ``ld.idle``; ``busy`` falls the cycle after
    it first sees it high.

    Parameters
    ----------
    channel, channels, cores, word_bytes, core_beat, input_bytes, acc_bytes, op_half, acc_half : int
        As for :class:`DmaChannel`.

    Attributes
    ----------
    desc : In(descriptor_layout()), lg_gp, lg_gm, lg_gk : In(LOG_BITS)
    start : In(1), job : In(job_layout()), busy : Out(1)
    wr_cmd, rd_cmd : Out(stream.Signature(command_layout(ADDR)))
    wb, ld : Out(segment_queue_signature(cores))
        The write-back and load engines' queues.
    """

    def __init__(self, *, channel: int, channels: int, cores: int, word_bytes: int, core_beat: int,
                 input_bytes: int, acc_bytes: int, op_half: int, acc_half: int):
        _check_parameters(channel, channels, cores=cores, word_bytes=word_bytes, core_beat=core_beat,
                          input_bytes=input_bytes, acc_bytes=acc_bytes, op_half=op_half, acc_half=acc_half)
        self._ch, self._nch = channel, channels
        self._n, self._wd, self._eb, self._ab, self._w = cores, word_bytes, input_bytes, acc_bytes, core_beat
        self._op_half, self._acc_half = op_half, acc_half
        super().__init__({
            "desc": In(descriptor_layout()), "lg_gp": In(LOG_BITS), "lg_gm": In(LOG_BITS), "lg_gk": In(LOG_BITS),
            "start": In(1), "job": In(job_layout()), "busy": Out(1),
            "wr_cmd": Out(stream.Signature(command_layout(ADDR))), "rd_cmd": Out(stream.Signature(command_layout(ADDR))),
            "wb": Out(segment_queue_signature(cores)), "ld": Out(segment_queue_signature(cores)),
        })

    def _beats(self, nbytes):               # DRAM beats of a segment
        Wd = self._wd
        return (nbytes + (Wd - 1)) >> (Wd - 1).bit_length() if Wd > 1 else nbytes

    def _words(self, nbytes):               # slice words of a segment
        W = self._w
        return (nbytes + (W - 1)) >> (W - 1).bit_length() if W > 1 else nbytes

    def elaborate(self, platform):
        m = Module()
        lgC, d = (self._nch - 1).bit_length(), self.desc
        job = Signal(job_layout())
        # -- this channel's groups: A a = (kk*gp + q)*gm + i, B b = (j*gk + kk)*gp + q, = ch (mod C)
        sh_a = shares(self._ch, lgC, [self.lg_gm, self.lg_gp, None], m)
        sh_b = shares(self._ch, lgC, [self.lg_gp, self.lg_gk, None], m)
        (i0, istep), (qa0, qastep), (ka0, kastep) = sh_a
        (qb0, qbstep), (kb0, kbstep), (j0, jstep) = sh_b
        phase = Signal(range(6))
        m.d.comb += self.busy.eq(phase != IDLE)
        ra, ia, qa, ka = (Signal(DIM_BITS, name=f"a_{n}") for n in ("r", "i", "q", "kk"))     # load: A
        rb, qb, kb, jb = (Signal(DIM_BITS, name=f"b_{n}") for n in ("r", "q", "kk", "j"))     # load: B
        rw, iw, jw, qw = (Signal(DIM_BITS, name=f"w_{n}") for n in ("r", "i", "j", "q"))      # write-back
        self._write_back_segment(m, job, phase, rw, iw, jw, qw)
        self._load_segment(m, job, phase, (ra, ia, qa, ka), (rb, qb, kb, jb))

        def live(p):                                    # products of the group that exist
            return _clamp(d.count - p, d.gp)

        def k_ok(kk, klen):                             # K-group kk has part of a K-block of klen
            return (kk < d.gk) & (kk * d.kc < klen)

        def nonempty(jb_):
            """(write-back, A, B) hold work for this channel in job ``jb_``: the channel's
            first group of each kind exists (its B groups write back only with kk = 0)."""
            return ((kb0 == 0) & (qb0 < live(jb_.wb_p)) & (j0 * d.nc < jb_.wb_nlen),
                    (i0 * d.mc < jb_.ld_mlen) & (qa0 < live(jb_.ld_p)) & k_ok(ka0, jb_.ld_klen),
                    (qb0 < live(jb_.ld_p)) & k_ok(kb0, jb_.ld_klen) & (j0 * d.nc < jb_.ld_nlen))

        def load_phase(jb_):
            _, has_a, has_b = nonempty(jb_)
            return Mux(jb_.ld & jb_.ld_a & has_a, LOAD_A, Mux(jb_.ld & jb_.ld_b & has_b, LOAD_B, IDLE))

        def advance(levels, then):
            _advance(m, levels, lambda: m.d.sync.__iadd__(phase.eq(then)))

        with m.Switch(phase):
            with m.Case(IDLE):
                with m.If(self.start):
                    has_w, _, _ = nonempty(self.job)
                    m.d.sync += [job.eq(self.job), ra.eq(0), ia.eq(i0), qa.eq(qa0), ka.eq(ka0),
                                 rb.eq(0), qb.eq(qb0), kb.eq(kb0), jb.eq(j0), rw.eq(0), iw.eq(0), jw.eq(j0), qw.eq(qb0),
                                 phase.eq(Mux(self.job.wb & has_w, WRITE_BACK, load_phase(self.job)))]
            with m.Case(WRITE_BACK):
                with m.If(self.wb.push):
                    advance([(rw, 0, 1, lambda v: v < _clamp(job.wb_mlen - iw * d.mc, d.mc)),
                             (iw, 0, 1, lambda v: v * d.mc < job.wb_mlen),
                             (jw, j0, jstep, lambda v: v * d.nc < job.wb_nlen),
                             (qw, qb0, qbstep, lambda v: v < live(job.wb_p))], WB_DRAIN)
            with m.Case(WB_DRAIN):
                with m.If(self.wb.idle):
                    m.d.sync += phase.eq(load_phase(job))
            with m.Case(LOAD_A):
                with m.If(self.ld.push):
                    _, _, has_b = nonempty(job)
                    advance([(ra, 0, 1, lambda v: v < _clamp(job.ld_mlen - ia * d.mc, d.mc)),
                             (ia, i0, istep, lambda v: v * d.mc < job.ld_mlen),
                             (qa, qa0, qastep, lambda v: v < live(job.ld_p)),
                             (ka, ka0, kastep, lambda v: k_ok(v, job.ld_klen))],
                            Mux(job.ld_b & has_b, LOAD_B, LD_DRAIN))
            with m.Case(LOAD_B):
                with m.If(self.ld.push):
                    advance([(rb, 0, 1, lambda v: v < _clamp(job.ld_nlen - jb * d.nc, d.nc)),
                             (qb, qb0, qbstep, lambda v: v < live(job.ld_p)),
                             (kb, kb0, kbstep, lambda v: k_ok(v, job.ld_klen)),
                             (jb, j0, jstep, lambda v: v * d.nc < job.ld_nlen)], LD_DRAIN)
            with m.Case(LD_DRAIN):
                with m.If(self.ld.idle):
                    m.d.sync += phase.eq(IDLE)
        return m

    def _write_back_segment(self, m, job, phase, rw, iw, jw, qw):
        """Write-back segment: row rw of row group iw of product qw, column group jw (kk = 0)."""
        d, ab = self.desc, self._ab
        lg_qg = Signal(LOG_BITS + 2)                    # log2(gk * gp * gm): the cores of one column group
        m.d.comb += lg_qg.eq(self.lg_gk + self.lg_gp + self.lg_gm)
        w_cols = _clamp(job.wb_nlen - jw * d.nc, d.nc)
        wc, seg = self.wr_cmd, self.wb.seg
        m.d.comb += [seg.nbytes.eq(w_cols * ab), seg.beats.eq(self._beats(w_cols * ab)),
                     seg.words.eq(self._words(w_cols * ab)), seg.core.eq((jw << lg_qg) | (qw << self.lg_gm) | iw),
                     seg.word.eq(job.wb_buf * self._acc_half + rw * self._words(d.nc * ab)),
                     wc.payload.addr.eq(d.c_addr + (job.wb_p + qw) * d.c_step + (job.wb_m0 + iw * d.mc + rw) * d.ldc
                                        + (job.wb_n0 + jw * d.nc) * ab),
                     wc.payload.beats.eq(seg.beats),
                     wc.valid.eq((phase == WRITE_BACK) & ~self.wb.full), self.wb.push.eq(wc.valid & wc.ready)]

    def _load_segment(self, m, job, phase, a, b):
        """Load segment: A row ra of group (ka, qa, ia), then B column rb of group (jb, kb, qb)."""
        d, eb = self.desc, self._eb
        (ra, ia, qa, ka), (rb, qb, kb, jb) = a, b
        on_b = phase == LOAD_B
        kpart = Signal(DIM_BITS)            # the K-range of a core in this step (the last may be shorter)
        pitch_k = Signal(DIM_BITS)
        seg_k = Signal(DIM_BITS)
        kk = Mux(on_b, kb, ka)
        m.d.comb += [kpart.eq(_clamp(job.ld_klen, d.kc)), pitch_k.eq(self._words(kpart * eb)),
                     seg_k.eq(_clamp(job.ld_klen - kk * d.kc, d.kc))]
        rc, seg = self.rd_cmd, self.ld.seg
        k_at = (job.ld_k0 + kk * d.kc) * eb
        a_row = d.a_addr + (job.ld_p + qa) * d.a_step + (job.ld_m0 + ia * d.mc + ra) * d.lda + k_at
        b_col = d.b_addr + (job.ld_p + qb) * d.b_step + (job.ld_n0 + jb * d.nc + rb) * d.ldb + k_at
        m.d.comb += [seg.beats.eq(self._beats(seg_k * eb)), seg.words.eq(self._words(seg_k * eb)), seg.b.eq(on_b),
                     seg.group.eq(Mux(on_b, (((jb << self.lg_gk) | kb) << self.lg_gp) | qb,
                                      (((ka << self.lg_gp) | qa) << self.lg_gm) | ia)),
                     seg.word.eq(Mux(on_b, job.ld_bbuf * self._op_half + (d.mc + rb) * pitch_k,
                                     job.ld_abuf * self._op_half + ra * pitch_k)),
                     rc.payload.addr.eq(Mux(on_b, b_col, a_row)), rc.payload.beats.eq(seg.beats),
                     rc.valid.eq(((phase == LOAD_A) | on_b) & ~self.ld.full), self.ld.push.eq(rc.valid & rc.ready)]


def _clamp(rest, size):              # min(size, rest), rest >= 0
    return Mux(rest < size, rest, size)


def _advance(m: Module, levels, at_end) -> None:
    """Step a loop nest (innermost first: (counter, first, step, valid(next))) to its next
    valid position in one cycle, or call ``at_end`` past the last."""
    for n, (sig, _, step, ok) in enumerate(levels):
        with (m.If if n == 0 else m.Elif)(ok(sig + step)):
            m.d.sync += sig.eq(sig + step)
            for inner, first, _, _ in levels[:n]:
                m.d.sync += inner.eq(first)
    with m.Else():
        for sig, first, _, _ in levels:
            m.d.sync += sig.eq(first)
        at_end()


def _check_parameters(channel: int, channels: int, **positive: int) -> None:
    if (not isinstance(channels, int) or channels < 1 or channels & (channels - 1)
            or not isinstance(channel, int) or not 0 <= channel < channels):
        raise ValueError(f"channel {channel} of {channels}: channels must be a power of two")
    for name, v in positive.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    if positive["word_bytes"] % positive["core_beat"]:
        raise ValueError(f"word_bytes ({positive['word_bytes']}) must be a multiple of core_beat")


class DmaChannel(wiring.Component):
    """One DMA channel: its DRAM port, the A groups, B groups and write-backs that are its
    share of every job (see the module docstring): a :class:`SegmentGenerator`, a
    :class:`~systolab.hdl.dma_parts.WriteBackEngine` and a
    :class:`~systolab.hdl.dma_parts.LoadEngine`.

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
    wb_stages : int
        Register stages of the chip's write-back sum between the accumulator read and the
        beat (:class:`~systolab.hdl.dma_parts.WriteBackEngine`; default 0).

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
        ``acc_core`` and of the ``gk - 1`` cores of its other K-groups, summed (the chip
        adds them, in ``wb_stages`` register stages that advance with ``acc_en``).
    acc_en : Out(1)
    bytes_read, bytes_written, sram_read : Out(48)
        Since the last ``clear``: DRAM bytes read (whole beats) and written (strobed
        bytes), and accumulator bytes read from the slices (whole words, every K-group's).

    Timing contract (no stalls on the port), per channel and job: the write-back's
    segments issue one per cycle from the cycle after ``start``; its data beats follow
    from the cycle after their command plus ``wb_stages``, one per cycle when the memory
    takes them; the
    load's segments issue one per cycle from the second cycle after the write-back's last
    beat was taken (the first after ``start`` if the channel has no write-back in this
    job); its beats are written into the slices the cycle they arrive; ``busy`` falls the
    cycle after the load's last beat (or the write-back's, if there is no load), and never
    rises for a job that has nothing for this channel.
    """

    def __init__(self, *, channel: int, channels: int, cores: int, word_bytes: int, core_beat: int,
                 input_bytes: int, acc_bytes: int, op_half: int, acc_half: int, queue_depth: int,
                 wb_stages: int = 0):
        self._wb_stages = wb_stages
        self._parts = dict(channel=channel, channels=channels, cores=cores, word_bytes=word_bytes,
                           core_beat=core_beat, input_bytes=input_bytes, acc_bytes=acc_bytes, op_half=op_half,
                           acc_half=acc_half)
        _check_parameters(channel, channels, cores=cores, word_bytes=word_bytes, core_beat=core_beat,
                          input_bytes=input_bytes, acc_bytes=acc_bytes, op_half=op_half, acc_half=acc_half,
                          queue_depth=queue_depth)
        self._queue_depth = queue_depth
        super().__init__({
            "mem": Out(memory_port_signature(word_bytes, ADDR)),
            "desc": In(descriptor_layout()), "lg_gp": In(LOG_BITS), "lg_gm": In(LOG_BITS), "lg_gk": In(LOG_BITS),
            "start": In(1), "job": In(job_layout()), "busy": Out(1), "clear": In(1),
            "op_b": Out(1), "op_group": Out(DIM_BITS), "op_addr": Out(range(2 * op_half)),
            "op_words": Out(range(word_bytes // core_beat + 1)), "op_data": Out(8 * word_bytes), "op_en": Out(1),
            "acc_core": Out(range(cores)), "acc_addr": Out(range(2 * acc_half)), "acc_data": In(8 * word_bytes),
            "acc_en": Out(1), **{name: Out(COUNT_BITS) for name in ("bytes_read", "bytes_written", "sram_read")},
        })

    def elaborate(self, platform):
        m = Module()
        p = self._parts
        m.submodules.generator = gen = SegmentGenerator(**p)
        engine = dict(cores=p["cores"], word_bytes=p["word_bytes"], core_beat=p["core_beat"],
                      queue_depth=self._queue_depth)
        m.submodules.write_back = wb = WriteBackEngine(acc_half=p["acc_half"], stages=self._wb_stages, **engine)
        m.submodules.load = ld = LoadEngine(op_half=p["op_half"], **engine)
        wiring.connect(m, gen.wb, wb.segs)
        wiring.connect(m, gen.ld, ld.segs)
        wiring.connect(m, gen.wr_cmd, wiring.flipped(self.mem.wr_cmd))
        wiring.connect(m, gen.rd_cmd, wiring.flipped(self.mem.rd_cmd))
        wiring.connect(m, wb.wr_data, wiring.flipped(self.mem.wr_data))
        wiring.connect(m, wiring.flipped(self.mem.rd_data), ld.rd_data)
        m.d.comb += [gen.desc.eq(self.desc), gen.lg_gp.eq(self.lg_gp), gen.lg_gm.eq(self.lg_gm),
                     gen.lg_gk.eq(self.lg_gk), gen.start.eq(self.start), gen.job.eq(self.job), self.busy.eq(gen.busy),
                     self.acc_core.eq(wb.acc_core), self.acc_addr.eq(wb.acc_addr), wb.acc_data.eq(self.acc_data),
                     self.acc_en.eq(wb.acc_en),
                     wb.gk.eq(self.desc.gk), wb.clear.eq(self.clear), ld.clear.eq(self.clear),
                     self.bytes_read.eq(ld.bytes_read), self.bytes_written.eq(wb.bytes_written),
                     self.sram_read.eq(wb.sram_read)]
        m.d.comb += [getattr(self, f"op_{x}").eq(getattr(ld, f"op_{x}")) for x in ("b", "group", "addr", "words",
                                                                                  "data", "en")]
        return m
