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
than one K-block or K-group (saturation is per addition in ascending k, which an SRAM
addition of block partial sums cannot reproduce), or ``gp``, ``gm`` or ``gk`` not a power
of two. Floating-point accumulation runs over K-blocks (each added to the stored sums in K
order with one fp32 rounding) and K-groups (split-K: the write-back adds the K-groups'
totals in the fixed pairwise tree of :mod:`systolab.hdl.float_add`, K-group 0 first).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .accelerator import COUNTER_BITS, AcceleratorCore
from .chip_parts import ChipController, CoreDispatch, GridPlacement, OperandRouter, StepSequencer
from .dma import ADDR, DmaChannel, descriptor_layout
from .ports import memory_port_signature
from .slice import SramSlice

CHIP_COUNTERS = ("cycles", "steps", "macs", "dram_bytes_read", "dram_bytes_written", "sram_bytes_read",
                 "sram_bytes_written")
OPERAND_WRITE = ("b", "group", "addr", "words", "data", "en")     # a DMA channel's op_* ports


class ChipTop(wiring.Component):
    """The chip described by ``chip`` (a :class:`~systolab.models.chip.config.ChipConfig`; the
    RTL reads ``core``, ``cores``, ``dma_channels``, ``dma_beat_bytes``, ``operand_words``,
    ``acc_words``, ``sram_latency_cycles``, ``slice_queue_depth``, ``dram_latency_cycles``
    and ``float_split_k``).

    It is built from the controller's parts (:mod:`systolab.hdl.chip_parts`, each with its
    timing contract), the DMA channels, the SRAM slices and the cores.

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
        op_half, acc_half = chip.operand_words // 2, chip.acc_words // 2
        split_k = chip.float_split_k if cfg.is_float else None       # the write-back's fp32 tree
        m.submodules.controller = ctl = ChipController(config=cfg, cores=N, op_half=op_half, acc_half=acc_half,
                                                       float_split_k=split_k)
        m.submodules.placement = place = GridPlacement(cores=N, channels=C)
        m.submodules.sequencer = seq = StepSequencer()
        m.submodules.router = router = OperandRouter(cores=N, channels=C, word_bytes=Wd, core_beat=W,
                                                     acc_bytes=cfg.acc_bytes, op_half=op_half, acc_half=acc_half,
                                                     float_subnormals=cfg.subnormals if cfg.is_float else None,
                                                     float_split_k=split_k)
        wiring.connect(m, wiring.flipped(self.cmd), ctl.cmd)
        m.d.comb += [self.done.eq(ctl.done), self.status.eq(ctl.status), self.cycles.eq(ctl.cycles),
                     self.steps.eq(ctl.steps), place.desc.eq(ctl.desc), place.load.eq(ctl.setup),
                     seq.desc.eq(ctl.desc), seq.init.eq(ctl.setup), seq.advance.eq(ctl.advance),
                     ctl.step.eq(seq.step), ctl.first_job.eq(seq.first_job), ctl.step_job.eq(seq.step_job),
                     ctl.last_job.eq(seq.last_job), router.place.eq(place.place)]
        for g in ("lg_gp", "lg_gm", "lg_gk"):
            m.d.comb += [getattr(unit, g).eq(getattr(ctl, g)) for unit in (place, router)]

        dmas = []
        for ch in range(C):
            m.submodules[f"dma{ch}"] = dma = DmaChannel(
                channel=ch, channels=C, cores=N, word_bytes=Wd, core_beat=W, input_bytes=cfg.input_bytes,
                acc_bytes=cfg.acc_bytes, op_half=op_half, acc_half=acc_half, queue_depth=chip.dram_latency_cycles + 4,
                wb_stages=router.wb_stages)
            wiring.connect(m, wiring.flipped(getattr(self, f"mem{ch}")), dma.mem)
            m.d.comb += [dma.desc.eq(ctl.desc), dma.lg_gp.eq(ctl.lg_gp), dma.lg_gm.eq(ctl.lg_gm),
                         dma.lg_gk.eq(ctl.lg_gk), dma.start.eq(ctl.start), dma.job.eq(ctl.job), dma.clear.eq(ctl.accept),
                         router.wb_core[ch].eq(dma.acc_core), router.wb_addr[ch].eq(dma.acc_addr),
                         router.wb_en[ch].eq(dma.acc_en),
                         dma.acc_data.eq(router.wb_data[ch])]
            m.d.comb += [getattr(router, f"op_{x}")[ch].eq(getattr(dma, f"op_{x}")) for x in OPERAND_WRITE]
            dmas.append(dma)
        m.d.comb += ctl.dma_busy.eq(Cat(dma.busy for dma in dmas).any())

        cores, slices, pending = [], [], []
        for c in range(N):
            m.submodules[f"core{c}"] = core = AcceleratorCore(cfg)
            m.submodules[f"slice{c}"] = sl = SramSlice(cfg, banks=Wd // W, operand_words=2 * op_half,
                                                       acc_words=2 * acc_half, latency=chip.sram_latency_cycles,
                                                       queue_depth=chip.slice_queue_depth)
            m.submodules[f"dispatch{c}"] = disp = CoreDispatch(config=cfg, op_half=op_half, acc_half=acc_half,
                                                               acc_base=sl.acc_base)
            wiring.connect(m, core.mem, sl.core)
            wiring.connect(m, disp.cmd, core.cmd)
            m.d.comb += [disp.desc.eq(ctl.desc), disp.step.eq(seq.step), disp.place.eq(place.place[c]),
                         disp.issue.eq(ctl.issue), disp.done.eq(core.done), disp.busy_cycles.eq(core.busy_cycles),
                         disp.clear.eq(ctl.accept), getattr(self, f"busy{c}").eq(disp.busy),
                         sl.accumulate.eq(ctl.accumulate), sl.dma_acc_addr.eq(router.acc_addr[c]),
                         router.acc_data[c].eq(sl.dma_acc_data)]
            m.d.comb += [getattr(sl, f"dma_{p}_{x}").eq(getattr(router, f"{p}_{x}")[c])
                         for p in "ab" for x in ("addr", "words", "data", "en")]
            cores.append(core)
            slices.append(sl)
            pending.append(disp.pending)
        m.d.comb += ctl.pending.eq(Cat(*pending).any())
        self._count(m, ctl, router, dmas, cores, slices)
        return m

    def _count(self, m, ctl, router, dmas, cores, slices):
        """The GEMM's MACs and traffic: DRAM bytes from the channels; SRAM bytes the cores
        read and wrote (an accumulating write also reads), the DMA's writes and reads."""
        W = self._chip.core.beat_bytes
        mac_sum = sum(Mux(core.done, core.macs, 0) for core in cores)
        core_reads = sum(Mux(sl.core.rd_data.valid & sl.core.rd_data.ready, W, 0) for sl in slices)
        core_writes = sum(Mux(sl.core.wr_data.valid & sl.core.wr_data.ready, W, 0) for sl in slices)
        rmw_reads = Mux(ctl.accumulate, core_writes, 0)
        sram_read, sram_written = Signal(COUNTER_BITS), Signal(COUNTER_BITS)
        m.d.comb += [self.dram_bytes_read.eq(sum(dma.bytes_read for dma in dmas)),
                     self.dram_bytes_written.eq(sum(dma.bytes_written for dma in dmas)),
                     self.sram_bytes_read.eq(sram_read + sum(dma.sram_read for dma in dmas)),
                     self.sram_bytes_written.eq(sram_written)]
        with m.If(ctl.accept):
            m.d.sync += [self.macs.eq(0), sram_read.eq(0), sram_written.eq(0)]
        with m.Else():
            m.d.sync += [self.macs.eq(self.macs + mac_sum), sram_read.eq(sram_read + core_reads + rmw_reads),
                         sram_written.eq(sram_written + core_writes + router.written)]
