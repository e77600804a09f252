"""The accelerator core (buffers, memory port, tiled controller), both dataflows, in
Amaranth's simulator and as Verilog under cocotb: whole GEMMs against the golden model."""
import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.errors import ConfigError
from systolab.hdl.accelerator import AcceleratorCore
from systolab.sim.core_bench import run_gemm, run_gemms


def small(dataflow="os", *, chunk=16, beat_bytes=8, **params):
    """A core with small buffers, so that modest GEMMs span several K-chunks (OS) or
    M-blocks (WS): ``chunk`` is the K-chunk (OS) or the M-block (WS)."""
    cfg = AcceleratorConfig(dataflow=dataflow, beat_bytes=beat_bytes, **params)
    eb, R, C = cfg.input_bytes, cfg.rows, cfg.cols
    if dataflow == "os":
        kib = dict(a_buffer_kib=2 * R * eb * chunk / 1024, b_buffer_kib=2 * C * eb * chunk / 1024)
    else:
        kib = dict(a_buffer_kib=2 * R * eb * chunk / 1024, acc_buffer_kib=C * cfg.acc_bytes * chunk / 1024)
    cfg = cfg.replace(**kib)
    assert (cfg.k_chunk if dataflow == "os" else cfg.tile_m) == chunk
    return cfg


def _operands(cfg, m, n, k, seed):
    rng = np.random.default_rng(seed)
    dt = cfg.input_dtype
    return (rng.integers(dt.min_int, dt.max_int, (m, k), endpoint=True),
            rng.integers(dt.min_int, dt.max_int, (k, n), endpoint=True))


