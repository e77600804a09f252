"""Whole arrays in Amaranth's simulator: random and corner products, stalls, reset, timing.

Fast (well under a second per configuration), so this is where the configuration space
is covered widely; the cocotb tests run a subset on the generated Verilog.
"""
import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.flows.verify import verify_products
from systolab.sim.amaranth_bench import run_plan_amaranth
from systolab.sim.plan import Plan
from systolab.sim.stimulus import Product, campaign, random_product

CONFIGS = [
    dict(rows=1, cols=1),
    dict(rows=1, cols=7),
    dict(rows=7, cols=1),
    dict(rows=3, cols=5),
    dict(rows=4, cols=4, dtype="uint8"),
    dict(rows=5, cols=3, dtype="int16", acc_bits=48),
    dict(rows=4, cols=2, acc_bits=16, overflow="saturate"),
    dict(rows=2, cols=4, dtype="uint8", acc_bits=16, overflow="saturate"),
    dict(rows=3, cols=3, acc_bits=16, overflow="wrap"),
    dict(rows=2, cols=3, dtype="int16", acc_bits=32, overflow="saturate"),
]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_random_and_corner_products_with_stalls(dataflow, params):
    cfg = AcceleratorConfig(dataflow=dataflow, **params)
    seed = 11
    report = verify_products(cfg, campaign(cfg, count=5, seed=seed), seed=seed, simulator="amaranth",
                             stall_prob=0.3)
    assert report.passed, "\n".join(report.messages)
    assert report.gemms >= 13 and len(report.cycles) == report.gemms


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_reset_with_a_product_in_flight_then_clean_product(dataflow):
    cfg = AcceleratorConfig(rows=3, cols=4, dataflow=dataflow, overflow="saturate", acc_bits=16)
    products = campaign(cfg, count=3, seed=4)
    report = verify_products(cfg, products, seed=4, simulator="amaranth", stall_prob=0.2, reset_midway=True)
    assert report.passed, "\n".join(report.messages)


def test_saturation_order_is_ascending_k_in_both_dataflows():
    """Per-step clamping makes order visible: both arrays must agree with the model."""
    a = np.array([[-128, -128, 127]])
    b = np.array([[-128], [-128], [-128]])
    for dataflow in ("os", "ws"):
        cfg = AcceleratorConfig(rows=3, cols=1, dataflow=dataflow, acc_bits=16, overflow="saturate")
        report = verify_products(cfg, [Product("order", a, b)], seed=0, simulator="amaranth", stall_prob=0.0)
        assert report.passed, report.messages


def _cycles(cfg, products, stall_prob=0.0):
    return run_plan_amaranth(Plan.build(cfg, products, seed=0, stall_prob=stall_prob))


@pytest.mark.parametrize("rows, cols, k", [(4, 4, 9), (3, 5, 1), (6, 2, 17)])
def test_os_latency_contract(rows, cols, k):
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow="os")
    p = random_product(np.random.default_rng(0), cfg, "p", m=rows, n=cols, k=k)
    # first slice to last result row, inclusive: K + R + C - 1 (docstring of the array)
    assert _cycles(cfg, [p]).cycles == [k + rows + cols - 1]


@pytest.mark.parametrize("rows, cols, m", [(4, 4, 9), (3, 5, 1), (6, 2, 17)])
def test_ws_latency_contract(rows, cols, m):
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow="ws")
    p = random_product(np.random.default_rng(0), cfg, "p", m=m, n=cols, k=rows)
    # R weight beats, then M rows, each leaving R + C - 1 cycles after it entered
    assert _cycles(cfg, [p]).cycles == [2 * rows + m + cols - 1]


@pytest.mark.parametrize("rows, cols", [(4, 4), (2, 6), (6, 3)])
def test_os_tiles_stream_back_to_back(rows, cols):
    """Tiles with K = max(R, C) keep every PE busy: n tiles take n*K + R + C - 1 cycles."""
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow="os")
    k, n = max(rows, cols), 6
    rng = np.random.default_rng(1)
    products = [random_product(rng, cfg, f"t{i}", m=rows, n=cols, k=k) for i in range(n)]
    res = _cycles(cfg, products)
    assert res.last_cycle[-1] - res.first_cycle[0] + 1 == n * k + rows + cols - 1


