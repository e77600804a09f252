"""Issue 33, class 1: sizes the models do not bound. Every size a user can give is either
answered in bounded time and memory or refused, naming the parameter, before any work.

The limits: the core model's times are exact below 2**53 cycles, and a GEMM that may take
more than 2**52 (:data:`~systolab.models.core.perf.MAX_CORE_CYCLES`, from a closed-form
upper bound) is refused; a chip descriptor of more than 2**50 MACs
(:data:`~systolab.models.chip.perf.MAX_CHIP_MACS`) is refused; the chip model counts its
blocks in closed form (125 representatives at most), so memory does not grow with the
GEMM; an explore grid larger than :data:`~systolab.models.explore.space.MAX_GRID_POINTS`
is refused before it is built; a user file larger than
:data:`~systolab.files.MAX_READ_BYTES` is refused before it is read.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from systolab import AcceleratorConfig, UserError
from systolab.blocking import Blocking
from systolab.checks import MAX_DIM
from systolab.cli import main
from systolab.files import MAX_READ_BYTES
from systolab.models.chip.blocking import candidates
from systolab.models.chip.choose import descriptor_perf
from systolab.models.chip.config import get_chip
from systolab.models.chip.mapper import map_gemm
from systolab.models.chip.perf import MAX_CHIP_MACS, check_chip_gemm, chip_gemm_counters, chip_gemm_cycles, chip_gemm_perf
from systolab.models.core.perf import MAX_CORE_CYCLES, MemorySystem, core_cycles, core_cycles_upper_bound, core_perf
from systolab.models.explore.space import MAX_GRID_POINTS, load_space
from systolab.models.workloads.gemm import MAX_WORKLOAD_ROWS

PROBE_S = 10.0          # no probe of the default suite may take longer
SIZES = settings(max_examples=int(os.environ.get("SYSTOLAB_FUZZ_EXAMPLES", "25")), deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])
# dimensions spread over every order of magnitude up to the largest accepted
DIM = st.integers(0, 31).flatmap(lambda e: st.integers(max(1, (1 << e) - 3), min(MAX_DIM, (1 << e) + 3)))


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
    except UserError as exc:
        out = exc
    elapsed = time.perf_counter() - t0
    assert elapsed < PROBE_S, f"{fn.__name__}{args[1:]} took {elapsed:.1f} s"
    return out


# -- the core model ------------------------------------------------------------------------------
@SIZES
@given(M=DIM, N=DIM, K=DIM, bpc=st.sampled_from([1.0, 3.0, 16.0, 1024.0]))
def test_core_perf_answers_or_refuses_any_size_in_bounded_time(M, N, K, bpc):
    out = _timed(core_perf, AcceleratorConfig(), M, N, K, MemorySystem(10, bpc))
    if isinstance(out, UserError):
        assert out.parameter == "gemm" and str(out).startswith("gemm: ")
        assert core_cycles_upper_bound(AcceleratorConfig(), M, N, K, MemorySystem(10, bpc)) > MAX_CORE_CYCLES
    else:
        assert 0 < out.cycles <= MAX_CORE_CYCLES


@settings(max_examples=40, deadline=None, derandomize=True)
@given(rows=st.sampled_from([1, 2, 3, 4, 8, 16]), cols=st.sampled_from([1, 2, 3, 4, 8, 16]),
       dataflow=st.sampled_from(["os", "ws"]), beat=st.sampled_from([2, 4, 16, 64]),
       latency=st.sampled_from([1, 5, 10, 100, 100_000]), bpc=st.sampled_from([1.0, 1.5, 3.0, 16.0, 1024.0]),
       M=st.integers(1, 3000), N=st.integers(1, 3000), K=st.integers(1, 3000))
def test_the_core_bound_is_above_the_model(rows, cols, dataflow, beat, latency, bpc, M, N, K):
    """The refusal is sound: what the model returns never exceeds the closed-form bound,
    so an accepted GEMM's times stay below 2**52 (exact, and the period test works)."""
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, beat_bytes=beat)
    mem = MemorySystem(latency, bpc)
    bound = core_cycles_upper_bound(cfg, M, N, K, mem)
    assert core_cycles(cfg, M, N, K, mem) <= bound
    assert core_cycles(cfg, M, N, K, mem, whole_beats=False) <= bound


