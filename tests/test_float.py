"""Floating-point datapaths: the golden model against exact arithmetic, the FloatMac RTL
against the golden model (special values here, 10,000 random products per format in the
slow suite), and whole GEMMs on the core (Amaranth here; Verilator, both dataflows, and
the chip in the slow suite)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.dtypes import get_dtype
from systolab.hdl import FloatMac
from systolab.sim.golden import CANONICAL_NAN, decode, encode, fma_fp32, golden_matmul
from systolab.sim.mac_bench import evaluate_mac
from systolab.sim.stimulus import float_specials

FLOATS = ("bf16", "fp16", "fp8_e4m3", "fp8_e5m2")
FP32 = get_dtype("fp32")


def exact_fp32(value: Fraction, sign_if_zero: int = 0) -> int:
    """IEEE binary32 bits of ``value`` rounded to nearest even, from exact rationals: an
    implementation independent of the golden model's round-to-odd."""
    if value == 0:
        return sign_if_zero << 31
    sign, mag = (1, -value) if value < 0 else (0, value)
    e = math.floor(math.log2(mag.numerator) - math.log2(mag.denominator))
    while Fraction(2) ** e > mag:
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    ulp_exp = max(e, -126) - 23
    scaled = mag / Fraction(2) ** ulp_exp
    q, rem = divmod(scaled.numerator, scaled.denominator)
    if 2 * rem > scaled.denominator or (2 * rem == scaled.denominator and q & 1):
        q += 1
    bits = ((ulp_exp + 149) << 23) + q if q else 0
    return (sign << 31) | min(bits, 0x7F800000)


def as_fraction(bits: int, dtype) -> Fraction:
    return Fraction(float(decode(np.array([bits]), dtype)[0]))


@pytest.mark.parametrize("fmt", FLOATS)
def test_golden_fma_equals_exact_rounding(fmt):
    """Round-to-odd in float64 then to fp32 equals exact rational rounding, including sums
    whose bits span far more than float64 holds (random exponents on both sides)."""
    dt = get_dtype(fmt)
    rng = np.random.default_rng(3)
    n = 3000
    sp = float_specials(dt)
    finite = [v for k, v in sp.items() if "inf" not in k and k != "nan"]
    a = np.where(rng.random(n) < 0.2, rng.choice(finite, n), rng.integers(0, 1 << dt.bits, n))
    b = np.where(rng.random(n) < 0.2, rng.choice(finite, n), rng.integers(0, 1 << dt.bits, n))
    acc = rng.integers(0, 1 << 32, n)
    with np.errstate(invalid="ignore"):
        near = encode(-decode(a, dt) * decode(b, dt) * (1 + rng.normal(0, 1e-6, n)), FP32)
    acc = np.where(rng.random(n) < 0.5, acc, near)
    got = fma_fp32(acc, a, b, dt)
    checked = 0
    for i in range(n):
        x, y, c = (float(decode(np.array([v]), d)[0]) for v, d in ((a[i], dt), (b[i], dt), (acc[i], FP32)))
        if not all(math.isfinite(v) for v in (x, y, c)):
            continue
        exact = Fraction(c) + Fraction(x) * Fraction(y)
        both_negative_zero = c == 0 and x * y == 0 and math.copysign(1, c) < 0 and math.copysign(1, x * y) < 0
        assert got[i] == exact_fp32(exact, int(both_negative_zero)), (hex(acc[i]), hex(a[i]), hex(b[i]))
        checked += 1
    assert checked > n // 2


