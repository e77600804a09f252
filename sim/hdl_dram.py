"""A simulation-only DRAM inside the simulated design: the chip's DRAM ports served in the
RTL, so that cocotb never drives a beat.

:class:`SimChip` wraps the chip (:class:`~systolab.hdl.chip.ChipTop`, unchanged: it is
what is synthesised; this wrapper never is) with :class:`SimDram`: one byte-addressed
storage shared by every DMA channel, as :class:`~systolab.sim.memory.ExternalMemory`'s
ports share one ``bytearray``, and per channel the memory model's timing contract:

* a read command accepted in cycle t is answered from cycle t + ``latency`` on, its beats
  in order, beat j holding the bytes at ``addr + j * W`` (no alignment needed; bytes past
  the storage read as zero);
* a bandwidth credit shared by the channel's reads and writes: a beat needs
  :func:`~systolab.blocking.beat_spacing` cycles of credit, which fills in that many cycles and holds no
  more (what the float credit of ``sim/memory.py`` does with ``charge_writes``; a read
  and a write beat in the same cycle, which the DMA never issues on one channel, are
  charged once);
* a write beat may follow its command from the next cycle; bytes whose ``writable`` bit
  is clear (outside C) are not written and are counted as violations;
* random stalls from a xorshift64 linear-feedback generator per channel (seeded from
  cocotb, so runs are reproducible) on the read and write command streams, the write data
  stream and the read data offer, each with probability ``stall_threshold / 2**16``.

With no stalls the chip's counters equal those under the Python memory model, beat for
beat, and so equal the chip's cycle model (``models/chip/perf.py``).

The storage is a Verilog array written here (:class:`_Ram`, appended to the generated
Verilog: Amaranth's memories emit one initial line per word). In a Verilog simulator the
bench loads it in one cycle from files (``$fread`` of :data:`LOAD_FILES`, written by
:func:`write_load_files`) and reads a range of rows back in one cycle into
:data:`DUMP_FILE` (``$writememh``, read by :func:`read_dump_file`): the ``bulk`` ports.
In Amaranth's simulator (no file tasks) a back door loads it a block of rows
(:data:`BACK_DOOR_BYTES` and their ``writable`` bits) per cycle and reads it back a block
per cycle. The test bench uses those and the descriptor stream, nothing else.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Const, DomainRenamer, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..blocking import beat_spacing
from ..hdl.accelerator import COUNTER_BITS
from ..hdl.chip import CHIP_COUNTERS, ChipTop
from ..hdl.dma import ADDR, descriptor_layout
from ..hdl.ports import DIM_BITS, command_layout, memory_port_signature
from ..hdl.queue import Queue
from ..hdl.verilog import hdl_fingerprint
from . import sim_top
from .sim_top import wrap_top

SIM_CHIP_TOP = "systolab_chip_sim"
RAM_MODULE = "systolab_sim_ram"
TIME_BITS = 32
STALL_BITS = 16
#: The smallest storage a build gets (bytes); plans that need more get the next power of two.
MIN_DRAM_BYTES = 1 << 18

def dram_size(needed_bytes: int, beat_bytes: int) -> int:
    """The storage a build gets for ``needed_bytes``: a power of two, at least
    :data:`MIN_DRAM_BYTES` and two back-door blocks (:func:`back_door_rows`)."""
    size = max(MIN_DRAM_BYTES, 2 * back_door_rows(beat_bytes) * beat_bytes)
    while size < needed_bytes:
        size *= 2
    return size


#: Bytes the back door moves a cycle: each cycle is a Python wake-up in the bench, the
#: width costs the simulator nothing.
BACK_DOOR_BYTES = 512


def back_door_rows(beat_bytes: int) -> int:
    """Rows of ``beat_bytes`` in a back-door block (a power of two, at least two)."""
    return max(2, BACK_DOOR_BYTES // beat_bytes)


def back_door_words(image: np.ndarray, writable: np.ndarray, beat_bytes: int) -> list[int]:
    """The back door's load words for DRAM from byte 0: per block of
    :func:`back_door_rows` rows, its bytes, then one ``writable`` bit a byte."""
    block = back_door_rows(beat_bytes) * beat_bytes
    n = -(-len(image) // block) * block
    data, bits = np.zeros(n, np.uint8), np.zeros(n, bool)
    data[:len(image)], bits[:len(writable)] = image, writable
    masks = np.packbits(bits, bitorder="little")
    return [int.from_bytes(data[i * block:(i + 1) * block].tobytes(), "little")
            | int.from_bytes(masks[i * block // 8:(i + 1) * block // 8].tobytes(), "little") << (8 * block)
            for i in range(n // block)]


#: The files a bulk load reads (``$fread``: binary, row after row, each row's most
#: significant byte first), in the simulator's working folder: the bytes, and their
#: ``writable`` bits (one a byte, a row's bits in whole bytes). Binary, not ``$readmemh``:
#: Verilator parses text a character at a time, shifting the whole row for each (0.02 s
#: a load on sl-small, an eighth of a 17,691-cycle GEMM's run; ``$fread`` 0.002 s).
LOAD_FILES = ("systolab_dram.bin", "systolab_dram_writable.bin")
#: The file a bulk read-back writes (``$writememh``, a row a line), in the same folder.
DUMP_FILE = "systolab_dram_dump.hex"


def write_load_files(folder: Path, image: np.ndarray, writable: np.ndarray, beat_bytes: int, rows: int) -> None:
    """The bulk load's files (:data:`LOAD_FILES`) in ``folder``: DRAM from row 0 to ``rows``
    (rows of ``beat_bytes``): ``image`` (uint8) and ``writable`` (bool, a byte each), zero
    and not writable past them."""
    W = beat_bytes
    data, bits = np.zeros(rows * W, np.uint8), np.zeros(rows * W, bool)
    n = min(len(image), rows * W)
    data[:n], bits[:n] = image[:n], writable[:n]
    pad = -W % 8                                   # a row's bits in whole bytes, zero above
    msb_first = np.concatenate([np.zeros((rows, pad), bool), bits.reshape(rows, W)[:, ::-1]], axis=1)
    (folder / LOAD_FILES[0]).write_bytes(data.reshape(rows, W)[:, ::-1].tobytes())
    (folder / LOAD_FILES[1]).write_bytes(np.packbits(msb_first, axis=1).tobytes())


def read_dump_file(folder: Path, beat_bytes: int) -> np.ndarray:
    """The bytes (uint8) of the rows a bulk read-back wrote (:data:`DUMP_FILE` in ``folder``)."""
    lines = (line.strip() for line in (folder / DUMP_FILE).read_text().splitlines())
    words = [line for line in lines if line and not line.startswith(("@", "//"))]
    rows = np.frombuffer(bytes.fromhex("".join(w.rjust(2 * beat_bytes, "0") for w in words)), np.uint8)
    return rows.reshape(-1, beat_bytes)[:, ::-1].reshape(-1)


def _bulk_ports(beat_bytes: int, size_bytes: int) -> dict:
    """The bulk load's and read-back's ports: a cycle with ``bulk_load`` high loads the
    :data:`LOAD_FILES`; one with ``bulk_read`` high writes rows ``bulk_first`` to
    ``bulk_last`` to :data:`DUMP_FILE`."""
    rows = size_bytes // beat_bytes
    return {"bulk_load": In(1), "bulk_read": In(1), "bulk_first": In(range(rows)), "bulk_last": In(range(rows))}


def _back_door_ports(beat_bytes: int, size_bytes: int, channels: int | None = None, *, bulk: bool = False) -> dict:
    """The back door's ports, or with ``bulk`` the bulk ones (:func:`_bulk_ports`); and
    the stall generators', for ``channels``."""
    block = back_door_rows(beat_bytes) * beat_bytes
    blocks = size_bytes // block
    ports = _bulk_ports(beat_bytes, size_bytes) if bulk else {
        "ld_valid": In(1), "ld_addr": In(range(blocks)), "ld_word": In(9 * block),
        "rb_valid": In(1), "rb_addr": In(range(blocks)), "rb_data": Out(8 * block)}
    if channels is not None:
        ports.update({"arm": In(1), "seeds": In(64 * channels), "stall_threshold": In(STALL_BITS)})
    return ports