@pytest.mark.parametrize("gemm", ["2147483647x2147483647x2147483647", "2147483647x1000000000x1"])
@pytest.mark.parametrize("extra", [[], ["--bytes-per-cycle", "1024"]])
def test_perf_refuses_the_hanging_gemms_of_the_issue(gemm, extra, capsys):
    t0 = time.perf_counter()
    assert main(["perf", "--gemm", gemm, *extra, "--json"]) == 2
    assert time.perf_counter() - t0 < PROBE_S
    assert json.loads(capsys.readouterr().out)["parameter"] == "gemm"


def test_a_workload_gemm_beyond_the_range_names_the_workload(tmp_path, capsys):
    csv = tmp_path / "huge.csv"
    csv.write_text("name,M,N,K\nok,64,64,64\nhuge,2147483647,2147483647,2147483647\n")
    assert main(["perf", "--workload", str(csv), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "workload"


def test_a_workload_file_too_large_to_read_is_refused_before_reading(tmp_path, capsys):
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:          # sparse: no disk used
        fh.truncate(MAX_READ_BYTES + 1)
    t0 = time.perf_counter()
    assert main(["perf", "--workload", str(big), "--json"]) == 2
    assert time.perf_counter() - t0 < PROBE_S
    err = json.loads(capsys.readouterr().out)
    assert err["parameter"] == "workload" and "MiB" in err["error"]


@pytest.mark.parametrize("header", ["name,M,N,K", "Layer, M, N, K"])
def test_a_workload_file_of_too_many_rows_is_refused_quickly(header, tmp_path, capsys):
    csv = tmp_path / "many.csv"
    csv.write_text(header + "\n" + "".join(f"g{i},{i + 1},{i + 2},8\n" for i in range(MAX_WORKLOAD_ROWS + 1)))
    t0 = time.perf_counter()
    assert main(["perf", "--workload", str(csv), "--json"]) == 2
    assert time.perf_counter() - t0 < PROBE_S
    err = json.loads(capsys.readouterr().out)
    assert err["parameter"] == "workload" and f"{MAX_WORKLOAD_ROWS:,}" in err["error"]


# -- the chip model --------------------------------------------------------------------------------
N4 = get_chip("sl-n4-os32")
# chips whose DRAM (6.4 PB) holds any descriptor of the model's range: sizes meet its limit, not capacity
HUGE_DRAM = [get_chip(name).derive(dram_GB_per_stack=100_000, dram_stacks=64) for name in ("sl-tiny", "sl-n4-ws64")]


@SIZES
@given(chip=st.sampled_from([N4, *HUGE_DRAM]), M=DIM, N=DIM, K=DIM, count=st.sampled_from([1, 2, 7, 1 << 20]))
def test_chip_perf_answers_or_refuses_any_size_in_bounded_time(chip, M, N, K, count):
    out = _timed(descriptor_perf, chip, M, N, K, count)
    if isinstance(out, UserError):
        assert out.parameter == "gemm" and str(out).startswith("gemm: ")
        too_big = M * N * K * count > MAX_CHIP_MACS
        assert too_big or "resident" in str(out)
    else:
        assert out.perf.cycles > 0 and out.perf.macs == M * N * K * count


@pytest.mark.parametrize("M, N, K, count", [(1_000_000, 1_000_000, 1_000_000, 1), (10**8, 10**8, 10**8, 1),
                                             (2147483647, 2147483647, 1, 1), (4096, 4096, 4096, 1 << 20)])
def test_chip_sizes_of_the_issue_are_refused_naming_the_gemm(M, N, K, count):
    for call in (lambda: descriptor_perf(N4, M, N, K, count), lambda: map_gemm(N4, M, N, K, count)):
        with pytest.raises(UserError) as exc:
            call()
        assert exc.value.parameter == "gemm"


def test_the_largest_chip_descriptor_is_answered_in_bounded_time_and_memory():
    """A descriptor just under the range: timed and counted from the blocks' closed form,
    in a fresh process whose peak memory stays under 1 GB."""
    code = ("import resource, time; from systolab.models.chip.config import get_chip; "
            "from systolab.models.chip.choose import descriptor_perf; t = time.perf_counter(); "
            "d = descriptor_perf(get_chip('sl-n4-os32'), 1 << 17, 1 << 17, 1 << 16); "
            "print(d.perf.cycles, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    cycles, seconds, peak_kib = out.stdout.split()
    assert int(cycles) > 0 and float(seconds) < PROBE_S
    assert int(peak_kib) < 1 << 20, f"peak {int(peak_kib) / 2**20:.2f} GB"


@pytest.mark.parametrize("M, N, K, b", [
    (50, 70, 90, Blocking(8, 8, 16, 8, 4, gn=2)),                     # 7 x 9 x 6 blocks: every dimension reduced
    (64, 96, 33, Blocking(8, 8, 16, 8, 4, gn=2, order=1)),            # N-blocks outside
    (33, 45, 17, Blocking(4, 8, 8, 2, 8, gm=2)),
])
def test_the_closed_form_block_count_equals_the_step_by_step_model(M, N, K, b):
    """The blocks are walked through 5 representatives a dimension (weighted): the cycles
    and every counter equal the model that steps through every block."""
    tiny = get_chip("sl-tiny")
    for count in (1, 3):
        stepped = chip_gemm_perf(tiny, M, N, K, b, count=count)
        assert chip_gemm_cycles(tiny, M, N, K, b, count) == stepped.cycles
        assert chip_gemm_counters(tiny, M, N, K, b, count) == stepped


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(M=st.integers(1, 160), N=st.integers(1, 160), K=st.integers(1, 96), count=st.integers(1, 3),
       pick=st.integers(0, 10**6))
def test_the_closed_form_equals_the_step_by_step_model_on_the_mappers_space(M, N, K, count, pick):
    """Any blocking of the mapper's space (those with the most blocks first: the reduction at work)."""
    tiny = get_chip("sl-tiny")
    space = sorted(candidates(tiny, M, N, K, count), key=lambda b: b.mb * b.nb)
    b = space[pick % min(4, len(space))]
    stepped = chip_gemm_perf(tiny, M, N, K, b, count=count)
    assert chip_gemm_cycles(tiny, M, N, K, b, count) == stepped.cycles
    assert chip_gemm_counters(tiny, M, N, K, b, count) == stepped


def test_check_chip_gemm_states_its_range():
    assert check_chip_gemm(N4, 1 << 16, 1 << 17, 1 << 17) == (1 << 16, 1 << 17, 1 << 17, 1)
    with pytest.raises(UserError, match=r"2\*\*50"):
        check_chip_gemm(N4, 1 << 17, 1 << 17, 1 << 17)


# -- the explore grid --------------------------------------------------------------------------------
def _space(parameters: dict) -> dict:
    return {"base": "sl-n4-os32", "parameters": parameters, "workloads": [{"name": "llama3-8b-decode", "batch": 1}],
            "objectives": [{"metric": "die_mm2", "goal": "min"}]}


def test_a_huge_grid_is_refused_before_it_is_built():
    sp = load_space(_space({"cores": {"min": 1, "max": 1000, "step": 1},
                            "clock_mhz": {"min": 100, "max": 5000, "step": 1e-5}}))
    assert sp.grid_size() > 10**11
    t0 = time.perf_counter()
    with pytest.raises(UserError) as exc:
        sp.grid()
    assert time.perf_counter() - t0 < 1.0
    assert exc.value.parameter == "space" and "parameters" in str(exc.value) and f"{MAX_GRID_POINTS:,}" in str(exc.value)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(cores=st.integers(1, 300), clocks=st.integers(1, 300))
def test_grid_size_counts_the_grid(cores, clocks):
    sp = load_space(_space({"cores": {"min": 1, "max": cores, "step": 1},
                            "clock_mhz": [100 + i for i in range(clocks)]}))
    assert sp.grid_size() == cores * clocks
    if sp.grid_size() <= 10_000:
        assert len(sp.grid()) == sp.grid_size()
