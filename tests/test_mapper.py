"""The mapper: fast search against the exhaustive one, reported numbers from the exact model,
`systolab map`, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.chip.blocking import blocking_traffic, candidates, dma_traffic_lower_bound, dram_traffic_lower_bound
from systolab.models.chip.config import get_chip
from systolab.models.chip.mapper import (
    TRAFFIC_TOLERANCE,
    clear_cache,
    map_gemm,
    map_gemms,
    mapping_space,
    plot_mapping_space,
    screen_cycles,
)
from systolab.models.chip.perf import block_model_applies, chip_gemm_counters, chip_gemm_perf

OS32 = get_chip("sl-n4-os32")


@pytest.mark.parametrize("shape", [(1, 4096, 4096, 1), (4, 128, 2048, 8), (2048, 4096, 4096, 1), (1151, 1383, 2991, 1),
                                   (2447, 2012, 9, 1), (16, 14336, 4096, 1)])
def test_fast_search_times_the_whole_space_and_picks_the_exhaustive_choice(shape):
    """Where the block model applies, the fast search is the vectorised exact model over
    every mapping: the exhaustive search's choice, found faster."""
    M, N, K, p = shape
    ex = map_gemm(OS32, M, N, K, p, "exhaustive")
    fa = map_gemm(OS32, M, N, K, p, "fast")
    assert (fa.blocking, fa.cycles) == (ex.blocking, ex.cycles)
    assert fa.evaluated == fa.candidates == ex.evaluated
    # every number reported is the exact model's for the chosen mapping
    assert fa.perf == chip_gemm_perf(OS32, M, N, K, fa.blocking, count=p)
    row = fa.to_frame().iloc[0]
    assert row["cycles"] == fa.cycles and row["map_mb"] == fa.blocking.mb and row["seconds_s"] > 0


@pytest.mark.parametrize("shape", [(1, 4096, 4096, 1), (4, 128, 2048, 8), (1151, 1383, 2991, 1)])
def test_fast_search_prunes_by_the_block_model_where_the_dram_credit_binds(shape):
    """One HBM stack over 32 channels: beats 6 cycles apart or more, so the exact model
    steps; the block model bounds it from below, and the fast search times mappings in
    its order only until no other can change the choice: the exhaustive search's."""
    M, N, K, p = shape
    chip = OS32.derive(dram_stacks=1)
    assert not block_model_applies(chip)
    ex = map_gemm(chip, M, N, K, p, "exhaustive")
    fa = map_gemm(chip, M, N, K, p, "fast")
    assert (fa.blocking, fa.cycles) == (ex.blocking, ex.cycles)
    assert fa.evaluated < 0.5 * fa.candidates


def test_screen_is_the_exact_model_where_the_block_model_applies_and_a_bound_where_not():
    M, N, K = 1151, 1383, 2991
    slow = OS32.derive(dram_stacks=1)
    # A slow DRAM credit delays a write-back's first beats, which the block model leaves
    # out; with the write-back's register stages (2 on 512 cores) the delay hides behind
    # them, and only a chip without stages (2 cores) shows the bound below the exact model.
    for chip, exact_here in ((OS32, True), (slow, False), (slow.with_cores(2), False)):
        cands = candidates(chip, M, N, K)
        s = screen_cycles(chip, M, N, K, 1, cands)
        exact = np.array([chip_gemm_perf(chip, M, N, K, b).cycles for b in cands[::10]])
        assert s.shape == (len(cands),) and np.all(s > 0)
        assert np.array_equal(s[::10], exact) if exact_here else np.all(s[::10] <= exact)
    assert slow.with_cores(2).writeback_stages == 0 and np.any(s[::10] < exact)


def test_a_workload_mapped_in_one_pass_equals_its_gemms_mapped_one_by_one():
    shapes = [(2048, 512, 128, 8), (1, 4096, 4096, 1), (77, 300, 1000, 3), (2048, 512, 128, 8)]
    clear_cache()
    together = map_gemms(OS32, shapes)
    clear_cache()
    alone = [map_gemm(OS32, *s) for s in shapes]
    assert [(m.blocking, m.perf) for m in together] == [(m.blocking, m.perf) for m in alone]
    assert together[0] is together[3]            # the same GEMM once
    with pytest.raises(UserError) as exc:
        map_gemms(OS32, [(8, 8, 8, 1), (8, 0, 8, 1)])
    assert exc.value.parameter == "N"
    with pytest.raises(UserError, match=r"^gemms\[1\]: must be \(M, N, K, count\)") as exc:
        map_gemms(OS32, [(8, 8, 8, 1), (8, 8, 8)])
    assert exc.value.parameter == "gemms"