def test_golden_special_value_rules():
    dt = get_dtype("bf16")
    sp = float_specials(dt)
    one32, neg_zero32 = int(encode(1.0, FP32)), 0x80000000

    def f(acc, a, b, fmt=dt, flush=False):
        return int(fma_fp32(np.array([acc]), np.array([a]), np.array([b]), fmt, flush=flush)[0])

    assert f(0, sp["inf"], sp["+0"]) == CANONICAL_NAN                      # Inf x 0
    assert f(0xFF800000, sp["inf"], sp["one"]) == CANONICAL_NAN            # -Inf + Inf
    assert f(0, sp["max"], sp["max"]) == 0x7F800000                       # bf16 product beyond fp32: Inf
    assert f(neg_zero32, sp["-0"], sp["one"]) == neg_zero32                # -0 + -0 = -0
    assert f(0, sp["-0"], sp["one"]) == 0                                  # +0 + -0 = +0
    assert f(one32, sp["minus_one"], sp["one"]) == 0                       # exact cancellation: +0
    assert f(0, sp["nan"], sp["+0"]) == CANONICAL_NAN
    # bf16's smallest subnormal squared (2**-266) underflows fp32: a zero of the product's sign
    assert f(0, sp["-min_subnormal"], sp["min_subnormal"]) == neg_zero32
    # fp16: 2**-14 x 2**-12 = 2**-26 is an fp32 normal; flush keeps it (only fp16 subnormal
    # inputs and fp32 subnormal results flush)
    h = get_dtype("fp16")
    hs = float_specials(h)
    assert f(0, hs["min_normal"], int(encode(2.0 ** -12, h)), h) == int(encode(2.0 ** -26, FP32))
    assert f(0, hs["min_subnormal"], hs["one"], h, flush=True) == 0
    # E4M3 has no Inf: 0x7F/0xFF are its NaNs, 0x7E is 448
    e4 = get_dtype("fp8_e4m3")
    assert decode(np.array([0x7E]), e4)[0] == 448.0 and np.isnan(decode(np.array([0x7F]), e4)[0])
    assert f(0, 0x7E, 0x7E, e4) == int(encode(448.0 ** 2, FP32))
    # round to nearest even on a tie: 1 + 2**-24 is halfway between 1 and 1 + 2**-23
    tiny = int(encode(2.0 ** -12, h))
    assert f(one32, tiny, tiny, h) == one32
    assert f(one32 + 1, tiny, tiny, h) == one32 + 2


def _special_grid(fmt):
    dt = get_dtype(fmt)
    edges = list(float_specials(dt).values())
    accs = [0, 0x80000000, int(encode(1.0, FP32)), 0x7F7FFFFF, 0x00000001, 0xFF800000, CANONICAL_NAN]
    a, b, acc = (np.array(v).ravel() for v in np.meshgrid(edges, edges, accs, indexing="ij"))
    return dt, acc, a, b


@pytest.mark.parametrize("subnormals", ["keep", "flush"])
@pytest.mark.parametrize("fmt", FLOATS)
def test_mac_rtl_special_values(fmt, subnormals):
    """Every pair of the format's edge values (±0, ±Inf, NaN, largest and smallest normal,
    subnormals, ±1) on every accumulator edge (±0, 1, fp32 max, smallest subnormal, -Inf,
    NaN): 0 mismatches against the golden model."""
    dt, acc, a, b = _special_grid(fmt)
    got = evaluate_mac(FloatMac(dtype=dt, subnormals=subnormals), acc, a, b)
    expected = fma_fp32(acc, a, b, dt, flush=subnormals == "flush")
    wrong = np.nonzero(got != expected)[0]
    assert len(wrong) == 0, [(hex(acc[i]), hex(a[i]), hex(b[i]), hex(expected[i]), hex(got[i])) for i in wrong[:5]]


def test_mac_rtl_cancellation_and_fp32_add():
    """Sums that cancel to a few bits (the normalising shift's whole range), and the
    chip's fp32 addition of partial sums."""
    dt = get_dtype("fp16")
    rng = np.random.default_rng(5)
    a = encode(rng.standard_normal(300), dt)
    b = encode(rng.standard_normal(300), dt)
    p = decode(a, dt) * decode(b, dt)
    acc = encode(-p * (1 + rng.choice([0, 1e-7, -1e-7, 1e-4], 300)), FP32)
    mac = FloatMac(dtype=dt)
    assert np.array_equal(evaluate_mac(mac, acc, a, b), fma_fp32(acc, a, b, dt))

    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    x32 = encode(rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200), FP32)
    y32 = np.where(rng.random(200) < 0.5, x32 ^ 0x80000001, encode(rng.standard_normal(200), FP32))
    m = Module()
    x, y = Signal(32), Signal(32)
    out = Signal(32)
    m.d.comb += out.eq(mac.add(m, x, y))
    got = []

    async def bench(ctx):
        for u, v in zip(x32, y32):
            ctx.set(x, int(u))
            ctx.set(y, int(v))
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == list(fma_fp32(x32, y32, int(encode(1.0, FP32)), FP32))


