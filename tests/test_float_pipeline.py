"""The pipelined floating-point MAC (``AcceleratorConfig.mac_stages``): the unit bit-exact
against the golden model at every depth, arrays and cores in both dataflows, the cycle
model equal to the RTL's counters, and the parameter's validation."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from systolab import AcceleratorConfig, ConfigError
from systolab.dtypes import get_dtype
from systolab.flows.verify import verify_products
from systolab.hdl import FloatMac
from systolab.hdl.float_mac import BOUNDARIES, CUTS
from systolab.models.core import MemorySystem, core_perf
from systolab.sim.core_bench import run_gemms
from systolab.sim.golden import CANONICAL_NAN, encode, fma_fp32, golden_matmul
from systolab.sim.stimulus import campaign, float_specials, random_operands, sprinkle_specials

FP32 = get_dtype("fp32")


def evaluate_pipelined(mac: FloatMac, acc, a, b, *, seed: int = 0) -> np.ndarray:
    """``mac.accumulate`` through its pipeline: one (acc, a, b) a cycle while a random
    enable holds the pipeline about a third of the time; each output is read when its
    inputs have gone through ``stages - 1`` enabled cycles."""
    m = Module()
    c, x, y, en = Signal(32), Signal(mac.input_shape), Signal(mac.input_shape), Signal()
    out = Signal(32)
    m.d.comb += out.eq(mac.accumulate(m, c, x, y, en))
    rng = np.random.default_rng(seed)
    n, lag = len(acc), mac.stages - 1
    got = np.zeros(n, np.int64)

    async def bench(ctx):
        sent = 0
        entered: list[int] = []        # per enabled cycle, the vector that entered then
        while len(entered) < n + lag:
            hold = rng.random() < 0.3
            i = min(sent, n - 1)
            ctx.set(c, int(acc[i]))
            ctx.set(x, int(a[i]))
            ctx.set(y, int(b[i]))
            ctx.set(en, int(not hold))
            if not hold:
                entered.append(i if sent < n else -1)
                sent += 1
                if len(entered) > lag and entered[-1 - lag] >= 0:
                    got[entered[-1 - lag]] = ctx.get(out)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def _vectors(fmt: str, n: int, seed: int):
    """Random bit patterns (every class), near-cancelling accumulators and the format's
    edge values on accumulator edges."""
    dt = get_dtype(fmt)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 1 << dt.bits, n), rng.integers(0, 1 << dt.bits, n)
    acc = rng.integers(0, 1 << 32, n)
    edges = list(float_specials(dt).values())
    accs = [0, 0x80000000, int(encode(1.0, FP32)), 0x7F7FFFFF, 0x00000001, 0xFF800000, CANONICAL_NAN]
    ea, eb, ec = (np.array(v).ravel() for v in np.meshgrid(edges, edges, accs, indexing="ij"))
    return dt, np.concatenate([acc, ec]), np.concatenate([a, ea]), np.concatenate([b, eb])


@pytest.mark.parametrize("stages", [2, 3, 4, 7])
@pytest.mark.parametrize("fmt", ["bf16", "fp8_e4m3"])
def test_pipelined_mac_is_bit_exact(fmt, stages):
    dt, acc, a, b = _vectors(fmt, 150, seed=stages)
    for subnormals in ("keep", "flush"):
        mac = FloatMac(dtype=dt, subnormals=subnormals, stages=stages)
        got = evaluate_pipelined(mac, acc, a, b, seed=stages)
        expected = fma_fp32(acc, a, b, dt, flush=subnormals == "flush")
        wrong = np.nonzero(got != expected)[0]
        assert len(wrong) == 0, [(hex(acc[i]), hex(a[i]), hex(b[i]), hex(expected[i]), hex(got[i])) for i in wrong[:5]]


def test_cut_table_is_well_formed():
    for stages, cuts in CUTS.items():
        assert len(cuts) == stages - 1 and set(cuts) <= set(BOUNDARIES)
        assert list(cuts) == [b for b in BOUNDARIES if b in cuts]      # in datapath order


def test_mac_stages_is_validated_and_named():
    for bad in (0, 8, 2.5, "2", True):
        with pytest.raises(ConfigError, match="^mac_stages") as err:
            AcceleratorConfig(dtype="bf16", mac_stages=bad)
        assert err.value.parameter == "mac_stages"
    with pytest.raises(ConfigError, match="^mac_stages: pipelines the floating-point MAC only"):
        AcceleratorConfig(dtype="int8", mac_stages=2)
    with pytest.raises(ValueError, match="stages"):
        FloatMac(dtype=get_dtype("bf16"), stages=0)
    with pytest.raises(ValueError, match="needs the enable"):
        FloatMac(dtype=get_dtype("bf16"), stages=2).accumulate(Module(), Signal(32), Signal(16), Signal(16))
    # the default keeps every earlier configuration, its id and its name
    base = AcceleratorConfig(dtype="bf16")
    assert base.mac_stages == 1 and "mac_stages" not in base.canonical_json()
    s2 = base.replace(mac_stages=2)
    assert s2.config_hash != base.config_hash and s2.name.endswith("_s2")
    assert s2.tile_m == 2 * base.tile_m
    assert AcceleratorConfig(dtype="bf16", dataflow="ws", mac_stages=3).tile_m == base.replace(dataflow="ws").tile_m


@pytest.mark.parametrize("stages", [2, 3])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("fmt", ["bf16", "fp8_e4m3"])
def test_pipelined_array_products_with_stalls(fmt, dataflow, stages):
    cfg = AcceleratorConfig(rows=3, cols=2, dataflow=dataflow, dtype=fmt, mac_stages=stages)
    report = verify_products(cfg, campaign(cfg, count=4, seed=3), seed=3, simulator="amaranth", stall_prob=0.3)
    assert report.passed, "\n".join(report.messages)


def _small_core(fmt: str, dataflow: str, stages: int) -> AcceleratorConfig:
    """Small buffers (K-chunks and M-blocks repeat); C rows of one beat: the regime the
    cycle model is exact in (perf.py lists the write-back-bound regimes it is not)."""
    if dataflow == "ws":
        return AcceleratorConfig(rows=3, cols=2, dataflow="ws", dtype=fmt, beat_bytes=8, mac_stages=stages,
                                 a_buffer_kib=0.25, acc_buffer_kib=0.125)
    return AcceleratorConfig(rows=2, cols=2, dtype=fmt, beat_bytes=8, mac_stages=stages,
                             a_buffer_kib=0.125, b_buffer_kib=0.0625)


FAST_CORES = [("bf16", "os", 2), ("fp8_e4m3", "ws", 2), ("fp8_e4m3", "os", 3)]
CORES = FAST_CORES + [pytest.param(*c, marks=pytest.mark.slow) for c in
                      [("fp8_e4m3", "os", 2), ("bf16", "ws", 2), ("bf16", "os", 3), ("bf16", "ws", 3),
                       ("fp8_e4m3", "ws", 3), ("bf16", "os", 4), ("bf16", "ws", 4)]]


@pytest.mark.parametrize("fmt, dataflow, stages", CORES)
def test_pipelined_core_gemms_bit_exact_and_cycles_as_modelled(fmt, dataflow, stages):
    """Whole GEMMs on the core (K over several chunks, M and N edges, special values):
    C bit-exact against the unchanged golden model, and the core's counters equal to the
    cycle model's."""
    cfg = _small_core(fmt, dataflow, stages)
    rng = np.random.default_rng(stages)
    dt = cfg.input_dtype
    shapes = [(3, 4, 9), (7, 3, 17), (1, 1, 1), (5, 7, 2), (13, 2, 6)]
    products = [(sprinkle_specials(rng, dt, random_operands(rng, dt, (M, K)), 0.1),
                 random_operands(rng, dt, (K, N))) for M, N, K in shapes]
    runs = run_gemms(cfg, products, latency=10, bytes_per_cycle=8)
    for run, (a, b) in zip(runs, products):
        assert np.array_equal(np.array(run.c, dtype=np.int64), golden_matmul(a, b, cfg))
        M, K = a.shape
        p = core_perf(cfg, M, b.shape[1], K, MemorySystem(10, 8))
        assert run.counters["cycles"] == p.cycles, (M, b.shape[1], K)
        assert run.counters["busy_cycles"] == p.busy_cycles and run.counters["macs"] == p.macs


