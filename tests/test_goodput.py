"""Goodput under latency targets (TTFT, TPOT): the search, its monotonicity, zero capacity
with the reason in fleets, the serve and fleet commands, and targets in an exploration."""
from __future__ import annotations

import json
import math
import re

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.explore import load_space, run_explore
from systolab.models.explore.stages import serving_metrics
from systolab.models.serving import Goodput, Targets, fleet, goodput, plot_goodput, serve, serve_auto

# the scenario of `systolab compare`'s fleet: the H20 decodes at 0.468 s per token there
# (0.496 s before the refit on the collective model, the MoE runtime terms and DeepGEMM's tile rule;
#  0.453 s before prefills were batched into the decode steps, models/serving/batching.py;
# 0.425 s before the refit on the in-flight, TensorRT-LLM 0.8/0.9 and gpt-fast rows; 0.483 s
# before a request's first-token step held only the prompts that arrive during one step)
SCENARIO = {"isl": 2048, "osl": 256}


def test_latencies_never_fall_as_concurrency_grows_on_the_h20():
    """The bisection's premise, checked at every concurrency up to the memory limit."""
    points = [serve("h20", "llama3-70b", concurrency=c, **SCENARIO) for c in range(1, 77)]
    assert points[-1].max_batch == 76        # paged KV cache at steady-state occupancy (74 at full length)
    for a, b in zip(points, points[1:]):
        assert b.ttft_s >= a.ttft_s and b.tpot_s >= a.tpot_s, b.sequences


@pytest.mark.parametrize("device, model, tp, pp, key", [
    ("h100-sxm", "llama3-8b", 1, 1, "concurrency"),      # the GEMM model changes tile at M = 64
    ("h200-sxm", "llama3-8b", 1, 2, "batch"),            # pipeline micro-batches round up
    ("h100-sxm", "mixtral-8x7b", 2, 1, "concurrency"),
])
def test_latencies_fall_by_at_most_a_few_percent_from_one_concurrency_to_the_next(device, model, tp, pp, key):
    points = [serve(device, model, isl=1024, osl=128, tp=tp, pp=pp, **{key: c}) for c in range(1, 161)]
    for a, b in zip(points, points[1:]):
        assert b.ttft_s >= 0.95 * a.ttft_s and b.tpot_s >= 0.95 * a.tpot_s, b.sequences
    assert points[-1].tpot_s > points[0].tpot_s and points[-1].ttft_s >= points[0].ttft_s


def test_the_bisection_finds_the_largest_concurrency_that_meets_the_target():
    g = goodput("h20", "llama3-70b", tpot_s=0.3, tp=1, **SCENARIO)
    scan = [serve("h20", "llama3-70b", concurrency=c, **SCENARIO) for c in range(1, 77)]
    largest = max(r.sequences for r in scan if r.tpot_s <= 0.3)
    assert g.best is not None and g.best.tpot_s <= 0.3
    assert max(p.concurrency for p in g.curve if p.meets) == largest
    assert g.output_tokens_per_s == max(r.output_tokens_per_s for r in scan if r.sequences in
                                        {p.concurrency for p in g.curve if p.meets})
    # far fewer points than a scan: the powers of two, the limit and the bisection
    assert len(g.curve) <= 2 * math.ceil(math.log2(76)) + 2
    assert [p.concurrency for p in g.curve] == sorted(p.concurrency for p in g.curve)


def test_the_h20_at_the_compare_load_misses_a_100_ms_tpot_and_is_no_capacity():
    f = fleet(["h20", "h100-sxm"], "llama3-70b", concurrency=64, tpot_s=0.1, budget_usd=1e8, **SCENARIO)
    h20, h100 = f.rows
    assert h20.output_tokens_per_s == 0.0 and h20.units == 0 and h20.replicas == 0
    assert h20.fleet_output_tokens_per_s == 0.0 and h20.fleet_output_tokens_per_s_range == (0.0, 0.0)
    assert h20.meets_targets is False and h20.usd_per_million_tokens is None
    assert h20.note == "tpot_s: 0.468 s at concurrency 64 on 1 × h20, above the 0.1 s target"
    assert h20.tpot_s == pytest.approx(0.4685, abs=1e-3)          # what it would give stays in the row
    assert h100.meets_targets is True and h100.units > 0 and h100.note is None
    d = f.to_dict()
    assert d["targets"] == {"ttft_s": None, "tpot_s": 0.1}
    assert d["rows"][0]["units"] == 0 and d["rows"][0]["note"].startswith("tpot_s:")
    assert list(f.to_frame()["device"]) == ["h20", "h100-sxm"]     # it stays in the table


