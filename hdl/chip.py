"""The chip: N accelerator cores around a banked global SRAM, a DMA to DRAM and a
controller that runs a whole blocked GEMM from one descriptor.

The global SRAM is one slice per core (:class:`~systolab.hdl.slice.SramSlice`): the
core's operands and accumulators, each double-buffered. A GEMM (``count`` independent
products of M x N x K, see :func:`~systolab.hdl.dma.descriptor_layout`) runs as *steps*,
one per (product group, M-block, N-block, K-block), in that loop order (K innermost) or,
with the descriptor's ``order`` set, with the N-blocks outside the M-blocks. In a step
every core of the grid computes its part of the block, a sub-GEMM of up to ``mc`` x
``nc`` x ``kb`` from its slice (an ordinary descriptor to the unchanged core), while the
DMA writes back the previous output block and loads the next step's operands into the
other buffers. A and B have a buffer select each: where the next step's A block (same
products, M-block and K-block) or B block is this step's, it is not loaded again and the
next step reads it where it is (with one K-block: A along a row of N-blocks, B along a
column of M-blocks). The step ends when the cores and the DMA have all finished (a
barrier); then the next begins. Partial sums of later K-blocks are added into the
accumulator buffer by the slice's accumulate-on-write, so they never leave the chip; a
block's results go to DRAM while the next block computes.

The DMA has ``dma_channels`` channels, each with its own DRAM port (``mem0`` ...); how
the groups of a step's grid are shared among them is in ``hdl/dma.py``.

The controller rejects a descriptor it cannot run and reports why (:data:`REJECT`): a
zero field, a grid larger than the chip, groups that do not cover the block, a block
whose operands or accumulators do not fit a slice, saturating accumulation over more
than one K-block (saturation is per addition in ascending k, which an SRAM addition of
block partial sums cannot reproduce), floating-point accumulation over more than one
K-group (the write-back adds the K-groups' partial sums in one step, in no order an fp32
chain defines; K-blocks are fine: each is added to the stored sums in K order with one
fp32 rounding), or ``gp`` or ``gm`` not a power of two.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .accelerator import COUNTER_BITS, AcceleratorCore
from .dma import ADDR, LOG_BITS, DmaChannel, descriptor_layout, job_layout
from .ports import DIM_BITS, memory_port_signature
from .ports import descriptor_layout as core_descriptor
from .slice import SramSlice

CHIP_COUNTERS = ("cycles", "steps", "macs", "dram_bytes_read", "dram_bytes_written", "sram_bytes_read",
                 "sram_bytes_written")


class ChipTop(wiring.Component):
    """The chip described by ``chip`` (a :class:`~systolab.models.chip.config.ChipConfig`; the
    RTL reads ``core``, ``cores``, ``dma_channels``, ``dma_beat_bytes``, ``operand_words``,
    ``acc_words``, ``sram_latency_cycles``, ``slice_queue_depth`` and
    ``dram_latency_cycles``).

    Attributes
    ----------
    cmd : In(stream.Signature(descriptor_layout()))
        GEMM descriptors; one runs at a time.
    mem0, mem1, ... : Out(memory_port_signature(dma_beat_bytes, 40))
        The DRAM ports, one per DMA channel.
    done : Out(1)
        High for one cycle when a GEMM's last result has been written (or it was rejected).
    status : Out(3)
        With ``done``: 0 when the GEMM ran, else the reason code of :data:`REJECT`.
    cycles, steps, macs, dram_bytes_read, dram_bytes_written, sram_bytes_read, sram_bytes_written : Out(48)
        Counters of the last (or running) GEMM.
    busy<c> : Out(48)
        Cycles core c's array took operands, over the whole GEMM.
    """

    def __init__(self, chip):
        self._chip = chip
        self._word = chip.dma_beat_bytes
        ports = {"cmd": In(stream.Signature(descriptor_layout())),
                 **{f"mem{ch}": Out(memory_port_signature(self._word, ADDR)) for ch in range(chip.dma_channels)},
                 "done": Out(1), "status": Out(3), **{name: Out(COUNTER_BITS) for name in CHIP_COUNTERS},
                 **{f"busy{c}": Out(COUNTER_BITS) for c in range(chip.cores)}}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        chip, cfg = self._chip, self._chip.core
        N, Wd, W, C = chip.cores, self._word, cfg.beat_bytes, chip.dma_channels
        lgC = (C - 1).bit_length()
        eb, ab = cfg.input_bytes, cfg.acc_bytes
        op_half, acc_half = chip.operand_words // 2, chip.acc_words // 2
        wshift = (W - 1).bit_length()

        def words(nbytes):                       # slice words (core beats)
            return (nbytes + (W - 1)) >> wshift if W > 1 else nbytes

        d = Signal(descriptor_layout())
        lg_gp, lg_gm, lg_gk = Signal(LOG_BITS), Signal(LOG_BITS), Signal(LOG_BITS)
        lg_g = Signal(LOG_BITS + 2)              # log2(gk * gp * gm): the cores of one column group
        m.d.comb += lg_g.eq(lg_gk + lg_gp + lg_gm)

        cores = [AcceleratorCore(cfg) for _ in range(N)]
        slices = [SramSlice(cfg, banks=Wd // W, operand_words=2 * op_half, acc_words=2 * acc_half,
                            latency=chip.sram_latency_cycles, queue_depth=chip.slice_queue_depth) for _ in range(N)]
        dmas = [DmaChannel(channel=ch, channels=C, cores=N, word_bytes=Wd, core_beat=W, input_bytes=eb, acc_bytes=ab,
                           op_half=op_half, acc_half=acc_half, queue_depth=chip.dram_latency_cycles + 4)
                for ch in range(C)]
        for ch, dma in enumerate(dmas):
            m.submodules[f"dma{ch}"] = dma
            wiring.connect(m, wiring.flipped(getattr(self, f"mem{ch}")), dma.mem)
            m.d.comb += [dma.desc.eq(d), dma.lg_gp.eq(lg_gp), dma.lg_gm.eq(lg_gm), dma.lg_gk.eq(lg_gk)]
        dma_busy = Cat(dma.busy for dma in dmas).any()

        IDLE, CHECK, SETUP, PROLOGUE, WAIT_LOAD, ISSUE, RUN, EPILOGUE, WAIT_WB, FINISH = range(10)
        state = Signal(range(10))
        m.d.comb += self.cmd.ready.eq(state == IDLE)
        accept = self.cmd.valid & self.cmd.ready
        with m.If(state != IDLE):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        # -- each core's place in the grid: c = ((j*gk + kk)*gp + q)*gm + i (set in SETUP, one cycle) --
        cq = [Signal(DIM_BITS, name=f"core{c}_q") for c in range(N)]
        k0c = [Signal(DIM_BITS + 8, name=f"core{c}_k0") for c in range(N)]
        con = [Signal(name=f"core{c}_on") for c in range(N)]
        row0 = [Signal(DIM_BITS + 8, name=f"core{c}_row0") for c in range(N)]
        col0 = [Signal(DIM_BITS + 8, name=f"core{c}_col0") for c in range(N)]
        a_grp = [Signal(DIM_BITS, name=f"core{c}_a") for c in range(N)]     # A group: c mod G
        b_grp = [Signal(DIM_BITS, name=f"core{c}_b") for c in range(N)]     # B group: c >> log2(gm)
        acc_ch = [Signal(range(C), name=f"core{c}_wb_channel") for c in range(N)]  # who writes c's results back

        # -- operand routing: a slice's A rows from channel (c mod G) mod C (G = gk*gp*gm), B
        #    columns from channel (c >> log2 gm) mod C; a mux of the few channels each can be --
        lg_a = Signal(range(lgC + 1))            # log2 of the channels A groups spread over
        m.d.comb += lg_a.eq(Mux(lg_g < lgC, lg_g, lgC))
        sram_written = Signal(COUNTER_BITS)
        written = []
        for c in range(N):
            for port, sel_of, grp in (("a", lambda c=c: {k: c % (1 << k) for k in range(lgC + 1)}, a_grp[c]),
                                      ("b", lambda c=c: {s: (c >> s) % C for s in range(max(1, N).bit_length())},
                                       b_grp[c])):
                choices = sel_of()
                key = lg_a if port == "a" else lg_gm
                src = {x: Signal(name=f"slice{c}_{port}_{x}", shape=shape) for x, shape in
                       (("b", 1), ("group", DIM_BITS), ("addr", range(2 * op_half)),
                        ("words", range(Wd // W + 1)), ("data", 8 * Wd), ("en", 1))}
                with m.Switch(key):
                    for k, chn in choices.items():
                        with m.Case(k):
                            m.d.comb += [src[x].eq(getattr(dmas[chn], f"op_{x}")) for x in src]
                en = Signal(name=f"slice{c}_{port}_en")
                m.d.comb += en.eq(src["en"] & (src["b"] == (port == "b")) & (src["group"] == grp) & con[c])
                m.d.comb += [getattr(slices[c], f"dma_{port}_{x}").eq(src[x]) for x in ("addr", "words", "data")]
                m.d.comb += getattr(slices[c], f"dma_{port}_en").eq(en)
                written.append(Mux(en, src["words"] * W, 0))
            # accumulator reads by the channel writing back the core's group (its kk = 0 B group)
            with m.Switch(acc_ch[c]):
                for chn in range(C):
                    with m.Case(chn):
                        m.d.comb += slices[c].dma_acc_addr.eq(dmas[chn].acc_addr)
        # a write-back beat: the K-groups' partial sums (the cores differing from acc_core in kk
        # only), added lane by lane in the accumulators' width
        kk_mask = Signal(DIM_BITS)
        m.d.comb += kk_mask.eq(((Const(1) << lg_gk) - 1)[:DIM_BITS] << (lg_gp + lg_gm))
        for dma in dmas:
            lanes_ = []
            for lane in range(Wd // ab):
                part = [Mux(((Const(c) ^ dma.acc_core) & ~kk_mask) == 0,
                            slices[c].dma_acc_data[8 * ab * lane:8 * ab * (lane + 1)], 0) for c in range(N)]
                total = Signal(8 * ab, name=f"wb_sum_{lane}")
                m.d.comb += total.eq(sum(part))
                lanes_.append(total)
            m.d.comb += dma.acc_data.eq(Cat(*lanes_))
        for c in range(N):
            m.submodules[f"core{c}"] = cores[c]
            m.submodules[f"slice{c}"] = slices[c]
            wiring.connect(m, cores[c].mem, slices[c].core)

        # -- the step: its origin (product group p0, m0, n0, k0) and the next one --------------------
        p0, m0, n0, k0 = (Signal(24, name=n) for n in ("p0", "m0", "n0", "k0"))
        a_buf, b_buf, c_buf = Signal(), Signal(), Signal()  # this step's A and B buffers, its block's accumulators
        first_step = Signal()

        def extent(origin, total, block):
            rest = total - origin
            return Mux(rest < block, rest, block)

        mlen, nlen, klen = extent(m0, d.m, d.mb), extent(n0, d.n, d.nb), extent(k0, d.k, d.kb)
        nk = k0 + d.kb >= d.k
        nn = n0 + d.nb >= d.n
        nm = m0 + d.mb >= d.m
        np_ = p0 + d.gp >= d.count
        last_step = nk & nn & nm & np_
        nxt_k0 = Mux(nk, 0, k0 + d.kb)
        nxt_n0 = Mux(Mux(d.order, nk & nm, nk), Mux(nn, 0, n0 + d.nb), n0)     # order 1: M-blocks inside
        nxt_m0 = Mux(Mux(d.order, nk, nk & nn), Mux(nm, 0, m0 + d.mb), m0)
        nxt_p0 = Mux(nk & nn & nm, p0 + d.gp, p0)
        same_a = (nxt_p0 == p0) & (nxt_m0 == m0) & (nxt_k0 == k0)   # the next step's A block is this one's
        same_b = (nxt_p0 == p0) & (nxt_n0 == n0) & (nxt_k0 == k0)
        start = Signal()
        job = Signal(job_layout())
        for dma in dmas:
            m.d.comb += [dma.start.eq(start), dma.job.eq(job)]

        def load_job(p, mm, nn_, kk, abuf, bbuf, ld_a, ld_b):
            m.d.comb += [job.ld.eq(1), job.ld_p.eq(p), job.ld_m0.eq(mm), job.ld_n0.eq(nn_), job.ld_k0.eq(kk),
                         job.ld_mlen.eq(extent(mm, d.m, d.mb)), job.ld_nlen.eq(extent(nn_, d.n, d.nb)),
                         job.ld_klen.eq(extent(kk, d.k, d.kb)), job.ld_abuf.eq(abuf), job.ld_bbuf.eq(bbuf),
                         job.ld_a.eq(ld_a), job.ld_b.eq(ld_b)]

        # the block last finished (to write back): its origin and buffer
        wb_p, wb_m0, wb_n0 = Signal(24), Signal(24), Signal(24)
        wb_buf = Signal()

        def wb_job(p, mm, nn_, buf):
            m.d.comb += [job.wb.eq(1), job.wb_p.eq(p), job.wb_m0.eq(mm), job.wb_n0.eq(nn_),
                         job.wb_mlen.eq(extent(mm, d.m, d.mb)), job.wb_nlen.eq(extent(nn_, d.n, d.nb)),
                         job.wb_buf.eq(buf)]

        # -- the cores' sub-GEMMs of this step ------------------------------------------------------
        pitch_k = Signal(DIM_BITS)               # a core's rows: its K-range of the step, in words
        pitch_c = Signal(DIM_BITS)
        m.d.comb += [pitch_k.eq(words(Mux(klen < d.kc, klen, d.kc) * eb)), pitch_c.eq(words(d.nc * ab))]
        pending = Signal(N)
        issue = Signal()
        accumulate = Signal()
        for c in range(N):
            cd = Signal(core_descriptor(), name=f"core{c}_desc")
            rows = Signal(DIM_BITS + 1, name=f"core{c}_rows")
            cols = Signal(DIM_BITS + 1, name=f"core{c}_cols")
            ks = Signal(DIM_BITS + 1, name=f"core{c}_k")
            m.d.comb += [rows.eq(Mux(mlen > row0[c], Mux(mlen - row0[c] < d.mc, mlen - row0[c], d.mc), 0)),
                         cols.eq(Mux(nlen > col0[c], Mux(nlen - col0[c] < d.nc, nlen - col0[c], d.nc), 0)),
                         ks.eq(Mux(klen > k0c[c], Mux(klen - k0c[c] < d.kc, klen - k0c[c], d.kc), 0))]
            works = con[c] & (p0 + cq[c] < d.count) & (rows != 0) & (cols != 0) & (ks != 0)
            m.d.comb += [cd.m.eq(rows), cd.n.eq(cols), cd.k.eq(ks),
                         cd.a_addr.eq(a_buf * op_half * W), cd.lda.eq(pitch_k * W),
                         cd.b_addr.eq((b_buf * op_half + d.mc * pitch_k) * W), cd.ldb.eq(pitch_k * W),
                         cd.c_addr.eq(slices[c].acc_base + c_buf * acc_half * W), cd.ldc.eq(pitch_c * W),
                         cores[c].cmd.payload.eq(cd), cores[c].cmd.valid.eq(issue & works),
                         slices[c].accumulate.eq(accumulate)]
            with m.If(issue & works):
                m.d.sync += pending[c].eq(1)
            with m.Elif(cores[c].done):
                m.d.sync += pending[c].eq(0)
            busy = getattr(self, f"busy{c}")
            with m.If(accept):
                m.d.sync += busy.eq(0)
            with m.Elif(cores[c].done):
                m.d.sync += busy.eq(busy + cores[c].busy_cycles)

        # -- counters -------------------------------------------------------------------------------
        mac_sum = sum(Mux(cores[c].done, cores[c].macs, 0) for c in range(N))
        core_reads = sum(Mux(slices[c].core.rd_data.valid & slices[c].core.rd_data.ready, W, 0) for c in range(N))
        core_writes = sum(Mux(slices[c].core.wr_data.valid & slices[c].core.wr_data.ready, W, 0) for c in range(N))
        rmw_reads = Mux(accumulate, core_writes, 0)
        sram_read = Signal(COUNTER_BITS)
        for dma in dmas:
            m.d.comb += dma.clear.eq(accept)
        m.d.comb += [self.dram_bytes_read.eq(sum(dma.bytes_read for dma in dmas)),
                     self.dram_bytes_written.eq(sum(dma.bytes_written for dma in dmas)),
                     self.sram_bytes_read.eq(sram_read + sum(dma.sram_read for dma in dmas)),
                     self.sram_bytes_written.eq(sram_written)]
        with m.If(accept):
            m.d.sync += [self.macs.eq(0), sram_read.eq(0), sram_written.eq(0), self.steps.eq(0), self.cycles.eq(0)]
        with m.Else():
            m.d.sync += [self.macs.eq(self.macs + mac_sum), sram_read.eq(sram_read + core_reads + rmw_reads),
                         sram_written.eq(sram_written + core_writes + sum(written))]

        # -- the controller ---------------------------------------------------------------------------
        m.d.comb += [self.done.eq(state == FINISH)]
        status = Signal(3)
        m.d.comb += self.status.eq(status)

        def log2(v):                             # of a power of two
            out = Signal(LOG_BITS)
            for b_ in range(DIM_BITS):
                with m.If(v[b_]):
                    m.d.comb += out.eq(b_)
            return out

        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(accept):
                    m.d.sync += [d.eq(self.cmd.payload), state.eq(CHECK), status.eq(0)]
            with m.Case(CHECK):
                need_ops = (d.mc + d.nc) * words(d.kc * eb)
                need_acc = d.mc * words(d.nc * ab)
                zero = ((d.m == 0) | (d.n == 0) | (d.k == 0) | (d.count == 0) | (d.mb == 0) | (d.nb == 0)
                        | (d.kb == 0) | (d.mc == 0) | (d.nc == 0) | (d.gp == 0) | (d.gm == 0) | (d.gn == 0)
                        | (d.gk == 0) | (d.kc == 0))
                k_first = Mux(d.kb < d.k, d.kb, d.k)
                with m.If(zero):
                    m.d.sync += [status.eq(1), state.eq(FINISH)]
                with m.Elif(d.gp * d.gm * d.gn * d.gk > N):
                    m.d.sync += [status.eq(2), state.eq(FINISH)]
                with m.Elif((d.mc * d.gm < d.mb) | (d.nc * d.gn < d.nb) | (d.kc * d.gk < d.kb)
                            | (d.kc * (d.gk - 1) >= k_first)):
                    m.d.sync += [status.eq(3), state.eq(FINISH)]
                with m.Elif(need_ops > op_half):
                    m.d.sync += [status.eq(4), state.eq(FINISH)]
                with m.Elif(need_acc > acc_half):
                    m.d.sync += [status.eq(5), state.eq(FINISH)]
                with m.Elif(((d.kb < d.k) | (d.gk > 1)) if cfg.overflow == "saturate" else
                            (d.gk > 1) if cfg.is_float else False):
                    m.d.sync += [status.eq(6), state.eq(FINISH)]
                with m.Elif(((d.gp & (d.gp - 1)) != 0) | ((d.gm & (d.gm - 1)) != 0) | ((d.gk & (d.gk - 1)) != 0)):
                    m.d.sync += [status.eq(7), state.eq(FINISH)]
                with m.Else():
                    m.d.sync += [state.eq(SETUP), lg_gp.eq(log2(d.gp)), lg_gm.eq(log2(d.gm)), lg_gk.eq(log2(d.gk))]
            with m.Case(SETUP):
                def field(c, at, lg):                # bits at..at+lg of the core index
                    return (Const(c) >> at) & ((Const(1) << lg) - 1)[:DIM_BITS]

                for c in range(N):
                    j = Const(c) >> lg_g
                    b = Const(c) >> lg_gm
                    m.d.sync += [cq[c].eq(field(c, lg_gm, lg_gp)), row0[c].eq(field(c, 0, lg_gm) * d.mc),
                                 col0[c].eq(j * d.nc), k0c[c].eq(field(c, lg_gm + lg_gp, lg_gk) * d.kc),
                                 con[c].eq(j < d.gn), a_grp[c].eq(field(c, 0, lg_g)), b_grp[c].eq(b),
                                 acc_ch[c].eq((b & ~(((Const(1) << lg_gk) - 1)[:DIM_BITS] << lg_gp))[:max(1, lgC)]
                                              if lgC else 0)]
                m.d.sync += [state.eq(PROLOGUE), p0.eq(0), m0.eq(0), n0.eq(0), k0.eq(0), a_buf.eq(0), b_buf.eq(0),
                             c_buf.eq(0), first_step.eq(1)]
            with m.Case(PROLOGUE):       # the first step's operands, nothing to overlap with
                load_job(p0, m0, n0, k0, 0, 0, 1, 1)
                m.d.comb += start.eq(1)
                m.d.sync += state.eq(WAIT_LOAD)
            with m.Case(WAIT_LOAD):
                with m.If(~dma_busy):
                    m.d.sync += state.eq(ISSUE)
            with m.Case(ISSUE):          # start the cores on this step, the DMA on its transfers
                m.d.comb += issue.eq(1)
                with m.If(~first_step & (k0 == 0)):
                    wb_job(wb_p, wb_m0, wb_n0, wb_buf)
                with m.If(~last_step):          # what the next step does not share, into the other buffer
                    load_job(nxt_p0, nxt_m0, nxt_n0, nxt_k0, ~a_buf, ~b_buf, ~same_a, ~same_b)
                m.d.comb += start.eq(1)
                m.d.sync += [state.eq(RUN), self.steps.eq(self.steps + 1), accumulate.eq(k0 != 0)]
            with m.Case(RUN):            # the barrier: every core done, the DMA idle
                with m.If((pending == 0) & ~dma_busy):
                    with m.If(last_step):
                        m.d.sync += [state.eq(EPILOGUE), wb_p.eq(p0), wb_m0.eq(m0), wb_n0.eq(n0), wb_buf.eq(c_buf)]
                    with m.Else():
                        with m.If(nk):              # the block is complete: remember it for write-back
                            m.d.sync += [wb_p.eq(p0), wb_m0.eq(m0), wb_n0.eq(n0), wb_buf.eq(c_buf),
                                         c_buf.eq(~c_buf)]
                        m.d.sync += [p0.eq(nxt_p0), m0.eq(nxt_m0), n0.eq(nxt_n0), k0.eq(nxt_k0),
                                     a_buf.eq(a_buf ^ ~same_a), b_buf.eq(b_buf ^ ~same_b), first_step.eq(0),
                                     state.eq(ISSUE)]
            with m.Case(EPILOGUE):       # the last block's results
                wb_job(wb_p, wb_m0, wb_n0, wb_buf)
                m.d.comb += start.eq(1)
                m.d.sync += state.eq(WAIT_WB)
            with m.Case(WAIT_WB):
                with m.If(~dma_busy):
                    m.d.sync += state.eq(FINISH)
            with m.Case(FINISH):
                m.d.sync += state.eq(IDLE)
        return m