SHAPES = [(1, 1, 1), (1, 16, 40), (33, 1, 7), (5, 6, 1), (37, 23, 19), (64, 3, 2), (2, 40, 70)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("params, memory", [
    (dict(rows=4, cols=4), dict(latency=1, stall_prob=0.3, bytes_per_cycle=16)),
    (dict(rows=3, cols=5, dtype="int16", overflow="saturate"), dict(latency=120, stall_prob=0.2, bytes_per_cycle=6)),
    (dict(rows=4, cols=2, dtype="uint8", acc_bits=20), dict(latency=7, stall_prob=0.1, bytes_per_cycle=16)),
], ids=["4x4-int8-lat1", "3x5-int16-sat-lat120", "4x2-uint8-acc20"])
def test_gemm_shapes_bit_exact(shape, dataflow, params, memory):
    cfg = small(dataflow, chunk=16 if dataflow == "os" else 6, **params)
    a, b = _operands(cfg, *shape, seed=sum(shape))
    run = run_gemm(cfg, a, b, seed=5, **memory)
    assert not run.violations, run.violations[:3]
    assert run.passed, (run.c, run.expected)
    m, n, k = shape
    assert run.counters["macs"] == m * n * k
    assert run.counters["bytes_written"] == m * n * ((cfg.acc_bits + 7) // 8)
    assert run.counters["busy_cycles"] <= run.counters["cycles"]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_saturation_and_wrap_over_k_chunks(dataflow):
    """Accumulation continues across K chunks (in the PEs for OS, through the accumulator
    buffer as psum for WS): overflow must match ascending-k clamping over many chunks."""
    for overflow in ("wrap", "saturate"):
        cfg = small(dataflow, rows=2, cols=2, acc_bits=16, overflow=overflow, beat_bytes=4, chunk=8)
        a = np.full((3, 50), -128)
        b = np.full((50, 2), -128)
        b[40:] = 127
        run = run_gemm(cfg, a, b)
        assert run.passed, (overflow, run.c, run.expected)


def test_keeps_the_array_busy_with_enough_bandwidth():
    """64x64x64 on 4x4 with 16 B/cycle: at least 95 % MAC utilisation even at latency 100
    (latency 10 is the CLI's done-when run on Verilator, tests/test_cli.py)."""
    cfg = AcceleratorConfig(rows=4, cols=4)
    a, b = _operands(cfg, 64, 64, 64, seed=1)
    run = run_gemm(cfg, a, b, latency=100)
    assert run.passed
    assert run.utilization >= 0.95, (run.utilization, run.counters)


def test_weight_stationary_overlaps_weight_loads():
    """WS fetches each A row once per K-tile of R (one beat per row), so a 4x4 array reads
    M + C beats per M rows it computes: 64^3 stays within 8 % of that beat floor, i.e. the
    weight loads (R cycles per K-tile) hide behind the rows of the previous tile."""
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="ws")
    a, b = _operands(cfg, 64, 64, 64, seed=1)
    run = run_gemm(cfg, a, b, latency=10)
    assert run.passed
    beats = run.counters["bytes_read"] // cfg.beat_bytes
    assert beats == 16 * 16 * (64 + 4)   # (M/TM=1) x N-tiles x K-tiles x (A rows + B columns)
    assert beats <= run.counters["cycles"] <= 1.08 * beats, run.counters
    assert run.utilization >= 0.85


def test_memory_bound_run_approaches_bytes_over_bandwidth():
    cfg = AcceleratorConfig(rows=4, cols=4)
    a, b = _operands(cfg, 32, 32, 64, seed=2)
    run = run_gemm(cfg, a, b, bytes_per_cycle=2)
    assert run.passed
    floor = run.counters["bytes_read"] / 2
    assert floor <= run.counters["cycles"] <= 1.1 * floor + 200


@pytest.mark.parametrize("kwargs, field", [
    (dict(beat_bytes=3), "beat_bytes"),
    (dict(dtype="int16", beat_bytes=1), "beat_bytes"),
    (dict(a_buffer_kib=0.01), "a_buffer_kib"),
    (dict(b_buffer_kib=-1), "b_buffer_kib"),
    (dict(dataflow="ws", rows=16, cols=16, b_buffer_kib=0.25), "b_buffer_kib"),
    (dict(dataflow="ws", acc_buffer_kib=0.01), "acc_buffer_kib"),
])
def test_rejects_buffers_that_cannot_hold_a_chunk(kwargs, field):
    with pytest.raises(ConfigError) as err:
        AcceleratorConfig(**kwargs)
    assert err.value.field == field


def test_buffer_geometry_follows_the_configuration():
    os_ = AcceleratorConfig(rows=16, cols=8, beat_bytes=32)
    assert os_.k_chunk == 8 * 1024 // (2 * 16) and os_.tile_m == 16
    ws = AcceleratorConfig(rows=16, cols=16, dataflow="ws")
    assert ws.k_chunk == 16 and ws.tile_m == min(8 * 1024 // (2 * 16), 16 * 1024 // (16 * 4))
    assert AcceleratorConfig(a_buffer_kib=8).config_hash == AcceleratorConfig(a_buffer_kib=8.0).config_hash
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        AcceleratorCore({"rows": 4})


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_second_descriptor_waits_and_completes(dataflow):
    cfg = small(dataflow, rows=3, cols=3, beat_bytes=4, chunk=8)
    products = [_operands(cfg, 7, 5, 9, seed=1), _operands(cfg, 4, 8, 20, seed=2)]
    runs = run_gemms(cfg, products, stall_prob=0.2, seed=9)
    assert all(r.passed for r in runs)
    assert runs[1].counters["macs"] == 4 * 8 * 20  # counters restart with each descriptor


@pytest.mark.parametrize("dataflow, after", [("os", 5), ("os", 40), ("os", 150), ("ws", 17), ("ws", 90)])
def test_reset_in_flight_then_clean_gemms(dataflow, after):
    cfg = small(dataflow, rows=4, cols=4, overflow="saturate", acc_bits=16, chunk=16 if dataflow == "os" else 5)
    products = [_operands(cfg, 9, 9, 40, seed=3), _operands(cfg, 6, 7, 33, seed=4)]
    runs = run_gemms(cfg, products, latency=12, reset_after_cycles=after)
    assert all(r.passed for r in runs), [r.c for r in runs]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_core_verilog_under_cocotb_matches_amaranth_cycle_for_cycle(dataflow):
    """The generated Verilog of the core (Verilator, and Icarus when present) computes the
    same C and counts the same cycles as Amaranth's simulator, with the same memory seed."""
    from systolab.sim.runner import run_core_hdl, simulator_status

    cfg = small(dataflow, rows=4, cols=4, dtype="int16", overflow="saturate", chunk=16 if dataflow == "os" else 12)
    products = [_operands(cfg, 37, 23, 19, seed=3), _operands(cfg, 1, 16, 40, seed=4)]
    params = dict(stall_prob=0.2, latency=30, seed=6)
    reference = run_gemms(cfg, products, **params)
    assert all(r.passed for r in reference)
    for sim in ("verilator", "icarus"):
        if simulator_status()[sim] is not None:
            continue
        out = run_core_hdl(cfg, products, sim, **params)
        assert out.violations == []
        for c, ref in zip(out.c, reference):
            assert np.array_equal(np.array(c, dtype=object), ref.expected.astype(object))
        assert out.counters == [r.counters for r in reference], sim


@pytest.mark.slow
def test_256_cubed_on_16x16_keeps_the_array_busy():
    """256x256x256 on a 16x16 array (Verilator), 32 B/cycle: at least 95 % utilisation."""
    from systolab.sim.golden import golden_matmul
    from systolab.sim.runner import run_core_hdl

    cfg = AcceleratorConfig(rows=16, cols=16, beat_bytes=32)
    assert cfg.k_chunk == 256
    a, b = _operands(cfg, 256, 256, 256, seed=16)
    out = run_core_hdl(cfg, [(a, b)], "verilator", latency=20, bytes_per_cycle=32)
    assert np.array_equal(np.array(out.c[0], dtype=object), golden_matmul(a, b, cfg).astype(object))
    c = out.counters[0]
    assert c["macs"] / (256 * c["cycles"]) >= 0.95, c
    from systolab.models.core.perf import MemorySystem, core_perf

    assert core_perf(cfg, 256, 256, 256, MemorySystem(20, 32)).cycles == c["cycles"]
