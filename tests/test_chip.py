"""The chip: its controller's checks, its cycle model against its RTL (Verilator and
Amaranth), the blocking search and its traffic bounds, and the chip-scale targets.

The default suite runs sl-tiny (2 cores, 2 DMA channels) on Verilator through every edge
class, with and without stalls, and a reset and a weight-stationary chip on Amaranth's
simulator; the slow suite (``make test-slow``) runs 200 random GEMMs per chip and dataflow
and the whole validation grid."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from systolab.blocking import REJECT, Blocking, blocking_status
from systolab.cli import main
from systolab.errors import ConfigError, UserError
from systolab.models.chip.blocking import blocking_traffic, candidates, dma_traffic_lower_bound, dram_traffic_lower_bound, on_chip_bytes
from systolab.models.chip.config import get_chip
from systolab.models.chip.mapper import TRAFFIC_TOLERANCE, map_gemm
from systolab.models.chip.perf import chip_gemm_counters, chip_gemm_cycles, chip_gemm_perf
from systolab.sim.chip_bench import chip_campaign, random_products, run_chip_gemm
from systolab.sim.golden import golden_matmul

TINY = get_chip("sl-tiny")
SMALL = get_chip("sl-small")


def _exact(chip, cases, outs):
    """Every case bit-exact and every counter equal to the model's."""
    for (M, N, K, p, blk), out in zip(cases, outs):
        assert out.status == 0 and not out.violations, (M, N, K, p, blk)
        model = chip_gemm_perf(chip, M, N, K, blk, count=p).counters()
        got = dict(out.counters, busy=out.busy)
        assert got == model, (M, N, K, p, str(blk))


# -- the controller's checks, in the model (the RTL's are run below) -------------------------------
@pytest.mark.parametrize("blocking, K, code", [
    (Blocking(0, 4, 4, 1, 4), 4, 1),                                   # a zero block
    (Blocking(4, 4, 4, 4, 4, gp=1, gm=1, gn=4), 4, 2),                 # four cores on a two-core chip
    (Blocking(8, 4, 4, 2, 4, gm=2), 4, 3),                             # the row groups miss rows 4..7
    (Blocking(4, 4, 8, 4, 4, gk=2, kc=4, gn=1), 4, 3),                 # K-group 1 has nothing of K = 4
    (Blocking(4, 4, 4096, 4, 4), 4096, 4),                             # the operands do not fit a slice
    (Blocking(4, 128, 4, 4, 128), 4, 5),                               # nor the accumulators
    (Blocking(4, 4, 4, 4, 4, gm=1, gn=1, gp=1, gk=1), 4, 0),
])
def test_controller_rejects_what_it_cannot_run(blocking, K, code):
    assert blocking_status(TINY, 4, 1024, K, 1, blocking) == code
    if code:
        with pytest.raises(UserError, match="rejected by the chip's controller") as exc:
            chip_gemm_perf(TINY, 4, 1024, K, blocking)
        assert exc.value.parameter == "block" and REJECT[code] in str(exc.value)


def test_saturation_and_powers_of_two_are_checked():
    sat = TINY.derive(overflow="saturate")
    assert blocking_status(sat, 4, 4, 8, 1, Blocking(4, 4, 4, 4, 4)) == 6          # two K-blocks
    assert blocking_status(TINY.derive(cores=3), 4, 4, 8, 1, Blocking(4, 4, 8, 2, 4, gm=3)) == 7
    assert blocking_status(TINY.derive(cores=3), 4, 4, 8, 1, Blocking(4, 4, 8, 4, 2, gn=3)) == 0


def test_chip_config_checks_its_fields():
    with pytest.raises(ConfigError, match="dma_channels: must be a power of two"):
        TINY.derive(dma_channels=3)
    with pytest.raises(UserError, match="cores: must be in 1"):
        TINY.derive(cores=0)
    with pytest.raises(ConfigError, match="dma_beat_bytes"):
        TINY.derive(dma_beat_bytes=24)
    assert SMALL.channel_bytes_per_cycle == 32.0 and SMALL.dram_effective_bytes_per_cycle == 64.0
    # a beat wider than the channel's share waits for it: 16 bytes at 6 B/cycle is a beat per 3 cycles
    assert TINY.channel_bytes_per_cycle == 6.0 and TINY.dram_effective_bytes_per_cycle == pytest.approx(32 / 3)


