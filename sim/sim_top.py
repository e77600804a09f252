"""A simulation-only top module around generated Verilog: its ports and nothing else, and
optionally the clock generated inside the simulation.

Why a wrapper: cocotb's Verilator builds make the top module's signals public and writable
(``--public-depth 1``, :mod:`systolab.sim.runner`), and Verilator evaluates everything that
reads a writable signal in its "input-combinational" region, at every call of the model's
``eval`` (every clock edge, rising and falling). Amaranth's top module holds the wiring
between its submodules (for the chip with its DRAM: every DRAM port, the counters), so on
sl-small that region held about two thirds of the per-cycle C++ (27,000 lines against
1,500 with this wrapper, whose only signals are its ports).

With ``clock_half_ns`` the clock is not a port: the wrapper toggles it (``always #``,
Verilator ``--timing``), so no VPI write and no input-combinational evaluation is caused
by an edge, and cocotb wakes only on the signals it waits on. The clock is high at time 0
and falls first, as cocotb's ``Clock`` drives it.
"""
from __future__ import annotations

import re

#: The period of the benches' clock (ns; :class:`~systolab.sim.cocotb_host.CommandHost`).
CLOCK_NS = 10
#: The wrapped module's name: the generated top's, with this suffix.
INNER_SUFFIX = "_inner"
#: A port declaration of Yosys' Verilog (``input [7:0] name;``).
_PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(\[\d+:\d+\]\s+)?(\w+);", re.M)


def module_ports(text: str, top: str) -> list[tuple[str, str, str]]:
    """(direction, range or '', name) of each port of module ``top`` in ``text`` (Yosys'
    Verilog: one declaration per port in the module's body)."""
    found = re.search(rf"^module {re.escape(top)}\(.*?\);\n(.*?)^endmodule", text, re.S | re.M)
    if found is None:
        raise ValueError(f"no module {top} in the Verilog")
    return [(d, (w or "").strip(), n) for d, w, n in _PORT.findall(found.group(1))]


def wrap_top(text: str, top: str, *, clock: str = "clk", clock_half_ns: int | None = None) -> str:
    """``text`` with module ``top`` renamed ``top + INNER_SUFFIX`` and a new module ``top``
    of the same ports instantiating it. With ``clock_half_ns`` the port ``clock`` is an
    output, driven inside (high at 0, toggling every ``clock_half_ns`` ns: build with
    ``--timing``)."""
    ports = module_ports(text, top)
    if clock_half_ns is not None and clock not in {n for _, _, n in ports}:
        raise ValueError(f"{top} has no port {clock}")
    inner = top + INNER_SUFFIX
    renamed = re.sub(rf"^module {re.escape(top)}\(", f"module {inner}(", text, count=1, flags=re.M)
    lines = [f"module {top}({', '.join(n for _, _, n in ports)});"]
    for direction, width, name in ports:
        if clock_half_ns is not None and name == clock:
            lines.append(f"  output reg {name};")
        else:
            lines.append(f"  {direction} wire {width + ' ' if width else ''}{name};")
    if clock_half_ns is not None:
        lines += [f"  initial {clock} = 1'b1;", f"  always #{clock_half_ns} {clock} = ~{clock};"]
    lines += [f"  {inner} inner({', '.join(f'.{n}({n})' for _, _, n in ports)});", "endmodule", ""]
    return renamed + "\n".join(lines)