def test_a_target_no_tensor_parallel_size_meets_gives_zero_capacity_naming_it():
    g = goodput("h20", "llama3-70b", tpot_s=0.01, **SCENARIO)
    assert not g.meets and g.best is None and g.output_tokens_per_s == 0.0
    assert g.missed == ("tpot_s",) and g.reason is not None and g.reason.startswith("tpot_s: ")
    assert "at concurrency 1 on" in g.reason and "above the 0.01 s target" in g.reason
    # the nearest point is the one of lowest TPOT over the sizes tried
    assert g.fastest is not None and g.fastest.sequences == 1
    assert g.fastest.tpot_s == min(p.tpot_s for p in g.curve)
    row = fleet(["h20"], "llama3-70b", tpot_s=0.01, budget_usd=1e8, **SCENARIO).rows[0]
    assert row.units == 0 and row.note == g.reason and row.concurrency == 1


def test_the_h20_meets_100_ms_at_a_lower_concurrency_with_less_than_its_unconstrained_rate():
    free = goodput("h20", "llama3-70b", **SCENARIO)
    tight = goodput("h20", "llama3-70b", tpot_s=0.1, **SCENARIO)
    assert tight.meets and tight.best is not None and tight.best.tpot_s <= 0.1
    assert 0 < tight.output_tokens_per_s < free.output_tokens_per_s
    assert tight.best.sequences < 64
    # the best that meets the target over every evaluated point
    assert tight.output_tokens_per_s == max(p.output_tokens_per_s for p in tight.curve if p.meets)
    assert all(p.meets == (p.tpot_s <= 0.1) for p in tight.curve)


@pytest.mark.parametrize("device", ["h100-sxm", "h200-sxm"])
def test_a_loose_target_gives_the_best_unconstrained_point_and_goodput_never_exceeds_it(device):
    free = goodput(device, "llama3-70b", **SCENARIO)
    loose = goodput(device, "llama3-70b", ttft_s=100.0, tpot_s=100.0, **SCENARIO)
    assert free.best is not None and loose.best is not None
    assert (loose.best.tp, loose.best.sequences) == (free.best.tp, free.best.sequences)
    assert loose.output_tokens_per_s == free.output_tokens_per_s
    # without targets the best point is at or near the memory limit, at least the fixed load's rate
    assert free.output_tokens_per_s >= serve_auto(device, "llama3-70b", concurrency=64, **SCENARIO).output_tokens_per_s
    for tpot in (0.03, 0.05, 0.1):
        g = goodput(device, "llama3-70b", tpot_s=tpot, **SCENARIO)
        assert g.output_tokens_per_s <= free.output_tokens_per_s


def test_a_ttft_target_and_static_batching():
    g = goodput("h100-sxm", "llama3-8b", isl=1024, osl=128, ttft_s=0.5, batching="static", tp=1)
    assert g.best is not None and g.best.batching == "static" and g.best.ttft_s <= 0.5
    over = [p for p in g.curve if not p.meets]
    assert over and all(p.ttft_s > 0.5 for p in over)
    assert min(p.concurrency for p in over) == max(p.concurrency for p in g.curve if p.meets) + 1
    assert "batch" in goodput("h100-sxm", "llama3-8b", isl=1024, osl=128, ttft_s=1e-4, batching="static",
                              tp=1).reason


def test_results_are_tabular_and_plot():
    g = goodput("h200-sxm", "llama3-70b", tpot_s=0.05, **SCENARIO)
    df = g.to_frame()
    assert list(df.columns) == ["concurrency", "tp", "ttft_s", "tpot_s", "output_tokens_per_s", "meets"]
    assert len(df) == len(g.curve) and df["meets"].any() and not df["meets"].all()
    d = g.to_dict()
    assert d["meets_targets"] is True and d["targets"] == {"ttft_s": None, "tpot_s": 0.05}
    assert d["best"]["tpot_s"] <= 0.05 and d["concurrency"] == g.best.sequences and d["fastest"] is None
    json.dumps(d)
    h20 = goodput("h20", "llama3-70b", tpot_s=0.05, **SCENARIO)
    fig = plot_goodput([g, h20])
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("time per output token") and len(ax.get_legend().get_texts()) == 2
    assert any(list(line.get_xdata()) == [0.05, 0.05] for line in ax.get_lines())     # the target drawn
    # results under different targets say theirs
    tight = goodput("h20", "llama3-70b", tpot_s=0.01, **SCENARIO)
    labels = [t.get_text() for t in plot_goodput([g, tight]).axes[0].get_legend().get_texts()]
    assert labels == [f"h200-sxm (tp {g.best.tp}, TPOT ≤ 0.05 s)", "h20 (tp 8, TPOT ≤ 0.01 s)"]
    with pytest.raises(UserError) as e:
        plot_goodput([])
    assert e.value.parameter == "results"