def test_a_chip_too_small_for_any_block_is_a_clear_error():
    starved = TINY.derive(global_sram_mib=0.0001)
    with pytest.raises(UserError, match="cannot hold the operand buffers of any mapping") as exc:
        map_gemm(starved, 64, 64, 64, search="exhaustive")
    assert exc.value.parameter == "chip"


# -- the model: its fast path, the search, the bounds ---------------------------------------------
@pytest.mark.parametrize("chip", [TINY, SMALL.derive(dataflow="ws"), TINY.derive(dram_GBps_per_stack=2),
                                  SMALL.derive(cores=8, dma_channels=4)], ids=["tiny", "small-ws", "tiny-slow", "8x4"])
def test_fast_model_equals_the_step_model(chip):
    for M, N, K, p, blk in chip_campaign(chip, count=60, seed=3, max_dim=48):
        perf = chip_gemm_perf(chip, M, N, K, blk, count=p)
        assert chip_gemm_cycles(chip, M, N, K, blk, p) == perf.cycles
        assert chip_gemm_counters(chip, M, N, K, blk, p) == perf


def test_search_finds_the_fastest_candidate_and_respects_the_bounds():
    M, N, K = 116, 57, 223
    found = map_gemm(SMALL, M, N, K, search="exhaustive")
    cands = candidates(SMALL, M, N, K)
    cycles = [chip_gemm_perf(SMALL, M, N, K, b).cycles for b in cands]
    assert found.cycles == chip_gemm_perf(SMALL, M, N, K, found.blocking).cycles
    # the fastest within the tolerance, and of those the least traffic
    near = [b for b, c in zip(cands, cycles) if c <= min(cycles) * (1 + TRAFFIC_TOLERANCE)]
    assert found.blocking in near and found.cycles > min(cycles)          # here a slower one moves less
    assert found.perf.dram_bytes_read == min(chip_gemm_perf(SMALL, M, N, K, b).dram_bytes_read for b in near)
    assert found.candidates == len(cands) == len(set(cands))
    floor = dram_traffic_lower_bound(SMALL, M, N, K)
    dma_floor = dma_traffic_lower_bound(SMALL, M, N, K)
    assert dma_floor > floor >= M * K + K * N + 4 * M * N              # never below compulsory
    for b in cands:
        moved = chip_gemm_perf(SMALL, M, N, K, b)
        assert moved.dram_bytes_read + moved.dram_bytes_written >= max(blocking_traffic(SMALL, M, N, K, b), dma_floor)


def test_split_k_in_whole_dma_beats_is_in_the_space():
    """A K-part the DMA reads in a fraction of a beat costs a whole one: the space holds
    the split rounded to whole beats (4 x 301 bytes: 12 beats of 128; 3 x 384 + 51: 10)."""
    chip = get_chip("sl-n4-os32")
    kcs = {b.kc for b in candidates(chip, 2, 1813, 1203) if b.gk == 4}
    assert {301, 384} <= kcs
    b = next(b for b in candidates(chip, 2, 1813, 1203) if b.gk == 4 and b.kc == 384)
    moved = chip_gemm_perf(chip, 2, 1813, 1203, b)
    assert moved.dram_bytes_read == dma_traffic_lower_bound(chip, 2, 1813, 1203) - moved.dram_bytes_written


def test_lower_bound_is_hong_kung_for_large_products():
    # on a 16 KiB chip a 512-cube product must move 2 M N K / sqrt(S) - 2 S elements
    S = on_chip_bytes(TINY)                                           # int8: one byte an element
    bound = dram_traffic_lower_bound(TINY, 512, 512, 512)
    assert bound == math.ceil(2 * 512**3 / math.sqrt(S) - 2 * S)
    assert bound > 512 * 512 * 6                                      # above compulsory here


