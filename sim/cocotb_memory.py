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


async def serve_memory(dut, mem, beat_bytes: int, addr_bits: int, stop, port: str = "mem") -> None:
    """Serve ``dut.<port>__*`` from ``mem()`` (a callable: the memory may be swapped between
    descriptors) until ``stop()``."""
    cmd = data.StructLayout({"addr": addr_bits, "beats": DIM_BITS})
    beat = data.StructLayout({"data": 8 * beat_bytes, "strobe": beat_bytes})

    def field(layout, name):
        f = layout[name]
        return f.offset, (1 << f.width) - 1

    (a_at, a_mask), (n_at, n_mask) = field(cmd, "addr"), field(cmd, "beats")
    (d_at, d_mask), (s_at, s_mask) = field(beat, "data"), field(beat, "strobe")
    h = {f"{ch}_{x}": getattr(dut, f"{port}__{ch}__{x}") for ch in ("rd_cmd", "wr_cmd", "wr_data", "rd_data")
         for x in ("valid", "ready", "payload")}
    drives = (("rd_cmd_ready", h["rd_cmd_ready"]), ("wr_cmd_ready", h["wr_cmd_ready"]),
              ("wr_data_ready", h["wr_data_ready"]), ("rd_data_valid", h["rd_data_valid"]),
              ("rd_data", h["rd_data_payload"]))
    last: dict = {}
    while not stop():
        m = mem()
        out = m.drive()
        for key, handle in drives:              # write only what changed: cocotb writes are not free
            if last.get(key) != out[key]:
                handle.value = last[key] = out[key]
        await RisingEdge(dut.clk)
        # payloads are decoded only when their valid is high (a wide payload costs a string conversion)
        rc_valid, wc_valid, wd_valid = (logic_int(h[x]) for x in ("rd_cmd_valid", "wr_cmd_valid", "wr_data_valid"))
        rcp = logic_int(h["rd_cmd_payload"]) if rc_valid else 0
        wcp = logic_int(h["wr_cmd_payload"]) if wc_valid else 0
        wdp = logic_int(h["wr_data_payload"]) if wd_valid else 0
        m.observe(rd_cmd_valid=rc_valid, rd_cmd_addr=rcp >> a_at & a_mask, rd_cmd_beats=rcp >> n_at & n_mask,
                  rd_data_ready=logic_int(h["rd_data_ready"]),
                  wr_cmd_valid=wc_valid, wr_cmd_addr=wcp >> a_at & a_mask, wr_cmd_beats=wcp >> n_at & n_mask,
                  wr_data_valid=wd_valid, wr_data=wdp >> d_at & d_mask, wr_strobe=wdp >> s_at & s_mask)