@pytest.mark.parametrize("stages", [1, 2, 3, 4, 7])
def test_pipelined_os_core_models_full_rate(stages):
    """The cycle model (equal to the RTL, above): one MAC per PE per cycle in steady state
    at every depth, a compute-bound GEMM at >= 95 %; busy cycles S per k-slice."""
    cfg = AcceleratorConfig(rows=4, cols=4, dtype="bf16", mac_stages=stages)
    M = 4 * cfg.tile_m                      # whole tiles of S x 4 rows: no padded row groups
    p = core_perf(cfg, M, 64, 128, MemorySystem(10, 16))
    assert p.utilization >= 0.95 and p.bound == "compute"
    assert p.busy_cycles == M * 64 * 128 // 16


@pytest.mark.slow
def test_pipelined_core_keeps_full_rate_on_a_compute_bound_gemm():
    """One MAC per PE per cycle in steady state: a compute-bound GEMM at >= 95 % in RTL."""
    cfg = AcceleratorConfig(rows=4, cols=4, dtype="bf16", mac_stages=2)
    rng = np.random.default_rng(0)
    a, b = (random_operands(rng, cfg.input_dtype, s) for s in ((32, 64), (64, 32)))
    run = run_gemms(cfg, [(a, b)], latency=10, bytes_per_cycle=16)[0]
    assert np.array_equal(np.array(run.c, dtype=np.int64), golden_matmul(a, b, cfg))
    util = run.counters["macs"] / (16 * run.counters["cycles"])
    assert util >= 0.95, util
    assert run.counters["cycles"] == core_perf(cfg, 32, 32, 64, MemorySystem(10, 16)).cycles


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_pipelined_chip_bit_exact_and_cycles_as_modelled(dataflow):
    """The chip RTL with pipelined cores (sl-tiny in bf16, 2 stages): K-blocks added by the
    slice's fp32 adder in order, and the chip's counters equal to the chip cycle model's."""
    import systolab as sl
    from systolab.models.chip.perf import chip_gemm_perf
    from systolab.sim.chip_bench import fit_blocking, run_chip_gemm

    chip = sl.get_chip("sl-tiny").derive(dtype="bf16", dataflow=dataflow, mac_stages=2)
    rng = np.random.default_rng(2)
    dt = chip.core.input_dtype
    M, N, K = 9, 6, 40
    a, b = random_operands(rng, dt, (M, K)), random_operands(rng, dt, (K, N))
    blk = fit_blocking(chip, M, N, K, 1, mb=M, nb=N, kb=16)
    run = run_chip_gemm(chip, [(a, b)], blk)
    assert run.status == 0 and run.passed
    assert np.array_equal(np.asarray(run.c[0], np.int64), golden_matmul(a, b, chip.core, k_block=blk.kb))
    model = {k: v for k, v in chip_gemm_perf(chip, M, N, K, blk).counters().items() if k != "busy"}
    assert run.counters == model