def test_chip_scale_targets_of_the_default_chip():
    # issue 11's targets at chip scale, in the model: prefill compute-bound, decode at the HBM's rate
    from systolab.models.report.evaluate import evaluate_chip
    from systolab.models.silicon.area import chip_area
    from systolab.models.silicon.energy import chip_power
    from systolab.models.workloads.catalog import get_workload

    chip = get_chip()
    area, power = chip_area(chip).die_mm2, chip_power(chip).tdp_W
    old = get_chip("sl-n4-os64")
    # the default was sized to fit sl-n4-os64's die with SRAM as bare macros; with SRAM at a
    # logic die's density (data/die.yaml) its 150 MiB take 2.6 times the area and its die is
    # 15 % larger (346 against 301 mm2); its design power stays at or below
    assert area == pytest.approx(1.15 * chip_area(old).die_mm2, rel=0.02) and power <= chip_power(old).tdp_W
    prefill = evaluate_chip(chip, get_workload("llama3-8b-prefill", dtype="int8", seq_len=2048))
    decode = evaluate_chip(chip, get_workload("llama3-8b-decode", dtype="int8", batch=1))
    assert prefill.utilization >= 0.70 and prefill.bound == "compute"
    assert decode.dram_bandwidth_utilization >= 0.85 and decode.bound == "memory"


# -- the RTL ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cases():
    return chip_campaign(TINY, count=6, seed=5)


