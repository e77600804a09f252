"""The cycle models on the shapes where they once fell short of the RTL: a core whose
result rows take two beats (the chip's 16x16 cores: a tile's write-back waits for the
previous tile's, one writer), and the router's one-cycle bubble between tiles whose rows
follow each other (output-stationary tiles bound by the array's guard; weight-stationary
tiles of one K-chunk). Counts measured on the RTL (Amaranth's simulator) and pinned here,
so the fast suite sees a model change; a few are rerun on the RTL."""
from __future__ import annotations

import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.models.chip.config import get_chip
from systolab.models.chip.perf import chip_gemm_perf
from systolab.models.core import MemorySystem, core_perf
from systolab.sim.chip_bench import fit_blocking, random_products, run_chip_gemm
from systolab.sim.core_bench import run_gemms
from systolab.sim.golden import golden_matmul
from systolab.sim.stimulus import random_operands

#: cores, by name: (AcceleratorConfig keywords, memory latency, bytes per cycle)
CORES = {
    # the 16-core chip's cores: rows of 16 accumulators are two 32-byte beats
    "os16_2beat": (dict(rows=16, cols=16, beat_bytes=32), 2, 32),
    # the small chip's cores below: rows of 8 accumulators, two 16-byte beats
    "os8_2beat": (dict(rows=8, cols=8, beat_bytes=16), 2, 16),
    "os_bf16_s4": (dict(rows=3, cols=2, dtype="bf16", beat_bytes=8, a_buffer_kib=0.25, b_buffer_kib=0.25,
                        mac_stages=4), 10, 8),
    **{f"os4x4_bf16_s{s}": (dict(rows=4, cols=4, dtype="bf16", beat_bytes=8, mac_stages=s), 10, 8) for s in (2, 3)},
    "os_bf16_s1": (dict(rows=3, cols=2, dtype="bf16", beat_bytes=8, a_buffer_kib=0.25, b_buffer_kib=0.25), 10, 8),
    **{f"ws_bf16_s{s}": (dict(rows=3, cols=2, dtype="bf16", dataflow="ws", beat_bytes=8, a_buffer_kib=0.25,
                              acc_buffer_kib=0.125, mac_stages=s), 10, 8) for s in (1, 2, 3)},
    # rows of 4 accumulators in 4-byte beats: the writer is the bottleneck, the row queue fills
    "os4x4_4beat": (dict(rows=4, cols=4, beat_bytes=4), 10, 4),
    "ws4x4_4beat": (dict(rows=4, cols=4, beat_bytes=4, dataflow="ws"), 10, 4),
    "os4x3_bf16_s2_4beat": (dict(rows=4, cols=3, dtype="bf16", beat_bytes=4, mac_stages=2), 10, 4),
    "os4x4_bf16_s3_2beat": (dict(rows=4, cols=4, dtype="bf16", beat_bytes=8, mac_stages=3), 10, 16),
}

#: (core, M, N, K): the RTL's cycles (the model's before the fixes in brackets)
RTL_CYCLES = {
    ("os16_2beat", 19, 9, 1): 91,      # [76] the 16-core chip's 19x18x1 over two column groups
    ("os16_2beat", 9, 19, 7): 86,      # [85] its 17x19x50 over 8 K-groups
    ("os16_2beat", 17, 16, 2): 95,     # [84]
    ("os16_2beat", 33, 9, 7): 125,     # [107]
    ("os_bf16_s4", 17, 23, 2): 404,    # [398] the float pipeline's known residual, S = 4
    ("os_bf16_s4", 1, 23, 1): 175,     # [170]
    ("os_bf16_s4", 17, 5, 3): 129,     # [128]
    ("os_bf16_s1", 17, 23, 2): 652,
    ("os4x4_bf16_s3", 33, 27, 1): 506,  # [438] validate --mac-stages 3's 2-beat rows: S R = 12-row tiles
    ("os4x4_bf16_s3", 11, 13, 2): 123,  # [111]
    ("os4x4_bf16_s2", 36, 4, 3): 114,   # [110]
    ("ws_bf16_s3", 17, 23, 2): 394,    # [393] the same, weight-stationary at S = 3
    ("ws_bf16_s3", 33, 2, 1): 93,      # [92]
    ("ws_bf16_s1", 18, 2, 1): 66,      # [65] the bubble at S = 1 too: an M-block of 16 rows, then 2
    ("ws_bf16_s2", 33, 2, 1): 90,      # [89]
    # perf.py's residuals 4 and 3, closed 2026-12-08: the OS row queue (2 tile_m rows) full
    # freezes the array, which then steps once per row written; WS, the chunk's last A row
    # enters RC - 1 of those steps before the last result row is queued. Measured with
    # run_gemms (Amaranth's simulator), e.g. ``run_gemms(AcceleratorConfig(rows=4, cols=4,
    # beat_bytes=4), [(a, b)], latency=10, bytes_per_cycle=4)[0].counters["cycles"]``
    ("os4x4_4beat", 5, 40, 1): 241,          # [234]
    ("os4x4_4beat", 9, 40, 2): 403,          # [393]
    ("os4x3_bf16_s2_4beat", 9, 40, 2): 451,  # [398] the freeze outlasts the next tile's feed
    ("os4x4_bf16_s3_2beat", 38, 30, 2): 651,  # [617] the router's bubble counted in steps
    ("ws4x4_4beat", 64, 8, 8): 722,          # [723]
    ("ws4x4_4beat", 64, 16, 8): 1308,        # [1311]
    ("ws4x4_4beat", 64, 64, 64): 21057,      # [21072] residual 3: 64^3 at 4-byte beats
}


