"""The OS accelerator core (buffers, memory port, tiled controller) in Amaranth's
simulator, whole GEMMs against the golden model. Work toward issue 3: OS only so far."""
import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.hdl.accelerator import OSAcceleratorCore
from systolab.sim.core_bench import run_gemm


def _operands(cfg, m, n, k, seed):
    rng = np.random.default_rng(seed)
    dt = cfg.input_dtype
    return (rng.integers(dt.min_int, dt.max_int, (m, k), endpoint=True),
            rng.integers(dt.min_int, dt.max_int, (k, n), endpoint=True))


SHAPES = [(1, 1, 1), (1, 16, 40), (33, 1, 7), (5, 6, 1), (37, 23, 19), (64, 3, 2), (2, 40, 70)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("params, memory", [
    (dict(rows=4, cols=4), dict(latency=1, stall_prob=0.3, bytes_per_cycle=16)),
    (dict(rows=3, cols=5, dtype="int16", overflow="saturate"), dict(latency=120, stall_prob=0.2, bytes_per_cycle=6)),
    (dict(rows=4, cols=2, dtype="uint8", acc_bits=20), dict(latency=7, stall_prob=0.1, bytes_per_cycle=16)),
], ids=["4x4-int8-lat1", "3x5-int16-sat-lat120", "4x2-uint8-acc20"])
def test_gemm_shapes_bit_exact(shape, params, memory):
    cfg = AcceleratorConfig(**params)
    a, b = _operands(cfg, *shape, seed=sum(shape))
    run = run_gemm(cfg, a, b, beat_bytes=8, k_chunk=16, seed=5, **memory)
    assert not run.violations, run.violations[:3]
    assert run.passed, (run.c, run.expected)
    m, n, k = shape
    assert run.counters["macs"] == m * n * k
    assert run.counters["bytes_written"] == m * n * ((cfg.acc_bits + 7) // 8)
    assert run.counters["busy_cycles"] <= run.counters["cycles"]


def test_saturation_and_wrap_over_k_chunks():
    """Accumulation continues across K chunks (the PEs hold the sum): overflow semantics
    must match ascending-k clamping even when K spans many chunks."""
    for overflow in ("wrap", "saturate"):
        cfg = AcceleratorConfig(rows=2, cols=2, acc_bits=16, overflow=overflow)
        a = np.full((2, 50), -128)
        b = np.full((50, 2), -128)
        b[40:] = 127
        run = run_gemm(cfg, a, b, beat_bytes=4, k_chunk=8)
        assert run.passed, (overflow, run.c, run.expected)


def test_keeps_the_array_busy_with_enough_bandwidth():
    """64x64x64 on 4x4 with 16 B/cycle: at least 95 % MAC utilisation, at latency 10 and 100."""
    cfg = AcceleratorConfig(rows=4, cols=4)
    a, b = _operands(cfg, 64, 64, 64, seed=1)
    for latency in (10, 100):
        run = run_gemm(cfg, a, b, beat_bytes=16, k_chunk=64, latency=latency)
        assert run.passed
        assert run.utilization >= 0.95, (latency, run.utilization, run.counters)


def test_memory_bound_run_approaches_bytes_over_bandwidth():
    cfg = AcceleratorConfig(rows=4, cols=4)
    a, b = _operands(cfg, 32, 32, 64, seed=2)
    run = run_gemm(cfg, a, b, beat_bytes=16, k_chunk=64, bytes_per_cycle=2)
    assert run.passed
    floor = run.counters["bytes_read"] / 2
    assert floor <= run.counters["cycles"] <= 1.1 * floor + 200


@pytest.mark.parametrize("kwargs, message", [
    (dict(beat_bytes=3), "beat_bytes must be a power of two"),
    (dict(k_chunk=6, beat_bytes=8), "k_chunk must be a positive multiple of 8"),
])
def test_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OSAcceleratorCore(AcceleratorConfig(), **kwargs)


def test_rejects_weight_stationary_for_now():
    with pytest.raises(ValueError, match="output-stationary"):
        OSAcceleratorCore(AcceleratorConfig(dataflow="ws"))


def test_second_descriptor_waits_and_completes():
    cfg = AcceleratorConfig(rows=3, cols=3)
    from systolab.sim.core_bench import run_gemms

    products = [_operands(cfg, 7, 5, 9, seed=1), _operands(cfg, 4, 8, 20, seed=2)]
    runs = run_gemms(cfg, products, beat_bytes=4, k_chunk=8, stall_prob=0.2, seed=9)
    assert all(r.passed for r in runs)
    assert runs[1].counters["macs"] == 4 * 8 * 20  # counters restart with each descriptor


@pytest.mark.parametrize("after", [5, 40, 150])
def test_reset_in_flight_then_clean_gemms(after):
    cfg = AcceleratorConfig(rows=4, cols=4, overflow="saturate", acc_bits=16)
    from systolab.sim.core_bench import run_gemms

    products = [_operands(cfg, 9, 9, 40, seed=3), _operands(cfg, 6, 7, 33, seed=4)]
    runs = run_gemms(cfg, products, beat_bytes=8, k_chunk=16, latency=12, reset_after_cycles=after)
    assert all(r.passed for r in runs), [r.c for r in runs]


def test_core_verilog_under_cocotb_matches_amaranth_cycle_for_cycle():
    """The generated Verilog of the core (Verilator, and Icarus when present) computes the
    same C and counts the same cycles as Amaranth's simulator, with the same memory seed."""
    from systolab.sim.core_bench import run_gemms
    from systolab.sim.runner import run_core_hdl, simulator_status

    cfg = AcceleratorConfig(rows=4, cols=4, dtype="int16", overflow="saturate")
    products = [_operands(cfg, 37, 23, 19, seed=3), _operands(cfg, 1, 16, 40, seed=4)]
    params = dict(beat_bytes=8, k_chunk=16, stall_prob=0.2, latency=30, seed=6)
    reference = run_gemms(cfg, products, **params)
    assert all(r.passed for r in reference)
    for sim in ("verilator", "icarus"):
        if simulator_status()[sim] is not None:
            continue
        out = run_core_hdl(cfg, products, sim, **params)
        assert out["violations"] == []
        for c, ref in zip(out["c"], reference):
            assert np.array_equal(np.array(c, dtype=object), ref.expected.astype(object))
        assert out["counters"] == [r.counters for r in reference], sim


@pytest.mark.slow
def test_256_cubed_on_16x16_keeps_the_array_busy():
    """256x256x256 on a 16x16 array (Verilator), 32 B/cycle: at least 95 % utilisation."""
    from systolab.sim.golden import golden_matmul
    from systolab.sim.runner import run_core_hdl

    cfg = AcceleratorConfig(rows=16, cols=16)
    a, b = _operands(cfg, 256, 256, 256, seed=16)
    out = run_core_hdl(cfg, [(a, b)], "verilator", beat_bytes=32, k_chunk=256, latency=20, bytes_per_cycle=32)
    assert np.array_equal(np.array(out["c"][0], dtype=object), golden_matmul(a, b, cfg).astype(object))
    c = out["counters"][0]
    assert c["macs"] / (256 * c["cycles"]) >= 0.95, c
