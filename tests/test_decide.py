"""The decision: legal options, goodput, TCO, time and uncertainty composed (models/decision)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.cost.pricing import die_cost
from systolab.models.decision.compose import decide
from systolab.models.decision.evaluate import die_cost_usd

SMALL = {"draws": 400, "sobol_base": 32}


@pytest.fixture(scope="module")
def china():
    return decide(**SMALL)


@pytest.fixture(scope="module")
def allied():
    return decide(buyer="allied", gpus=("h20", "h100-sxm"), **SMALL)


def test_only_legal_options_are_weighed_and_licences_are_marked(china):
    by = {o.option.name: o for o in china.options}
    assert not by["b200"].option.weighed and by["b200"].option.status == "presumption_of_denial"
    assert by["h200-sxm"].option.weighed and by["h200-sxm"].option.needs_licence
    assert not by["v100-sxm2"].option.weighed                    # allowed, but no public price
    chip = by[china.question["chip"]]
    assert chip.option.side == "build" and chip.option.status == "yes"
    assert "Without a licence" in china.verdict and "If a licence were granted" in china.verdict
    assert set(china.p_build_beats_buy) == {o.option.name for o in china.options if o.deployment is not None
                                            and o.option.side == "buy"}


def test_allied_buyers_need_no_licence(allied):
    assert all(not o.option.needs_licence for o in allied.options)
    assert "no licence needed" in allied.verdict
    assert all(0.0 <= p <= 1.0 for p in allied.p_build_beats_buy.values())


def test_each_deployment_spends_the_budget_whole(china):
    """A $7B decision buys whole deployments: every option's lines sum to the budget, and
    the chip's NRE is spread over the units it actually buys."""
    for o in china.options:
        dep = o.deployment
        if dep is None:
            continue
        assert float(np.sum([np.mean(v) for v in dep.lines.values()])) == pytest.approx(7e9, rel=1e-9)
        assert float(np.mean(dep.lines["unspent_usd"])) >= 0
        if o.option.side == "build":
            nre = float(np.mean(dep.lines["nre_usd"]))
            assert nre > 1e7 and float(np.mean(dep.nre_per_unit_usd)) == pytest.approx(nre / float(np.mean(dep.units)))


def test_nre_per_unit_follows_the_units_bought():
    small, big = (decide(budget_usd=b, gpus=("h20",), **SMALL) for b in (2e9, 2e10))
    per_unit = [float(np.mean(next(o for o in d.options if o.option.side == "build").deployment.nre_per_unit_usd))
                for d in (small, big)]
    assert per_unit[1] < per_unit[0] / 5


def test_a_power_cap_limits_every_fleet():
    d = decide(power_cap_MW=20.0, gpus=("h20", "h200-sxm"), **SMALL)
    for o in d.options:
        if o.deployment is not None:
            assert float(np.max(o.deployment.facility_power_MW)) <= 20.0 + 1e-9
            assert o.measures["facility_MW"]["p95"] <= 20.0 + 1e-9


def test_the_monte_carlo_reproduces_with_its_seed(china):
    again = decide(**SMALL)
    other = decide(seed=7, **SMALL)
    name = next(iter(china.p_build_beats_buy))
    key = f"usd_per_Mtok.{name}"
    assert np.array_equal(china.monte_carlo[key], again.monte_carlo[key])
    assert not np.array_equal(china.monte_carlo[key], other.monte_carlo[key])
    assert china.to_dict()["sensitivity"] == again.to_dict()["sensitivity"]


def test_sensitivity_break_even_and_time(china):
    top = china.sensitivity.top(5)
    assert len(top) == 5 and all(t.ST >= top[-1].ST for t in top)
    assert china.break_even is not None and china.break_evens
    assert [b.input for b in china.break_evens] == [t.inputs[0] for t in top if t.inputs[0] in
                                                  {i.name for i in china.inputs if i.varies}][:len(china.break_evens)]
    # the one reported is the first that crosses, else the top input's
    crossing = [b for b in china.break_evens if b.value is not None]
    assert china.break_even == (crossing[0] if crossing else china.break_evens[0])
    assert china.break_even_date["chip"] == china.question["chip"]
    assert 0.0 <= china.break_even_date["reached_fraction"] <= 1.0


def test_a_device_that_misses_the_latency_target_has_no_capacity():
    d = decide(buyer="allied", gpus=("h20", "h200-sxm"), tpot_s=0.012, **SMALL)
    missed = [o for o in d.options if o.served is not None and o.served.tokens_per_s == 0]
    assert missed and all("tpot_s" in o.served.reason for o in missed)
    assert all(o.deployment is None for o in missed)


@pytest.mark.parametrize("kwargs, parameter", [
    ({"budget_usd": -1.0}, "budget_usd"),
    ({"ttft_s": 0.0}, "ttft_s"),
    ({"tpot_s": float("nan")}, "tpot_s"),
    ({"draws": 0}, "draws"),
    ({"horizon_years": 0}, "horizon_years"),
    ({"buyer": "atlantis"}, "buyer"),
    ({"date": "next year"}, "date"),
    ({"gpus": ("h99",)}, "gpus"),
    ({"power_cap_MW": -5.0}, "power_cap_MW"),
    ({"horizon_years": 31}, "horizon_years"),
    ({"sobol_base": 100}, "sobol_base"),
    ({"isl": 10_000_000}, "isl"),             # the question's error, not every device's capacity
    ({"model": ""}, "model"),
])
def test_bad_input_names_its_parameter(kwargs, parameter):
    with pytest.raises(UserError) as exc:
        decide(**{**SMALL, **kwargs})
    assert exc.value.parameter == parameter


