"""Exploration ranked by lifetime cost: the serving metric ``usd_per_million_tokens_tco``
is what ``systolab fleet`` counts per device, the ``corrected`` flag applies the
decision's modal model errors, and the bundled China space loads and runs."""
from __future__ import annotations

import json

import pytest

from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.cost.pricing import cost_inputs
from systolab.models.cost.tco import HOURS_PER_YEAR
from systolab.models.explore import gpu_reference, load_space, run_explore
from systolab.models.explore.lifetime import model_error_modes
from systolab.models.serving.fleet import fleet
from systolab.models.specs import DATA_DIR, load_yaml

W = "llama3-8b-serving"
SPACE = {
    "base": "sl-n4-os32",
    "parameters": {"cores": [64], "dram_stacks": [1]},
    "workloads": [{"serve": "llama3-8b", "isl": 512, "osl": 64, "concurrency": 8}],
    "objectives": [{"metric": "usd_per_million_tokens_tco", "workload": W, "goal": "min"}],
    "budget_usd": 1e9,
    "gpus": ["h100-sxm"],
}


def _space(**changes) -> dict:
    return {**json.loads(json.dumps(SPACE)), **changes}


def _fleet_usd_per_million(row) -> float:
    """A fleet row's lifetime $/M tokens per device: its lifetime cost plus its share of the
    NRE over the output tokens it serves in its lifetime at the cost model's utilisation."""
    util = cost_inputs().operations["utilization"].value
    years = cost_inputs().operations["lifetime_years"].value
    tokens = row.output_tokens_per_s * util * years * HOURS_PER_YEAR * 3600
    return (row.lifetime_cost_per_device_usd + (row.nre_usd or 0.0) / row.units) / tokens * 1e6


def test_the_lifetime_metric_is_what_fleet_counts_per_device(tmp_path):
    res = run_explore(_space(), db=tmp_path / "db.sqlite")
    (p,) = res["all_points"]
    m = p["result"]["workloads"][W]
    chip = get_chip("sl-n4-os32").derive(**p["design"])
    row = fleet([chip], "llama3-8b", isl=512, osl=64, concurrency=8, budget_usd=1e9).rows[0]
    assert m["tco_units"] == row.units > 0
    assert m["lifetime_cost_per_device_usd"] == pytest.approx(row.lifetime_cost_per_device_usd, rel=1e-12)
    assert m["usd_per_million_tokens_tco"] == pytest.approx(_fleet_usd_per_million(row), rel=1e-9)
    # the NRE is spread over the units bought, not the chip's volume_units as serve's figure
    assert m["usd_per_million_tokens_tco"] != pytest.approx(m["usd_per_million_units"], rel=1e-3)
    assert res["pareto"][0]["objectives"][f"usd_per_million_tokens_tco[{W}]"] == m["usd_per_million_tokens_tco"]
    # a GPU reference point is priced the same way (no NRE)
    ref = gpu_reference(load_space(_space()))["h100-sxm"]["workloads"][W]
    gpu_row = fleet(["h100-sxm"], "llama3-8b", isl=512, osl=64, concurrency=8, budget_usd=1e9).rows[0]
    assert ref["usd_per_million_tokens_tco"] == pytest.approx(_fleet_usd_per_million(gpu_row), rel=1e-9)
    # the budget is applied when the points are read: a budget the NRE eats buys no unit,
    # and a point with nothing to rank it by is not feasible (nothing is re-evaluated)
    poor = run_explore(_space(budget_usd=1e6), db=tmp_path / "db.sqlite")
    assert poor["evaluated"] == 0 and poor["feasible"] == 0
    assert poor["all_points"][0]["result"]["failed"] == [f"no_value[usd_per_million_tokens_tco[{W}]]"]


