"""The cycle model of the core against the RTL (Amaranth's simulator here; the full grid
on Verilator is `systolab validate`, behind the slow marker), and its invariants."""
import json

import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.cli import main
from systolab.errors import UserError
from systolab.flows.validate import default_cases, validate
from systolab.models.core.perf import MemorySystem, chip_perf, core_perf, split_gemm, workload_perf

# cycle residual allowed per validation case: none (the model is exact on the whole grid)
RESIDUAL = [0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("case", range(6), ids=["os-compute", "os-memory", "ws-compute", "ws-memory",
                                                "os-6x2-slow-memory", "ws-8x8-multibeat-rows"])
def test_model_matches_the_rtl_counters(case):
    """Six shapes of each default validation case on Amaranth's simulator: every compared
    counter exact."""
    c = default_cases(shapes_per_case=6, seed=3)[case]
    report = validate([c], simulator="amaranth", seed=3, jobs=1, progress=lambda msg: None)
    assert report.all_passed and report.shapes == 6
    for counter in ("busy_cycles", "macs", "bytes_read", "bytes_written"):
        assert report.max_abs_error[counter] == 0, counter
    assert report.max_abs_cycle_error <= RESIDUAL[case], report.worst[:2]


def test_detailed_model_never_beats_the_roofline():
    rng = np.random.default_rng(0)
    for _ in range(150):
        R, C = (int(v) for v in rng.integers(1, 17, 2))
        cfg = AcceleratorConfig(rows=R, cols=C, dataflow=str(rng.choice(["os", "ws"])))
        M, N, K = (int(v) for v in rng.integers(1, 300, 3))
        mem = MemorySystem(int(rng.integers(1, 200)), float(rng.choice([1, 2, 4, 8, 16, 32])))
        p = core_perf(cfg, M, N, K, mem)
        assert p.cycles >= p.roofline_cycles, (cfg, (M, N, K), mem)
        assert 0 < p.utilization <= 1


def test_bound_follows_bandwidth():
    cfg = AcceleratorConfig(rows=4, cols=4)
    assert core_perf(cfg, 256, 256, 256, MemorySystem(10, 16)).bound == "compute"
    assert core_perf(cfg, 256, 256, 256, MemorySystem(10, 2)).bound == "memory"
    fast, slow = (core_perf(cfg, 256, 256, 256, MemorySystem(10, bw)).cycles for bw in (16, 2))
    assert slow > 3 * fast


def test_chip_splits_n_then_m_and_scales():
    cfg = AcceleratorConfig(rows=16, cols=16)
    assert split_gemm(cfg, 8, 4096, 4096)[:2] == ("N", 8)
    assert split_gemm(cfg, 8, 4096, 16)[:2] == ("M", 8)
    one = chip_perf(cfg, 1024, 1024, 1024, cores=1, clock_hz=1e9, dram_bytes_per_s=1e12)
    eight = chip_perf(cfg, 1024, 1024, 1024, cores=8, clock_hz=1e9, dram_bytes_per_s=1e12)
    assert 6 < one.seconds / eight.seconds <= 8.01
    with pytest.raises(UserError, match="cores"):
        chip_perf(cfg, 4, 4, 4, cores=0, clock_hz=1e9, dram_bytes_per_s=1e9)
    with pytest.raises(UserError, match="K"):
        core_perf(cfg, 4, 4, 0)
    with pytest.raises(UserError, match="bytes_per_cycle"):
        MemorySystem(10, 0)


def test_workload_sums_its_gemms():
    from systolab.models.workloads.catalog import get_workload

    cfg = AcceleratorConfig(rows=16, cols=16)
    w = get_workload("llama3-8b-prefill", batch=1, seq_len=128, dtype="int8")
    perf = workload_perf(cfg, w.gemms, cores=4, clock_hz=1e9, dram_bytes_per_s=256e9)
    assert perf.macs * 2 == w.flops
    assert perf.seconds == pytest.approx(sum(g["seconds"] * g["count"] for g in perf.gemms))


def test_perf_cli_on_a_prefill_workload(capsys):
    assert main(["perf", "--workload", "llama3-8b-prefill", "--rows", "16", "--cols", "16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("cycles", "seconds", "utilization", "bound"):
        assert key in out
    assert out["bound"] in ("compute", "memory") and 0 < out["utilization"] <= 1
    assert out["units_per_second"] > 0 and out["unit"] == "token" and "tokens_per_second" not in out


def test_perf_cli_rejects_bad_input(capsys):
    assert main(["perf", "--json"]) == 2
    assert main(["perf", "--gemm", "4x4x4", "--cores", "0", "--json"]) == 2
    assert main(["validate", "--jobs", "0", "--json"]) == 2
    assert "jobs" in capsys.readouterr().err


def test_validate_cli_json(capsys):
    assert main(["validate", "--shapes", "2", "--sim", "amaranth", "--jobs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shapes"] == 12 and "max_abs_cycle_error" in out and "max_rel_cycle_error" in out
    assert out["max_abs_cycle_error"] <= max(RESIDUAL)


@pytest.mark.slow
def test_full_validation_grid_on_verilator():
    report = validate(default_cases(), simulator="verilator")
    assert report.shapes >= 300 and report.all_passed
    for (label, case), bound in zip(report.cases.items(), RESIDUAL):
        assert case["max_abs_cycle_error"] <= bound, label
    for counter in ("busy_cycles", "macs", "bytes_read", "bytes_written"):
        assert report.max_abs_error[counter] == 0


# RTL-measured cycle counts (benchmarks/core_utilization.py, Amaranth simulator, recorded
# 2026-11-28 in benchmarks/README.md): the model must keep reproducing them.
GOLDEN = [
    (dict(rows=4, cols=4), (64, 64, 64), 10, 16, 16443),
    (dict(rows=4, cols=4), (64, 64, 64), 100, 16, 16533),
    (dict(rows=4, cols=4), (64, 64, 64), 10, 4, 32855),
    (dict(rows=4, cols=4), (128, 16, 256), 10, 16, 32923),
    (dict(rows=8, cols=8), (64, 64, 128), 10, 8, 16679),
    (dict(rows=4, cols=4, dataflow="ws"), (64, 64, 64), 100, 16, 18615),
    (dict(rows=4, cols=4, dataflow="ws"), (37, 23, 19), 10, 16, 1411),
    (dict(rows=8, cols=8, dataflow="ws"), (64, 64, 128), 10, 16, 10065),
]


@pytest.mark.parametrize("params, shape, latency, bandwidth, rtl_cycles", GOLDEN)
def test_golden_cycle_counts(params, shape, latency, bandwidth, rtl_cycles):
    cfg = AcceleratorConfig(**params)
    assert core_perf(cfg, *shape, MemorySystem(latency, bandwidth)).cycles == rtl_cycles


def test_perf_table_is_one_call_over_configs_and_shapes():
    from systolab.models.core.perf import perf_table

    cfgs = [AcceleratorConfig(rows=4, cols=4), AcceleratorConfig(rows=8, cols=4, dataflow="ws")]
    shapes = [(64, 64, 64), (1, 4096, 4096), (64, 64, 64)]
    t = perf_table(cfgs, shapes, MemorySystem(10, 16))
    assert t["cycles"].shape == (2, 3)
    assert t["cycles"][0, 0] == 16443 == t["cycles"][0, 2]
    assert t["cycles"][1, 1] == core_perf(cfgs[1], 1, 4096, 4096, MemorySystem(10, 16)).cycles
    assert ((t["utilization"] > 0) & (t["utilization"] <= 1)).all()
    with pytest.raises(UserError, match="shapes"):
        perf_table(cfgs, [(1, 2)])


def test_never_below_the_roofline_and_sub_byte_bandwidth_refused():
    cfg = AcceleratorConfig(rows=4, cols=4)
    with pytest.raises(UserError, match="bytes_per_cycle: must be >= 1"):
        MemorySystem(10, 0.5)
    for bpc in (1, 1.5, 3):
        for shape in ((1, 1, 1), (1, 16, 40), (9, 6, 1), (33, 17, 40)):
            p = core_perf(cfg, *shape, MemorySystem(10, bpc))
            assert p.cycles >= p.bytes_read / bpc and p.cycles >= p.roofline_cycles
    # a chip whose cores get less than a byte per cycle each: its reads at that share bound it
    from systolab.models.core.perf import chip_perf

    c = chip_perf(cfg, 64, 256, 64, cores=64, clock_hz=1e9, dram_bytes_per_s=8e9)
    share = 8e9 / 1e9 / int(c.split.split("/")[1])
    assert share < 1 and c.bound == "memory"
    assert c.cycles >= core_perf(cfg, 64, 4, 64).bytes_read / share


def test_latency_dominated_runs_say_so():
    p = core_perf(AcceleratorConfig(rows=4, cols=4), 1, 1, 1, MemorySystem(100, 16))
    assert p.bound == "latency" and p.cycles > 100
    assert core_perf(AcceleratorConfig(rows=4, cols=4), 64, 64, 64).bound == "compute"


@pytest.mark.parametrize("shape", [(9, 1, 1), (17, 9, 1), (1, 9, 2), (10, 2, 5), (16, 1, 1)])
def test_router_bubble_between_back_to_back_tiles(shape):
    # Tiles whose last slices are exactly R cycles apart (short K, small edge tiles) send
    # their rows right after the previous tile's: the result router, which takes a tile
    # one cycle after finishing the last, freezes the array for that cycle.
    from systolab.sim.core_bench import run_gemms

    cfg = AcceleratorConfig(rows=8, cols=8, beat_bytes=32, a_buffer_kib=2, b_buffer_kib=2)
    rng = np.random.default_rng(1)
    M, N, K = shape
    run = run_gemms(cfg, [(rng.integers(-9, 9, (M, K)), rng.integers(-9, 9, (K, N)))], latency=2,
                    bytes_per_cycle=32)[0]
    assert run.passed and run.counters["cycles"] == core_perf(cfg, M, N, K, MemorySystem(2, 32)).cycles


_KERNEL_CASES = [  # (core, memory latency, bytes per cycle, whole beats): OS, WS, odd and edge arrays
    (dict(rows=4, cols=4), 10, 16.0, True),
    (dict(rows=8, cols=3, dataflow="ws", beat_bytes=8), 2, 3.0, True),
    (dict(rows=2, cols=16, dtype="int16", a_buffer_kib=1, b_buffer_kib=1), 40, 7.5, False),
    (dict(rows=16, cols=16, dataflow="ws", beat_bytes=64), 5, 64.0, False),
]
_KERNEL_SHAPES = [(1, 1, 1), (9, 29, 8), (40, 2, 5), (64, 64, 64), (1, 4096, 300), (300, 17, 1000), (130, 257, 33)]


def _kernel_cycles() -> list[list[int]]:
    from systolab.models.core.perf import core_cycles_many

    return [core_cycles_many(AcceleratorConfig(**p), *np.array(_KERNEL_SHAPES).T, MemorySystem(lat, bpc), whole_beats=w).tolist()
            for p, lat, bpc, w in _KERNEL_CASES]


def test_compiled_core_model_equals_the_same_code_run_by_python():
    # The recurrence (models/core/kernel.py) is compiled by Numba; run uncompiled, it is
    # plain Python: any difference in integer or float semantics would show here.
    import os
    import subprocess
    import sys

    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import test_perf as t; "
            "print(json.dumps(t._kernel_cycles()))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_DISABLE_JIT": "1"})
    assert json.loads(run.stdout) == _kernel_cycles()


def test_core_cycles_many_equals_one_at_a_time_and_checks_its_input():
    from systolab.models.core.perf import core_cycles, core_cycles_many

    cfg, mem = AcceleratorConfig(rows=8, cols=4, dataflow="ws"), MemorySystem(10, 4)
    M, N, K = np.array(_KERNEL_SHAPES).T
    assert core_cycles_many(cfg, M, N, K, mem).tolist() == [core_cycles(cfg, *s, mem) for s in _KERNEL_SHAPES]
    assert core_cycles_many(cfg, M.reshape(7, 1), 5, 7, mem).shape == (7, 1)       # broadcasts
    with pytest.raises(UserError, match="^K: every entry must be in 1..") as e:
        core_cycles_many(cfg, M, N, K - 1, mem)
    assert e.value.parameter == "K"
    with pytest.raises(UserError, match="^N: must be integers") as e:
        core_cycles_many(cfg, M, N + 0.5, K, mem)
    with pytest.raises(UserError, match="^M: every entry must be in 1..2147483647, got 2147483648"):
        core_cycles_many(cfg, [2**31], 1, 1, mem)
    with pytest.raises(UserError, match="do not broadcast"):
        core_cycles_many(cfg, M, [1, 2], K, mem)


def _note_start(case, simulator, seed):
    """A stand-in for a case's run: notes when it started (for the order of the runs)."""
    with open(case[1], "a") as fh:
        fh.write(f"{case[0]}\n")
    return case[0] * 10


def test_the_costliest_cases_start_first_and_come_back_in_order(tmp_path):
    from systolab.flows.validate import _measured

    log = tmp_path / "started"
    cases = [(1, log), (3, log), (2, log)]
    got = list(_measured(cases, _note_start, simulator="verilator", seed=0, jobs=1, progress=lambda m: None,
                         what=lambda c, n: n, cost=lambda c: c[0]))
    assert [(c[0], m) for c, m in got] == [(1, 10), (3, 30), (2, 20)]        # the cases' order
    assert log.read_text().split() == ["3", "2", "1"]                         # the costliest first
    log.unlink()
    list(_measured(cases, _note_start, simulator="verilator", seed=0, jobs=1, progress=lambda m: None,
                   what=lambda c, n: n))
    assert log.read_text().split() == ["1", "3", "2"]                         # without a cost: as given
