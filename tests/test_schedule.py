"""Time to silicon, bottom-up NRE, tokens over a horizon and the break-even date
(models/cost/schedule.py, models/cost/timeline.py)."""
from __future__ import annotations

import datetime as dt
import json
import math
import time

import numpy as np
import pytest

from systolab.errors import UserError
from systolab.models.cost import (
    Option,
    break_even,
    delivered_tokens,
    evaluate_silicon,
    incumbent_multiplier,
    plot_timeline,
    plot_tokens_per_usd,
    schedule_inputs,
    silicon_inputs,
    time_to_silicon,
    timeline,
    tokens_over_horizon,
)
from systolab.models.cost.pricing import cost_inputs
from systolab.models.cost.timeline import SECONDS_PER_YEAR
from systolab.models.specs import SHAPES, SpecError

START = dt.date(2026, 12, 7)
NODES = ("n16", "n7", "n5", "n4", "n3", "smic-7duv")
#: The bottom-up NRE is within this factor of the IBS design cost plus mask set of
#: data/cost.yaml at every node (reported in docs/schedule.md: 2.4x above at 16 nm, where
#: IBS prices a smaller design; 0.93x at 7 nm; 0.52x at 5/4 nm; 0.45x at 3 nm).
IBS_FACTOR = 2.5


@pytest.mark.parametrize("node", NODES)
def test_schedule_total_lies_between_the_sums_of_the_phase_lows_and_highs(node):
    s = time_to_silicon(start=START, node=node)
    assert sum(p.months.low for p in s.phases) == pytest.approx(s.months.low)
    assert sum(p.months.high for p in s.phases) == pytest.approx(s.months.high)
    assert sum(p.months.value for p in s.phases) == pytest.approx(s.months.value)
    assert s.months.low < s.months.value < s.months.high
    assert 20 <= s.months.value <= 40          # "two to three years", with a respin expected
    assert s.available.low < s.available.value < s.available.high
    assert list(s.milestones) == list(schedule_inputs().phases) and s.milestones["ramp"] == s.available
    assert (s.available.value - START).days == pytest.approx(s.months.value * 365.25 / 12, abs=1)
    for before, after in zip(s.phases, s.phases[1:]):      # phases follow one another
        assert after.start == before.end


def test_a_respin_adds_its_months_and_a_certain_one_has_no_range_without_it():
    with_respin = time_to_silicon(start=START, node="n5", respin=True)
    without = time_to_silicon(start=START, node="n5", respin=False)
    respin_months = schedule_inputs().phases["respin"].months
    assert with_respin.months.value - without.months.value == pytest.approx(respin_months.value)
    assert with_respin.months.low - without.months.low == pytest.approx(respin_months.low)
    expected = time_to_silicon(start=START, node="n5")
    p = expected.respin_probability
    assert p == schedule_inputs().respin_probability.value
    assert expected.months.value == pytest.approx(without.months.value + p * respin_months.value)
    assert expected.months.low == pytest.approx(without.months.low)         # the low case has no respin
    assert expected.months.high == pytest.approx(with_respin.months.high)   # the high case has one
    assert with_respin.nre_usd.components["respin_masks_usd"].value > 0 == without.nre_usd.components["respin_masks_usd"].value


def test_the_fab_cycle_depends_on_the_node_class():
    mature, advanced = (time_to_silicon(start=START, node=n) for n in ("n16", "n5"))
    fab = {s.node_class: next(p for p in s.phases if p.name == "fab").months.value for s in (mature, advanced)}
    assert fab["mature"] < fab["advanced"]


