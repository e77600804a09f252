"""One core's slice of the chip's global SRAM, behind the core's own memory port.

A slice holds two memories, each of ``banks`` banks of core-beat-wide words (a DMA beat
is ``banks`` core beats: the DMA writes or reads one word in every bank a cycle; word w
sits in bank ``w % banks``):

* the *operand* memory (A rows and B columns, two buffers: the DMA fills one while the
  core reads the other), written by the DMA through two ports (A rows and B columns come
  from different DMA channels, possibly in the same cycle; they never share a word),
  read by the core;
* the *accumulator* memory (C, two buffers: the core accumulates one output block while
  the DMA writes the other back), written by the core — with ``accumulate`` set, each
  incoming accumulator value is added to the stored one (wrap-around in the accumulator
  width; floating point: an fp32 addition, stored value first, rounded to nearest even),
  which is how partial sums of later K-blocks stay on chip — and read by the DMA.

The core sees byte addresses: operands from 0, the accumulator memory from
:attr:`SramSlice.acc_base`. A core write is one word (the chip's layout puts every C row
on a word); a core read may start at any byte (weight-stationary K-chunks of an A row do)
and then touches two words. A DMA beat covers ``banks`` consecutive words from any word.

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
from .float_mac import FloatMac
from .mac import mac_for
from .ports import ADDR_BITS, DIM_BITS, memory_port_signature
from .queue import Queue

TIME_BITS = 32


class SramSlice(wiring.Component):
    """A core's bank of the global SRAM: operand and accumulator memories, a DMA side and
    the core's memory port (see the module docstring for the timing contract).

    Parameters
    ----------
    config : AcceleratorConfig
        The core this slice serves (its beat is the slice's word; its accumulator format).
    banks : int
        Words a DMA beat spans (a power of two).
    operand_words, acc_words : int
        Words of the operand and accumulator memories (both buffers together).
    latency : int
        Cycles from a read command to its first beat on the core's port (>= 1).
    queue_depth : int
        Read and write commands the port holds.

    Attributes
    ----------
    core : In(memory_port_signature(config.beat_bytes))
        The core's memory port (the core is the requester).
    accumulate : In(1)
        Core writes add to the stored accumulators instead of replacing them.
    dma_a_addr, dma_a_words, dma_a_data, dma_a_en : In
        A DMA write of ``dma_a_words`` (1..banks) consecutive operand words from word
        ``dma_a_addr``, lane i of ``dma_a_data`` into word ``dma_a_addr + i`` (A rows).
    dma_b_addr, dma_b_words, dma_b_data, dma_b_en : In
        The same, for the second write port (B columns).
    dma_acc_addr : In, dma_acc_data : Out
        A DMA read of ``banks`` consecutive accumulator words from ``dma_acc_addr``
        (combinational).
    """

    def __init__(self, config: AcceleratorConfig, *, banks: int, operand_words: int, acc_words: int,
                 latency: int = 2, queue_depth: int = 64):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
        if not isinstance(banks, int) or banks < 1 or banks & (banks - 1):
            raise ValueError(f"banks must be a power of two, not {banks!r}")
        for name, v in (("operand_words", operand_words), ("acc_words", acc_words), ("latency", latency),
                        ("queue_depth", queue_depth)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self._config, self._banks, self._op_words, self._acc_words = config, banks, operand_words, acc_words
        self._latency, self._queue_depth = latency, queue_depth
        W = config.beat_bytes
        super().__init__({
            "core": In(memory_port_signature(W)),
            "accumulate": In(1),
            **{f"dma_{p}_{name}": In(shape) for p in "ab" for name, shape in (
                ("addr", range(operand_words)), ("words", range(banks + 1)), ("data", 8 * W * banks), ("en", 1))},
            "dma_acc_addr": In(range(acc_words)), "dma_acc_data": Out(8 * W * banks),
        })

    @property
    def acc_base(self) -> int:
        """Byte address of the accumulator memory on the core's port."""
        return self._op_words * self._config.beat_bytes

    def elaborate(self, platform):
        m = Module()
        cfg, q = self._config, self._banks
        W = cfg.beat_bytes

        def banked(name: str, words: int):
            depth = -(-words // q)
            return [Memory(shape=8 * W, depth=depth, init=[]) for _ in range(q)], depth

        ops, op_depth = banked("ops", self._op_words)
        accs, acc_depth = banked("accs", self._acc_words)
        for b in range(q):
            m.submodules[f"ops{b}"] = ops[b]
            m.submodules[f"accs{b}"] = accs[b]

        self._dma_side(m, ops, accs)
        now = Signal(TIME_BITS)
        m.d.sync += now.eq(now + 1)
        self._reads(m, ops, op_depth, now)
        self._writes(m, accs)
        return m

    def _bank_of(self, word):                    # the bank of a word: its low log2(banks) bits
        qb = (self._banks - 1).bit_length()
        return word[:qb] if qb else 0

    def _index_of(self, word):                   # its row in that bank
        return word >> (self._banks - 1).bit_length()

    def _dma_side(self, m: Module, ops: list, accs: list) -> None:
        """The DMA side: ``banks`` consecutive words a cycle per port, rotated onto the banks."""
        q, qb, W = self._banks, (self._banks - 1).bit_length(), self._config.beat_bytes
        bank_of, index_of = self._bank_of, self._index_of
        for port in "ab":
            addr, n_words, beat, en = (getattr(self, f"dma_{port}_{x}") for x in ("addr", "words", "data", "en"))
            for b in range(q):
                t = Signal(range(q), name=f"dma_{port}_lane{b}")     # which lane of the beat lands in bank b
                m.d.comb += t.eq((b - bank_of(addr)) % q if qb else 0)
                wp = ops[b].write_port()
                m.d.comb += [wp.addr.eq(index_of(addr + t)), wp.data.eq(beat.word_select(t, 8 * W)),
                             wp.en.eq(en & (t < n_words))]
        acc_lanes = []
        for lane in range(q):
            w = self.dma_acc_addr + lane
            rp_data = Signal(8 * W, name=f"dma_acc_lane{lane}")
            for b in range(q):
                rp = accs[b].read_port(domain="comb")
                m.d.comb += rp.addr.eq(index_of(w))
                with m.If(bank_of(w) == b):
                    m.d.comb += rp_data.eq(rp.data)
            acc_lanes.append(rp_data)
        m.d.comb += self.dma_acc_data.eq(Cat(*acc_lanes))

    def _reads(self, m: Module, ops: list, op_depth: int, now) -> None:
        """Reads: commands with the time their first beat may leave."""
        q, W = self._banks, self._config.beat_bytes
        wshift = (W - 1).bit_length()
        bank_of, index_of = self._bank_of, self._index_of
        rd_entry = data.StructLayout({"ready": TIME_BITS, "addr": ADDR_BITS, "beats": DIM_BITS})
        m.submodules.rdq = rdq = Queue(rd_entry, self._queue_depth)
        rc, rdd = self.core.rd_cmd, self.core.rd_data
        m.d.comb += [rc.ready.eq(~rdq.full), rdq.push.eq(rc.valid & ~rdq.full),
                     rdq.push_data.ready.eq(now + self._latency), rdq.push_data.addr.eq(rc.payload.addr),
                     rdq.push_data.beats.eq(rc.payload.beats)]
        offset = Signal(DIM_BITS)                 # beats of the head command already sent
        head_addr = Signal(ADDR_BITS)
        m.d.comb += head_addr.eq(rdq.head.addr + (offset << wshift))
        # a beat may start at any byte: the two words it can touch, shifted
        lo_word, hi_word = Signal(ADDR_BITS), Signal(ADDR_BITS)
        m.d.comb += [lo_word.eq(head_addr >> wshift), hi_word.eq(lo_word + 1)]
        lo, hi = Signal(8 * W), Signal(8 * W)
        for b in range(q):
            rlo, rhi = ops[b].read_port(domain="comb"), ops[b].read_port(domain="comb")
            m.d.comb += [rlo.addr.eq(index_of(lo_word)),
                         rhi.addr.eq(Mux(index_of(hi_word) < op_depth, index_of(hi_word), 0))]
            with m.If(bank_of(lo_word) == b):
                m.d.comb += lo.eq(rlo.data)
            with m.If(bank_of(hi_word) == b):
                m.d.comb += hi.eq(rhi.data)
        byte = head_addr[:wshift] if wshift else 0
        both = Signal(16 * W)
        m.d.comb += both.eq(Cat(lo, hi) >> (byte << 3) if wshift else lo)
        m.d.comb += [rdd.valid.eq(rdq.nonempty & (rdq.head.ready <= now)), rdd.payload.eq(both[:8 * W])]
        sent = rdd.valid & rdd.ready
        last = offset == rdq.head.beats - 1
        m.d.comb += rdq.pop.eq(sent & last)
        with m.If(sent):
            m.d.sync += offset.eq(Mux(last, 0, offset + 1))

    def _writes(self, m: Module, accs: list) -> None:
        """Writes: accumulator words, added to what is stored when ``accumulate``."""
        cfg, q = self._config, self._banks
        W = cfg.beat_bytes
        wshift = (W - 1).bit_length()
        bank_of, index_of = self._bank_of, self._index_of
        wr_entry = data.StructLayout({"addr": ADDR_BITS, "beats": DIM_BITS})
        m.submodules.wrq = wrq = Queue(wr_entry, self._queue_depth)
        wc, wd = self.core.wr_cmd, self.core.wr_data
        m.d.comb += [wc.ready.eq(~wrq.full), wrq.push.eq(wc.valid & ~wrq.full), wrq.push_data.addr.eq(wc.payload.addr),
                     wrq.push_data.beats.eq(wc.payload.beats), wd.ready.eq(wrq.nonempty)]
        woffset = Signal(DIM_BITS)
        wword = Signal(ADDR_BITS)
        m.d.comb += wword.eq(((wrq.head.addr - self.acc_base) >> wshift) + woffset)
        old = Signal(8 * W)
        wps = []
        for b in range(q):
            rp = accs[b].read_port(domain="comb")
            m.d.comb += rp.addr.eq(index_of(wword))
            with m.If(bank_of(wword) == b):
                m.d.comb += old.eq(rp.data)
            wp = accs[b].write_port()
            m.d.comb += wp.addr.eq(index_of(wword))
            wps.append(wp)
        ab = cfg.acc_bytes
        mac = mac_for(cfg)

        def add(x, y):                            # fp32: an fp32 addition; ints: wrap in 8*ab bits below
            return mac.add(m, x, y) if isinstance(mac, FloatMac) else x + y

        new = Signal(8 * W)
        for e in range(W // ab):
            lo_b, hi_b = 8 * ab * e, 8 * ab * (e + 1)
            take = wd.payload.strobe[ab * e]      # strobes cover whole accumulators
            summed = Signal(unsigned(8 * ab), name=f"acc_sum{e}")
            m.d.comb += summed.eq(add(old[lo_b:hi_b], wd.payload.data[lo_b:hi_b]))  # ints: wrap in 8*ab bits
            m.d.comb += new[lo_b:hi_b].eq(Mux(take, Mux(self.accumulate, summed, wd.payload.data[lo_b:hi_b]),
                                              old[lo_b:hi_b]))
        accepted = wd.valid & wd.ready
        for b, wp in enumerate(wps):
            m.d.comb += [wp.data.eq(new), wp.en.eq(accepted & (bank_of(wword) == b))]
        wlast = woffset == wrq.head.beats - 1
        m.d.comb += wrq.pop.eq(accepted & wlast)
        with m.If(accepted):
            m.d.sync += woffset.eq(Mux(wlast, 0, woffset + 1))
