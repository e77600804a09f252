"""Processing elements and MAC units in Amaranth's simulator, cycle by cycle."""
import pytest
from amaranth.sim import Simulator

from systolab import AcceleratorConfig
from systolab.dtypes import get_dtype
from systolab.hdl import IntegerMac, OutputStationaryArray, OutputStationaryPE, WeightStationaryPE, build_array


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_os_pe_accumulates_and_hands_off_on_last():
    mac = IntegerMac(dtype=get_dtype("int8"), acc_bits=32, overflow="wrap")
    dut = OutputStationaryPE(mac=mac)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for a, b, last in [(3, 4, 0), (-5, 6, 0), (7, -8, 1), (2, 2, 1)]:
            ctx.set(dut.a_in, a); ctx.set(dut.b_in, b); ctx.set(dut.valid_in, 1); ctx.set(dut.last_in, last)
            await ctx.tick()
            if last and "first" not in seen:
                seen["first"] = (ctx.get(dut.result), ctx.get(dut.last_out), ctx.get(dut.a_out))
        seen["second"] = ctx.get(dut.result)
        # A bubble (valid low) changes nothing; en low freezes the outputs.
        ctx.set(dut.valid_in, 0)
        await ctx.tick()
        seen["bubble"] = (ctx.get(dut.result), ctx.get(dut.last_out))

    run(dut, bench)
    assert seen["first"] == (12 - 30 - 56, 1, 7)
    assert seen["second"] == 4  # the accumulator was cleared by the first `last`
    assert seen["bubble"] == (4, 0)


def test_os_pe_holds_while_disabled():
    mac = IntegerMac(dtype=get_dtype("int8"), acc_bits=32, overflow="wrap")
    dut = OutputStationaryPE(mac=mac)
    got = []

    async def bench(ctx):
        ctx.set(dut.en, 1); ctx.set(dut.a_in, 9); ctx.set(dut.valid_in, 1)
        await ctx.tick()
        ctx.set(dut.en, 0); ctx.set(dut.a_in, 1)
        await ctx.tick().repeat(3)
        got.append(ctx.get(dut.a_out))

    run(dut, bench)
    assert got == [9]


@pytest.mark.parametrize("overflow, expected", [("wrap", -32768 + 100), ("saturate", 32767)])
def test_mac_overflow_modes(overflow, expected):
    mac = IntegerMac(dtype=get_dtype("int8"), acc_bits=16, overflow=overflow)
    dut = WeightStationaryPE(mac=mac)
    got = []

    async def bench(ctx):
        ctx.set(dut.w_data, 10); ctx.set(dut.w_we, 0b10)  # bank 1
        await ctx.tick()
        ctx.set(dut.w_we, 0)
        ctx.set(dut.en, 1); ctx.set(dut.bank_in, 1); ctx.set(dut.valid_in, 1)
        ctx.set(dut.psum_in, 32767 - 9); ctx.set(dut.a_in, 11)  # 32758 + 110 overflows int16
        await ctx.tick()
        got.append(ctx.get(dut.psum_out))

    run(dut, bench)
    assert got == [expected]


def test_ws_pe_uses_the_bank_tagged_on_the_operand():
    mac = IntegerMac(dtype=get_dtype("uint8"), acc_bits=32, overflow="wrap")
    dut = WeightStationaryPE(mac=mac)
    got = []

    async def bench(ctx):
        for bank, w in ((0, 3), (1, 200)):
            ctx.set(dut.w_data, w); ctx.set(dut.w_we, 1 << bank)
            await ctx.tick()
        ctx.set(dut.w_we, 0); ctx.set(dut.en, 1); ctx.set(dut.valid_in, 1); ctx.set(dut.a_in, 255)
        for bank in (0, 1):
            ctx.set(dut.bank_in, bank); ctx.set(dut.psum_in, 1)
            await ctx.tick()
            got.append(ctx.get(dut.psum_out))

    run(dut, bench)
    assert got == [1 + 255 * 3, 1 + 255 * 200]


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": get_dtype("bf16"), "acc_bits": 32, "overflow": "wrap"}, "integer format"),
    ({"dtype": get_dtype("int8"), "acc_bits": 8, "overflow": "wrap"}, "acc_bits must be an integer >= 16"),
    ({"dtype": get_dtype("int8"), "acc_bits": 32, "overflow": "clip"}, "overflow must be one of"),
])
def test_mac_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IntegerMac(**kwargs)


@pytest.mark.parametrize("rows", [0, 65, "4", True])
def test_array_rejects_bad_dimensions(rows):
    mac = IntegerMac(dtype=get_dtype("int8"), acc_bits=32, overflow="wrap")
    with pytest.raises(ValueError, match="Array rows must be an integer in 1..64"):
        OutputStationaryArray(rows=rows, cols=4, mac=mac)


def test_pe_rejects_non_mac():
    with pytest.raises(TypeError, match="mac must be a MAC unit"):
        OutputStationaryPE(mac=42)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_elaborate_has_no_side_effects(dataflow):
    """Elaborating twice gives the same netlist and leaves the component unchanged."""
    from amaranth.back import rtlil

    dut = build_array(AcceleratorConfig(rows=2, cols=3, dataflow=dataflow))
    before = dict(vars(dut))
    first = rtlil.convert(dut)
    second = rtlil.convert(dut)
    assert first == second
    assert dict(vars(dut)).keys() == before.keys()
