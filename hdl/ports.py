"""Layouts and signatures shared by the core, its parts and the chip: the core's GEMM
descriptor and the requester's side of a memory port."""
from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

ADDR_BITS = 32
DIM_BITS = 16


def descriptor_layout() -> data.StructLayout:
    return data.StructLayout({
        "m": DIM_BITS, "n": DIM_BITS, "k": DIM_BITS,
        "a_addr": ADDR_BITS, "lda": ADDR_BITS,
        "b_addr": ADDR_BITS, "ldb": ADDR_BITS,
        "c_addr": ADDR_BITS, "ldc": ADDR_BITS,
    })


def command_layout(addr_bits: int = ADDR_BITS) -> data.StructLayout:
    """A read or write burst: ``beats`` beats from byte address ``addr``."""
    return data.StructLayout({"addr": addr_bits, "beats": DIM_BITS})


def memory_port_signature(beat_bytes: int, addr_bits: int = ADDR_BITS) -> wiring.Signature:
    """The requester's side of a memory port (the core's, and the chip's DMA's to DRAM).

    Reads: a command {addr, beats} is answered by ``beats`` data beats, in order, beat j
    holding the bytes at addr + j * beat_bytes (addresses need no alignment). Writes: a
    command {addr, beats} followed by that many beats with a byte strobe each; a beat may
    follow its command from the next cycle on.
    """
    cmd = command_layout(addr_bits)
    return wiring.Signature({
        "rd_cmd": Out(stream.Signature(cmd)),
        "rd_data": In(stream.Signature(8 * beat_bytes)),
        "wr_cmd": Out(stream.Signature(cmd)),
        "wr_data": Out(stream.Signature(data.StructLayout({"data": 8 * beat_bytes, "strobe": beat_bytes}))),
    })


def ceil_div(x, d: int):
    """ceil(x / d) for a value or a constant divisor ``d`` >= 1."""
    return (x + (d - 1)) // d if d > 1 else x