def test_corrected_prices_the_chip_at_the_decisions_modal_errors(tmp_path):
    modes = model_error_modes()
    errors = load_yaml(DATA_DIR / "decision.yaml")["model_errors"]
    assert modes == {"chip_area": errors["chip_area"]["value"], "chip_power": errors["chip_power"]["value"]}
    assert modes["chip_area"] > 1 and modes["chip_power"] > 1
    plain = run_explore(_space(), db=tmp_path / "db.sqlite")["all_points"][0]["result"]["workloads"][W]
    res = run_explore(_space(corrected=True), db=tmp_path / "db.sqlite")
    assert res["evaluated"] == 0                   # both costs are stored: the flag re-evaluates nothing
    fixed = res["all_points"][0]["result"]["workloads"][W]
    # a larger die and more power cost more, and buy fewer units; the serving point is the same
    assert fixed["lifetime_cost_per_device_usd"] > plain["lifetime_cost_per_device_usd"]
    assert fixed["usd_per_million_tokens_tco"] > plain["usd_per_million_tokens_tco"]
    assert fixed["tco_units"] < plain["tco_units"] and fixed["throughput"] == plain["throughput"]
    # the GPUs' errors have mode 1: their cost does not move
    a = gpu_reference(load_space(_space()))["h100-sxm"]["workloads"][W]
    b = gpu_reference(load_space(_space(corrected=True)))["h100-sxm"]["workloads"][W]
    assert a["usd_per_million_tokens_tco"] == b["usd_per_million_tokens_tco"]
    with pytest.raises(UserError, match="corrected: must be true or false"):
        load_space(_space(corrected="yes"))


def test_the_china_tco_space_loads_with_its_targets_and_objective():
    sp = load_space("cn-2026-70b-tco")
    assert sp.source.endswith("cn-2026-70b-tco.yaml") and not sp.corrected
    (w,) = sp.workloads
    assert (w["serve"], w["isl"], w["osl"], w["tpot_s"], w["ttft_s"]) == ("llama3-70b", 2048, 256, 0.2, 2.0)
    assert "batch" not in w and "concurrency" not in w          # each design at its goodput point
    assert sp.objectives[0].label == "usd_per_million_tokens_tco[llama3-70b-serving]"
    assert sp.objectives[0].goal == "min"
    assert sp.constraints == {"rule_date": "2026-12-01", "buyer": "china", "buildable": True,
                              "physically_feasible": True}
    assert {"n7", "smic-7duv"} <= set(sp.parameters["node"]["values"])
    assert {"cores", "global_sram_mib", "dram_kind", "dram_stacks", "clock_mhz"} <= set(sp.parameters)
    assert sp.grid_size() <= 200                    # minutes on two cores
    assert load_space("cn-2025-70b").objectives[0].metric == "usd_per_million_units"    # kept as it was


def test_a_tiny_china_tco_space_runs_and_ranks_by_lifetime_cost(tmp_path):
    """Two designs of the bundled space: the default legal chip and one over the ECCN
    3A090 threshold (128 cores at 1 GHz), each at its goodput point."""
    d = load_yaml(DATA_DIR / "spaces" / "cn-2026-70b-tco.yaml")
    d["parameters"] = {"node": ["n7"], "dram_kind": ["LPDDR5X"], "dram_stacks": [8], "cores": [64, 128],
                       "global_sram_mib": [128], "clock_mhz": [1000]}
    res = run_explore(d, db=tmp_path / "db.sqlite")
    assert res["points"] == 2 and res["feasible"] == 1
    by_cores = {p["design"]["cores"]: p["result"] for p in res["all_points"]}
    assert "buildable" in by_cores[128]["failed"] and by_cores[64]["feasible"]
    m = by_cores[64]["workloads"]["llama3-70b-serving"]
    assert m["meets_targets"] and m["seconds"] <= 0.2 and m["ttft_s"] <= 2.0
    assert 0 < m["usd_per_million_tokens_tco"] < 1e3 and m["tco_units"] > 0
    assert [p["design"]["cores"] for p in res["pareto"]] == [64]