@pytest.mark.parametrize("kwargs, parameter", [
    ({"ttft_s": 0}, "ttft_s"), ({"ttft_s": -1.0}, "ttft_s"), ({"ttft_s": float("nan")}, "ttft_s"),
    ({"tpot_s": 0.0}, "tpot_s"), ({"tpot_s": float("inf")}, "tpot_s"), ({"tpot_s": "0.1"}, "tpot_s"),
    ({"batching": "dynamic"}, "batching"), ({"tp": 0}, "tp"), ({"isl": 0}, "isl"),
])
def test_bad_input_names_the_parameter(kwargs, parameter):
    args = {"isl": 128, "osl": 16, **kwargs}
    with pytest.raises(UserError) as e:
        goodput("h100-sxm", "llama3-8b", **args)
    assert e.value.parameter == parameter and str(e.value).startswith(f"{parameter}: ")
    if parameter in ("ttft_s", "tpot_s"):
        with pytest.raises(UserError) as e:
            fleet(["h100-sxm"], "llama3-8b", isl=128, osl=16, **kwargs)
        assert e.value.parameter == parameter


def test_targets_met_and_missed():
    t = Targets.checked(ttft_s=0.5, tpot_s=0.05)
    assert t.given and not Targets().given
    assert t.missed(0.6, 0.06) == ("ttft_s", "tpot_s") and t.missed(0.5, 0.05) == ()


def test_fleet_json_without_targets_is_unchanged():
    row = fleet(["h100-sxm"], "llama3-8b", isl=512, osl=128, concurrency=16, budget_usd=1e9).rows[0].to_dict()
    assert "meets_targets" not in row and "concurrency" not in row and "note" not in row
    assert "targets" not in fleet(["h100-sxm"], "llama3-8b", isl=512, osl=128, concurrency=16).to_dict()


