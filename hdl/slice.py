"""One core's slice of the chip's global SRAM, behind the core's own memory port.

A slice holds two memories of ``word_bytes``-wide words (the chip's DMA beat):

* the *operand* memory (A rows and B columns, two buffers: the DMA fills one while the
  core reads the other), written by the DMA, read by the core;
* the *accumulator* memory (C, two buffers: the core accumulates one output block while
  the DMA writes the other back), written by the core — with ``accumulate`` set, each
  incoming accumulator value is added to the stored one (wrap-around in the accumulator
  width), which is how partial sums of later K-blocks stay on chip — and read by the DMA.

The core sees byte addresses: operands from 0, the accumulator memory from
:attr:`SramSlice.acc_base`. Every row the core touches starts on a word and every access
written is one core beat inside one word (the chip's layout guarantees it), a lane of the
word; a read beat may start at any byte.

Timing contract of the core's port (what ``sim/memory.py``'s ``ExternalMemory`` does with
``bytes_per_cycle`` = the core's beat and no stalls, so the core's cycle model holds as
validated): read and write commands are accepted every cycle while fewer than
``queue_depth`` are waiting (the chip sizes the queues so that a core's loader, at most a
few chunks ahead, never fills them in a way that delays a beat); the first beat of a read
command accepted in cycle t is valid from cycle t + ``latency``, later beats one per
cycle while the core takes them, commands served in order; write data is accepted from
the cycle after its command, one beat per cycle.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from .accelerator import ADDR_BITS, DIM_BITS, memory_port_signature
from .queue import Queue

TIME_BITS = 32


class SramSlice(wiring.Component):
    """A core's bank of the global SRAM: operand and accumulator memories, a DMA side and
    the core's memory port (see the module docstring for the timing contract).

    Parameters
    ----------
    config : AcceleratorConfig
        The core this slice serves (its beat width and accumulator format).
    word_bytes : int
        Width of a memory word (the DMA beat): a multiple of the core's beat.
    operand_words, acc_words : int
        Depth of the operand and accumulator memories (both buffers together).
    latency : int
        Cycles from a read command to its first beat on the core's port (>= 1).
    queue_depth : int
        Read and write commands the port holds (the core never has more in flight).

    Attributes
    ----------
    core : In(memory_port_signature(config.beat_bytes))
        The core's memory port (the core is the requester).
    accumulate : In(1)
        Core writes add to the stored accumulators instead of replacing them.
    dma_op_addr, dma_op_data, dma_op_en : In
        A DMA write of one operand word.
    dma_acc_addr : In, dma_acc_data : Out
        A DMA read of one accumulator word (combinational).
    """

    def __init__(self, config: AcceleratorConfig, *, word_bytes: int, operand_words: int, acc_words: int,
                 latency: int = 2, queue_depth: int = 64):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
        W = config.beat_bytes
        if not isinstance(word_bytes, int) or word_bytes < W or word_bytes % W:
            raise ValueError(f"word_bytes must be a multiple of the core's beat ({W}), not {word_bytes!r}")
        for name, v in (("operand_words", operand_words), ("acc_words", acc_words), ("latency", latency),
                        ("queue_depth", queue_depth)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self._config, self._word, self._op_words, self._acc_words = config, word_bytes, operand_words, acc_words
        self._latency, self._queue_depth = latency, queue_depth
        super().__init__({
            "core": In(memory_port_signature(W)),
            "accumulate": In(1),
            "dma_op_addr": In(range(operand_words)), "dma_op_data": In(8 * word_bytes), "dma_op_en": In(1),
            "dma_acc_addr": In(range(acc_words)), "dma_acc_data": Out(8 * word_bytes),
        })

    @property
    def acc_base(self) -> int:
        """Byte address of the accumulator memory on the core's port."""
        return self._op_words * self._word

    def elaborate(self, platform):
        m = Module()
        cfg, Wd, W = self._config, self._word, self._config.beat_bytes
        lanes = Wd // W
        lane_bits = max(1, (lanes - 1).bit_length())
        word_shift = (Wd - 1).bit_length() if Wd > 1 else 0
        lane_shift = (W - 1).bit_length() if W > 1 else 0

        m.submodules.operands = ops = Memory(shape=8 * Wd, depth=self._op_words, init=[])
        m.submodules.accs = accs = Memory(shape=8 * Wd, depth=self._acc_words, init=[])
        dma_wp = ops.write_port()
        m.d.comb += [dma_wp.addr.eq(self.dma_op_addr), dma_wp.data.eq(self.dma_op_data), dma_wp.en.eq(self.dma_op_en)]
        dma_rp = accs.read_port(domain="comb")
        m.d.comb += [dma_rp.addr.eq(self.dma_acc_addr), self.dma_acc_data.eq(dma_rp.data)]

        now = Signal(TIME_BITS)
        m.d.sync += now.eq(now + 1)

        # -- reads: commands with the time their first beat may leave ---------------------------
        rd_entry = data.StructLayout({"ready": TIME_BITS, "addr": ADDR_BITS, "beats": DIM_BITS})
        m.submodules.rdq = rdq = Queue(rd_entry, self._queue_depth)
        rc, rdd = self.core.rd_cmd, self.core.rd_data
        m.d.comb += [rc.ready.eq(~rdq.full), rdq.push.eq(rc.valid & ~rdq.full),
                     rdq.push_data.ready.eq(now + self._latency), rdq.push_data.addr.eq(rc.payload.addr),
                     rdq.push_data.beats.eq(rc.payload.beats)]
        offset = Signal(DIM_BITS)                 # beats of the head command already sent
        head_addr = Signal(ADDR_BITS)
        m.d.comb += head_addr.eq(rdq.head.addr + (offset << lane_shift))
        # a beat may start at any byte (weight-stationary K-chunks of an A row do): the two
        # words it can touch, shifted
        lo_rp, hi_rp = ops.read_port(domain="comb"), ops.read_port(domain="comb")
        word = Signal(range(self._op_words))
        m.d.comb += [word.eq(head_addr >> word_shift), lo_rp.addr.eq(word),
                     hi_rp.addr.eq(Mux(word + 1 < self._op_words, word + 1, word))]
        byte = head_addr[:word_shift] if word_shift else 0
        both = Signal(16 * Wd)
        m.d.comb += both.eq(Cat(lo_rp.data, hi_rp.data) >> (byte << 3) if word_shift else lo_rp.data)
        m.d.comb += [rdd.valid.eq(rdq.nonempty & (rdq.head.ready <= now)), rdd.payload.eq(both[:8 * W])]
        sent = rdd.valid & rdd.ready
        last = offset == rdq.head.beats - 1
        m.d.comb += rdq.pop.eq(sent & last)
        with m.If(sent):
            m.d.sync += offset.eq(Mux(last, 0, offset + 1))

        # -- writes: accumulator beats, added to what is stored when `accumulate` -----------------
        wr_entry = data.StructLayout({"addr": ADDR_BITS, "beats": DIM_BITS})
        m.submodules.wrq = wrq = Queue(wr_entry, self._queue_depth)
        wc, wd = self.core.wr_cmd, self.core.wr_data
        m.d.comb += [wc.ready.eq(~wrq.full), wrq.push.eq(wc.valid & ~wrq.full), wrq.push_data.addr.eq(wc.payload.addr),
                     wrq.push_data.beats.eq(wc.payload.beats), wd.ready.eq(wrq.nonempty)]
        woffset = Signal(DIM_BITS)
        waddr = Signal(ADDR_BITS)
        m.d.comb += waddr.eq(wrq.head.addr - self.acc_base + (woffset << lane_shift))
        acc_rp = accs.read_port(domain="comb")
        acc_wp = accs.write_port(granularity=8 * W)
        wlane = Signal(lane_bits)
        m.d.comb += [acc_rp.addr.eq(waddr >> word_shift), acc_wp.addr.eq(waddr >> word_shift),
                     wlane.eq(waddr[lane_shift:lane_shift + lane_bits] if lanes > 1 else 0)]
        old = Signal(8 * W)
        m.d.comb += old.eq(acc_rp.data.word_select(wlane, 8 * W) if lanes > 1 else acc_rp.data)
        ab = cfg.acc_bytes
        new = Signal(8 * W)
        for e in range(W // ab):
            lo, hi = 8 * ab * e, 8 * ab * (e + 1)
            take = wd.payload.strobe[ab * e]      # strobes cover whole accumulators
            summed = Signal(unsigned(8 * ab), name=f"acc_sum{e}")
            m.d.comb += summed.eq(old[lo:hi] + wd.payload.data[lo:hi])
            m.d.comb += new[lo:hi].eq(Mux(take, Mux(self.accumulate, summed, wd.payload.data[lo:hi]), old[lo:hi]))
        m.d.comb += acc_wp.data.eq(Cat(*([new] * lanes)))
        accepted = wd.valid & wd.ready
        for n in range(lanes):
            m.d.comb += acc_wp.en[n].eq(accepted & (wlane == n))
        wlast = woffset == wrq.head.beats - 1
        m.d.comb += wrq.pop.eq(accepted & wlast)
        with m.If(accepted):
            m.d.sync += woffset.eq(Mux(wlast, 0, woffset + 1))
        return m