@pytest.mark.parametrize("rows, cols", [(4, 4), (2, 6), (6, 3)])
def test_ws_tiles_stream_back_to_back(rows, cols):
    """With M >= 2R + C - 2 rows per tile, weight loads hide behind compute."""
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow="ws")
    m, n = 2 * rows + cols - 2, 5
    rng = np.random.default_rng(2)
    products = [random_product(rng, cfg, f"t{i}", m=m, n=cols, k=rows) for i in range(n)]
    res = _cycles(cfg, products)
    assert res.last_cycle[-1] - res.first_cycle[0] + 1 == rows + n * m + rows + cols - 1


def test_short_os_tiles_are_spaced_not_corrupted():
    """K < max(R, C): the array throttles `last` slices; results stay exact."""
    cfg = AcceleratorConfig(rows=6, cols=6, dataflow="os")
    rng = np.random.default_rng(3)
    products = [random_product(rng, cfg, f"t{i}", k=1) for i in range(5)]
    report = verify_products(cfg, products, seed=3, simulator="amaranth", stall_prob=0.0)
    assert report.passed, report.messages
    res = _cycles(cfg, products)
    assert res.last_cycle[-1] - res.first_cycle[0] + 1 == 4 * 6 + 1 + 6 + 6 - 1


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_long_random_campaign_amaranth(dataflow):
    for seed in range(5):
        cfg = AcceleratorConfig(rows=5, cols=6, dataflow=dataflow, overflow=("wrap", "saturate")[seed % 2],
                                acc_bits=16 + 8 * (seed % 3))
        report = verify_products(cfg, campaign(cfg, count=40, seed=seed), seed=seed,
                                 simulator="amaranth", stall_prob=0.4)
        assert report.passed, "\n".join(report.messages)


def test_every_bench_plan_and_result_round_trips_through_json():
    """The array's, the core's and the chip's plans and results travel to and from the
    cocotb process as JSON: each comes back equal, nested messages rebuilt."""
    from systolab import get_chip
    from systolab.blocking import Blocking
    from systolab.sim.chip_plan import ChipParams, ChipPlan, ChipResult, DescriptorResult
    from systolab.sim.core_plan import CorePlan, CoreResult, MemoryParams
    from systolab.sim.plan import RunResult

    cfg = AcceleratorConfig(rows=3, cols=2, dataflow="ws")
    rng = np.random.default_rng(0)
    products = [random_product(rng, cfg, "p", m=2, n=2, k=3)]
    junk = random_product(rng, cfg, "junk", m=1, n=2, k=2)
    gemm = (np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4))
    chip = get_chip("sl-tiny")
    messages = [
        Plan.build(cfg, products, seed=3, stall_prob=0.25, reset_after_beats=1, junk=junk),
        RunResult([[1, 2]], [4], [9], "amaranth"),
        CorePlan.build(cfg, [gemm], memory=MemoryParams(20, 4.5, 0.1, 7), max_cycles=1000),
        CoreResult([[[1, -2]]], [{"cycles": 9}], ["write to 0x40 outside C"], "verilator", "w.vcd"),
        ChipPlan.build(chip, [([gemm], Blocking(2, 4, 3, 2, 4))], stall_prob=0.2, seed=5),
        ChipResult([DescriptorResult([[[3]]], {"cycles": 5}, [4, 0], 0, [])], "icarus"),
    ]
    for m in messages:
        back = type(m).from_json(m.to_json())
        assert back == m and back.to_json() == m.to_json(), type(m).__name__
    plan = messages[4]
    assert isinstance(plan, ChipPlan) and isinstance(plan.chip, ChipParams) and plan.chip.core == chip.core
    assert all(getattr(plan.chip, f) == getattr(chip, f) for f in ("cores", "dma_channels", "dma_beat_bytes",
                                                                     "dram_latency_cycles", "channel_bytes_per_cycle"))
    back = Plan.from_json(messages[0].to_json())
    assert back.junk is not None and back.products[0].results == messages[0].products[0].results
    assert all(np.array_equal(p.a, q.a) for p, q in zip(back.product_list(), products))
