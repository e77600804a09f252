"""External memory model: byte-addressed storage with latency, bandwidth and stalls.

Serves the accelerator's memory port (``hdl.accelerator.memory_port_signature``) in
Amaranth's simulator: read commands are answered ``latency`` cycles after acceptance, at
most ``bytes_per_cycle`` bytes per cycle on average (one beat per cycle at most), with
seeded random stalls on every channel. Writes are checked against the allowed regions
(the rows of C): a write outside them is recorded as a violation and not performed.
"""
from __future__ import annotations

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

    # -- Amaranth simulator process ----------------------------------------------------------
    def hold_reset(self, held: bool) -> None:
        """While held (the requester is in reset), drop every command in flight and accept
        nothing; stored bytes stay."""
        self._reset = held

    def process(self, port, beat_bytes: int, stop):
        """An async testbench serving ``port`` until ``stop()`` is true."""
        W = beat_bytes
        self._reset = False

        async def serve(ctx):
            reads: deque = deque()      # [ready_cycle, addr, beats_left]
            writes: deque = deque()     # [addr, beats_left]
            credit, cycle = 0.0, 0
            pending_beat = None
            while not stop():
                if self._reset:
                    reads.clear()
                    writes.clear()
                    pending_beat, credit = None, 0.0
                    for ch in (port.rd_cmd, port.wr_cmd, port.wr_data):
                        ctx.set(ch.ready, 0)
                    ctx.set(port.rd_data.valid, 0)
                    await ctx.delay(1e-8)  # one clock period, without ticking a domain in reset
                    cycle += 1
                    continue
                stall = lambda: self.rng.random() < self.stall_prob  # noqa: E731
                ctx.set(port.rd_cmd.ready, int(not stall()))
                ctx.set(port.wr_cmd.ready, int(not stall()))
                ctx.set(port.wr_data.ready, int(bool(writes) and not stall()))
                credit = min(credit + self.bytes_per_cycle, max(W, self.bytes_per_cycle))
                if pending_beat is None and reads and reads[0][0] <= cycle and credit >= W and not stall():
                    head = reads[0]
                    pending_beat = self._read_bytes(head[1], W)
                if pending_beat is not None:
                    ctx.set(port.rd_data.payload, int.from_bytes(pending_beat, "little"))
                ctx.set(port.rd_data.valid, int(pending_beat is not None))
                (_, _, rc_valid, rc_ready, rc_payload, rd_ready, wc_valid, wc_ready, wc_payload,
                 wd_valid, wd_ready, wd_payload) = await ctx.tick().sample(
                    port.rd_cmd.valid, port.rd_cmd.ready, port.rd_cmd.payload, port.rd_data.ready,
                    port.wr_cmd.valid, port.wr_cmd.ready, port.wr_cmd.payload,
                    port.wr_data.valid, port.wr_data.ready, port.wr_data.payload)
                if rc_valid and rc_ready:
                    reads.append([cycle + self.latency, int(rc_payload.addr), int(rc_payload.beats)])
                if pending_beat is not None and rd_ready:
                    credit -= W
                    head = reads[0]
                    head[1] += W
                    head[2] -= 1
                    if head[2] == 0:
                        reads.popleft()
                    pending_beat = None
                if wc_valid and wc_ready:
                    writes.append([int(wc_payload.addr), int(wc_payload.beats)])
                if wd_valid and wd_ready:
                    head = writes[0]
                    beat, strobe = int(wd_payload.data), int(wd_payload.strobe)
                    for byte in range(W):
                        if strobe >> byte & 1:
                            self._write_byte(head[0] + byte, beat >> (8 * byte) & 0xFF)
                    head[0] += W
                    head[1] -= 1
                    if head[1] == 0:
                        writes.popleft()
                cycle += 1

        return serve