@pytest.mark.parametrize("node", NODES)
def test_nre_components_sum_to_the_total_and_masks_come_from_cost_yaml(node):
    nre = time_to_silicon(start=START, node=node).nre_usd
    for case in ("value", "low", "high"):
        assert sum(getattr(b, case) for b in nre.components.values()) == pytest.approx(getattr(nre.total, case))
    masks = cost_inputs().nodes[node]["mask_set_usd"]
    assert nre.components["mask_set_usd"].to_dict() == {"value": masks.value, "low": masks.low, "high": masks.high}
    # software is a major cost of an inference chip, of the order of the hardware's
    assert 0.5 < nre.components["software_engineering_usd"].value / nre.components["hardware_engineering_usd"].value < 2


@pytest.mark.parametrize("node", NODES)
def test_bottom_up_nre_is_within_the_stated_factor_of_the_ibs_figure(node):
    nre = time_to_silicon(start=START, node=node).nre_usd
    f = cost_inputs().nodes[node]
    assert nre.ibs_usd.value == f["design_nre_usd"].value + f["mask_set_usd"].value
    assert 1 / IBS_FACTOR <= nre.ratio_to_ibs <= IBS_FACTOR
    assert nre.total.low < nre.ibs_usd.value < nre.total.high


def test_schedule_results_serialise_and_tabulate():
    s = time_to_silicon(start="2026-12-07", node="n5")
    d = json.loads(json.dumps(s.to_dict()))
    assert d["available"]["value"] == s.available.value.isoformat()
    assert [p["phase"] for p in d["phases"]] == list(schedule_inputs().phases)
    assert len(s.to_frame()) == len(s.phases)
    frame = s.nre_usd.to_frame()
    assert frame["usd"].iloc[-1] == pytest.approx(s.nre_usd.total.value)
    assert all(src for src in s.sources)


def test_every_input_has_a_source_and_a_known_shape():
    for key, fig in silicon_inputs("n5").items():
        assert fig.source.strip(), key
        assert fig.shape in SHAPES, key
        assert fig.low <= fig.value <= fig.high, key
    for key, fig in schedule_inputs().incumbent.items():
        assert fig.source.strip() and fig.shape in SHAPES, key
    for key, anchor in schedule_inputs().anchors.items():
        assert anchor["source"].strip() and anchor["months"] > 0, key


def test_a_drawn_cost_alone_gives_percentiles_in_the_table():
    costs = np.array([5e8, 1e9, 2e9])
    tl = timeline([Option("gpu", START, tokens_per_s=1e6, cost_usd=costs)], start=START, horizon_years=1)
    frame = tl.to_frame()
    last = frame.iloc[-1]
    assert last["tokens_per_usd"] == pytest.approx(np.mean(1e6 * SECONDS_PER_YEAR / costs))
    assert last["tokens_per_usd_p05"] < last["tokens_per_usd"] < last["tokens_per_usd_p95"]


def test_evaluate_silicon_broadcasts_draws_like_scalars():
    inputs = silicon_inputs("n7")
    rng = np.random.default_rng(3)
    draws = {k: rng.uniform(f.low, f.high, 5) for k, f in inputs.items()}
    draws["respin"] = rng.integers(0, 2, 5).astype(float)
    many = evaluate_silicon(draws)
    for i in range(5):
        one = evaluate_silicon({k: float(v[i]) for k, v in draws.items()})
        assert many["months_total"][i] == pytest.approx(one["months_total"])
        assert many["nre_total_usd"][i] == pytest.approx(one["nre_total_usd"])
    assert np.all(many["months.respin"][draws["respin"] == 0] == 0)


# --- tokens over the horizon -----------------------------------------------------------

def test_tokens_over_horizon_matches_its_integral():
    rate, delay, horizon, gain = 2e5, 0.5, 4.0, 0.3
    t = np.linspace(delay, horizon, 200_001)
    numeric = np.trapezoid(rate * (1 + gain) ** (t - delay), t) * SECONDS_PER_YEAR
    assert tokens_over_horizon(rate, delay, horizon, gain) == pytest.approx(numeric, rel=1e-9)
    assert tokens_over_horizon(rate, delay, horizon, 0.0) == pytest.approx(rate * 3.5 * SECONDS_PER_YEAR)
    assert tokens_over_horizon(rate, -1.0, horizon) == pytest.approx(rate * 4 * SECONDS_PER_YEAR)   # live from the decision