def _config(name: str) -> tuple[AcceleratorConfig, MemorySystem]:
    kw, latency, bw = CORES[name]
    return AcceleratorConfig(**kw), MemorySystem(latency, bw)


@pytest.mark.parametrize("case", list(RTL_CYCLES), ids=lambda c: "-".join(map(str, c)))
def test_core_model_equals_the_rtl_measured_cycles(case):
    name, M, N, K = case
    cfg, memory = _config(name)
    assert core_perf(cfg, M, N, K, memory).cycles == RTL_CYCLES[case]


@pytest.mark.parametrize("name, shapes", [
    ("os8_2beat", [(9, 5, 1), (17, 5, 7), (1, 20, 1)]),     # write-back bound tiles, one writer
    ("ws_bf16_s1", [(18, 2, 1), (17, 5, 2)]),                # back-to-back one-chunk tiles: the router's bubble
    ("os4x4_4beat", [(5, 40, 1)]),                           # a full row queue freezes the array
    ("ws4x4_4beat", [(64, 8, 8)]),                           # the same, weight-stationary
])
def test_core_rtl_equals_the_model_where_it_was_short(name, shapes):
    cfg, memory = _config(name)
    rng = np.random.default_rng(5)
    dt = cfg.input_dtype
    products = [(random_operands(rng, dt, (M, K)), random_operands(rng, dt, (K, N))) for M, N, K in shapes]
    runs = run_gemms(cfg, products, latency=memory.latency_cycles, bytes_per_cycle=memory.bytes_per_cycle)
    assert all(r.passed for r in runs)
    got = {s: r.counters["cycles"] for s, r in zip(shapes, runs)}
    assert got == {s: core_perf(cfg, *s, memory).cycles for s in shapes}


#: sl-tiny with 8x8 cores of 16-byte beats: 2 cores whose result rows are two beats
TWO_BEAT = get_chip("sl-tiny").derive(rows=8, cols=8, beat_bytes=16, name="tiny-8x8-2beat")

#: (M, N, K, blocking keywords): the RTL's cycles (the model's before in brackets)
CHIP_CYCLES = {
    (11, 10, 1, (("mb", 11), ("nb", 10), ("kb", 1), ("gn", 2))): 198,        # [194] K = 1, two column groups
    (9, 10, 1, (("mb", 9), ("nb", 10), ("kb", 1), ("gn", 2))): 176,          # [170]
    (17, 10, 7, (("mb", 17), ("nb", 10), ("kb", 7), ("gn", 2))): 271,        # [265]
    (17, 17, 20, (("mb", 17), ("nb", 17), ("kb", 20), ("gk", 2))): 470,      # [467] split-K over 2 K-groups
}


@pytest.mark.parametrize("case", list(CHIP_CYCLES), ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}")
def test_chip_model_equals_the_rtl_measured_cycles(case):
    M, N, K, kw = case
    blk = fit_blocking(TWO_BEAT, M, N, K, 1, **dict(kw))
    assert chip_gemm_perf(TWO_BEAT, M, N, K, blk).cycles == CHIP_CYCLES[case]