@pytest.mark.parametrize("fmt, dataflow", [("bf16", "os"), ("fp16", "ws"), ("fp8_e4m3", "ws"), ("fp8_e5m2", "os")])
def test_float_core_gemms_on_amaranth(fmt, dataflow):
    """Whole GEMMs (K over several chunks, special values sprinkled in) on the core."""
    from systolab.sim.core_bench import run_gemms
    from systolab.sim.stimulus import random_operands, sprinkle_specials

    cfg = AcceleratorConfig(rows=2, cols=2, dataflow=dataflow, dtype=fmt, beat_bytes=4,
                            a_buffer_kib=0.0625, b_buffer_kib=0.0625, acc_buffer_kib=0.0625)
    rng = np.random.default_rng(11)
    dt = cfg.input_dtype
    products = [(random_operands(rng, dt, (3, 9)), random_operands(rng, dt, (9, 3))),
                (sprinkle_specials(rng, dt, random_operands(rng, dt, (2, 17)), 0.2),
                 sprinkle_specials(rng, dt, random_operands(rng, dt, (17, 3)), 0.2))]
    runs = run_gemms(cfg, products, stall_prob=0.2, seed=4)
    for run, (a, b) in zip(runs, products):
        assert np.array_equal(np.array(run.c, dtype=np.int64), golden_matmul(a, b, cfg))
    assert any(np.any(np.asarray(r.c) == CANONICAL_NAN) for r in runs)   # the specials reached C


def test_golden_k_blocks_change_the_order_not_integers():
    rng = np.random.default_rng(2)
    f = AcceleratorConfig(dtype="bf16")
    a, b = encode(rng.standard_normal((4, 64)) * 100, f.input_dtype), encode(rng.standard_normal((64, 4)), f.input_dtype)
    whole, blocked = golden_matmul(a, b, f), golden_matmul(a, b, f, k_block=16)
    assert np.allclose(decode(whole, FP32), decode(blocked, FP32), rtol=1e-4)
    i = AcceleratorConfig()
    ai, bi = rng.integers(-128, 128, (4, 64)), rng.integers(-128, 128, (64, 4))
    assert np.array_equal(golden_matmul(ai, bi, i), golden_matmul(ai, bi, i, k_block=16))
    with pytest.raises(ValueError, match="k_block"):
        golden_matmul(a, b, f, k_block=0)
    with pytest.raises(ValueError, match="raw bf16 bit patterns"):
        golden_matmul(a + 70000, b, f)
    from systolab.sim.golden import show_value

    assert show_value(0x3F800000, f) == "0x3f800000 (1)" and show_value(CANONICAL_NAN, f) == "0x7fc00000 (nan)"
    assert show_value(-5, i) == "-5"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FLOATS)
def test_mac_rtl_random_products(fmt):
    """10,000 random products per format and subnormal mode: random bit patterns (every
    class), and accumulators that nearly cancel the product."""
    dt = get_dtype(fmt)
    rng = np.random.default_rng(17)
    n = 10_000
    for subnormals in ("keep", "flush"):
        a, b = rng.integers(0, 1 << dt.bits, n), rng.integers(0, 1 << dt.bits, n)
        with np.errstate(invalid="ignore"):
            near = encode(-decode(a, dt) * decode(b, dt) * (1 + rng.normal(0, 1e-4, n)), FP32)
        acc = np.where(rng.random(n) < 0.5, rng.integers(0, 1 << 32, n), near)
        got = evaluate_mac(FloatMac(dtype=dt, subnormals=subnormals), acc, a, b)
        wrong = np.nonzero(got != fma_fp32(acc, a, b, dt, flush=subnormals == "flush"))[0]
        assert len(wrong) == 0, (f"seed 17, {subnormals}: {len(wrong)} mismatches, first (acc, a, b): "
                                 f"{[(hex(acc[i]), hex(a[i]), hex(b[i])) for i in wrong[:5]]}")


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("fmt", FLOATS)
def test_float_core_verify_on_verilator(fmt, dataflow):
    from systolab.flows.verify import verify_core
    from systolab.sim.core_bench import core_shapes
    from systolab.sim.runner import simulator_status

    if simulator_status()["verilator"]:
        pytest.skip(simulator_status()["verilator"])
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow, dtype=fmt)
    report = verify_core(cfg, core_shapes(cfg, count=8, seed=1), seed=1, simulator="verilator")
    assert report.passed and report.mismatches == 0, report.messages


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bf16", "fp8_e4m3"])
def test_float_chip_verify_on_verilator(fmt):
    import systolab as sl
    from systolab.flows.verify import verify_chip
    from systolab.sim.chip_bench import chip_campaign
    from systolab.sim.runner import simulator_status

    if simulator_status()["verilator"]:
        pytest.skip(simulator_status()["verilator"])
    chip = sl.get_chip("sl-small").derive(dtype=fmt)
    report = verify_chip(chip, chip_campaign(chip, count=4, seed=2), seed=2, simulator="verilator")
    assert report.passed and report.mismatches == 0, report.messages


