"""The simulation-only top module (``sim/sim_top.py``): the wrapped design's ports, the
clock inside."""
from __future__ import annotations

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from systolab.sim.sim_top import INNER_SUFFIX, module_ports, wrap_top


class _Counter(wiring.Component):
    def __init__(self):
        super().__init__({"en": In(1), "width": In(8), "count": Out(16)})

    def elaborate(self, platform):
        m = Module()
        inner = Signal(16)                 # a wire of the top module: public without the wrapper
        m.d.comb += inner.eq(self.count + self.width)
        with m.If(self.en):
            m.d.sync += self.count.eq(inner)
        return m


@pytest.fixture(scope="module")
def counter_verilog() -> str:
    return verilog.convert(_Counter(), name="counter", emit_src=False)


def test_the_wrapper_has_the_ports_of_the_design(counter_verilog):
    ports = module_ports(counter_verilog, "counter")
    assert {n: (d, w) for d, w, n in ports} == {"clk": ("input", ""), "rst": ("input", ""), "en": ("input", ""),
                                                "width": ("input", "[7:0]"), "count": ("output", "[15:0]")}
    text = wrap_top(counter_verilog, "counter")
    assert module_ports(text, "counter") == ports                 # the same ports, in the same order
    assert module_ports(text, "counter" + INNER_SUFFIX) == ports
    assert f"counter{INNER_SUFFIX} inner(" in text and "always" not in text.split("module counter(")[1]
    with pytest.raises(ValueError, match="no module"):
        module_ports(counter_verilog, "other")


def test_the_clock_inside_is_an_output_toggled_every_half_period(counter_verilog):
    text = wrap_top(counter_verilog, "counter", clock_half_ns=5)
    top = text.split("module counter(")[1]
    assert "output reg clk;" in top and "input wire clk" not in top
    assert "initial clk = 1'b1;" in top and "always #5 clk = ~clk;" in top
    assert ("output", "", "clk") in module_ports(text, "counter")
    with pytest.raises(ValueError, match="no port"):
        wrap_top(counter_verilog, "counter", clock="clock", clock_half_ns=5)