def test_mapping_space_shows_every_mapping_with_the_choice_and_plots():
    from matplotlib.figure import Figure

    M, N, K, p = 2048, 512, 128, 8
    space = mapping_space(OS32, M, N, K, p)
    cands = candidates(OS32, M, N, K, p)
    assert len(space) == len(cands) and set(space.loop_order) == {0, 1}
    chosen = space[space.chosen]
    m = map_gemm(OS32, M, N, K, p)
    assert len(chosen) == 1 and chosen.text.iloc[0] == str(m.blocking) and chosen.cycles.iloc[0] == m.cycles
    for x in (0, len(cands) // 2, len(cands) - 1):     # the exact model's numbers
        perf = chip_gemm_perf(OS32, M, N, K, cands[x], count=p)
        assert (space.cycles[x], space.dram_bytes[x]) == (perf.cycles, perf.dram_bytes_read + perf.dram_bytes_written)
    assert space.cycles.min() >= m.cycles / (1 + TRAFFIC_TOLERANCE)
    assert isinstance(plot_mapping_space(OS32, M, N, K, p), Figure)


def test_memory_bound_gemv_moves_no_more_than_its_lower_bound_allows():
    m = map_gemm(OS32, 1, 4096, 14336, 1)
    assert m.bound == "memory" and m.dram_bytes <= 1.1 * m.dram_bytes_lower_bound
    assert m.to_dict()["dram_bandwidth_utilization"] > 0.85


def test_chip_level_bound_names_what_limits_the_chip():
    """A decode GEMV at under 1 % utilisation is DRAM-bound (not compute, as the busiest
    core's port alone would say); 64x64 output-stationary cores need 128 bytes a cycle from
    a 64-byte slice port, so prefill on them is SRAM-bound; 32x32 cores are compute-bound."""
    gemv = map_gemm(OS32, 1, 4096, 4096)
    assert gemv.perf.utilization < 0.01 and gemv.bound == "memory"
    assert map_gemm(get_chip("sl-n4-os64"), 2048, 4096, 4096).bound == "sram"
    assert map_gemm(OS32, 2048, 4096, 4096).bound == "compute"


def test_bad_search_and_impossible_mapping_name_the_parameter():
    with pytest.raises(UserError) as e:
        map_gemm(OS32, 8, 8, 8, 1, "greedy")
    assert e.value.parameter == "search"
    with pytest.raises(TypeError, match="ChipConfig"):
        map_gemm("sl-n4-os32", 8, 8, 8)
    starved = get_chip("sl-tiny").derive(global_sram_mib=0.0001)
    with pytest.raises(UserError) as e:
        map_gemm(starved, 64, 64, 64)
    assert e.value.parameter == "chip" and "cannot hold" in str(e.value)


def test_map_cli_gemm_and_workload(capsys):
    assert main(["map", "--chip", "sl-n4-os32", "--gemm", "2048x4096x4096", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    row = q["gemms"][0]
    assert row["mapping"]["mb"] >= 1 and row["cycles"] == q["totals"]["cycles"]
    assert row["dram_bytes"] >= row["dram_bytes_lower_bound_dma"] >= row["dram_bytes_lower_bound"] > 0
    assert row["bound"] in ("compute", "memory", "sram", "latency")
    assert main(["map", "--chip", "sl-n4-os32", "--workload", "llama3-8b-decode", "--batch", "1", "--json"]) == 0
    w = json.loads(capsys.readouterr().out)
    assert w["totals"]["dram_bandwidth_utilization"] >= 0.85 and w["totals"]["bound"] == "memory"
    t = w["totals"]
    assert t["dram_bytes_lower_bound_dma"] == sum(r["dram_bytes_lower_bound_dma"] for r in w["gemms"])
    assert t["dram_bytes"] >= t["dram_bytes_lower_bound_dma"] >= t["dram_bytes_lower_bound"]
    assert main(["perf", "--chip", "sl-n4-os32", "--workload", "llama3-8b-decode", "--batch", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == w["totals"]["cycles"]


@pytest.mark.parametrize("argv, parameter", [
    (["map", "--gemm", "8x8x8"], "chip"),
    (["map", "--chip", "sl-n4-os32", "--gemm", "8x8x8", "--search", "greedy"], "search"),
    (["map", "--chip", "sl-n4-os32", "--workload", "dlrm", "--count", "2"], "count"),
])
def test_map_cli_bad_input(capsys, argv, parameter):
    assert main(argv + ["--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == parameter


@settings(max_examples=40, deadline=None, derandomize=True)
@given(M=st.integers(1, 300), N=st.integers(1, 300), K=st.integers(1, 600), count=st.integers(1, 3),
       wide=st.booleans(), pick=st.integers(0, 1 << 30))
def test_no_mapping_moves_less_than_either_traffic_bound(M, N, K, count, wide, pick):
    """The byte bound holds for any schedule; the DMA-beat bound for this DMA (rows read in
    whole beats): every mapping in the space moves at least both."""
    chip = get_chip("sl-small")
    if wide:                                        # beats four times the core's: short rows waste more
        chip = chip.derive(dma_beat_bytes=4 * chip.core.beat_bytes)
    cands = candidates(chip, M, N, K, count)
    floor, dma_floor = dram_traffic_lower_bound(chip, M, N, K, count), dma_traffic_lower_bound(chip, M, N, K, count)
    assert dma_floor >= floor
    for b in (cands[pick % len(cands)], cands[-1 - pick % len(cands)]):
        p = chip_gemm_counters(chip, M, N, K, b, count)
        assert p.dram_bytes_read + p.dram_bytes_written >= dma_floor
        assert p.dram_bytes_read + p.dram_bytes_written >= blocking_traffic(chip, M, N, K, b, count)