def test_cli_verify_array_and_errors(capsys):
    import json

    from systolab.cli import main

    assert main(["verify", "--unit", "array", "--rows", "2", "--cols", "3", "--dataflow", "ws", "--dtype", "fp8_e5m2",
                 "--subnormals", "flush", "--sim", "amaranth", "--gemms", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["mismatches"] == 0 and "specials" in out["labels"] and "init_fp32_edges" in out["labels"]
    assert main(["verify", "--dtype", "bf16", "--acc-bits", "16", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["parameter"] in ("acc_bits", "acc-bits") and "fp32" in err["error"]


def test_compare_in_fp8_prices_both_sides_at_8_bits(tmp_path, capsys):
    import json

    from systolab.cli import main

    args = ["compare", "--workload", "llama3-8b-decode", "--gpus", "h20,h100-sxm", "--buyer", "any", "--json"]
    from systolab.models.silicon.timing import TimingWarning

    with pytest.warns(TimingWarning, match="clock_mhz"):          # 1.2 GHz is above a float MAC's fmax
        assert main([*args, "--dtype", "fp8_e4m3", "--out", str(tmp_path / "fp8")]) == 0
    fp8 = json.loads(capsys.readouterr().out)
    with pytest.warns(TimingWarning, match="clock_mhz"):
        assert main([*args, "--dtype", "bf16", "--out", str(tmp_path / "bf16")]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    chip8, chip16 = fp8["devices"][0], bf16["devices"][0]
    assert chip8["name"].startswith("sl-n4-os32") and "fp8_e4m3" in chip8["id"]
    # bit length 16 vs 8; each chip runs at its own attainable clock, said first: the write-back's
    # fp32 split-K tree is one adder (float_split_k 2), shallower than either MAC, which sets the clock
    from systolab.models.chip.config import get_chip
    from systolab.models.silicon.timing import chip_timing

    clock8, clock16 = fp8["chip"]["clock_mhz"], bf16["chip"]["clock_mhz"]
    for dtype, clock in (("fp8_e4m3", clock8), ("bf16", clock16)):
        t = chip_timing(get_chip("sl-n4-os32").derive(dtype=dtype))
        assert t.critical_path.location == "pe_mac" and clock == int(t.fmax_mhz) < 1200
    assert clock16 < clock8 and "attainable clock" in fp8["assumptions"][0]
    assert "pe_mac" in fp8["assumptions"][0]
    assert chip16["tpp"] / clock16 == pytest.approx(2 * chip8["tpp"] / clock8)
    assert chip16["die_mm2"] > chip8["die_mm2"]                               # bf16 MACs are larger
    h100_8, h100_16 = (next(d for d in p["devices"] if d["id"] == "h100-sxm") for p in (fp8, bf16))
    assert h100_8["peak_tops"] == pytest.approx(2 * h100_16["peak_tops"], rel=1e-3)   # the fp8 tensor rate
    assert "fp8_e4m3 TOPS" in (tmp_path / "fp8" / "report.md").read_text()
    assert main(["compare", "--subnormals", "flush", "--out", str(tmp_path / "x"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "subnormals"


def test_explore_takes_the_format_as_a_parameter(tmp_path):
    from systolab.models.explore import explore

    space = {"base": "sl-n7-os32-edge", "parameters": {"cores": [4], "dtype": ["int8", "fp8_e4m3", "bf16"]},
             "workloads": [{"name": "bert-base", "batch": 1, "seq_len": 128}],
             "objectives": [{"metric": "throughput", "workload": "bert-base", "goal": "max"},
                            {"metric": "die_mm2", "goal": "min"}]}
    df = explore(space, db=tmp_path / "db.sqlite").set_index("dtype")
    assert df.attrs["feasible"] == 3
    assert df.loc["int8", "die_mm2"] < df.loc["fp8_e4m3", "die_mm2"] < df.loc["bf16", "die_mm2"]
    clock = {f: 800 if math.isnan(df.loc[f, "attainable_clock_mhz"]) else df.loc[f, "attainable_clock_mhz"]
             for f in ("fp8_e4m3", "bf16")}        # TPP at the clock each design runs at
    assert df.loc["bf16", "tpp"] / clock["bf16"] == pytest.approx(2 * df.loc["fp8_e4m3", "tpp"] / clock["fp8_e4m3"])
    assert df.loc["int8", "pareto"] and not df.loc["bf16", "pareto"]   # bf16: larger and no faster
    # every design at its attainable clock, as compare runs it: a float chip above its fmax is slowed
    import systolab as sl
    from systolab.models.report.compare import at_attainable_clock

    for fmt in ("fp8_e4m3", "bf16"):
        chip, note = at_attainable_clock(sl.get_chip("sl-n7-os32-edge").derive(cores=4, dtype=fmt))
        if note is None:                              # it meets its stated clock
            assert math.isnan(df.loc[fmt, "attainable_clock_mhz"])
        else:
            assert df.loc[fmt, "attainable_clock_mhz"] == chip.clock_mhz < 800
        ev = chip.evaluate(sl.get_workload("bert-base", dtype=fmt, batch=1, seq_len=128))
        assert df.loc[fmt, "bert-base.throughput_units_per_s"] == pytest.approx(ev.throughput, rel=1e-9)
    assert math.isnan(df.loc["int8", "attainable_clock_mhz"])


@pytest.mark.parametrize("fmt, dataflow", [("fp8_e4m3", "os"), ("bf16", "ws")])
def test_float_chip_on_amaranth_accumulates_k_blocks_in_order(fmt, dataflow):
    """The chip RTL in Amaranth: three K-blocks, each added to the stored sums by the
    slice's fp32 adder, special values in A, stalls on the DRAM ports."""
    import systolab as sl
    from systolab.sim.chip_bench import fit_blocking, run_chip_gemm
    from systolab.sim.stimulus import random_operands, sprinkle_specials

    chip = sl.get_chip("sl-tiny").derive(dtype=fmt, dataflow=dataflow)
    rng = np.random.default_rng(1)
    dt = chip.core.input_dtype
    M, N, K = 5, 6, 40
    a, b = sprinkle_specials(rng, dt, random_operands(rng, dt, (M, K)), 0.05), random_operands(rng, dt, (K, N))
    blk = fit_blocking(chip, M, N, K, 1, mb=M, nb=N, kb=16)
    assert blk.kb < K and blk.gk == 1
    run = run_chip_gemm(chip, [(a, b)], blk, stall_prob=0.1, seed=3)
    assert run.status == 0 and run.passed
    assert np.array_equal(np.asarray(run.c[0], np.int64), golden_matmul(a, b, chip.core, k_block=blk.kb))


def test_float_chip_takes_split_k_but_saturation_still_refuses_it():
    # float split-K is added in a fixed fp32 tree (hdl/float_add.py); saturation has no such order
    import systolab as sl
    from systolab.blocking import Blocking, blocking_status

    chip = sl.get_chip("sl-tiny").derive(dtype="fp16")
    split = Blocking(4, 4, 32, 4, 4, 1, 1, 1, 2, 16)
    assert blocking_status(chip, 4, 4, 32, 1, split) == 0
    assert blocking_status(chip.derive(dtype="int8"), 4, 4, 32, 1, split) == 0
    assert blocking_status(chip.derive(dtype="int8", overflow="saturate"), 4, 4, 32, 1, split) == 6