class _Ram:
    """A memory of ``1 << abits`` words of ``width`` bits, written by the Verilog module it
    emits (:meth:`verilog`): asynchronous read ports, write ports of whole words or of
    bytes (one statement per byte, so that ports writing different bytes of one word in
    one cycle all take effect; no loops, whose delayed writes simulators may collapse), all
    zero at time 0. Ports are collected while elaborating."""

    def __init__(self, name: str, width: int, abits: int):
        self.name, self.width, self.abits = name, width, abits
        self.reads: list = []
        self.writes: list = []
        self.load: tuple[str, Signal] | None = None            # (file, load strobe)
        self.dump: tuple[str, Signal, Signal, Signal] | None = None  # (file, strobe, first row, last row)

    def load_from(self, file: str, strobe) -> None:
        """In a cycle ``strobe`` is high, load ``file`` (``$fread``: binary, each row's most
        significant byte first) from row 0."""
        self.load = (file, strobe)

    def dump_to(self, file: str, strobe, first, last) -> None:
        """In a cycle ``strobe`` is high, write rows ``first`` to ``last`` to ``file`` (``$writememh``)."""
        self.dump = (file, strobe, first, last)

    def read(self, addr) -> Signal:
        out = Signal(self.width)
        self.reads.append((addr, out))
        return out

    def write(self, addr, value, enables) -> None:
        """Write ``value`` at ``addr`` where ``enables`` (one bit: the word; else one a byte)."""
        assert len(enables) in (1, self.width // 8)
        self.writes.append((addr, value, enables))

    def amaranth(self, m: Module) -> Memory:
        """The same memory as an Amaranth one, for Amaranth's simulator (which runs no Verilog)."""
        mem = Memory(shape=self.width, depth=1 << self.abits, init=[])
        for addr, out in self.reads:
            port = mem.read_port(domain="comb")
            m.d.comb += [port.addr.eq(addr[:self.abits]), out.eq(port.data)]
        for addr, value, enables in self.writes:
            port = mem.write_port(granularity=self.width // len(enables))
            m.d.comb += [port.addr.eq(addr[:self.abits]), port.data.eq(value), port.en.eq(enables)]
        return mem

    def instance(self, m: Module) -> Instance:
        rdata = Signal(len(self.reads) * self.width)
        m.d.comb += [out.eq(rdata[i * self.width:(i + 1) * self.width]) for i, (_, out) in enumerate(self.reads)]
        bulk = {}
        if self.load is not None:
            bulk["i_load"] = self.load[1]
        if self.dump is not None:
            _, strobe, first, last = self.dump
            bulk.update(i_dump=strobe, i_dump_first=first[:self.abits], i_dump_last=last[:self.abits])
        return Instance(self.name, i_clk=ClockSignal(), i_raddr=Cat(*(a[:self.abits] for a, _ in self.reads)),
                        o_rdata=rdata, i_waddr=Cat(*(a[:self.abits] for a, _, _ in self.writes)),
                        i_wdata=Cat(*(v for _, v, _ in self.writes)), i_wen=Cat(*(e for _, _, e in self.writes)),
                        **bulk)

    def _bulk_verilog(self) -> tuple[list[str], list[str]]:
        """(port declarations, statements on the clock's edge) of the file load and dump."""
        ports, body = [], []
        if self.load is not None:
            ports.append("  input wire load,")
            body += ["    if (load) begin", f'      fd = $fopen("{self.load[0]}", "rb");',
                     f'      if (fd == 0) $fatal(1, "cannot open {self.load[0]}");',
                     "      got = $fread(mem, fd);", "      $fclose(fd);", "    end"]
        if self.dump is not None:
            ab = self.abits
            ports += ["  input wire dump,", f"  input wire [{ab - 1}:0] dump_first,",
                      f"  input wire [{ab - 1}:0] dump_last,"]
            body.append(f'    if (dump) $writememh("{self.dump[0]}", mem, dump_first, dump_last);')
        return ports, body

    def verilog(self) -> str:
        w, ab, nr, nw = self.width, self.abits, len(self.reads), len(self.writes)
        nen = sum(len(e) for _, _, e in self.writes)
        bulk_ports, bulk_body = self._bulk_verilog()
        lines = [f"module {self.name}(", "  input wire clk,", *bulk_ports, f"  input wire [{nr * ab - 1}:0] raddr,",
                 f"  output wire [{nr * w - 1}:0] rdata,", f"  input wire [{nw * ab - 1}:0] waddr,",
                 f"  input wire [{nw * w - 1}:0] wdata,", f"  input wire [{nen - 1}:0] wen", ");",
                 f"  reg [{w - 1}:0] mem [0:{(1 << ab) - 1}];", "  integer i, fd, got;",
                 f"  initial for (i = 0; i < {1 << ab}; i = i + 1) mem[i] = {w}'d0;"]
        lines += [f"  assign rdata[{r * w + w - 1}:{r * w}] = mem[raddr[{r * ab + ab - 1}:{r * ab}]];"
                  for r in range(nr)]
        lines.append("  always @(posedge clk) begin")
        lines += bulk_body
        en = 0
        for p, (_, _, enables) in enumerate(self.writes):
            at = f"mem[waddr[{p * ab + ab - 1}:{p * ab}]]"
            if len(enables) == 1:
                lines.append(f"    if (wen[{en}]) {at} <= wdata[{p * w + w - 1}:{p * w}];")
            else:
                lines += [f"    if (wen[{en + g}]) {at}[{8 * g + 7}:{8 * g}] <= wdata[{p * w + 8 * g + 7}:{p * w + 8 * g}];"
                          for g in range(len(enables))]
            en += len(enables)
        lines += ["  end", "endmodule", ""]
        return "\n".join(lines)


def _xorshift64(s):
    s = s ^ (s << 13)[:64]
    s = s ^ (s >> 7)
    return s ^ (s << 17)[:64]


def _popcount(bits) -> object:
    terms = [bits[i] for i in range(len(bits))]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


class SimDram(wiring.Component):
    """The DRAM of ``channels`` ports (``mem0`` ...: the memory's side of
    :func:`~systolab.hdl.ports.memory_port_signature`), ``size_bytes`` of storage in rows of
    ``beat_bytes``.

    Parameters
    ----------
    channels, beat_bytes, size_bytes : int
        Ports, beat (bytes, a power of two), storage (bytes, a power of two, two back-door blocks at least).
    latency : int
        Cycles from a read command's acceptance to its first beat (at least 1).
    spacing : int
        Cycles of credit a beat needs (:func:`~systolab.blocking.beat_spacing`).
    queue_depth : int
        Commands each port holds (read and write each); a full queue is not ready.
    verilog : bool
        The storage as a Verilog module (for Verilog simulators), else as Amaranth memories
        (for Amaranth's simulator: small sizes only, its memories are slow to build).
    bulk : bool
        The bulk ports in place of the back door (Verilog only: its file tasks).

    Attributes
    ----------
    bulk_load, bulk_read, bulk_first, bulk_last : In
        With ``bulk``: a cycle with ``bulk_load`` high loads DRAM from row 0 from the
        :data:`LOAD_FILES` (:func:`write_load_files`); one with ``bulk_read`` high writes
        rows ``bulk_first`` to ``bulk_last`` to :data:`DUMP_FILE` (:func:`read_dump_file`).
        Both in the simulator's working folder.
    ld_valid, ld_addr, ld_word : In
        Without ``bulk``, back-door load: while ``ld_valid``, each cycle writes ``ld_word`` (a block of
        :func:`back_door_rows` rows of data, then their ``writable`` bits, one per byte:
        :func:`back_door_words`) to the next block, from block ``ld_addr`` as it was in the
        last cycle ``ld_valid`` was low.
    rb_valid, rb_addr : In; rb_data : Out
        Back-door read: ``rb_data`` is a block (its rows of data), block ``rb_addr`` as it
        was in the last cycle ``rb_valid`` was low, then the next block each cycle.
    arm : In(1)
        Loads ``seeds`` (64 bits a channel) into the stall generators and clears the
        violation count.
    stall_threshold : In(16)
        A stall when a generator's 16-bit draw is below it (as it was at ``arm``).
    violations : Out(32), violation_addr : Out(ADDR)
        Bytes written outside C (or past the storage) since ``arm``, and the address of the
        first beat that did.
    """

    def __init__(self, *, channels: int, beat_bytes: int, size_bytes: int, latency: int, spacing: int,
                 queue_depth: int, verilog: bool = True, bulk: bool = False):
        if beat_bytes & (beat_bytes - 1) or size_bytes & (size_bytes - 1) or size_bytes < 2 * beat_bytes:
            raise ValueError(f"beat {beat_bytes} and size {size_bytes} must be powers of two, size >= two beats")
        if size_bytes < 2 * back_door_rows(beat_bytes) * beat_bytes:
            raise ValueError(f"size {size_bytes} holds fewer than two back-door blocks")
        if latency < 1 or spacing < 1 or queue_depth < 1:
            raise ValueError("latency, spacing and queue_depth must be >= 1")
        if bulk and not verilog:
            raise ValueError("the bulk ports need the Verilog storage (its file tasks)")
        self._C, self._W, self._size = channels, beat_bytes, size_bytes
        self._latency, self._spacing, self._depth = latency, spacing, queue_depth
        self._verilog, self._bulk = verilog, bulk
        self._abits = (size_bytes // beat_bytes).bit_length() - 1           # row address bits
        ports = {f"mem{ch}": In(memory_port_signature(beat_bytes, ADDR)) for ch in range(channels)}
        ports.update(_back_door_ports(beat_bytes, size_bytes, channels, bulk=bulk))
        ports.update({"violations": Out(32), "violation_addr": Out(ADDR)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        W, ab = self._W, self._abits
        store = _Ram(f"{RAM_MODULE}_store", 8 * W, ab)         # the bytes
        writable = _Ram(f"{RAM_MODULE}_writable", W, ab)       # one bit per byte: may the chip write it
        self.rams = (store, writable)
        now = Signal(TIME_BITS)
        m.d.sync += now.eq(now + 1)
        # the threshold as it was at `arm`: logic fed by a register, not by a top-level input,
        # which Verilator would evaluate again at every clock edge
        self._threshold = Signal(STALL_BITS)
        m.d.sync += self._threshold.eq(Mux(self.arm, self.stall_threshold, self._threshold))
        # per channel: its violations this cycle (bytes) and the address of its beat
        hits = [self._channel(m, ch, store, writable, now) for ch in range(self._C)]
        if self._bulk:
            store.load_from(LOAD_FILES[0], self.bulk_load)
            writable.load_from(LOAD_FILES[1], self.bulk_load)
            store.dump_to(DUMP_FILE, self.bulk_read, self.bulk_first, self.bulk_last)
        else:
            self._back_door(m, store, writable)
        count = Signal(32)
        first = Signal()
        m.d.comb += [self.violations.eq(count)]
        with m.If(self.arm):
            m.d.sync += [count.eq(0), first.eq(0)]
        with m.Else():
            m.d.sync += count.eq(count + sum(n for n, _ in hits))
            for n, addr in reversed(hits):         # the lowest channel's beat, where several
                with m.If((n != 0) & ~first):
                    m.d.sync += [first.eq(1), self.violation_addr.eq(addr)]
        for ram in (store, writable):
            m.submodules[ram.name] = ram.instance(m) if self._verilog else ram.amaranth(m)
        return m

    def _back_door(self, m: Module, store: _Ram, writable: _Ram) -> None:
        W = self._W
        R = back_door_rows(W)
        lg = R.bit_length() - 1
        ld_ptr, rb_ptr = Signal.like(self.ld_addr), Signal.like(self.rb_addr)
        m.d.sync += [ld_ptr.eq(Mux(self.ld_valid, ld_ptr + 1, self.ld_addr)),
                     rb_ptr.eq(Mux(self.rb_valid, rb_ptr + 1, self.rb_addr))]
        word = self.ld_word
        for r in range(R):
            row = Cat(Const(r, lg), ld_ptr)
            store.write(row, word[r * 8 * W:(r + 1) * 8 * W], self.ld_valid)
            writable.write(row, word[8 * R * W + r * W:8 * R * W + (r + 1) * W], self.ld_valid)
        m.d.comb += self.rb_data.eq(Cat(*(store.read(Cat(Const(r, lg), rb_ptr)) for r in range(R))))

    def _rows(self, addr) -> tuple:
        """(row, next row, offset in the row, row in range, next row in range) of a byte address."""
        lg = self._W.bit_length() - 1
        row = addr[lg:]
        nxt = row + 1
        return row, nxt, addr[:lg], (row >> self._abits) == 0, (nxt >> self._abits) == 0

    def _channel(self, m: Module, ch: int, store: _Ram, writable: _Ram, now):
        """Channel ``ch``'s timing and its accesses to the storage; returns (bytes it wrote
        outside C this cycle, its write beat's address)."""
        W, port = self._W, getattr(self, f"mem{ch}")
        seed = self.seeds[64 * ch:64 * (ch + 1)]
        state = Signal(64, init=0x9E3779B97F4A7C15 ^ ch)
        m.d.sync += state.eq(Mux(self.arm, Mux(seed == 0, 1, seed), _xorshift64(state)))
        stall = [state[16 * i:16 * (i + 1)] < self._threshold for i in range(4)]   # rd cmd, wr cmd, wr data, rd beat

        # the credit: cycles since the last beat, up to `spacing`
        sp = self._spacing
        credit = Signal(range(sp + 1), init=sp)
        credit_ok = Signal()
        m.d.comb += credit_ok.eq(credit + 1 >= sp)

        # reads: commands wait their latency in a queue; one beat on offer at a time
        rd_entry = data.StructLayout({"due": TIME_BITS, "cmd": command_layout(ADDR)})
        m.submodules[f"rd_queue{ch}"] = rq = Queue(rd_entry, self._depth)
        m.d.comb += [port.rd_cmd.ready.eq(~rq.full & ~stall[0]),
                     rq.push.eq(port.rd_cmd.valid & port.rd_cmd.ready),
                     rq.push_data.due.eq(now + self._latency), rq.push_data.cmd.eq(port.rd_cmd.payload)]
        rd_beat = Signal(DIM_BITS)                      # beats of the head command done
        held, held_data = Signal(), Signal(8 * W)
        row, nxt, off, ok, ok_next = self._rows(rq.head.cmd.addr + rd_beat * W)
        pair = Cat(Mux(ok, store.read(row), 0), Mux(ok_next, store.read(nxt), 0))
        fresh = pair.bit_select(Cat(Const(0, 3), off), 8 * W)
        due = (now - rq.head.due)[TIME_BITS - 1] == 0
        offer = Signal()
        m.d.comb += [offer.eq(~held & rq.nonempty & due & credit_ok & ~stall[3]),
                     port.rd_data.valid.eq(held | offer), port.rd_data.payload.eq(Mux(held, held_data, fresh))]
        took_rd = port.rd_data.valid & port.rd_data.ready
        with m.If(offer & ~port.rd_data.ready):
            m.d.sync += [held.eq(1), held_data.eq(fresh)]
        with m.If(took_rd):
            m.d.sync += held.eq(0)
            with m.If(rd_beat + 1 == rq.head.cmd.beats):
                m.d.sync += rd_beat.eq(0)
                m.d.comb += rq.pop.eq(1)
            with m.Else():
                m.d.sync += rd_beat.eq(rd_beat + 1)

        # writes: a queue of commands, beats written where their bytes may be
        m.submodules[f"wr_queue{ch}"] = wq = Queue(command_layout(ADDR), self._depth)
        m.d.comb += [port.wr_cmd.ready.eq(~wq.full & ~stall[1]),
                     wq.push.eq(port.wr_cmd.valid & port.wr_cmd.ready), wq.push_data.eq(port.wr_cmd.payload)]
        wr_beat = Signal(DIM_BITS)
        addr = Signal(ADDR)
        m.d.comb += addr.eq(wq.head.addr + wr_beat * W)
        row, nxt, off, ok, ok_next = self._rows(addr)
        may, strobes, values, enables = Signal(2 * W), Signal(2 * W), Signal(16 * W), Signal(2 * W)
        took_wr = port.wr_data.valid & port.wr_data.ready
        m.d.comb += [port.wr_data.ready.eq(wq.nonempty & credit_ok & ~stall[2]),
                     may.eq(Cat(Mux(ok, writable.read(row), 0), Mux(ok_next, writable.read(nxt), 0))),
                     strobes.eq(port.wr_data.payload.strobe << off),
                     values.eq(port.wr_data.payload.data << Cat(Const(0, 3), off)),
                     enables.eq(Mux(took_wr, strobes & may, 0))]
        store.write(row, values[:8 * W], enables[:W])
        store.write(nxt, values[8 * W:], enables[W:])
        with m.If(took_wr):
            with m.If(wr_beat + 1 == wq.head.beats):
                m.d.sync += wr_beat.eq(0)
                m.d.comb += wq.pop.eq(1)
            with m.Else():
                m.d.sync += wr_beat.eq(wr_beat + 1)
        m.d.sync += credit.eq(Mux(took_rd | took_wr, 0, Mux(credit_ok, sp, credit + 1)))
        outside = Signal(range(2 * W + 1))
        m.d.comb += outside.eq(Mux(took_wr, _popcount(strobes & ~may), 0))
        return outside, addr


class SimChip(wiring.Component):
    """The chip with :class:`SimDram` on its DRAM ports: the chip's descriptor stream,
    ``done``, ``status`` and counters, and the DRAM's bulk ports (Verilog simulators; with
    ``bulk=False`` the back door: see :class:`SimDram`)."""

    def __init__(self, chip, dram_bytes: int, *, bulk: bool = True):
        self._chip, self._bytes, self._bulk = chip, dram_bytes, bulk
        super().__init__({
            "cmd": In(stream.Signature(descriptor_layout())), "done": Out(1), "status": Out(3),
            **{name: Out(COUNTER_BITS) for name in CHIP_COUNTERS},
            **{f"busy{c}": Out(COUNTER_BITS) for c in range(chip.cores)},
            **_back_door_ports(chip.dma_beat_bytes, dram_bytes, chip.dma_channels, bulk=bulk),
            "violations": Out(32), "violation_addr": Out(ADDR)})

    def elaborate(self, platform):
        m = Module()
        chip = self._chip
        # The chip and its DRAM run on the clock, reset by a register that follows `rst` a
        # cycle later: Amaranth's next-state logic reads the reset, and Verilator evaluates
        # everything that reads a top-level input at every clock edge, rising and falling
        # (a third of sl-small's run time), everything that reads a register once a cycle.
        m.domains.chip = ClockDomain("chip", local=True)
        held = Signal(init=1, reset_less=True)
        m.d.sync += held.eq(ResetSignal("sync"))
        m.d.comb += [ClockSignal("chip").eq(ClockSignal("sync")), ResetSignal("chip").eq(held)]
        into_chip = DomainRenamer({"sync": "chip"})
        m.submodules.chip = top = into_chip(ChipTop(chip))
        m.submodules.dram = dram = into_chip(SimDram(
            channels=chip.dma_channels, beat_bytes=chip.dma_beat_bytes, size_bytes=self._bytes,
            latency=chip.dram_latency_cycles, spacing=beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle),
            # more than the DMA keeps in flight (its segment queues hold latency + 4): never full without stalls
            queue_depth=2 * (chip.dram_latency_cycles + 8), bulk=self._bulk))
        self.dram = dram
        wiring.connect(m, wiring.flipped(self.cmd), top.cmd)
        for ch in range(chip.dma_channels):
            wiring.connect(m, getattr(top, f"mem{ch}"), getattr(dram, f"mem{ch}"))
        outs = ["done", "status", *CHIP_COUNTERS, *(f"busy{c}" for c in range(chip.cores))]
        m.d.comb += [getattr(self, name).eq(getattr(top, name)) for name in outs]
        door_in, door_out = ((("bulk_load", "bulk_read", "bulk_first", "bulk_last"), ()) if self._bulk else
                             (("ld_valid", "ld_addr", "ld_word", "rb_valid", "rb_addr"), ("rb_data",)))
        m.d.comb += [getattr(dram, name).eq(getattr(self, name))
                     for name in (*door_in, "arm", "seeds", "stall_threshold")]
        m.d.comb += [getattr(self, name).eq(getattr(dram, name)) for name in (*door_out, "violations", "violation_addr")]
        return m


def sim_chip_verilog_text(chip, dram_bytes: int, *, clock_half_ns: int | None = None) -> str:
    """The Verilog of :class:`SimChip` (top module :data:`SIM_CHIP_TOP`, a wrapper of its
    ports alone: :func:`~systolab.sim.sim_top.wrap_top`) with the storage's module; with
    ``clock_half_ns`` the clock toggles inside (build with Verilator ``--timing``)."""
    top = SimChip(chip, dram_bytes)
    text = verilog.convert(top, name=SIM_CHIP_TOP, emit_src=False)
    return wrap_top(text, SIM_CHIP_TOP, clock_half_ns=clock_half_ns) + "".join(ram.verilog() for ram in top.dram.rams)


def sim_chip_fingerprint(chip, dram_bytes: int, *, clock_half_ns: int | None = None) -> str:
    """What :func:`sim_chip_verilog_text` depends on: the chip's RTL, this module and the wrapper's."""
    h = hashlib.sha256(hdl_fingerprint(chip).encode())
    h.update(Path(__file__).read_bytes())
    h.update(Path(sim_top.__file__).read_bytes())
    h.update(f"{dram_bytes} {clock_half_ns}".encode())
    return h.hexdigest()