GRID_SHAPES = [(1, 1, 1), (1, 17, 40), (23, 1, 7), (9, 6, 1), (40, 2, 5), (16, 16, 16), (8, 8, 64), (13, 11, 33),
               (29, 5, 18), (3, 38, 11),
               # small K (K < S, K below the rows), ragged tiles, many N-tiles, M-blocks back to back
               (17, 23, 2), (18, 2, 1), (7, 5, 3), (25, 9, 1), (1, 23, 2), (33, 3, 2)]
GRID_CASES = {   # compute- and memory-bound, both dataflows, K-chunks and M-blocks that repeat
    "os": (dict(rows=3, cols=2, dtype="bf16", beat_bytes=8, a_buffer_kib=0.25, b_buffer_kib=0.25), 10, 8),
    "os_mem": (dict(rows=2, cols=4, dtype="fp8_e4m3", beat_bytes=8, a_buffer_kib=0.125, b_buffer_kib=0.125), 30, 3),
    "ws": (dict(rows=3, cols=2, dtype="bf16", dataflow="ws", beat_bytes=8, a_buffer_kib=0.25, acc_buffer_kib=0.125),
           10, 8),
    "ws_mem": (dict(rows=4, cols=3, dtype="fp8_e4m3", dataflow="ws", beat_bytes=8, a_buffer_kib=0.125,
                    acc_buffer_kib=0.125), 20, 4),
}


