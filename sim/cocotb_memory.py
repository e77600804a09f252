"""The external-memory model (:class:`~systolab.sim.memory.ExternalMemory`) driving a
DUT's memory port under cocotb, one call per clock (shared by the core and chip benches)."""
from __future__ import annotations

from amaranth.lib import data
from cocotb.triggers import RisingEdge

from ..hdl.accelerator import DIM_BITS


def logic_int(sig) -> int:
    """The signal as an unsigned integer; X/Z bits (Icarus: FIFO storage never written, seen
    only on payloads whose valid is low) read as 0."""
    bits = str(sig.value).upper().replace("X", "0").replace("Z", "0")
    return int(bits, 2)


async def serve_memory(dut, mem, beat_bytes: int, addr_bits: int, stop) -> None:
    """Serve ``dut.mem__*`` from ``mem()`` (a callable: the memory may be swapped between
    descriptors) until ``stop()``."""
    cmd = data.StructLayout({"addr": addr_bits, "beats": DIM_BITS})
    beat = data.StructLayout({"data": 8 * beat_bytes, "strobe": beat_bytes})
    rc, wc, wd = "mem__rd_cmd__", "mem__wr_cmd__", "mem__wr_data__"
    while not stop():
        m = mem()
        out = m.drive()
        getattr(dut, rc + "ready").value = out["rd_cmd_ready"]
        getattr(dut, wc + "ready").value = out["wr_cmd_ready"]
        getattr(dut, wd + "ready").value = out["wr_data_ready"]
        dut.mem__rd_data__valid.value = out["rd_data_valid"]
        dut.mem__rd_data__payload.value = out["rd_data"]
        await RisingEdge(dut.clk)
        rcp = cmd.from_bits(logic_int(getattr(dut, rc + "payload")))
        wcp = cmd.from_bits(logic_int(getattr(dut, wc + "payload")))
        wdp = beat.from_bits(logic_int(getattr(dut, wd + "payload")))
        m.observe(rd_cmd_valid=logic_int(getattr(dut, rc + "valid")), rd_cmd_addr=int(rcp.addr),
                  rd_cmd_beats=int(rcp.beats), rd_data_ready=logic_int(dut.mem__rd_data__ready),
                  wr_cmd_valid=logic_int(getattr(dut, wc + "valid")), wr_cmd_addr=int(wcp.addr),
                  wr_cmd_beats=int(wcp.beats), wr_data_valid=logic_int(getattr(dut, wd + "valid")),
                  wr_data=int(wdp.data), wr_strobe=int(wdp.strobe))