def test_a_chip_that_arrives_after_the_horizon_delivers_nothing():
    assert tokens_over_horizon(1e6, 4.5, 4.0, 0.2) == 0.0
    assert tokens_over_horizon(1e6, 4.0, 4.0, 0.2) == 0.0
    late = Option("chip", "2031-06-01", tokens_per_s=1e7, cost_usd=1e9, kind="chip")
    assert np.all(delivered_tokens(late, start=START) == 0)


def test_arrays_broadcast_like_scalars_elementwise():
    rate = np.array([1e5, 2e5, 3e5])
    delay = np.array([[0.0], [1.0], [5.0]])          # (3, 1) against (3,): a (3, 3) grid
    gain = np.array([0.0, 0.2, 0.5])
    out = tokens_over_horizon(rate, delay, 4.0, gain)
    assert out.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            assert out[i, j] == pytest.approx(tokens_over_horizon(float(rate[j]), float(delay[i, 0]), 4.0, float(gain[j])))
    assert isinstance(tokens_over_horizon(1e5, 0.0, 4.0, 0.1), float)


def test_delivered_tokens_by_month_ends_at_the_closed_form():
    opt = Option("gpu", "2026-01-01", tokens_per_s=np.array([1e5, 4e5]), cost_usd=1e9, annual_gain=0.25, delay_months=np.array([0, 9]))
    cum = delivered_tokens(opt, start=START, horizon_years=2.5)
    assert cum.shape == (2, 31)
    assert np.all(np.diff(cum, axis=-1) >= 0) and np.all(cum[:, 0] == 0)
    assert cum[:, -1] == pytest.approx(tokens_over_horizon(np.array([1e5, 4e5]), np.array([0, 0.75]), 2.5, 0.25))


def test_incumbent_multiplier_counts_whole_generations_and_software():
    assert incumbent_multiplier(0.99, software_gain_per_year=0.0, generation_gain=2.0) == pytest.approx(1.0)
    assert incumbent_multiplier(1.0, software_gain_per_year=0.2, generation_gain=2.0) == pytest.approx(2.4)
    assert incumbent_multiplier(3.0, software_gain_per_year=0.0, generation_gain=2.0, generation_cadence_years=2.0,
                                stepwise=False) == pytest.approx(2 ** 1.5)
    data = schedule_inputs().incumbent       # defaults: the data file's values (+20 %/year, 2x a year)
    assert incumbent_multiplier(2.0) == pytest.approx((1 + data["software_gain_per_year"].value) ** 2
                                                      * data["generation_gain"].value ** 2)
    many = incumbent_multiplier(np.array([0.5, 2.0]), software_gain_per_year=np.array([0.1, 0.3]), generation_gain=1.5,
                                generation_cadence_years=1.0)
    assert many == pytest.approx([1.1 ** 0.5, 1.3 ** 2 * 1.5 ** 2])


# --- break-even ----------------------------------------------------------------------------

def _options(chip_rate, *, chip_available=None, chip_cost=1e9, gpu_cost=1e9):
    chip_available = chip_available or time_to_silicon(start=START, node="n5").available.value
    return [Option("h100-sxm", "2023-03-01", tokens_per_s=1e6, cost_usd=gpu_cost, annual_gain=0.2),
            Option("h200-sxm", "2024-06-01", tokens_per_s=1.5e6, cost_usd=gpu_cost * 1.3, annual_gain=0.2),
            Option("chip", chip_available, tokens_per_s=chip_rate, cost_usd=chip_cost, annual_gain=0.1, kind="chip")]


