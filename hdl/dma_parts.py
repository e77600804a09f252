"""A DMA channel's parts, each a component with a timing contract (see :mod:`systolab.hdl.dma`)::

    job --> SegmentGenerator --wr_cmd, rd_cmd--> DRAM
                 | wb segments        | load segments
                 v                    v
          WriteBackEngine         LoadEngine <--rd_data-- DRAM
          |acc_* (slices)         |op_* (slices)
          v wr_data --> DRAM

The generator issues one segment (a DRAM burst) per cycle on the memory's command
stream and pushes it into the queue of the engine that moves its beats, in order.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ports import DIM_BITS
from .queue import Queue

COUNT_BITS = 48


def segment_layout(cores: int) -> data.StructLayout:
    """A segment: one DRAM burst of ``beats`` beats (``nbytes`` bytes, ``words`` slice
    words) to or from slice word ``word`` of core ``core`` (write-back) or of the slices
    of A group (B group if ``b``) ``group`` (load)."""
    return data.StructLayout({"beats": DIM_BITS, "word": 24, "words": DIM_BITS, "nbytes": 24,
                              "core": range(cores), "group": DIM_BITS, "b": 1})


def segment_queue_signature(cores: int) -> wiring.Signature:
    """The generator's side of an engine's segment queue: ``push`` a ``seg`` (only while
    not ``full``); ``idle`` when the queue is empty and the engine has no segment left."""
    return wiring.Signature({"push": Out(1), "seg": Out(segment_layout(cores)), "full": In(1), "idle": In(1)})


def _positive(**values) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")


def _beat_words(word_bytes: int, core_beat: int) -> int:
    if word_bytes % core_beat:
        raise ValueError(f"word_bytes ({word_bytes}) must be a multiple of core_beat ({core_beat})")
    return word_bytes // core_beat


class _SegmentEngine(wiring.Component):
    """What both engines share: a queue of segments and the segment in progress.

    Parameters
    ----------
    cores : int
    word_bytes, core_beat : int
        A DRAM beat and a slice word, in bytes.
    queue_depth : int
        Segments the queue holds.
    """

    def __init__(self, members: dict, *, cores: int, word_bytes: int, core_beat: int, queue_depth: int):
        _positive(cores=cores, word_bytes=word_bytes, core_beat=core_beat, queue_depth=queue_depth)
        self._lanes = _beat_words(word_bytes, core_beat)
        self._n, self._wd, self._w, self._queue_depth = cores, word_bytes, core_beat, queue_depth
        super().__init__({"segs": In(segment_queue_signature(cores)), "clear": In(1), **members})

    def _segments(self, m: Module, take, in_flight=0):
        """The queue and the segment in progress, its beat counter and whether it is busy;
        a beat is moved in a cycle where ``take`` (a function of the current segment, its
        beat counter and busy) is high; ``in_flight``: beats moved but not yet delivered
        (the engine is not idle while it is high)."""
        m.submodules.queue = q = Queue(segment_layout(self._n), self._queue_depth)
        cur, k, busy = Signal(segment_layout(self._n)), Signal(DIM_BITS), Signal()
        moved = take(cur, k, busy)
        last = k == cur.beats - 1
        m.d.comb += [q.push.eq(self.segs.push), q.push_data.eq(self.segs.seg), self.segs.full.eq(q.full),
                     self.segs.idle.eq(~q.nonempty & ~busy & ~in_flight), q.pop.eq(q.nonempty & (~busy | (moved & last)))]
        with m.If(moved):
            m.d.sync += k.eq(k + 1)
            with m.If(last):
                m.d.sync += busy.eq(0)
        with m.If(q.pop):                                # after the block above: the next segment wins
            m.d.sync += [cur.eq(q.head), busy.eq(1), k.eq(0)]
        return cur, k, busy, moved


class WriteBackEngine(_SegmentEngine):
    """Moves write-back segments' beats from the slices' accumulators to DRAM.

    Timing, with ``stages`` = 0: a segment pushed in cycle t is at the queue's head from
    t + 1; the engine takes the head in a cycle where it has no segment or the current
    one's last beat is taken, and offers that segment's first beat on ``wr_data`` from the
    next cycle, then one beat per cycle that the memory takes. The beat offered reads
    ``acc_core`` / ``acc_addr`` and carries ``acc_data`` of the same cycle (byte strobes
    mask the segment's end).

    With ``stages`` = S > 0 (the chip's pipelined write-back sum, :class:`~systolab.hdl.
    chip_parts.WriteBackSum`), the accumulator reads run S beats ahead of ``wr_data``: the
    pipeline advances (``acc_en``) in a cycle where its last stage holds no beat or the
    memory takes it, and every advance reads the next beat (if a segment is in progress;
    the head is taken as above, on the advance that reads a segment's last beat). A beat
    read in cycle t is offered S advances later, with its strobes; so the first beat of a
    job is offered S cycles after it would be with no stage, and, the pipeline holding
    every beat the memory has not taken, the later ones as before: nothing is lost or
    offered twice under any pattern of ``wr_data.ready``.

    ``idle`` is high while nothing is queued, in progress or in the pipeline. The counters
    count a beat the cycle after it is taken (``bytes_written``) or read (``sram_read``),
    and are 0 the cycle after ``clear``.

    Parameters
    ----------
    acc_half : int
        Words of one accumulator buffer in a slice; the others as the base class's.
    stages : int
        Register stages between the accumulator read and ``wr_data`` (default 0).

    Attributes
    ----------
    segs : In(segment_queue_signature(cores))
    wr_data : Out(stream.Signature({data, strobe}))
    acc_core, acc_addr : Out, acc_data : In(8 * word_bytes)
        The accumulator read of the cycle (the beat offered with no stage); ``acc_data``
        is the K-groups' sum of the read ``stages`` advances earlier (the chip adds them).
    acc_en : Out(1)
        The write-back pipeline advances (high whenever ``wr_data`` is not stalled).
    gk : In(DIM_BITS)
        K-groups of the GEMM: each beat reads that many cores' accumulators.
    clear : In(1)
    bytes_written, sram_read : Out(48)
        Strobed bytes written to DRAM; accumulator bytes read from the slices (whole words,
        every K-group's).
    """

    def __init__(self, *, cores: int, word_bytes: int, core_beat: int, acc_half: int, queue_depth: int,
                 stages: int = 0):
        _positive(acc_half=acc_half)
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
            raise ValueError(f"stages must be an integer >= 0, not {stages!r}")
        self._stages = stages
        wr = data.StructLayout({"data": 8 * word_bytes, "strobe": word_bytes})
        super().__init__({"wr_data": Out(stream.Signature(wr)), "acc_core": Out(range(cores)),
                          "acc_addr": Out(range(2 * acc_half)), "acc_data": In(8 * word_bytes), "acc_en": Out(1),
                          "gk": In(DIM_BITS), "bytes_written": Out(COUNT_BITS), "sram_read": Out(COUNT_BITS)},
                         cores=cores, word_bytes=word_bytes, core_beat=core_beat, queue_depth=queue_depth)

    def elaborate(self, platform):
        m = Module()
        Wd, lanes, S = self._wd, self._lanes, self._stages
        wdp = self.wr_data
        # the pipeline: each stage's beat (valid) and strobes, shifted on every advance
        valid = [Signal(name=f"valid{i}") for i in range(S)]
        strobes = [Signal(Wd, name=f"strobe{i}") for i in range(S)]
        advance = ~valid[-1] | wdp.ready if S else wdp.valid & wdp.ready
        cur, k, busy, read = self._segments(m, lambda cur, k, busy: busy & advance if S else advance,
                                            in_flight=Cat(*valid).any() if S else 0)
        m.d.comb += [self.acc_core.eq(cur.core), self.acc_addr.eq(cur.word + k * lanes), self.acc_en.eq(advance)]
        left = Signal(24)
        strobe = Signal(Wd)
        m.d.comb += left.eq(cur.nbytes - (k << (Wd - 1).bit_length()))
        for b in range(Wd):
            m.d.comb += strobe[b].eq(b < left)
        if S:
            with m.If(advance):
                m.d.sync += [valid[0].eq(busy), strobes[0].eq(strobe)]
                m.d.sync += [v.eq(u) for u, v in zip(valid, valid[1:])]
                m.d.sync += [v.eq(u) for u, v in zip(strobes, strobes[1:])]
        m.d.comb += [wdp.valid.eq(valid[-1] if S else busy), wdp.payload.strobe.eq(strobes[-1] if S else strobe),
                     wdp.payload.data.eq(self.acc_data)]
        taken = wdp.valid & wdp.ready
        strobed = sum(wdp.payload.strobe[b] for b in range(Wd))
        words = Mux(cur.words - k * lanes < lanes, cur.words - k * lanes, lanes)
        with m.If(self.clear):
            m.d.sync += [self.bytes_written.eq(0), self.sram_read.eq(0)]
        with m.Else():
            with m.If(taken):
                m.d.sync += self.bytes_written.eq(self.bytes_written + strobed)
            with m.If(read):
                m.d.sync += self.sram_read.eq(self.sram_read + self.gk * words * self._w)
        return m


class LoadEngine(_SegmentEngine):
    """Moves load segments' beats from DRAM into the slices of the segment's group.

    Timing: a segment pushed in cycle t is at the queue's head from t + 1; the engine
    takes the head in a cycle where it has no segment or the current one's last beat
    arrives, and takes beats (``rd_data.ready``) from the next cycle. A beat arriving in
    cycle t is offered to the slices (``op_*``, ``op_en``) in cycle t. ``idle`` is high
    while nothing is queued or in progress. ``bytes_read`` counts a beat (whole) the cycle
    after it arrives, and is 0 the cycle after ``clear``.

    Parameters
    ----------
    op_half : int
        Words of one operand buffer in a slice; the others as the base class's.

    Attributes
    ----------
    segs : In(segment_queue_signature(cores))
    rd_data : In(stream.Signature(8 * word_bytes))
    op_b, op_group, op_addr, op_words, op_data, op_en : Out
        The operand write of this cycle: ``op_words`` consecutive words from word
        ``op_addr`` of every slice of group ``op_group`` (a B group if ``op_b``).
    clear : In(1), bytes_read : Out(48)
    """

    def __init__(self, *, cores: int, word_bytes: int, core_beat: int, op_half: int, queue_depth: int):
        _positive(op_half=op_half)
        super().__init__({"rd_data": In(stream.Signature(8 * word_bytes)),
                          "op_b": Out(1), "op_group": Out(DIM_BITS), "op_addr": Out(range(2 * op_half)),
                          "op_words": Out(range(word_bytes // core_beat + 1)), "op_data": Out(8 * word_bytes),
                          "op_en": Out(1), "bytes_read": Out(COUNT_BITS)},
                         cores=cores, word_bytes=word_bytes, core_beat=core_beat, queue_depth=queue_depth)

    def elaborate(self, platform):
        m = Module()
        lanes, rdp = self._lanes, self.rd_data
        cur, k, busy, taken = self._segments(m, lambda cur, k, busy: rdp.valid & rdp.ready)
        m.d.comb += [rdp.ready.eq(busy), self.op_b.eq(cur.b), self.op_group.eq(cur.group),
                     self.op_addr.eq(cur.word + k * lanes),
                     self.op_words.eq(Mux(cur.words - k * lanes < lanes, cur.words - k * lanes, lanes)),
                     self.op_data.eq(rdp.payload), self.op_en.eq(taken)]
        with m.If(self.clear):
            m.d.sync += self.bytes_read.eq(0)
        with m.Elif(taken):
            m.d.sync += self.bytes_read.eq(self.bytes_read + self._wd)
        return m