def test_the_vectorised_die_cost_equals_the_cost_model():
    for area, node in ((100.0, "n7"), (222.0, "n4"), (600.0, "smic-7duv")):
        est = die_cost(area, node)
        from systolab.models.cost.pricing import cost_inputs
        f = cost_inputs().nodes[node]
        got = float(die_cost_usd(area, f["wafer_cost_usd"].value, f["defect_density_per_cm2"].value))
        assert got == pytest.approx(est.usd, rel=1e-12)


def test_decide_command_writes_the_report(tmp_path, capsys):
    out = tmp_path / "decision"
    assert main(["decide", "--gpus", "h20,h200-sxm", "--draws", "300", "--sobol-base", "32", "--out", str(out),
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"verdict", "options", "p_build_beats_buy", "sensitivity", "break_even", "break_evens",
            "files"} <= set(payload)
    for kind in ("report", "html", "json", "tco", "goodput", "timeline", "distributions", "sobol", "tornado"):
        assert (out / payload["files"][kind].rsplit("/", 1)[-1]).is_file(), kind
    text = (out / "report.md").read_text()
    assert "## Who may have what" in text and "P(building beats buying h20)" in text
    saved = json.loads((out / "decision.json").read_text())
    assert saved["verdict"] == payload["verdict"] and not any(
        isinstance(v, float) and not math.isfinite(v) for v in _floats(saved))


def _floats(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _floats(v)
    elif isinstance(x, list):
        for v in x:
            yield from _floats(v)
    else:
        yield x


@pytest.mark.parametrize("flags, parameter", [
    (["--budget-usd", "-1"], "budget-usd"),
    (["--tpot-s", "0"], "tpot-s"),
    (["--draws", "5"], "draws"),
    (["--buyer", "mars"], "buyer"),
    (["--gpus", ","], "gpus"),
])
def test_decide_command_refuses_bad_flags(tmp_path, capsys, flags, parameter):
    assert main(["decide", *flags, "--out", str(tmp_path / "d"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == parameter


def test_an_input_can_be_fixed_or_redrawn_by_name(allied):
    """The user varies one input (e.g. HBM $/GB) by its name, without rebuilding prices."""
    name = "memory.HBM.usd_per_GB"
    assert name in {i.name for i in allied.inputs}
    cheap = decide(buyer="allied", gpus=("h20", "h100-sxm"), overrides={name: 1.0}, **SMALL)
    dear = decide(buyer="allied", gpus=("h20", "h100-sxm"), overrides={name: (80.0, 100.0, 120.0)}, **SMALL)
    chip = allied.question["chip"]
    key = f"usd_per_Mtok.{chip}"
    assert np.median(cheap.monte_carlo[key]) < np.median(allied.monte_carlo[key]) < np.median(dear.monte_carlo[key])
    fixed = next(i for i in cheap.inputs if i.name == name)
    assert fixed.shape == "fixed" and fixed.source == "given by the caller"
    for bad in ({"memory.HBM.usd_per_gb": 1.0}, {name: (3.0, 2.0, 1.0)}, {name: float("nan")}):
        with pytest.raises(UserError) as exc:
            decide(buyer="allied", gpus=("h20",), overrides=bad, **SMALL)
        assert exc.value.parameter == "overrides"


def test_decide_command_takes_overrides(tmp_path, capsys):
    base = ["decide", "--buyer", "allied", "--gpus", "h20", "--draws", "200", "--sobol-base", "16", "--json"]
    assert main([*base, "--set", "memory.HBM.usd_per_GB=5:10:20", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    for bad in ("memory.HBM.usd_per_GB", "nope=3", "memory.HBM.usd_per_GB=a:b"):
        assert main([*base, "--set", bad, "--out", str(tmp_path / "b")]) == 2
        assert json.loads(capsys.readouterr().out)["parameter"] in ("set", "overrides")


def test_a_break_even_is_found_where_an_input_flips_the_answer(allied):
    """Against the H100 an allied buyer's chip wins in some draws and loses in others, so
    some top input has a break-even value: at it the two deliver alike."""
    crossing = [b for b in allied.break_evens if b.value is not None]
    assert crossing and allied.break_even is crossing[0]
    assert allied.p_build_beats_buy and all(0 <= p <= 1 for p in allied.p_build_beats_buy.values())
    for b in crossing:
        assert "building wins unless" in b.text and b.searched[0] <= b.value <= b.searched[1]



def test_a_float_chip_is_decided_at_its_attainable_clock():
    """An fp8 chip's unpipelined MAC cannot close 1.2 GHz at N4: the decision runs it at
    its estimated fmax and says so."""
    from systolab import get_chip
    from systolab.models.silicon.timing import TimingWarning

    chip = get_chip("sl-n4-os32").derive(dtype="fp8_e4m3")
    with pytest.warns(TimingWarning, match="clock_mhz"):
        d = decide(buyer="allied", chip=chip, gpus=("h20",), **SMALL)
    assert d.question["clock_note"] and "attainable clock" in d.question["clock_note"]
    assert any("attainable clock" in n for n in d.notes)
    assert d.setting.chip_config.clock_mhz < 1200