def test_break_even_exists_when_the_chip_is_much_cheaper_per_token():
    tl = timeline(_options(2e7), start=START)
    be = break_even(tl)
    assert be.date is not None and be.reason is None and be.reached_fraction == 1.0
    assert be.against == "h200-sxm"          # 1.5x the rate for 1.3x the cost
    m = int(be.months)
    per_usd = tl.horizon_tokens_per_usd()
    assert per_usd["chip"] > per_usd["h200-sxm"]
    assert tl.tokens_per_usd("chip")[m] >= tl.tokens_per_usd("h200-sxm")[m]
    assert tl.tokens_per_usd("chip")[m - 1] < tl.tokens_per_usd("h200-sxm")[m - 1]
    assert be.date == tl.dates[m] and be.date > time_to_silicon(start=START, node="n5").available.value


def test_no_break_even_when_the_chip_is_not_cheaper_per_token():
    be = break_even(timeline(_options(2e6), start=START))
    assert be.date is None and math.isnan(be.months) and be.reached_fraction == 0.0
    assert "not made up within the horizon" in be.reason
    late = break_even(timeline(_options(1e9, chip_available=dt.date(2031, 6, 1)), start=START))
    assert late.date is None and "after the 4-year horizon" in late.reason


def test_break_even_over_draws_equals_each_draw_alone():
    rates = np.array([2e6, 8e6, 2e7, 5e7])
    slips = np.array([0.0, 3.0, 12.0, -6.0])
    chip_available = time_to_silicon(start=START, node="n5").available.value
    opts = _options(rates, chip_available=chip_available)
    opts[2] = Option("chip", chip_available, tokens_per_s=rates, cost_usd=1e9, annual_gain=0.1, delay_months=slips, kind="chip")
    many = break_even(timeline(opts, start=START))
    for i in range(len(rates)):
        one_opts = _options(float(rates[i]), chip_available=chip_available)
        one_opts[2] = Option("chip", chip_available, tokens_per_s=float(rates[i]), cost_usd=1e9, annual_gain=0.1,
                             delay_months=float(slips[i]), kind="chip")
        one = break_even(timeline(one_opts, start=START))
        assert (math.isnan(one.months) and math.isnan(many.months[i])) or one.months == many.months[i]
    assert many.reached_fraction == pytest.approx(np.mean(~np.isnan(many.months)))
    assert 0 < many.reached_fraction < 1
    assert many.reason.startswith(f"in {1 - many.reached_fraction:.1%} of draws, chip delivers")


def test_ten_thousand_draws_are_fast_and_serialise():
    rng = np.random.default_rng(0)
    n = 10_000
    chip_available = time_to_silicon(start=START, node="n5").available.value
    opts = [Option("h100-sxm", "2023-03-01", tokens_per_s=1e6, cost_usd=rng.uniform(5e8, 1.5e9, n),
                   annual_gain=rng.triangular(0.05, 0.2, 0.45, n)),
            Option("chip", chip_available, tokens_per_s=rng.uniform(1e6, 3e7, n), cost_usd=1e9,
                   delay_months=rng.uniform(-6, 18, n), kind="chip")]
    t0 = time.perf_counter()
    tl = timeline(opts, start=START)
    be = break_even(tl)
    assert time.perf_counter() - t0 < 2.0
    assert 0 < be.reached_fraction < 1
    assert json.loads(json.dumps(be.to_dict()))["reached_fraction"] == be.reached_fraction
    assert len(json.loads(json.dumps(tl.to_dict()))["options"]) == 2
    assert len(tl.to_frame()) == 2 * 49


