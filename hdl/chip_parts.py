"""The chip controller's parts, each a component with a timing contract.

A GEMM descriptor flows through them like this (see :mod:`systolab.hdl.chip`)::

    cmd --> ChipController --desc--> DescriptorChecker --status, log2 of the grid--> ChipController
                 | setup                        | setup, advance           | start, job
                 v                              v                          v
            GridPlacement --place-->      StepSequencer --step, jobs--> DMA channels
                 |                              |                          | op_*, acc_*
                 v                              v                          v
            CoreDispatch (one per core) <-------+                    OperandRouter --> SRAM slices
                 | cmd
                 v
               cores

Every part reacts in the cycle it is offered something and shows its new state the
cycle after (or is combinational), so the chip built from them runs cycle for cycle as
the chip cycle model (``models/chip/perf.py``) counts.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..blocking import CSA_LEVELS_PER_STAGE, writeback_stages
from ..config import AcceleratorConfig
from .dma import LOG_BITS, descriptor_layout, job_layout
from .float_add import Fp32SumTree
from .ports import DIM_BITS
from .ports import descriptor_layout as core_descriptor

COUNTER_BITS = 48
EXTENT = signed(25)       # a step's extent: min(block, total - origin) of 24-bit values
#: The controller's states, in order.
IDLE, CHECK, SETUP, PROLOGUE, WAIT_LOAD, ISSUE, RUN, EPILOGUE, WAIT_WB, FINISH = range(10)


def slice_words(nbytes, word_bytes: int):
    """Slice words (core beats of ``word_bytes``) that ``nbytes`` bytes take, rounded up."""
    return (nbytes + (word_bytes - 1)) >> (word_bytes - 1).bit_length() if word_bytes > 1 else nbytes


def extent(origin, total, block):
    """The length of a block from ``origin``: ``min(block, total - origin)``."""
    rest = total - origin
    return Mux(rest < block, rest, block)


def place_layout() -> data.StructLayout:
    """A core's place in the grid ``c = ((j*gk + kk)*gp + q)*gm + i``: its product ``q``,
    first row, column and K of the block (``row0``, ``col0``, ``k0``), whether its column
    group exists (``on``), its A group (``c mod gk*gp*gm``), its B group (``c >> log2 gm``)
    and the DMA channel that writes its results back (``acc_ch``)."""
    return data.StructLayout({"q": DIM_BITS, "row0": DIM_BITS + 8, "col0": DIM_BITS + 8, "k0": DIM_BITS + 8,
                              "on": 1, "a_grp": DIM_BITS, "b_grp": DIM_BITS, "acc_ch": DIM_BITS})


def step_layout() -> data.StructLayout:
    """The running step: its product group ``p0``, its extents, its operand buffers
    (``a_buf``, ``b_buf``) and accumulator buffer (``c_buf``), whether it adds to earlier
    K-blocks' sums (``later_k``) and whether it is the GEMM's last (``last``)."""
    return data.StructLayout({"p0": 24, "mlen": EXTENT, "nlen": EXTENT, "klen": EXTENT, "a_buf": 1, "b_buf": 1,
                              "c_buf": 1, "first": 1, "later_k": 1, "last": 1})


def _positive(**values) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")


def _power_of_two(name: str, v) -> int:
    _positive(**{name: v})
    if v & (v - 1):
        raise ValueError(f"{name} must be a power of two, not {v!r}")
    return v


def _config(config) -> AcceleratorConfig:
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    return config


class DescriptorChecker(wiring.Component):
    """Judges a chip descriptor: the reason code of the first check it fails (in the order
    of :data:`~systolab.blocking.REJECT`), or 0, and log2 of its ``gp``, ``gm``, ``gk``.

    Timing: combinational (outputs follow ``desc`` in the same cycle).

    Parameters
    ----------
    config : AcceleratorConfig
        The cores' configuration (beat, element and accumulator bytes, overflow mode).
    cores : int
    op_half, acc_half : int
        Words of one operand buffer and of one accumulator buffer in a slice.
    float_split_k : int, optional
        Floating-point cores: the most K-groups the write-back adds (a larger ``gk`` is
        rejected with code 6); None (the default): as many as the cores.

    Attributes
    ----------
    desc : In(descriptor_layout())
    status : Out(3)
        0 when the descriptor runs, else its reject code.
    lg_gp, lg_gm, lg_gk : Out(LOG_BITS)
        The highest set bit of ``gp``, ``gm``, ``gk`` (their log2 where ``status`` is 0).
    """

    def __init__(self, *, config: AcceleratorConfig, cores: int, op_half: int, acc_half: int,
                 float_split_k: int | None = None):
        self._config = _config(config)
        _positive(cores=cores, op_half=op_half, acc_half=acc_half)
        self._cores, self._op_half, self._acc_half = cores, op_half, acc_half
        self._split_k = cores if float_split_k is None else _power_of_two("float_split_k", float_split_k)
        super().__init__({"desc": In(descriptor_layout()), "status": Out(3),
                          **{f"lg_{g}": Out(LOG_BITS) for g in ("gp", "gm", "gk")}})

    def elaborate(self, platform):
        m = Module()
        cfg, d = self._config, self.desc
        eb, ab, W = cfg.input_bytes, cfg.acc_bytes, cfg.beat_bytes
        zero = ((d.m == 0) | (d.n == 0) | (d.k == 0) | (d.count == 0) | (d.mb == 0) | (d.nb == 0)
                | (d.kb == 0) | (d.mc == 0) | (d.nc == 0) | (d.gp == 0) | (d.gm == 0) | (d.gn == 0)
                | (d.gk == 0) | (d.kc == 0))
        k_first = Mux(d.kb < d.k, d.kb, d.k)
        # floating point (overflow "wrap") runs split-K: the write-back adds up to float_split_k
        # K-groups in a fixed tree
        one_k = (((d.kb < d.k) | (d.gk > 1)) if cfg.overflow == "saturate"
                 else (d.gk > self._split_k) if cfg.is_float else False)
        checks = [zero,
                  d.gp * d.gm * d.gn * d.gk > self._cores,
                  (d.mc * d.gm < d.mb) | (d.nc * d.gn < d.nb) | (d.kc * d.gk < d.kb) | (d.kc * (d.gk - 1) >= k_first),
                  (d.mc + d.nc) * slice_words(d.kc * eb, W) > self._op_half,
                  d.mc * slice_words(d.nc * ab, W) > self._acc_half,
                  one_k,
                  ((d.gp & (d.gp - 1)) != 0) | ((d.gm & (d.gm - 1)) != 0) | ((d.gk & (d.gk - 1)) != 0)]
        for code, bad in enumerate(checks, start=1):
            with (m.If if code == 1 else m.Elif)(bad):
                m.d.comb += self.status.eq(code)
        for g in ("gp", "gm", "gk"):
            v = getattr(d, g)
            for b in range(DIM_BITS):
                with m.If(v[b]):
                    m.d.comb += getattr(self, f"lg_{g}").eq(b)
        return m


class GridPlacement(wiring.Component):
    """Each core's place in the step's grid (see :func:`place_layout`), from the
    descriptor and log2 of its grid sizes.

    Timing: ``load`` in cycle t (with ``desc`` and the ``lg_*`` inputs valid) sets
    ``place`` from cycle t + 1; it holds until the next ``load``.

    Parameters
    ----------
    cores, channels : int
        The chip's cores and DMA channels (a power of two).

    Attributes
    ----------
    desc : In(descriptor_layout()), lg_gp, lg_gm, lg_gk : In(LOG_BITS)
    load : In(1)
    place : Out(ArrayLayout(place_layout(), cores))
    """

    def __init__(self, *, cores: int, channels: int):
        _positive(cores=cores, channels=channels)
        if channels & (channels - 1):
            raise ValueError(f"channels must be a power of two, not {channels}")
        self._cores, self._channels = cores, channels
        super().__init__({"desc": In(descriptor_layout()), **{f"lg_{g}": In(LOG_BITS) for g in ("gp", "gm", "gk")},
                          "load": In(1), "place": Out(data.ArrayLayout(place_layout(), cores))})

    def elaborate(self, platform):
        m = Module()
        d, lg_gp, lg_gm, lg_gk = self.desc, self.lg_gp, self.lg_gm, self.lg_gk
        lgC = (self._channels - 1).bit_length()
        lg_g = Signal(LOG_BITS + 2)              # log2(gk * gp * gm): the cores of one column group
        m.d.comb += lg_g.eq(lg_gk + lg_gp + lg_gm)

        def field(c, at, lg):                    # bits at..at+lg of the core index
            return (Const(c) >> at) & ((Const(1) << lg) - 1)[:DIM_BITS]

        with m.If(self.load):
            for c in range(self._cores):
                j, b, p = Const(c) >> lg_g, Const(c) >> lg_gm, self.place[c]
                m.d.sync += [p.q.eq(field(c, lg_gm, lg_gp)), p.row0.eq(field(c, 0, lg_gm) * d.mc),
                             p.col0.eq(j * d.nc), p.k0.eq(field(c, lg_gm + lg_gp, lg_gk) * d.kc),
                             p.on.eq(j < d.gn), p.a_grp.eq(field(c, 0, lg_g)), p.b_grp.eq(b),
                             p.acc_ch.eq((b & ~(((Const(1) << lg_gk) - 1)[:DIM_BITS] << lg_gp))[:max(1, lgC)]
                                         if lgC else 0)]
        return m


class StepSequencer(wiring.Component):
    """Walks a GEMM's steps (product group, M-block, N-block, K-block; K innermost, the
    N-blocks outside the M-blocks with ``order``), keeps the buffers each step uses and
    the block last finished, and forms the DMA jobs.

    Timing: ``init`` in cycle t makes the first step (all origins 0, buffers 0) current
    from t + 1; ``advance`` in cycle t makes the next step current from t + 1 (on the last
    step it only records that step's block for write-back). ``step`` and the jobs are
    combinational in the current step and ``desc``.

    Attributes
    ----------
    desc : In(descriptor_layout())
        The GEMM, held while it runs.
    init, advance : In(1)
    step : Out(step_layout())
    first_job : Out(job_layout())
        Load the current step's operands (the prologue).
    step_job : Out(job_layout())
        With the current step: write back the last finished block if this step begins a
        new one, and load what the next step does not share, into the other buffers.
    last_job : Out(job_layout())
        Write back the block recorded by the last ``advance`` (the epilogue).
    """

    def __init__(self):
        super().__init__({"desc": In(descriptor_layout()), "init": In(1), "advance": In(1),
                          "step": Out(step_layout()),
                          **{name: Out(job_layout()) for name in ("first_job", "step_job", "last_job")}})

    def elaborate(self, platform):
        m = Module()
        d, s = self.desc, self.step
        p0, m0, n0, k0 = (Signal(24, name=n) for n in ("p0", "m0", "n0", "k0"))
        a_buf, b_buf, c_buf, first = Signal(), Signal(), Signal(), Signal()
        nk, nn, nm = k0 + d.kb >= d.k, n0 + d.nb >= d.n, m0 + d.mb >= d.m
        last = nk & nn & nm & (p0 + d.gp >= d.count)
        nxt_k0 = Mux(nk, 0, k0 + d.kb)
        nxt_n0 = Mux(Mux(d.order, nk & nm, nk), Mux(nn, 0, n0 + d.nb), n0)     # order 1: M-blocks inside
        nxt_m0 = Mux(Mux(d.order, nk, nk & nn), Mux(nm, 0, m0 + d.mb), m0)
        nxt_p0 = Mux(nk & nn & nm, p0 + d.gp, p0)
        same_a = (nxt_p0 == p0) & (nxt_m0 == m0) & (nxt_k0 == k0)   # the next step's A block is this one's
        same_b = (nxt_p0 == p0) & (nxt_n0 == n0) & (nxt_k0 == k0)
        m.d.comb += [s.p0.eq(p0), s.mlen.eq(extent(m0, d.m, d.mb)), s.nlen.eq(extent(n0, d.n, d.nb)),
                     s.klen.eq(extent(k0, d.k, d.kb)), s.a_buf.eq(a_buf), s.b_buf.eq(b_buf), s.c_buf.eq(c_buf),
                     s.first.eq(first), s.later_k.eq(k0 != 0), s.last.eq(last)]
        wb_p, wb_m0, wb_n0 = Signal(24), Signal(24), Signal(24)     # the block last finished
        wb_buf = Signal()
        self._load(m, self.first_job, p0, m0, n0, k0, 0, 0, 1, 1)
        with m.If(~first & (k0 == 0)):
            self._write_back(m, self.step_job, wb_p, wb_m0, wb_n0, wb_buf)
        with m.If(~last):
            self._load(m, self.step_job, nxt_p0, nxt_m0, nxt_n0, nxt_k0, ~a_buf, ~b_buf, ~same_a, ~same_b)
        self._write_back(m, self.last_job, wb_p, wb_m0, wb_n0, wb_buf)

        with m.If(self.init):
            m.d.sync += [p0.eq(0), m0.eq(0), n0.eq(0), k0.eq(0), a_buf.eq(0), b_buf.eq(0), c_buf.eq(0), first.eq(1)]
        with m.Elif(self.advance):
            with m.If(last):
                m.d.sync += [wb_p.eq(p0), wb_m0.eq(m0), wb_n0.eq(n0), wb_buf.eq(c_buf)]
            with m.Else():
                with m.If(nk):              # the block is complete: remember it for write-back
                    m.d.sync += [wb_p.eq(p0), wb_m0.eq(m0), wb_n0.eq(n0), wb_buf.eq(c_buf), c_buf.eq(~c_buf)]
                m.d.sync += [p0.eq(nxt_p0), m0.eq(nxt_m0), n0.eq(nxt_n0), k0.eq(nxt_k0),
                             a_buf.eq(a_buf ^ ~same_a), b_buf.eq(b_buf ^ ~same_b), first.eq(0)]
        return m

    def _load(self, m, job, p, mm, nn, kk, abuf, bbuf, ld_a, ld_b):
        d = self.desc
        m.d.comb += [job.ld.eq(1), job.ld_p.eq(p), job.ld_m0.eq(mm), job.ld_n0.eq(nn), job.ld_k0.eq(kk),
                     job.ld_mlen.eq(extent(mm, d.m, d.mb)), job.ld_nlen.eq(extent(nn, d.n, d.nb)),
                     job.ld_klen.eq(extent(kk, d.k, d.kb)), job.ld_abuf.eq(abuf), job.ld_bbuf.eq(bbuf),
                     job.ld_a.eq(ld_a), job.ld_b.eq(ld_b)]

    def _write_back(self, m, job, p, mm, nn, buf):
        d = self.desc
        m.d.comb += [job.wb.eq(1), job.wb_p.eq(p), job.wb_m0.eq(mm), job.wb_n0.eq(nn),
                     job.wb_mlen.eq(extent(mm, d.m, d.mb)), job.wb_nlen.eq(extent(nn, d.n, d.nb)),
                     job.wb_buf.eq(buf)]


class CoreDispatch(wiring.Component):
    """One core's part of each step: its sub-GEMM descriptor (rows, columns and K of the
    block that fall to its place, operands and accumulators in the step's buffers), and
    whether that core is still working on it.

    Timing: ``issue`` in cycle t offers the descriptor on ``cmd`` in cycle t (combinational
    in ``step`` and ``place``; the core takes it then, being idle at a step's start) if the
    core has work in the step, and sets ``pending`` from t + 1 until the cycle after the
    core's ``done``. ``busy`` adds the core's ``busy_cycles`` in the cycle after each
    ``done``, and is cleared the cycle after ``clear``.

    Parameters
    ----------
    config : AcceleratorConfig
        The core's configuration.
    op_half, acc_half : int
        Words of one operand buffer and of one accumulator buffer in the core's slice.
    acc_base : int
        Byte address of the accumulators on the core's port.

    Attributes
    ----------
    desc : In(descriptor_layout()), step : In(step_layout()), place : In(place_layout())
    issue : In(1)
    cmd : Out(stream.Signature(core descriptor))
        To the core; ``ready`` is not looked at.
    done : In(1), busy_cycles : In(48)
        The core's.
    pending : Out(1)
    clear : In(1), busy : Out(48)
        Cycles the core's array took operands, over the GEMM.
    """

    def __init__(self, *, config: AcceleratorConfig, op_half: int, acc_half: int, acc_base: int):
        self._config = _config(config)
        _positive(op_half=op_half, acc_half=acc_half, acc_base=acc_base)
        self._op_half, self._acc_half, self._acc_base = op_half, acc_half, acc_base
        super().__init__({"desc": In(descriptor_layout()), "step": In(step_layout()), "place": In(place_layout()),
                          "issue": In(1), "cmd": Out(stream.Signature(core_descriptor())), "done": In(1),
                          "busy_cycles": In(COUNTER_BITS), "pending": Out(1), "clear": In(1),
                          "busy": Out(COUNTER_BITS)})

    def elaborate(self, platform):
        m = Module()
        cfg, d, s, p = self._config, self.desc, self.step, self.place
        W = cfg.beat_bytes
        pitch_k = Signal(DIM_BITS)               # a core's rows: its K-range of the step, in words
        pitch_c = Signal(DIM_BITS)
        m.d.comb += [pitch_k.eq(slice_words(Mux(s.klen < d.kc, s.klen, d.kc) * cfg.input_bytes, W)),
                     pitch_c.eq(slice_words(d.nc * cfg.acc_bytes, W))]
        rows, cols, ks = Signal(DIM_BITS + 1), Signal(DIM_BITS + 1), Signal(DIM_BITS + 1)
        m.d.comb += [rows.eq(Mux(s.mlen > p.row0, Mux(s.mlen - p.row0 < d.mc, s.mlen - p.row0, d.mc), 0)),
                     cols.eq(Mux(s.nlen > p.col0, Mux(s.nlen - p.col0 < d.nc, s.nlen - p.col0, d.nc), 0)),
                     ks.eq(Mux(s.klen > p.k0, Mux(s.klen - p.k0 < d.kc, s.klen - p.k0, d.kc), 0))]
        works = p.on & (s.p0 + p.q < d.count) & (rows != 0) & (cols != 0) & (ks != 0)
        cd = self.cmd.payload
        m.d.comb += [cd.m.eq(rows), cd.n.eq(cols), cd.k.eq(ks),
                     cd.a_addr.eq(s.a_buf * self._op_half * W), cd.lda.eq(pitch_k * W),
                     cd.b_addr.eq((s.b_buf * self._op_half + d.mc * pitch_k) * W), cd.ldb.eq(pitch_k * W),
                     cd.c_addr.eq(self._acc_base + s.c_buf * self._acc_half * W), cd.ldc.eq(pitch_c * W),
                     self.cmd.valid.eq(self.issue & works)]
        with m.If(self.issue & works):
            m.d.sync += self.pending.eq(1)
        with m.Elif(self.done):
            m.d.sync += self.pending.eq(0)
        with m.If(self.clear):
            m.d.sync += self.busy.eq(0)
        with m.Elif(self.done):
            m.d.sync += self.busy.eq(self.busy + self.busy_cycles)
        return m


class OperandRouter(wiring.Component):
    """Joins the DMA channels to the SRAM slices (combinational; see ``hdl/dma.py``).

    A slice's A rows come from channel ``(c mod G) mod C`` (``G = gk*gp*gm``), its B
    columns from channel ``(c >> log2 gm) mod C``: a mux of the few channels each can be,
    the write enabled where the channel's beat is for the slice's group. A channel's
    accumulator read goes to the slices of its write-back group (the cores that differ
    from ``wb_core`` in their K-group only); their words are added lane by lane, one
    :class:`WriteBackSum` per channel: integers in the accumulators' width (wrap-around:
    any order), fp32 accumulators in the fixed pairwise tree of
    :class:`~systolab.hdl.float_add.Fp32SumTree` (K-group 0 first).

    Timing: combinational (outputs follow the inputs in the same cycle), except the
    write-back sums: ``wb_data[ch]`` carries the sum of the accumulator words read
    :attr:`wb_stages` advances of ``wb_en[ch]`` earlier (:class:`WriteBackSum`).

    Parameters
    ----------
    cores, channels : int
        The chip's cores and DMA channels (a power of two).
    word_bytes, core_beat : int
        A DMA beat and a slice word, in bytes.
    acc_bytes : int
        Bytes of one accumulator value.
    op_half, acc_half : int
        Words of one operand buffer and of one accumulator buffer in a slice.
    float_subnormals : str, optional
        The accumulators are fp32 (floating-point cores) with this subnormal mode; None
        (the default) for integer accumulators.
    float_split_k : int, optional
        For fp32 accumulators: the leaves of each :class:`WriteBackSum`'s tree (None: the
        largest power of two <= ``cores``).

    Attributes
    ----------
    lg_gp, lg_gm, lg_gk : In(LOG_BITS), place : In(ArrayLayout(place_layout(), cores))
    op_b, op_group, op_addr, op_words, op_data, op_en : In(ArrayLayout(..., channels))
        Each channel's operand write of the cycle (:class:`~systolab.hdl.dma.DmaChannel`).
    wb_core, wb_addr : In(ArrayLayout(..., channels)), wb_data : Out(ArrayLayout(..., channels))
        Each channel's accumulator read and its summed words.
    wb_en : In(ArrayLayout(1, channels))
        Each channel's write-back pipeline advances (its DMA's ``acc_en``).
    a_addr, a_words, a_data, a_en, b_addr, b_words, b_data, b_en : Out(ArrayLayout(..., cores))
        Each slice's two operand write ports (:class:`~systolab.hdl.slice.SramSlice`).
    acc_addr : Out(ArrayLayout(..., cores)), acc_data : In(ArrayLayout(..., cores))
        Each slice's accumulator read.
    written : Out
        Bytes written into the slices in this cycle.
    """

    def __init__(self, *, cores: int, channels: int, word_bytes: int, core_beat: int, acc_bytes: int,
                 op_half: int, acc_half: int, float_subnormals: str | None = None, float_split_k: int | None = None):
        _positive(cores=cores, channels=channels, word_bytes=word_bytes, core_beat=core_beat, acc_bytes=acc_bytes,
                  op_half=op_half, acc_half=acc_half)
        if float_subnormals is not None and acc_bytes != 4:
            raise ValueError(f"fp32 accumulators are 4 bytes, not {acc_bytes}")
        self._float_subnormals, self._split_k = float_subnormals, float_split_k
        #: Register stages of each channel's write-back sum (:func:`~systolab.blocking.writeback_stages`).
        self.wb_stages = writeback_stages(cores, is_float=float_subnormals is not None, split_k=float_split_k)
        if channels & (channels - 1):
            raise ValueError(f"channels must be a power of two, not {channels}")
        if word_bytes % core_beat or word_bytes % acc_bytes:
            raise ValueError(f"word_bytes ({word_bytes}) must be a multiple of core_beat and acc_bytes")
        self._n, self._nch, self._wd, self._w, self._ab = cores, channels, word_bytes, core_beat, acc_bytes
        op = {"b": 1, "group": DIM_BITS, "addr": range(2 * op_half), "words": range(word_bytes // core_beat + 1),
              "data": 8 * word_bytes, "en": 1}
        self._op = op

        def per(shape, n):
            return data.ArrayLayout(shape, n)

        super().__init__({
            **{f"lg_{g}": In(LOG_BITS) for g in ("gp", "gm", "gk")}, "place": In(per(place_layout(), cores)),
            **{f"op_{x}": In(per(shape, channels)) for x, shape in op.items()},
            "wb_core": In(per(range(cores), channels)), "wb_addr": In(per(range(2 * acc_half), channels)),
            "wb_data": Out(per(8 * word_bytes, channels)), "wb_en": In(per(1, channels)),
            **{f"{p}_{x}": Out(per(op[x], cores)) for p in "ab" for x in ("addr", "words", "data", "en")},
            "acc_addr": Out(per(range(2 * acc_half), cores)), "acc_data": In(per(8 * word_bytes, cores)),
            "written": Out(range(2 * cores * word_bytes + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        N, C, W = self._n, self._nch, self._w
        lgC = (C - 1).bit_length()
        lg_g = Signal(LOG_BITS + 2)              # log2(gk * gp * gm): the cores of one column group
        lg_a = Signal(range(lgC + 1))            # log2 of the channels A groups spread over
        m.d.comb += [lg_g.eq(self.lg_gk + self.lg_gp + self.lg_gm), lg_a.eq(Mux(lg_g < lgC, lg_g, lgC))]
        written = []
        for c in range(N):
            place = self.place[c]
            for port, choices, key, grp in (("a", {k: c % (1 << k) for k in range(lgC + 1)}, lg_a, place.a_grp),
                                            ("b", {s: (c >> s) % C for s in range(max(1, N).bit_length())},
                                             self.lg_gm, place.b_grp)):
                src = {x: Signal(name=f"slice{c}_{port}_{x}", shape=shape) for x, shape in self._op.items()}
                with m.Switch(key):
                    for k, chn in choices.items():
                        with m.Case(k):
                            m.d.comb += [src[x].eq(getattr(self, f"op_{x}")[chn]) for x in src]
                en = Signal(name=f"slice{c}_{port}_en")
                m.d.comb += en.eq(src["en"] & (src["b"] == (port == "b")) & (src["group"] == grp) & place.on)
                m.d.comb += [getattr(self, f"{port}_{x}")[c].eq(src[x]) for x in ("addr", "words", "data")]
                m.d.comb += getattr(self, f"{port}_en")[c].eq(en)
                written.append(Mux(en, src["words"] * W, 0))
            # accumulator reads by the channel writing back the core's group (its kk = 0 B group)
            with m.Switch(place.acc_ch):
                for chn in range(C):
                    with m.Case(chn):
                        m.d.comb += self.acc_addr[c].eq(self.wb_addr[chn])
        m.d.comb += self.written.eq(sum(written))
        for ch in range(C):
            m.submodules[f"wb{ch}_sum"] = wb = WriteBackSum(cores=N, lanes=self._wd // self._ab, acc_bytes=self._ab,
                                                            float_subnormals=self._float_subnormals,
                                                            split_k=self._split_k)
            m.d.comb += [wb.lg_gp.eq(self.lg_gp), wb.lg_gm.eq(self.lg_gm), wb.lg_gk.eq(self.lg_gk),
                         wb.wb_core.eq(self.wb_core[ch]), wb.en.eq(self.wb_en[ch]), self.wb_data[ch].eq(wb.data)]
            m.d.comb += [wb.acc_data[c].eq(self.acc_data[c]) for c in range(N)]
        return m


class WriteBackSum(wiring.Component):
    """One DMA channel's write-back beat: the K-groups' partial sums of ``lanes``
    accumulator words, added lane by lane. The cores summed are those that differ from
    ``wb_core`` (K-group 0's core) in their K-group only: integers in the accumulators'
    width (wrap-around: any order), fp32 accumulators in the fixed pairwise tree of
    :class:`~systolab.hdl.float_add.Fp32SumTree` (K-group kk from core ``wb_core + kk * gp * gm``).

    Pipelined in :attr:`stages` register stages (:func:`~systolab.blocking.writeback_stages`),
    each no deeper than the core's PE (docs/timing.md, "Chips"):

    * integers, three or more cores: the masked words of the cores are compressed to two
      (a sum and a carry word) in a carry-save tree of 3:2 compressors, with a register
      after every :data:`~systolab.blocking.CSA_LEVELS_PER_STAGE` levels and after the
      last; the carry-propagate add of the two follows the last register. One or two
      cores: the select and one adder, combinational (no stage);
    * fp32: a register after the core select (each leaf's word), one inside every fp32
      adder (:data:`~systolab.hdl.float_add.ADDER_CUT`) and one between the tree's adder
      levels (not after the last); one leaf: no adder and no stage.

    Timing: with no stage, combinational (``data`` follows the inputs in the same cycle).
    Otherwise every register advances in a cycle where ``en`` is high (a stall holds them
    all), and ``data`` is the sum of the words on ``acc_data`` (with ``wb_core`` of that
    cycle) ``stages`` advances earlier. ``lg_gp``, ``lg_gm`` and ``lg_gk`` are held while a
    GEMM runs. This is the chip's write-back path, timed by ``models/silicon/timing.py``
    (``writeback_sum``: its deepest stage).

    Parameters
    ----------
    cores : int
    lanes : int
        Accumulator words in a beat.
    acc_bytes : int
        Bytes of one accumulator value (4 for fp32 accumulators).
    float_subnormals : str, optional
        The accumulators are fp32 with this subnormal mode; None for integers.
    split_k : int, optional
        fp32 accumulators: the tree's leaves, the most K-groups it adds (a power of two;
        at most the largest power of two <= ``cores``, to which a larger one is cut; 1: no
        adder, K-group 0's word passes through); None (the default): the largest power
        of two <= ``cores``.

    Attributes
    ----------
    lg_gp, lg_gm, lg_gk : In(LOG_BITS)
    wb_core : In(range(cores))
    acc_data : In(ArrayLayout(8 * acc_bytes * lanes, cores))
        Each core's accumulator words of the beat.
    en : In(1)
        Advance the stages (ignored with none).
    data : Out(8 * acc_bytes * lanes)
        Their sums, lane 0 in the low bits.
    stages : int
        The register stages between ``acc_data`` and ``data``.
    """

    def __init__(self, *, cores: int, lanes: int, acc_bytes: int, float_subnormals: str | None = None,
                 split_k: int | None = None):
        _positive(cores=cores, lanes=lanes, acc_bytes=acc_bytes)
        if float_subnormals is not None and acc_bytes != 4:
            raise ValueError(f"fp32 accumulators are 4 bytes, not {acc_bytes}")
        self._n, self._lanes, self._ab, self._float_subnormals = cores, lanes, acc_bytes, float_subnormals
        top = 1 << (cores.bit_length() - 1)                # the largest gk the cores can run
        self._leaves = top if split_k is None else min(top, _power_of_two("split_k", split_k))
        self.stages = writeback_stages(cores, is_float=float_subnormals is not None, split_k=self._leaves)
        width = 8 * acc_bytes * lanes
        super().__init__({**{f"lg_{g}": In(LOG_BITS) for g in ("gp", "gm", "gk")},
                          "wb_core": In(range(cores)), "acc_data": In(data.ArrayLayout(width, cores)),
                          "en": In(1), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if self._float_subnormals is None:
            self._sum_partials(m)
        else:
            self._sum_float_partials(m, self._float_subnormals)
        return m

    def _stage(self, m, values: list, name: str) -> list:
        """``values`` through a register stage that advances with ``en``."""
        regs = [Signal(len(v), name=f"{name}_{i}") for i, v in enumerate(values)]
        with m.If(self.en):
            m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
        return regs

    def _sum_partials(self, m):
        """Integer accumulators: the masked words added in the accumulators' width."""
        width = 8 * self._ab
        lanes = []
        for lane in range(self._lanes):
            total = Signal(width, name=f"sum_{lane}")
            if self.stages == 0:
                part = _masked_words(m, self, [self.acc_data[c][width * lane:width * (lane + 1)]
                                               for c in range(self._n)])
                m.d.comb += total.eq(sum(part))
            else:                                    # the first stage, then the rest of the tree
                m.submodules[f"select{lane}"] = first = CarrySaveSelect(cores=self._n, acc_bytes=self._ab)
                m.d.comb += [first.lg_gp.eq(self.lg_gp), first.lg_gm.eq(self.lg_gm), first.lg_gk.eq(self.lg_gk),
                             first.wb_core.eq(self.wb_core)]
                m.d.comb += [first.acc_data[c].eq(self.acc_data[c][width * lane:width * (lane + 1)])
                             for c in range(self._n)]
                words = self._stage(m, [first.words[i] for i in range(first.outputs)], f"csa_{lane}_r0")
                while len(words) > 2:                # beyond CSA_LEVELS_PER_STAGE levels: more stages
                    words = self._stage(m, _carry_save(m, words, width, f"csa_{lane}_{len(words)}"),
                                        f"csa_{lane}_r{len(words)}")
                m.d.comb += total.eq(words[0] + words[1])
            lanes.append(total)
        m.d.comb += self.data.eq(Cat(*lanes))

    def _sum_float_partials(self, m, subnormals: str):
        """fp32 accumulators: per lane, the K-groups' words in the fixed tree."""
        leaves = self._leaves                              # the largest gk the write-back adds
        lg_s = Signal(LOG_BITS + 1)                        # log2(gp * gm): kk's place in a core index
        m.d.comb += lg_s.eq(self.lg_gp + self.lg_gm)
        cores = []
        for kk in range(leaves):
            core = Signal(range(max(2, self._n)), name=f"kgroup{kk}")
            m.d.comb += core.eq(self.wb_core | (kk << lg_s))     # wb_core is K-group 0's
            cores.append(core)
        lanes = []
        for lane in range(self._lanes):
            m.submodules[f"tree{lane}"] = tree = Fp32SumTree(leaves=leaves, subnormals=subnormals,
                                                             pipelined=self.stages > 0)
            words = []
            for kk, core in enumerate(cores):
                word = Signal(32, name=f"part{kk}_{lane}")
                with m.Switch(core):
                    for c in range(self._n):
                        with m.Case(c):
                            m.d.comb += word.eq(self.acc_data[c][32 * lane:32 * (lane + 1)])
                words.append(word)
            if self.stages:                                  # a register after the select
                words = self._stage(m, words, f"leaf_{lane}")
            m.d.comb += [tree.x[kk].eq(w) for kk, w in enumerate(words)]
            m.d.comb += [tree.lg_count.eq(self.lg_gk), tree.en.eq(self.en)]
            lanes.append(tree.s)
        m.d.comb += self.data.eq(Cat(*lanes))


def _masked_words(m, sel, words: list) -> list:
    """Each core's word where it is in ``sel.wb_core``'s write-back group (differs from it
    in its K-group bits only), else 0 (``sel`` holds ``lg_gp``, ``lg_gm``, ``lg_gk``, ``wb_core``)."""
    kk_mask = Signal(DIM_BITS)
    m.d.comb += kk_mask.eq(((Const(1) << sel.lg_gk) - 1)[:DIM_BITS] << (sel.lg_gp + sel.lg_gm))
    picked = [Signal(name=f"pick{c}") for c in range(len(words))]
    m.d.comb += [p.eq(((Const(c) ^ sel.wb_core) & ~kk_mask) == 0) for c, p in enumerate(picked)]
    return [Mux(p, w, 0) for p, w in zip(picked, words)]


def _carry_save(m, words: list, width: int, name: str) -> list:
    """``words`` compressed by up to ``CSA_LEVELS_PER_STAGE`` levels of 3:2 compressors (each
    turns three words into a sum and a carry word; the sum modulo 2**width is kept), or
    until two are left."""
    for level in range(CSA_LEVELS_PER_STAGE):
        if len(words) <= 2:
            break
        nxt = []
        for i in range(0, len(words) - 2, 3):
            a, b, c = words[i:i + 3]
            s, cy = Signal(width, name=f"{name}_s{level}_{i}"), Signal(width, name=f"{name}_c{level}_{i}")
            m.d.comb += [s.eq(a ^ b ^ c), cy.eq(((a & b) | (a & c) | (b & c)) << 1)]
            nxt += [s, cy]
        words = nxt + words[len(words) - len(words) % 3:]
    return words


class CarrySaveSelect(wiring.Component):
    """The first stage of the integer write-back sum (:class:`WriteBackSum`), one lane: each
    core's accumulator word masked to the write-back group of ``wb_core``, then compressed
    by up to :data:`~systolab.blocking.CSA_LEVELS_PER_STAGE` levels of 3:2 compressors
    (to two words where that is enough). The words' sum modulo ``2**(8 * acc_bytes)`` is
    the group's.

    Timing: combinational. ``models/silicon/timing.py`` synthesises it alone to time this
    stage of a chip with more cores than its write-back stand-in.

    Parameters
    ----------
    cores, acc_bytes : int

    Attributes
    ----------
    lg_gp, lg_gm, lg_gk : In(LOG_BITS), wb_core : In(range(cores))
    acc_data : In(ArrayLayout(8 * acc_bytes, cores))
    words : Out(ArrayLayout(8 * acc_bytes, outputs))
    outputs : int
        The words left after the stage's levels.
    """

    def __init__(self, *, cores: int, acc_bytes: int):
        _positive(cores=cores, acc_bytes=acc_bytes)
        self._n, self._width = cores, 8 * acc_bytes
        n = cores
        for _ in range(CSA_LEVELS_PER_STAGE):
            n = 2 * (n // 3) + n % 3 if n > 2 else n
        self.outputs = n
        super().__init__({**{f"lg_{g}": In(LOG_BITS) for g in ("gp", "gm", "gk")},
                          "wb_core": In(range(cores)), "acc_data": In(data.ArrayLayout(self._width, cores)),
                          "words": Out(data.ArrayLayout(self._width, n))})

    def elaborate(self, platform):
        m = Module()
        words = _carry_save(m, _masked_words(m, self, [self.acc_data[c] for c in range(self._n)]), self._width, "csa")
        m.d.comb += [self.words[i].eq(w) for i, w in enumerate(words)]
        return m


class ChipController(wiring.Component):
    """The chip's state machine: takes a descriptor, has it checked, places the cores,
    then runs the steps: the prologue load, then per step the cores' sub-GEMMs and the
    DMA's job together, a barrier, and finally the last write-back.

    Timing: a descriptor is taken in a cycle t where ``cmd.valid`` and the controller is
    idle (``accept``, clearing the counters); it is checked in t + 1 (a rejected one sets
    ``status`` and raises ``done`` in t + 2); else ``setup`` is high in t + 2 and the
    prologue job starts in t + 3. Each step then: ``issue`` and ``start`` (with
    ``step_job``) in one cycle, ``advance`` in the first cycle after it in which no core
    is ``pending`` and the DMA is not busy, and the next step's ``issue`` in the cycle
    after that; after the last step ``start`` (with ``last_job``) follows ``advance`` by
    one cycle and ``done`` is high the cycle after the DMA fell idle. ``cycles`` counts
    the cycles not idle, ``steps`` the steps issued.

    Parameters
    ----------
    config : AcceleratorConfig
    cores, op_half, acc_half : int
    float_split_k : int, optional
        For the :class:`DescriptorChecker`.

    Attributes
    ----------
    cmd : In(stream.Signature(descriptor_layout()))
    accept : Out(1)
        A descriptor was taken in this cycle.
    desc : Out(descriptor_layout()), lg_gp, lg_gm, lg_gk : Out(LOG_BITS)
        The GEMM being run and log2 of its grid sizes (from its check on).
    setup : Out(1)
        Place the cores and start the steps from the first.
    step : In(step_layout())
    pending, dma_busy : In(1)
        A core is still working on its step; a DMA channel is busy.
    first_job, step_job, last_job : In(job_layout())
    start : Out(1), job : Out(job_layout())
        The DMA's job of the cycle.
    issue, advance : Out(1)
        Start the cores on the step; move on to the next step.
    accumulate : Out(1)
        The running step adds to the accumulators' earlier sums.
    done : Out(1), status : Out(3), cycles, steps : Out(48)
    """

    def __init__(self, *, config: AcceleratorConfig, cores: int, op_half: int, acc_half: int,
                 float_split_k: int | None = None):
        self._config = _config(config)
        _positive(cores=cores, op_half=op_half, acc_half=acc_half)
        self._cores, self._op_half, self._acc_half, self._split_k = cores, op_half, acc_half, float_split_k
        super().__init__({
            "cmd": In(stream.Signature(descriptor_layout())), "accept": Out(1), "desc": Out(descriptor_layout()),
            **{f"lg_{g}": Out(LOG_BITS) for g in ("gp", "gm", "gk")}, "setup": Out(1), "step": In(step_layout()),
            "pending": In(1), "dma_busy": In(1),
            **{name: In(job_layout()) for name in ("first_job", "step_job", "last_job")},
            "start": Out(1), "job": Out(job_layout()), "issue": Out(1), "advance": Out(1), "accumulate": Out(1),
            "done": Out(1), "status": Out(3), "cycles": Out(COUNTER_BITS), "steps": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.checker = checker = DescriptorChecker(config=self._config, cores=self._cores,
                                                           op_half=self._op_half, acc_half=self._acc_half,
                                                           float_split_k=self._split_k)
        state = Signal(range(10))
        m.d.comb += [checker.desc.eq(self.desc), self.cmd.ready.eq(state == IDLE),
                     self.accept.eq(self.cmd.valid & self.cmd.ready), self.setup.eq(state == SETUP),
                     self.done.eq(state == FINISH)]
        with m.If(state != IDLE):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(self.accept):
            m.d.sync += [self.steps.eq(0), self.cycles.eq(0)]

        def start(job):
            m.d.comb += [self.job.eq(job), self.start.eq(1)]

        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(self.accept):
                    m.d.sync += [self.desc.eq(self.cmd.payload), state.eq(CHECK), self.status.eq(0)]
            with m.Case(CHECK):
                with m.If(checker.status != 0):
                    m.d.sync += [self.status.eq(checker.status), state.eq(FINISH)]
                with m.Else():
                    m.d.sync += [state.eq(SETUP), self.lg_gp.eq(checker.lg_gp), self.lg_gm.eq(checker.lg_gm),
                                 self.lg_gk.eq(checker.lg_gk)]
            with m.Case(SETUP):
                m.d.sync += state.eq(PROLOGUE)
            with m.Case(PROLOGUE):       # the first step's operands, nothing to overlap with
                start(self.first_job)
                m.d.sync += state.eq(WAIT_LOAD)
            with m.Case(WAIT_LOAD):
                with m.If(~self.dma_busy):
                    m.d.sync += state.eq(ISSUE)
            with m.Case(ISSUE):          # start the cores on this step, the DMA on its transfers
                start(self.step_job)
                m.d.comb += self.issue.eq(1)
                m.d.sync += [state.eq(RUN), self.steps.eq(self.steps + 1), self.accumulate.eq(self.step.later_k)]
            with m.Case(RUN):            # the barrier: every core done, the DMA idle
                with m.If(~self.pending & ~self.dma_busy):
                    m.d.comb += self.advance.eq(1)
                    m.d.sync += state.eq(Mux(self.step.last, EPILOGUE, ISSUE))
            with m.Case(EPILOGUE):       # the last block's results
                start(self.last_job)
                m.d.sync += state.eq(WAIT_WB)
            with m.Case(WAIT_WB):
                with m.If(~self.dma_busy):
                    m.d.sync += state.eq(FINISH)
            with m.Case(FINISH):
                m.d.sync += state.eq(IDLE)
        return m