def test_serve_command_with_a_target_serves_at_the_goodput_point(capsys):
    assert main(["serve", "--device", "h20", "--model", "llama3-70b", "--isl", "2048", "--osl", "256",
                 "--tpot-s", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    g = goodput("h20", "llama3-70b", tpot_s=0.1, **SCENARIO)
    assert out["meets_targets"] is True and out["reason"] is None and out["tpot_s"] <= 0.1
    assert out["goodput"]["output_tokens_per_s"] == out["output_tokens_per_s"] == g.output_tokens_per_s
    assert (out["sequences"], out["tp"]) == (g.best.sequences, g.best.tp) and out["batching"] == "continuous"
    assert len(out["goodput"]["curve"]) == len(g.curve) and out["targets"] == {"ttft_s": None, "tpot_s": 0.1}
    # with --concurrency the targets are checked at that load
    assert main(["serve", "--device", "h20", "--model", "llama3-70b", "--isl", "2048", "--osl", "256",
                 "--concurrency", "64", "--tpot-s", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["meets_targets"] is False and out["reason"].startswith("tpot_s: 0.468 s at concurrency 64")
    assert "goodput" not in out


@pytest.mark.parametrize("argv, parameter", [
    (["--tpot-s", "0"], "tpot-s"), (["--ttft-s", "-1"], "ttft-s"), (["--ttft-s", "nan"], "ttft-s"),
    ([], "batch"),
])
def test_serve_and_fleet_commands_name_a_bad_target(capsys, argv, parameter):
    for cmd in (["serve", "--device", "h100-sxm"], ["fleet", "--devices", "h100-sxm"]):
        args = [*cmd, "--model", "llama3-8b", "--isl", "100", "--osl", "10", *argv, "--json"]
        assert main(args) == 2
        assert json.loads(capsys.readouterr().out)["parameter"] == parameter


def test_fleet_command_with_a_target(capsys):
    assert main(["fleet", "--model", "llama3-70b", "--isl", "2048", "--osl", "256", "--tpot-s", "0.01",
                 "--devices", "h20,h200-sxm", "--budget-usd", "1e9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    h20, h200 = out["rows"]
    assert out["targets"] == {"ttft_s": None, "tpot_s": 0.01} and out["concurrency"] is None
    assert h20["meets_targets"] is False and h20["units"] == 0 and h20["fleet_output_tokens_per_s"] == 0
    assert h20["note"].startswith("tpot_s: ")
    assert h200["meets_targets"] is (h200["tpot_s"] <= 0.01)
    assert (h200["units"] > 0) is h200["meets_targets"]


CHIP_SPACE = {
    "base": "sl-n4-os32",
    "parameters": {"cores": [64], "dram_stacks": [1]},
    "objectives": [{"metric": "throughput", "workload": "llama3-8b-serving", "goal": "max"}],
    "gpus": ["h100-sxm"],
}


def test_an_exploration_point_that_misses_a_target_is_infeasible_naming_it(tmp_path):
    w = {"serve": "llama3-8b", "isl": 512, "osl": 64, "concurrency": 8}
    met = run_explore({**CHIP_SPACE, "workloads": [{**w, "tpot_s": 10.0}]}, db=tmp_path / "a.sqlite")
    missed = run_explore({**CHIP_SPACE, "workloads": [{**w, "tpot_s": 1e-4}]}, db=tmp_path / "b.sqlite")
    assert met["feasible"] == 1 and missed["feasible"] == 0
    m = missed["all_points"][0]["result"]
    assert m["failed"] == ["tpot_s[llama3-8b-serving]"]
    s = m["workloads"]["llama3-8b-serving"]
    assert s["throughput"] == 0.0 and s["meets_targets"] is False and s["reason"].startswith("tpot_s: ")
    assert s["fleet_throughput"] == 0
    ok = met["all_points"][0]["result"]["workloads"]["llama3-8b-serving"]
    assert ok["meets_targets"] is True and ok["throughput"] > 0 and ok["concurrency"] == 8


def test_an_exploration_workload_with_targets_and_no_load_serves_at_the_goodput_point():
    sp = load_space({**CHIP_SPACE, "workloads": [{"serve": "llama3-70b", "tpot_s": 0.1, **SCENARIO}],
                     "objectives": [{"metric": "throughput", "workload": "llama3-70b-serving", "goal": "max"}]})
    w = sp.workloads[0]
    m = serving_metrics("h20", w)
    g = goodput("h20", "llama3-70b", tpot_s=0.1, **SCENARIO)
    assert m["throughput"] == g.output_tokens_per_s > 0 and m["concurrency"] == g.best.sequences
    assert m["devices"] == g.best.tp and m["seconds"] <= 0.1
    # without targets no target fields are added to the metrics (only the lifetime-cost record
    # every serving point carries for the TCO objective, models/explore/lifetime.py)
    assert set(serving_metrics("h20", {**w, "tpot_s": None, "concurrency": 8})) == {
        "throughput", "seconds", "ttft_s", "devices", "energy_per_unit_J", "usd_per_million_units", "lifetime"}


@pytest.mark.parametrize("extra, field", [
    ({"ttft_s": 0}, "workloads[0].ttft_s"), ({"tpot_s": -0.1}, "workloads[0].tpot_s"),
    ({"tpot_s": float("nan")}, "workloads[0].tpot_s"), ({"tpot_s": "fast"}, "workloads[0].tpot_s"),
])
def test_a_space_checks_its_targets(extra, field):
    w = {"serve": "llama3-8b", "isl": 8, "osl": 8, **extra}
    with pytest.raises(UserError, match=rf"space: .*: {re.escape(field)}: "):
        load_space({**CHIP_SPACE, "workloads": [w]})


def test_goodput_result_type():
    g = goodput("h100-sxm", "llama3-8b", isl=128, osl=16, tpot_s=0.05, tp=1)
    assert isinstance(g, Goodput) and g.device == "h100-sxm" and g.model == "llama3-8b"
    assert {p.tp for p in g.curve} == {1}


@pytest.mark.parametrize("flag, value", [("tp", 3), ("pp", 3)])
def test_fleet_refuses_parallelism_the_model_cannot_take(flag, value):
    """tp 3 divides none of Llama-3-8B's heads, pp 3 none of its layers: the question's
    error, named once, not a note on every device's row."""
    from systolab.models.serving import fleet

    with pytest.raises(UserError) as exc:
        fleet(["h100-sxm", "h20"], "llama3-8b", isl=128, osl=16, concurrency=4, **{flag: value})
    assert exc.value.parameter == flag