@pytest.mark.verilator
def test_tiny_chip_on_verilator_equals_the_model_and_the_golden_model(tiny_cases):
    from systolab.sim.runner import run_chip_hdl

    rng = np.random.default_rng(0)
    runs = [(random_products(TINY, M, N, K, p, rng), blk) for M, N, K, p, blk in tiny_cases]
    outs = run_chip_hdl(TINY, runs, "verilator")
    for (products, _), out in zip(runs, outs):
        for (a, b), c in zip(products, out.c):
            assert np.array_equal(np.array(c, dtype=object), golden_matmul(a, b, TINY.core).astype(object))
    _exact(TINY, tiny_cases, outs)
    kinds = {(blk.gk > 1, blk.gp > 1, -(-M // blk.mb) > 1, -(-N // blk.nb) > 1, -(-K // blk.kb) > 1)
             for M, N, K, p, blk in tiny_cases}
    assert any(k[0] for k in kinds) and any(k[1] for k in kinds) and all(any(k[i] for k in kinds) for i in (2, 3, 4))
    kept = {blk.order for M, N, K, p, blk in tiny_cases if blk.kb >= K and blk.mb < M and blk.nb < N}
    assert kept == {0, 1}             # operands kept on chip in both loop orders


@pytest.mark.verilator
def test_tiny_chip_under_stalls_is_bit_exact_and_no_faster(tiny_cases):
    from systolab.flows.verify import verify_chip

    corners = tiny_cases[:9]       # the edge classes; random shapes under stalls run in the slow suite
    report = verify_chip(TINY, corners, seed=7, simulator="verilator", stall_prob=0.3)
    assert report.passed and report.mismatches == 0
    assert all(c >= m for c, m in zip(report.cycles, report.model_cycles))
    assert report.blocking_traffic_bytes and all(b >= f for b, f in zip(report.blocking_traffic_bytes,
                                                                         report.dram_bytes_lower_bound))


def test_reset_mid_gemm_then_rerun_on_amaranth():
    rng = np.random.default_rng(1)
    M, N, K = 9, 7, 20
    blk = Blocking(8, 4, 8, 4, 4, gm=2, gn=1)
    products = random_products(TINY, M, N, K, 1, rng)
    r = run_chip_gemm(TINY, products, blk, reset_after_cycles=60)
    assert r.passed and r.counters == {k: v for k, v in chip_gemm_perf(TINY, M, N, K, blk).counters().items()
                                       if k != "busy"}


def test_weight_stationary_chip_with_split_k_on_amaranth():
    chip = TINY.derive(dataflow="ws", dram_GBps_per_stack=32)
    rng = np.random.default_rng(2)
    M, N, K = 3, 6, 40
    blk = Blocking(3, 6, 24, 3, 6, gk=2, kc=12)
    r = run_chip_gemm(chip, random_products(chip, M, N, K, 1, rng), blk, stall_prob=0.0)
    model = chip_gemm_perf(chip, M, N, K, blk)
    assert r.passed and r.counters["cycles"] == model.cycles and r.busy == list(model.busy)


@pytest.mark.parametrize("order, loads", [(0, (1, 3)), (1, (4, 1))])
def test_operands_stay_on_chip_while_the_steps_share_them_on_amaranth(order, loads):
    # 3 M-blocks x 4 N-blocks, one K-block: order 0 loads A once (B per M-block), order 1 B once
    rng = np.random.default_rng(4)
    M, N, K = 9, 13, 8
    blk = Blocking(4, 4, 8, 4, 2, gn=2, order=order)
    r = run_chip_gemm(TINY, random_products(TINY, M, N, K, 1, rng), blk)
    model = chip_gemm_perf(TINY, M, N, K, blk)
    row = -(-K * TINY.core.input_bytes // TINY.dma_beat_bytes) * TINY.dma_beat_bytes
    assert r.passed and r.counters == {k: v for k, v in model.counters().items() if k != "busy"}
    assert r.counters["dram_bytes_read"] == (M * loads[0] + N * loads[1]) * row
    assert blocking_traffic(TINY, M, N, K, blk) == (M * loads[0] + N * loads[1]) * K + M * N * TINY.core.acc_bytes
    # two K-blocks: every step loads both
    two = Blocking(4, 4, 4, 4, 2, gn=2, order=order)
    half = -(-4 * TINY.core.input_bytes // TINY.dma_beat_bytes) * TINY.dma_beat_bytes
    assert chip_gemm_perf(TINY, M, N, K, two).dram_bytes_read == (M * 4 + N * 3) * 2 * half


def test_a_rejected_descriptor_reports_its_reason_on_the_rtl():
    rng = np.random.default_rng(3)
    r = run_chip_gemm(TINY, random_products(TINY, 4, 4, 4, 1, rng), Blocking(4, 4, 4, 4, 4, gn=3))
    assert r.status == 2 and r.reason == REJECT[2] and not r.passed


# -- the command line ---------------------------------------------------------------------------------
def _run_json(capsys, argv):
    code = main(argv + ["--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.verilator
def test_verify_chip_cli(capsys):
    code, out = _run_json(capsys, ["verify", "--chip", "sl-tiny", "--gemm", "9x13x21", "--seed", "2"])
    assert code == 0 and out["passed"] and out["gemms"] == 1
    for key in ("dram_bytes_read", "dram_bytes_written", "sram_bytes_read", "sram_bytes_written", "per_core_busy"):
        assert key in out and len(out[key]) == 1
    assert out["per_core_busy"][0] and len(out["per_core_busy"][0]) == TINY.cores


def test_perf_chip_cli(capsys):
    code, out = _run_json(capsys, ["perf", "--chip", "sl-small", "--gemm", "64x48x100", "--count", "2"])
    assert code == 0 and out["searched"]
    model = chip_gemm_perf(SMALL, 64, 48, 100, Blocking(**out["blocking"]), count=2)
    assert out["cycles"] == model.cycles and out["per_core_busy"] == list(model.busy)
    for key in ("dram_bytes_read", "dram_bytes_written", "sram_bytes_read", "sram_bytes_written",
                "dram_bytes_lower_bound", "blocking_traffic_bytes"):
        assert out[key] > 0
    code, out = _run_json(capsys, ["perf", "--chip", "sl-small", "--gemm", "64x48x100", "--block", "32x48x64",
                                   "--grid", "1x2x2"])
    assert code == 0 and out["blocking"]["mc"] == 16 and out["blocking"]["nc"] == 24 and out["blocking"]["order"] == 0
    code, out = _run_json(capsys, ["perf", "--chip", "sl-small", "--gemm", "64x48x100", "--block", "32x16x100",
                                   "--grid", "1x2x2", "--order", "nm"])
    assert code == 0 and out["blocking"]["order"] == 1 and out["blocking_text"].endswith("/n-outer")
    assert out["blocking_traffic_bytes"] == 64 * 100 * 3 + 48 * 100 + 64 * 48 * 4     # A per N-block, B once
    code, out = _run_json(capsys, ["perf", "--chip", "sl-small", "--workload", "bert-base", "--seq-len", "64"])
    assert code == 0 and out["gemms"] and 0 < out["utilization"] <= 1


def test_rtl_chip_cli(tmp_path, capsys):
    code, out = _run_json(capsys, ["rtl", "--chip", "sl-tiny", "--out", str(tmp_path / "rtl")])
    assert code == 0 and out["top"] == "systolab_chip"
    manifest = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert {"mem0__rd_cmd__valid", "mem1__wr_data__payload", "busy1", "dram_bytes_written"} <= {
        p["name"] for p in manifest["ports"]}
    assert manifest["params"]["descriptor"]["gk"]["width"] > 0 and manifest["params"]["reject_codes"]["7"]


@pytest.mark.parametrize("argv, parameter", [
    (["perf", "--chip", "sl-tiny", "--gemm", "0x4x4"], "gemm"),
    (["perf", "--chip", "sl-tiny", "--gemm", "64x64x6400", "--block", "64x64x6400", "--grid", "1x1x1"], "block"),
    (["perf", "--chip", "sl-tiny", "--gemm", "8x8x8", "--block", "8x8x8", "--grid", "1x3x1"], "grid"),
    (["perf", "--chip", "sl-tiny", "--gemm", "8x8x8", "--grid", "1x1x2"], "grid"),
    (["perf", "--chip", "sl-tiny", "--gemm", "8x8x8", "--order", "nm"], "order"),
    (["perf", "--gemm", "8x8x8", "--order", "nm"], "order"),
    (["perf", "--chip", "sl-tiny", "--gemm", "8x8x8", "--block", "8x8"], "block"),
    (["perf", "--chip", "sl-tiny", "--rows", "8", "--gemm", "8x8x8"], "rows"),
    (["perf", "--chip", "no-such-chip", "--gemm", "8x8x8"], "chip"),
    (["perf", "--gemm", "8x8x8", "--block", "8x8x8"], "block"),
    (["verify", "--chip", "sl-n4-os32", "--gemm", "8x8x8"], "chip"),
    (["verify", "--chip", "sl-tiny", "--unit", "array"], "unit"),
    (["verify", "--chip", "sl-tiny", "--block", "8x8x8"], "block"),
    (["rtl", "--chip", "sl-n4-os32", "--out", "x"], "chip"),
])
def test_chip_flags_fail_cleanly(argv, parameter, capsys):
    code, out = _run_json(capsys, argv)
    assert code == 2 and out["parameter"] == parameter, out


# -- the slow suite: long random campaigns and the whole validation grid ---------------------------------
@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize("chip", [TINY, TINY.derive(dataflow="ws"), SMALL, SMALL.derive(dataflow="ws")],
                         ids=["tiny-os", "tiny-ws", "small-os", "small-ws"])
def test_200_random_gemms_per_chip_and_dataflow(chip):
    # bit-exact under stalls (the validation grid checks the counters without them)
    from systolab.flows.verify import verify_chip

    cases = chip_campaign(chip, count=200, seed=11)
    report = verify_chip(chip, cases, seed=11, simulator="verilator", stall_prob=0.2)
    assert report.passed and report.gemms >= 200
    assert all(c >= m for c, m in zip(report.cycles, report.model_cycles))


@pytest.mark.slow
@pytest.mark.verilator
def test_chip_validation_grid_is_exact():
    from systolab.flows.validate import default_chip_cases, validate_chip

    report = validate_chip(default_chip_cases(shapes_per_case=50), simulator="verilator", jobs=2,
                           progress=lambda m: None)
    assert report.all_passed and report.shapes >= 200 and report.configurations == 4
    assert report.max_abs_cycle_error == 0 and all(v == 0 for v in report.max_abs_error.values())