def test_timeline_and_schedule_plots_return_figures():
    from matplotlib.figure import Figure

    s = time_to_silicon(start=START, node="n5")
    fig = plot_timeline(s, {"h100-sxm": dt.date(2023, 3, 1), "b200": "2025-01-15"})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == len(s.phases)
    assert len(ax.lines) >= 3                       # two GPU markers and the volume date
    fig2 = plot_tokens_per_usd(timeline(_options(2e7), start=START))
    assert isinstance(fig2, Figure) and len(fig2.axes[0].get_lines()) == 4   # three options and the break-even


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, parameter", [
    (lambda: time_to_silicon(start="1999-12-31", node="n5"), "start"),
    (lambda: time_to_silicon(start="not a date", node="n5"), "start"),
    (lambda: time_to_silicon(start=START, node="n2"), "node"),
    (lambda: time_to_silicon(start=START, node="n5", respin=1.5), "respin"),
    (lambda: evaluate_silicon({"respin": 0.5}), "values"),
    (lambda: evaluate_silicon({k: f.value for k, f in silicon_inputs("n5").items()} | {"months.lunch": 1.0}), "values"),
    (lambda: tokens_over_horizon(1e6, 0.0, 0.0), "horizon_years"),
    (lambda: tokens_over_horizon(1e6, 0.0, -1.0), "horizon_years"),
    (lambda: tokens_over_horizon(np.array([1e6, -1.0]), 0.0, 4.0), "rate_tokens_per_s"),
    (lambda: tokens_over_horizon(1e6, np.array([0.0, np.nan]), 4.0), "start_delay_years"),
    (lambda: tokens_over_horizon(1e6, 0.0, 4.0, -1.0), "annual_gain"),
    (lambda: incumbent_multiplier(1.0, generation_cadence_years=0.0), "generation_cadence_years"),
    (lambda: timeline(_options(1e7), start=START, horizon_years=0), "horizon_years"),
    (lambda: timeline(_options(1e7), start="1990-01-01"), "start"),
    (lambda: timeline([], start=START), "options"),
    (lambda: timeline([Option("x", "1999-01-01", 1.0, 1.0)], start=START), "available"),
    (lambda: timeline([Option("x", START, 1.0, 0.0)], start=START), "cost_usd"),
    (lambda: timeline([Option("x", START, 1.0, 1.0, kind="tpu")], start=START), "kind"),
    (lambda: break_even(timeline(_options(1e7)[:2], start=START)), "chip"),
    (lambda: break_even(timeline(_options(1e7)[2:], start=START)), "options"),
    (lambda: plot_timeline(time_to_silicon(start=START, node="n5"), {"h100": "1980-01-01"}), "gpu_available['h100']"),
])
def test_bad_input_names_its_parameter(call, parameter):
    with pytest.raises(UserError) as err:
        call()
    assert err.value.parameter == parameter
    assert str(err.value).startswith(parameter)


@pytest.mark.parametrize("figure, message", [
    ("{value: 3, low: 5, high: 2, source: x}", "phases.architecture.months: low (5) > high (2)"),
    ("{value: 3, low: 2, high: 5, source: x, shape: gaussian}", "phases.architecture.months.shape: must be one of"),
    ("{value: 9, low: 2, high: 5, source: x}", "phases.architecture.months: needs low <= value <= high"),
    ("{value: 3, low: 2, high: 5}", "phases.architecture.months.source: missing"),
])
def test_bad_data_names_the_file_and_field(tmp_path, figure, message):
    from systolab.models.cost.schedule import SCHEDULE_FILE

    text = SCHEDULE_FILE.read_text()
    old = "months: {value: 3, low: 2, high: 6, shape: triangular,"
    assert old in text
    start = text.index(old)
    end = text.index("}", start) + 1
    bad = tmp_path / "schedule.yaml"
    bad.write_text(text[:start] + "months: " + figure + text[end:])
    with pytest.raises(SpecError) as err:
        schedule_inputs(str(bad))
    assert message in str(err.value) and str(bad) in str(err.value)


def test_nre_breakdown_equals_the_schedules():
    """nre_breakdown(node) is the NRE time_to_silicon reports, without the dates."""
    from systolab.models.cost.schedule import nre_breakdown, time_to_silicon

    for node in ("n7", "smic-7duv"):
        assert nre_breakdown(node) == time_to_silicon(start="2026-12-01", node=node).nre_usd
