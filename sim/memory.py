"""External memory model: byte-addressed storage with latency, bandwidth and stalls.

Serves the accelerator's memory port (``hdl.accelerator.memory_port_signature``) in
Amaranth's simulator: read commands are answered ``latency`` cycles after acceptance, at
most ``bytes_per_cycle`` bytes per cycle on average (one beat per cycle at most; with
``charge_writes``, read and write beats share that bandwidth, as a chip's DRAM does; the
core's own port model charges reads only, which its cycle model was validated on), with
seeded random stalls on every channel. Writes are checked against the allowed regions
(the rows of C): a write outside them is recorded as a violation and not performed.
"""
from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ExternalMemory:
    size: int
    latency: int = 10
    bytes_per_cycle: float = 16.0
    stall_prob: float = 0.0
    seed: int = 0
    charge_writes: bool = False
    data: bytearray = field(init=False)
    writable: list[tuple[int, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.latency < 1:
            raise ValueError(f"latency must be >= 1 cycle, not {self.latency}")
        if not self.bytes_per_cycle > 0:
            raise ValueError(f"bytes_per_cycle must be > 0, not {self.bytes_per_cycle}")
        self.data = bytearray(self.size)
        self.rng = np.random.default_rng(self.seed)

    # -- matrices --------------------------------------------------------------------------
    def store(self, addr: int, matrix: np.ndarray, *, row_stride: int, elem_bytes: int) -> None:
        """Write a 2-D integer matrix row by row (little-endian two's complement)."""
        for r, row in enumerate(np.asarray(matrix)):
            for c, v in enumerate(row):
                at = addr + r * row_stride + c * elem_bytes
                self.data[at:at + elem_bytes] = (int(v) & ((1 << (8 * elem_bytes)) - 1)).to_bytes(elem_bytes, "little")

    def load(self, addr: int, rows: int, cols: int, *, row_stride: int, elem_bytes: int, signed: bool) -> np.ndarray:
        out = np.zeros((rows, cols), dtype=object)
        for r in range(rows):
            for c in range(cols):
                at = addr + r * row_stride + c * elem_bytes
                out[r, c] = int.from_bytes(self.data[at:at + elem_bytes], "little", signed=signed)
        return out

    def allow_writes(self, lo: int, hi: int) -> None:
        self.writable.append((lo, hi))

    def _read_bytes(self, addr: int, n: int) -> bytes:
        chunk = bytes(self.data[max(0, addr):max(0, min(self.size, addr + n))])
        return chunk + bytes(n - len(chunk))  # reads past the end return zeros

    def _write_byte(self, addr: int, value: int) -> None:
        if not any(lo <= addr < hi for lo, hi in self.writable):
            self.violations.append(f"write to 0x{addr:x} outside C")
            return
        self.data[addr] = value

    def ports(self, n: int, bytes_per_cycle: float) -> list[ExternalMemory]:
        """``n`` ports onto these bytes (a chip's DMA channels): each with its own command
        queues, its own bandwidth credit of ``bytes_per_cycle`` and its own stalls (seeded
        from ``(seed, port)``), all reading and writing the same storage."""
        out = []
        for k in range(n):
            port = copy.copy(self)
            port.bytes_per_cycle = bytes_per_cycle
            port.rng = np.random.default_rng([self.seed, k])
            out.append(port)
        return out

    # -- Amaranth simulator process ----------------------------------------------------------
    def hold_reset(self, held: bool) -> None:  # noqa: D401
        """While held (the requester is in reset), drop every command in flight and accept
        nothing; stored bytes stay."""
        self._reset = held

    # -- one clock cycle of the port, independent of the simulator ---------------------------
    def start_port(self, beat_bytes: int) -> None:
        self._W = beat_bytes
        self._reads: deque = deque()      # [ready_cycle, addr, beats_left]
        self._writes: deque = deque()     # [addr, beats_left]
        self._credit, self._cycle = 0.0, 0
        self._beat: bytes | None = None   # the read-data beat on offer
        self._reset = False

    def drive(self) -> dict:
        """What the memory drives this cycle: readies and the read-data beat."""
        W = self._W
        if self._reset:
            self._reads.clear()
            self._writes.clear()
            self._beat, self._credit = None, 0.0
            out = {"rd_cmd_ready": 0, "wr_cmd_ready": 0, "wr_data_ready": 0, "rd_data_valid": 0, "rd_data": 0}
            self._driven = out
            return out
        stall = lambda: bool(self.rng.random() < self.stall_prob)  # noqa: E731
        self._credit = min(self._credit + self.bytes_per_cycle, max(W, self.bytes_per_cycle))
        out = {"rd_cmd_ready": int(not stall()), "wr_cmd_ready": int(not stall()),
               "wr_data_ready": int(bool(self._writes) and not stall()
                                    and (not self.charge_writes or self._credit >= W))}
        if self._beat is None and self._reads and self._reads[0][0] <= self._cycle and self._credit >= W and not stall():
            self._beat = self._read_bytes(self._reads[0][1], W)
        out["rd_data_valid"] = int(self._beat is not None)
        out["rd_data"] = int.from_bytes(self._beat, "little") if self._beat is not None else 0
        self._driven = out
        return out

    def observe(self, *, rd_cmd_valid: int, rd_cmd_addr: int, rd_cmd_beats: int, rd_data_ready: int,
                wr_cmd_valid: int, wr_cmd_addr: int, wr_cmd_beats: int, wr_data_valid: int, wr_data: int,
                wr_strobe: int) -> None:
        """The requester's side of the port at the clock edge that ends this cycle."""
        W, d = self._W, self._driven
        if not self._reset:
            if rd_cmd_valid and d["rd_cmd_ready"]:
                self._reads.append([self._cycle + self.latency, rd_cmd_addr, rd_cmd_beats])
            if self._beat is not None and rd_data_ready:
                self._credit -= W
                head = self._reads[0]
                head[1] += W
                head[2] -= 1
                if head[2] == 0:
                    self._reads.popleft()
                self._beat = None
            if wr_cmd_valid and d["wr_cmd_ready"]:
                self._writes.append([wr_cmd_addr, wr_cmd_beats])
            if wr_data_valid and d["wr_data_ready"]:
                if self.charge_writes:
                    self._credit -= W
                head = self._writes[0]
                for byte in range(W):
                    if wr_strobe >> byte & 1:
                        self._write_byte(head[0] + byte, wr_data >> (8 * byte) & 0xFF)
                head[0] += W
                head[1] -= 1
                if head[1] == 0:
                    self._writes.popleft()
        self._cycle += 1

    # -- Amaranth simulator process ----------------------------------------------------------
    def process(self, port, beat_bytes: int, stop):
        """An async testbench serving ``port`` until ``stop()`` is true."""
        self.start_port(beat_bytes)

        async def serve(ctx):
            while not stop():
                out = self.drive()
                ctx.set(port.rd_cmd.ready, out["rd_cmd_ready"])
                ctx.set(port.wr_cmd.ready, out["wr_cmd_ready"])
                ctx.set(port.wr_data.ready, out["wr_data_ready"])
                ctx.set(port.rd_data.valid, out["rd_data_valid"])
                ctx.set(port.rd_data.payload, out["rd_data"])
                if self._reset:
                    self.observe(rd_cmd_valid=0, rd_cmd_addr=0, rd_cmd_beats=0, rd_data_ready=0, wr_cmd_valid=0,
                                 wr_cmd_addr=0, wr_cmd_beats=0, wr_data_valid=0, wr_data=0, wr_strobe=0)
                    await ctx.delay(1e-8)  # one clock period, without ticking a domain in reset
                    continue
                (_, _, rc_valid, rc_payload, rd_ready, wc_valid, wc_payload, wd_valid, wd_payload) = \
                    await ctx.tick().sample(port.rd_cmd.valid, port.rd_cmd.payload, port.rd_data.ready,
                                            port.wr_cmd.valid, port.wr_cmd.payload, port.wr_data.valid,
                                            port.wr_data.payload)
                self.observe(rd_cmd_valid=rc_valid, rd_cmd_addr=int(rc_payload.addr), rd_cmd_beats=int(rc_payload.beats),
                             rd_data_ready=rd_ready, wr_cmd_valid=wc_valid, wr_cmd_addr=int(wc_payload.addr),
                             wr_cmd_beats=int(wc_payload.beats), wr_data_valid=wd_valid,
                             wr_data=int(wd_payload.data), wr_strobe=int(wd_payload.strobe))

        return serve