@pytest.mark.parametrize("case", [
    list(CHIP_CYCLES)[1],
    pytest.param(list(CHIP_CYCLES)[3], marks=pytest.mark.slow),
], ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}")
def test_chip_rtl_equals_the_model_where_it_was_short(case):
    M, N, K, kw = case
    blk = fit_blocking(TWO_BEAT, M, N, K, 1, **dict(kw))
    products = random_products(TWO_BEAT, M, N, K, 1, np.random.default_rng(1))
    run = run_chip_gemm(TWO_BEAT, products, blk)
    assert run.status == 0 and run.passed
    a, b = products[0]
    assert np.array_equal(np.asarray(run.c[0], np.int64), golden_matmul(a, b, TWO_BEAT.core, k_block=blk.kb,
                                                                         k_part=blk.kc))
    model = chip_gemm_perf(TWO_BEAT, M, N, K, blk)
    assert run.counters["cycles"] == model.cycles == CHIP_CYCLES[case]
    assert run.counters == {k: v for k, v in model.counters().items() if k != "busy"}


def test_pipelined_validation_cases_and_the_cli_option(capsys):
    """``validate --mac-stages S``: five float configurations at S stages (both dataflows,
    both formats, rows of one and two beats), the core's only; a bad depth names the
    parameter."""
    import json

    from systolab.cli import main
    from systolab.errors import UserError
    from systolab.flows.validate import default_cases, pipelined_cases

    cases = pipelined_cases(3, shapes_per_case=4)
    assert len(cases) == 5 and {c.config.mac_stages for c in cases} == {3}
    assert {c.config.dataflow for c in cases} == {"os", "ws"}
    assert {c.config.dtype for c in cases} == {"bf16", "fp8_e4m3"}
    assert all(c.shapes == default_cases(shapes_per_case=4)[0].shapes for c in cases)
    assert any(-(-c.config.cols * c.config.acc_bytes // c.config.beat_bytes) > 1 for c in cases)
    for bad in (1, 8):
        with pytest.raises(UserError, match="^mac_stages"):
            pipelined_cases(bad)
    assert main(["validate", "--chip", "--mac-stages", "2", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "mac_stages"


@pytest.mark.slow
def test_pipelined_validation_runs_exact(capsys):
    """``validate --mac-stages 2`` on Amaranth's simulator, two shapes a configuration
    (about 2 minutes on a loaded machine; benchmarks/README.md records the Verilator run)."""
    import json

    from systolab.cli import main

    assert main(["validate", "--mac-stages", "2", "--shapes", "2", "--sim", "amaranth", "--jobs", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["configurations"] == 5 and report["all_passed"] and report["max_abs_cycle_error"] == 0


def test_first_gemm_after_reset_waits_for_the_memorys_credit():
    """perf.py's residual 2 is the test memory's reset state, not the core: its bandwidth
    credit starts empty one cycle before the first descriptor is accepted, so with beats
    more than a few cycles apart the first beat of the first GEMM waits for the credit
    (counter cycle beat - 2) rather than for latency (cycle max(latency, 2) + 1). Every
    later GEMM of the run finds the credit full, as the model assumes, and is exact."""
    cfg = AcceleratorConfig(rows=4, cols=4, beat_bytes=16)
    latency, bytes_per_cycle = 1, 1.0              # beats 16 cycles apart
    memory = MemorySystem(latency, bytes_per_cycle)
    rng = np.random.default_rng(5)
    shapes = [(1, 1, 1), (1, 1, 1), (2, 3, 20)]
    products = [(random_operands(rng, cfg.input_dtype, (M, K)), random_operands(rng, cfg.input_dtype, (K, N)))
                for M, N, K in shapes]
    runs = run_gemms(cfg, products, latency=latency, bytes_per_cycle=bytes_per_cycle)
    got = [r.counters["cycles"] for r in runs]
    model = [core_perf(cfg, *s, memory).cycles for s in shapes]
    beat = 16
    assert got[0] == model[0] + (beat - 2) - (max(latency, 2) + 1) == 44   # RTL-measured: 44 against 33
    assert got[1:] == model[1:]