@pytest.mark.slow
@pytest.mark.parametrize("stages", [2, 3, 4])
@pytest.mark.parametrize("case", list(GRID_CASES))
def test_pipelined_cycle_model_grid(case, stages):
    """The core cycle model against the RTL's counters on a grid of shapes (the corner
    classes of ``systolab validate`` and random ones): 0 cycles off, every C bit-exact."""
    kw, latency, bw = GRID_CASES[case]
    cfg = AcceleratorConfig(**kw, mac_stages=stages)
    rng = np.random.default_rng(stages)
    dt = cfg.input_dtype
    products = [(random_operands(rng, dt, (M, K)), random_operands(rng, dt, (K, N))) for M, N, K in GRID_SHAPES]
    runs = run_gemms(cfg, products, latency=latency, bytes_per_cycle=bw)
    off = {(M, N, K): r.counters["cycles"] - core_perf(cfg, M, N, K, MemorySystem(latency, bw)).cycles
           for r, (M, N, K) in zip(runs, GRID_SHAPES)}
    assert all(r.passed for r in runs)
    assert not any(off.values()), {k: v for k, v in off.items() if v}


@pytest.mark.slow
@pytest.mark.parametrize("case, stages", [("os", 3), ("os", 4), ("ws", 3), ("ws", 4)])
def test_pipelined_cycle_model_short_k(case, stages):
    """K = 2 on a 3-row core at S >= 3 (tiles of 2 S beats, bound by the array's guard,
    many N-tiles): once 6 cycles off (OS, S = 4) and 1 (WS): the router's bubble between
    back-to-back tiles, which the model now counts in array steps."""
    kw, latency, bw = GRID_CASES[case]
    cfg = AcceleratorConfig(**kw, mac_stages=stages)
    rng = np.random.default_rng(0)
    a, b = random_operands(rng, cfg.input_dtype, (17, 2)), random_operands(rng, cfg.input_dtype, (2, 23))
    run = run_gemms(cfg, [(a, b)], latency=latency, bytes_per_cycle=bw)[0]
    assert run.passed
    assert run.counters["cycles"] == core_perf(cfg, 17, 23, 2, MemorySystem(latency, bw)).cycles


@pytest.mark.slow
def test_timing_reads_the_pipelined_depth_and_chips_run_faster():
    """The delay model times the deepest pipeline stage: bf16 at 3 stages has under half
    the one-stage PE depth and over twice its fmax; a chip derived to pipelined cores gets
    the higher attainable clock (what compare and decide run it at)."""
    import systolab as sl
    from systolab.models.silicon.timing import attainable_clock_mhz, timing_estimate

    one = timing_estimate(AcceleratorConfig(rows=2, cols=2, dtype="bf16"), "n4")
    three = timing_estimate(AcceleratorConfig(rows=2, cols=2, dtype="bf16", mac_stages=3), "n4")
    assert one.critical_path.location == three.critical_path.location == "pe_mac"
    assert three.critical_path.depth_gates < 0.5 * one.critical_path.depth_gates
    assert three.fmax_mhz > 2 * one.fmax_mhz
    chip = sl.get_chip("sl-tiny").derive(dtype="bf16")
    assert attainable_clock_mhz(chip.derive(mac_stages=3)) > attainable_clock_mhz(chip)


def test_cli_mac_stages(capsys):
    """``--mac-stages`` reaches the design; a bad value or an integer design is refused,
    naming the parameter."""
    import json

    from systolab.cli import main

    assert main(["perf", "--gemm", "32x32x64", "--dtype", "bf16", "--mac-stages", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg = AcceleratorConfig(dtype="bf16", mac_stages=2)
    assert out["cycles"] == core_perf(cfg, 32, 32, 64).cycles
    for args in (["--dtype", "bf16", "--mac-stages", "8"], ["--mac-stages", "2"]):
        assert main(["perf", "--gemm", "8x8x8", *args, "--json"]) == 2
        err = json.loads(capsys.readouterr().out)
        assert err["parameter"].replace("-", "_") == "mac_stages", err


def test_energy_of_a_pipelined_core_is_defined():
    """The float MAC's energy scales from its int8 anchor, which is one-stage, and adds the
    pipeline's extra flip-flops clocked every cycle (tests/test_area_pipelined.py)."""
    from systolab.models.silicon.energy import mac_energy_pJ, pipeline_register_pJ

    one = mac_energy_pJ(AcceleratorConfig(dtype="bf16"), "n7")
    three = AcceleratorConfig(dtype="bf16", mac_stages=3)
    assert mac_energy_pJ(three, "n7") == pytest.approx(one + pipeline_register_pJ(three, "n7"))
    assert pipeline_register_pJ(three, "n7") > 0 < one
