"""models/decision: uncertain inputs, seeded Monte Carlo with correlations, Sobol' (SALib),
tornado, break-even and their plots."""
import math

import numpy as np
import pytest
from scipy import stats

from systolab.errors import UserError
from systolab.models.decision import (
    SHAPES,
    MonteCarlo,
    Uncertain,
    break_even,
    plot_distributions,
    plot_sobol,
    plot_tornado,
    propagate,
    sample,
    sobol,
    tornado,
    uncertain_inputs,
)
from systolab.models.decision.uncertainty import PERT_NODES

# ---------------------------------------------------------------------------- distributions


def test_triangular_and_uniform_hit_their_ends_and_mode():
    tri = Uncertain("a", 2.0, 5.0, 10.0, "triangular")
    assert tri.ppf([0.0, 1.0]).tolist() == pytest.approx([2.0, 10.0])
    assert float(tri.ppf((5 - 2) / (10 - 2))) == pytest.approx(5.0)        # F(mode) = (mode - low) / (high - low)
    uni = Uncertain("b", 2.0, 3.0, 10.0, "uniform")
    assert uni.ppf([0.0, 0.5, 1.0]).tolist() == pytest.approx([2.0, 6.0, 10.0])


def test_pert_hits_its_ends_its_mean_and_its_peak():
    p = Uncertain("p", 10.0, 12.0, 20.0, "pert")
    assert p.ppf([0.0, 1.0]).tolist() == pytest.approx([10.0, 20.0])
    assert p.mean() == pytest.approx((10 + 4 * 12 + 20) / 6)
    x = np.linspace(10, 20, 10001)
    assert x[np.argmax(p._dist.pdf(x))] == pytest.approx(12.0, abs=2e-3)   # the density peaks at the mode
    assert np.mean(p.ppf(np.linspace(0, 1, 200001))) == pytest.approx(p.mean(), rel=1e-4)


@pytest.mark.parametrize("mode", [0.0, 0.3, 0.5, 1.0])
def test_pert_table_is_within_its_stated_error_of_the_exact_inverse(mode):
    p = Uncertain("p", 0.0, mode, 1.0, "pert")
    q = np.linspace(0, 1, 100001)
    exact = stats.beta(1 + 4 * mode, 1 + 4 * (1 - mode)).ppf(q)
    err = np.abs(p.ppf(q) - exact)
    inner = (q > 1e-4) & (q < 1 - 1e-4)
    assert err.max() < 1.3e-4 and err[inner].max() < 1.6e-5
    assert len(PERT_NODES) == 4097 and PERT_NODES[0] == 0.0 and PERT_NODES[-1] == 1.0


def test_lognormal_median_is_the_mode_and_low_high_are_its_5th_and_95th_percentiles():
    ln = Uncertain("l", 2.0, 4.0, 8.0, "lognormal")                        # mode = sqrt(low * high)
    assert ln.ppf([0.05, 0.5, 0.95]).tolist() == pytest.approx([2.0, 4.0, 8.0])
    skew = Uncertain("s", 1.0, 1.5, 4.0, "lognormal")                      # mode off the geometric mean
    lo, med, hi = skew.ppf([0.05, 0.5, 0.95])
    assert med == pytest.approx(1.5) and hi / lo == pytest.approx(4.0)


def test_fixed_is_always_its_mode():
    f = Uncertain("f", 3.0, 3.0, 3.0, "fixed")
    assert f.ppf(np.linspace(0, 1, 5)).tolist() == [3.0] * 5
    assert Uncertain("g", 1.0, 2.0, 3.0, "fixed").ppf([0.0, 1.0]).tolist() == [2.0, 2.0]


def test_from_row_reads_the_yaml_schema():
    u = Uncertain.from_row("memory.hbm.usd_per_GB", {"value": 15, "low": 8, "high": 25, "source": "TrendForce",
                                                      "shape": "pert", "unit": "USD/GB", "group": "hbm",
                                                      "confidence": "low"})
    assert (u.low, u.mode, u.high, u.shape, u.unit, u.group, u.kind) == (8.0, 15.0, 25.0, "pert", "USD/GB", "hbm", "input")
    assert Uncertain.from_row("x", {"value": 1, "low": 0, "high": 2, "source": "s"}).shape == "triangular"
    assert Uncertain.from_row("n", 8).shape == "fixed"
    with pytest.raises(UserError, match="^x: missing source") as e:
        Uncertain.from_row("x", {"value": 1, "low": 0, "high": 2})
    assert e.value.parameter == "x"
    with pytest.raises(UserError, match="^x: source must say where"):
        Uncertain.from_row("x", {"value": 1, "low": 0, "high": 2, "source": " "})
    with pytest.raises(UserError, match="^x: missing value"):
        Uncertain.from_row("x", {"value": None, "low": 0, "high": 2, "source": "s"})
    with pytest.raises(UserError, match="^x: expected"):
        Uncertain.from_row("x", "cheap")


def test_uncertain_inputs_collects_every_figure_of_a_yaml_tree():
    tree = {"schema": "x/1", "systems": {"hgx": {"gpus": ["h100-sxm"], "kind": "gpu",
                                                 "server_usd": {"value": 40000, "low": 25000, "high": 70000, "source": "s"},
                                                 "devices": {"value": 8, "low": 8, "high": 8, "shape": "fixed", "source": "s"}}},
            "power": {"usd_per_kWh": {"value": 0.08, "low": 0.05, "high": 0.15, "source": "s", "shape": "lognormal"}}}
    found = uncertain_inputs(tree, "tco")
    assert [u.name for u in found] == ["tco.systems.hgx.server_usd", "tco.systems.hgx.devices", "tco.power.usd_per_kWh"]
    assert [u.shape for u in found] == ["triangular", "fixed", "lognormal"]
    with pytest.raises(UserError, match="^tco.power.usd_per_kWh: empty range") as e:
        uncertain_inputs({"power": {"usd_per_kWh": {"value": 1, "low": 1, "high": 1, "source": "s"}}}, "tco")
    assert e.value.parameter == "tco.power.usd_per_kWh"
    point = {"wafer_usd": {"value": 9346, "low": 9346, "high": 9346, "source": "s"}}
    assert uncertain_inputs(point, point_as_fixed=True)[0].shape == "fixed"
    with pytest.raises(UserError, match="^wafer_usd: empty range"):                   # a stated shape is kept
        uncertain_inputs({"wafer_usd": {**point["wafer_usd"], "shape": "pert"}}, point_as_fixed=True)


def test_model_error_is_a_factor_around_one():
    e = Uncertain.model_error("gpu.serving_model_error", 0.8, 1.25, "held-out error, docs/serving.md")
    assert (e.mode, e.kind, e.unit, e.shape) == (1.0, "model_error", "factor", "lognormal")
    assert e.ppf(0.05) == pytest.approx(0.8) and e.ppf(0.95) == pytest.approx(1.25)


@pytest.mark.parametrize("kwargs, parameter, message", [
    ({"shape": "gaussian"}, "shape", "^shape: unknown distribution shape 'gaussian' for x"),
    ({"low": 5.0, "mode": 5.0, "high": 5.0}, "x", "^x: empty range"),
    ({"low": 6.0, "mode": 5.0}, "x", "^x: needs low <= mode <= high"),
    ({"high": 4.0}, "x", "^x: needs low <= mode <= high"),
    ({"mode": math.nan}, "x", "^x: must be a finite number"),
    ({"high": math.inf}, "x", "^x: must be a finite number"),
    ({"low": 0.0, "shape": "lognormal"}, "x", "^x: a lognormal needs low > 0"),
    ({"kind": "guess"}, "kind", "^kind: must be one of input, model_error"),
])
def test_bad_inputs_name_the_parameter(kwargs, parameter, message):
    args = {"name": "x", "low": 1.0, "mode": 5.0, "high": 9.0, **kwargs}
    with pytest.raises(UserError, match=message) as e:
        Uncertain(**args)
    assert e.value.parameter == parameter


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "fixed"])
def test_cdf_inverts_ppf(shape):
    u = Uncertain("x", 1.0, 2.0, 4.0, shape)
    q = np.linspace(0.01, 0.99, 99)
    assert u.cdf(u.ppf(q)) == pytest.approx(q, abs=2e-4)
    assert u.mean() == pytest.approx(np.mean(u.ppf((np.arange(100000) + 0.5) / 100000)), rel=1e-3)


def test_every_shape_is_accepted():
    for shape in SHAPES:
        u = Uncertain("x", 1.0, 2.0, 4.0, shape)
        assert np.all(np.isfinite(u.ppf(np.linspace(0.001, 0.999, 11))))


# ---------------------------------------------------------------------------- sampling

INPUTS = [
    Uncertain("chip.hbm.usd_per_GB", 8, 15, 25, "pert", group="hbm"),
    Uncertain("gpu.hbm.usd_per_GB", 10, 14, 20, "triangular", group="hbm"),
    Uncertain("power.usd_per_kWh", 0.04, 0.08, 0.15, "lognormal"),
    Uncertain("chip.area_model_error", 0.9, 1.0, 1.1, "uniform", kind="model_error"),
    Uncertain("lifetime_years", 5, 5, 5, "fixed"),
]


def test_a_seed_reproduces_the_draws_exactly_and_another_seed_differs():
    a, b, c = sample(INPUTS, 500, 7), sample(INPUTS, 500, 7), sample(INPUTS, 500, 8)
    assert all(np.array_equal(a[k], b[k]) for k in a.values)
    assert not np.array_equal(a["power.usd_per_kWh"], c["power.usd_per_kWh"])
    lhs1 = sample(INPUTS, 64, 7, method="lhs")
    assert np.array_equal(lhs1["power.usd_per_kWh"], sample(INPUTS, 64, 7, method="lhs")["power.usd_per_kWh"])


def test_grouped_inputs_share_one_quantile_in_every_draw():
    s = sample(INPUTS, 1000, 3)
    chip, gpu = INPUTS[0], INPUTS[1]
    assert np.allclose(chip.cdf(s["chip.hbm.usd_per_GB"]), gpu.cdf(s["gpu.hbm.usd_per_GB"]), atol=2e-4)
    assert stats.spearmanr(s["chip.hbm.usd_per_GB"], s["gpu.hbm.usd_per_GB"]).statistic == pytest.approx(1.0)
    assert set(s.quantiles) == {"hbm", "power.usd_per_kWh", "chip.area_model_error"}   # fixed: no variable
    assert s["lifetime_years"].tolist() == [5.0] * 1000
    assert s.to_frame().shape == (1000, 5)


def test_draws_are_read_only():
    s = sample(INPUTS, 10, 0)
    with pytest.raises(ValueError):
        s["power.usd_per_kWh"][0] = 1.0


@pytest.mark.parametrize("method", ["random", "lhs"])
def test_a_stated_rank_correlation_is_reproduced(method):
    corr = {("hbm", "power.usd_per_kWh"): 0.6, ("power.usd_per_kWh", "chip.area_model_error"): -0.3}
    s = sample(INPUTS, 20000, 11, correlations=corr, method=method)
    rho = stats.spearmanr(s["gpu.hbm.usd_per_GB"], s["power.usd_per_kWh"]).statistic
    assert rho == pytest.approx(0.6, abs=0.02)
    assert stats.spearmanr(s["power.usd_per_kWh"], s["chip.area_model_error"]).statistic == pytest.approx(-0.3, abs=0.02)
    assert abs(stats.spearmanr(s["chip.hbm.usd_per_GB"], s["chip.area_model_error"]).statistic) < 0.03   # unstated: 0
    # an input stands for its group
    t = sample(INPUTS, 20000, 11, correlations={("chip.hbm.usd_per_GB", "power.usd_per_kWh"): 0.6}, method=method)
    assert stats.spearmanr(t["chip.hbm.usd_per_GB"], t["power.usd_per_kWh"]).statistic == pytest.approx(0.6, abs=0.02)


def test_lhs_stratifies_each_margin():
    s = sample(INPUTS, 100, 5, method="lhs")
    counts = np.bincount((s.quantiles["power.usd_per_kWh"] * 100).astype(int), minlength=100)
    assert counts.tolist() == [1] * 100


@pytest.mark.parametrize("kwargs, parameter, message", [
    ({"n": 0}, "n", "^n: must be in"),
    ({"n": -5}, "n", "^n: must be in"),
    ({"n": 2.5}, "n", "^n: must be an integer"),
    ({"seed": -1}, "seed", "^seed:"),
    ({"method": "sobol"}, "method", "^method: must be one of"),
    ({"correlations": {("hbm", "power.usd_per_kWh"): 0.9, ("hbm", "chip.area_model_error"): 0.9,
                       ("power.usd_per_kWh", "chip.area_model_error"): -0.9}}, "correlations", "not positive definite"),
    ({"correlations": {("hbm", "nope"): 0.5}}, "correlations", "'nope' is no input or group"),
    ({"correlations": {("hbm", "lifetime_years"): 0.5}}, "correlations", "'lifetime_years' is fixed"),
    ({"correlations": {("hbm", "gpu.hbm.usd_per_GB"): 0.5}}, "correlations", "one variable"),
    ({"correlations": {("hbm", "power.usd_per_kWh"): 1.5}}, "correlations", "must be <= 1"),
    ({"correlations": {("hbm", "power.usd_per_kWh"): math.nan}}, "correlations", "finite"),
    ({"correlations": {("hbm", "power.usd_per_kWh"): 0.5, ("power.usd_per_kWh", "hbm"): 0.2}}, "correlations",
     "two different"),
])
def test_bad_sampling_arguments_name_the_parameter(kwargs, parameter, message):
    args = {"n": 100, "seed": 1, **kwargs}
    with pytest.raises(UserError, match=message) as e:
        sample(INPUTS, args.pop("n"), args.pop("seed"), **args)
    assert e.value.parameter == parameter


def test_inputs_must_be_uncertain_and_unique():
    for bad in ([], "x", [INPUTS[0], INPUTS[0]], [1.0]):
        with pytest.raises(UserError) as e:
            sample(bad, 10, 0)
        assert e.value.parameter == "inputs"
    with pytest.raises(UserError, match="both an input's name and another input's group"):
        sample([Uncertain("hbm", 1, 2, 3), Uncertain("y", 1, 2, 3, group="hbm")], 10, 0)


# ---------------------------------------------------------------------------- propagation

def cost_model(v):
    """$/M tokens of two options: building pays HBM and power; buying pays a GPU's HBM."""
    build = 0.1 * v["chip.hbm.usd_per_GB"] * v["chip.area_model_error"] + 2.0 * v["power.usd_per_kWh"]
    buy = 0.12 * v["gpu.hbm.usd_per_GB"] + 1.5 * v["power.usd_per_kWh"] + 0.0 * v["lifetime_years"]
    return {"build_usd_per_Mtok": build, "buy_usd_per_Mtok": buy, "const": 1.0}


def test_propagate_summarises_each_output_and_reproduces_with_its_seed():
    mc = propagate(cost_model, INPUTS, 4000, 2)
    assert isinstance(mc, MonteCarlo) and mc.n == 4000
    s = mc.summary("build_usd_per_Mtok")
    a = mc["build_usd_per_Mtok"]
    assert s.mean == pytest.approx(a.mean()) and s.p5 <= s.p50 <= s.p95
    assert s.p5 == pytest.approx(np.quantile(a, 0.05), rel=1e-3) and mc.interval("build_usd_per_Mtok") == s.interval90
    assert mc.to_dict()["outputs"]["const"] == {"name": "const", "mean": 1.0, "std": 0.0, "p5": 1.0, "p50": 1.0,
                                                "p95": 1.0, "nonfinite": 0}
    assert list(mc.to_frame()["name"]) == ["build_usd_per_Mtok", "buy_usd_per_Mtok", "const"]
    again = propagate(cost_model, INPUTS, 4000, 2)
    assert all(np.array_equal(mc[k], again[k]) for k in mc.outputs)


def test_chunks_give_the_same_outputs_as_one_call(capsys):
    calls = []
    counted = lambda v: (calls.append(len(v["power.usd_per_kWh"])), cost_model(v))[1]
    whole = propagate(cost_model, INPUTS, 1000, 4)
    parts = propagate(counted, INPUTS, 1000, 4, chunk=300, progress=True)
    assert calls == [300, 300, 300, 100]
    assert all(np.array_equal(whole[k], parts[k]) for k in whole.outputs)
    assert "1000/1000" in capsys.readouterr().err                                       # the progress bar
    s = sobol(cost_model, INPUTS, "build_usd_per_Mtok", n_base=64, seed=0)
    assert sobol(cost_model, INPUTS, "build_usd_per_Mtok", n_base=64, seed=0, chunk=100).to_dict() == s.to_dict()
    with pytest.raises(UserError) as e:
        propagate(cost_model, INPUTS, 10, 0, chunk=0)
    assert e.value.parameter == "chunk"
    flaky = lambda v: {"a": v["power.usd_per_kWh"]} if len(v["power.usd_per_kWh"]) == 3 else {"b": v["power.usd_per_kWh"]}
    with pytest.raises(UserError, match="returned outputs") as e:
        propagate(flaky, INPUTS, 5, 0, chunk=3)
    assert e.value.parameter == "fn"


def test_probabilities_count_the_draws_where_an_event_holds():
    mc = propagate(cost_model, INPUTS, 4000, 2)
    build, buy = mc["build_usd_per_Mtok"], mc["buy_usd_per_Mtok"]
    p = mc.p_less("build_usd_per_Mtok", "buy_usd_per_Mtok")
    assert p == np.mean(build < buy) and 0 < p < 1
    assert mc.probability(lambda o: o["build_usd_per_Mtok"] < o["buy_usd_per_Mtok"]) == p
    assert mc.probability(lambda o: o["power.usd_per_kWh"] > 0.08) == pytest.approx(0.5, abs=0.03)  # inputs too
    with pytest.raises(UserError) as e:
        mc.probability(lambda o: True)
    assert e.value.parameter == "event"


def test_a_model_that_returns_the_wrong_shape_is_refused():
    for bad in (lambda v: {"y": np.ones(3)}, lambda v: [1.0], lambda v: {}):
        with pytest.raises(UserError) as e:
            propagate(bad, INPUTS, 10, 0)
        assert e.value.parameter == "fn"
    with pytest.raises(UserError) as e:
        propagate(cost_model, INPUTS, 10, 0)["nope"]
    assert e.value.parameter == "output"


# ---------------------------------------------------------------------------- sensitivity

def test_sobol_of_a_linear_model_matches_its_closed_form():
    """y = x1 + 2 x2 with independent U(0, 1): Var = 1/12 + 4/12, so S1 = ST = 1/5 and 4/5;
    a fixed input and an unused one get nothing."""
    inputs = [Uncertain("x1", 0, 0.5, 1, "uniform"), Uncertain("x2", 0, 0.5, 1, "uniform"),
              Uncertain("unused", 0, 0.5, 1, "uniform"), Uncertain("c", 3, 3, 3, "fixed")]
    r = sobol(lambda v: {"y": v["x1"] + 2 * v["x2"] + v["c"]}, inputs, "y", n_base=1024, seed=1)
    assert [s.name for s in r.indices] == ["x2", "x1", "unused"]
    s1_st = {s.name: (s.S1, s.ST) for s in r.indices}
    assert s1_st["x2"] == pytest.approx((0.8, 0.8), abs=0.02) and s1_st["x1"] == pytest.approx((0.2, 0.2), abs=0.02)
    assert abs(r["unused"].ST) < 0.01 and r.n_evaluations == 1024 * (3 + 2)
    assert [s.name for s in r.top(1)] == ["x2"] and len(r.to_frame()) == 3
    again = sobol(lambda v: {"y": v["x1"] + 2 * v["x2"] + v["c"]}, inputs, "y", n_base=1024, seed=1)
    assert again.to_dict() == r.to_dict()


def test_sobol_of_the_ishigami_function_matches_its_known_indices():
    a, b = 7.0, 0.1
    inputs = [Uncertain(f"x{i}", -math.pi, 0.0, math.pi, "uniform") for i in (1, 2, 3)]
    f = lambda v: {"y": np.sin(v["x1"]) + a * np.sin(v["x2"]) ** 2 + b * v["x3"] ** 4 * np.sin(v["x1"])}
    r = sobol(f, inputs, "y", n_base=4096, seed=3)
    # closed form (Ishigami & Homma 1990; Saltelli et al. 2008): S1 = 0.3139, 0.4424, 0; ST = 0.5576, 0.4424, 0.2437
    got = [(s.S1, s.ST) for s in sorted(r.indices, key=lambda s: s.name)]
    assert np.allclose(got, [(0.3139, 0.5576), (0.4424, 0.4424), (0.0, 0.2437)], atol=0.02)


def test_sobol_treats_a_group_as_one_variable():
    r = sobol(cost_model, INPUTS, "build_usd_per_Mtok", n_base=256, seed=0)
    assert {s.name for s in r.indices} == {"hbm", "power.usd_per_kWh", "chip.area_model_error"}
    assert r["hbm"].inputs == ("chip.hbm.usd_per_GB", "gpu.hbm.usd_per_GB")


def test_sobol_refuses_bad_arguments():
    for kwargs, parameter in (({"n_base": 1000}, "n_base"), ({"n_base": 0}, "n_base"), ({"seed": -2}, "seed")):
        with pytest.raises(UserError) as e:
            sobol(cost_model, INPUTS, "build_usd_per_Mtok", **kwargs)
        assert e.value.parameter == parameter
    with pytest.raises(UserError, match="no output 'nope'"):
        sobol(cost_model, INPUTS, "nope", n_base=8)
    with pytest.raises(UserError, match="not finite"):
        sobol(lambda v: {"y": np.where(v["x"] > 0.5, np.inf, v["x"])}, [Uncertain("x", 0, 0.5, 1, "uniform")], "y", n_base=8)
    assert sobol(cost_model, INPUTS, "const", n_base=8).indices[0].ST == 0.0          # nothing moves it


def test_tornado_orders_the_inputs_by_swing():
    inputs = [Uncertain("small", 0, 1, 2), Uncertain("big", 0, 1, 2), Uncertain("mid", 0, 1, 2),
              Uncertain("g_a", 0, 1, 2, group="g"), Uncertain("g_b", 1, 2, 3, group="g")]
    t = tornado(lambda v: {"y": v["small"] + 10 * v["big"] - 3 * v["mid"] + v["g_a"] + v["g_b"]}, inputs, "y")
    assert t.base == pytest.approx(1 + 10 - 3 + 1 + 2)
    assert [b.name for b in t.bars] == ["big", "mid", "g", "small"]          # swings 20, 6, 4, 2
    mid = t.bars[1]
    assert (mid.low, mid.high, mid.output_at_low, mid.output_at_high, mid.swing) == (0.0, 2.0, t.base + 3, t.base - 3, 6.0)
    assert t.bars[2].low is None and t.bars[2].swing == pytest.approx(4.0)            # the group moves together
    assert t.to_frame().shape[0] == 4


def test_break_even_of_a_linear_model_is_its_root():
    # margin = buy - build = 30 - 1.5 * hbm: zero at 20 USD/GB; building wins below it
    inputs = [Uncertain("hbm", 8, 15, 25, "pert", unit="USD/GB"), Uncertain("power", 1, 2, 3)]
    f = lambda v: {"margin": 30 - 1.5 * v["hbm"] + 0 * v["power"]}
    be = break_even(f, inputs, "hbm", "margin", label="HBM $/GB")
    assert be.value == pytest.approx(20.0, rel=1e-9) and be.in_range and be.crossings == 1
    assert be.text == "building wins unless HBM $/GB is above 20 USD/GB"
    # a threshold, and an output that rises
    be2 = break_even(lambda v: {"m": 2 * v["hbm"] - 10 + 0 * v["power"]}, inputs, "hbm", "m", threshold=14.0)
    assert be2.value == pytest.approx(12.0) and be2.text == "building wins unless hbm is below 12 USD/GB"
    assert break_even(f, inputs, "hbm", "margin", wins_when="below", who="buying").text == \
        "buying wins unless hbm is below 20 USD/GB"


def test_break_even_outside_the_range_says_so_and_a_wider_search_finds_it():
    inputs = [Uncertain("hbm", 8, 15, 25, unit="USD/GB")]
    f = lambda v: {"margin": 40 - 1.0 * v["hbm"]}
    none = break_even(f, inputs, "hbm", "margin")
    assert none.value is None and none.text == none.reason == "building wins for every hbm in [8, 25] USD/GB"
    wide = break_even(f, inputs, "hbm", "margin", search=(0, 100))
    assert wide.value == pytest.approx(40.0) and not wide.in_range
    lose = break_even(lambda v: {"margin": -1 - 0 * v["hbm"]}, inputs, "hbm", "margin")
    assert lose.reason == "building loses for every hbm in [8, 25] USD/GB"


def test_break_even_moves_the_group_with_the_input():
    inputs = [Uncertain("chip_hbm", 8, 15, 25, "uniform", group="hbm"), Uncertain("gpu_hbm", 10, 15, 20, "uniform", group="hbm")]
    # margin = gpu - chip + 2: with chip at x the gpu's HBM sits at the same quantile: 10 + (x - 8) * 10 / 17
    be = break_even(lambda v: {"m": v["gpu_hbm"] - v["chip_hbm"] + 2}, inputs, "chip_hbm", "m")
    x = be.value
    assert 10 + (x - 8) * 10 / 17 - x + 2 == pytest.approx(0.0, abs=1e-9)


def test_break_even_refuses_bad_arguments():
    inputs = [Uncertain("hbm", 8, 15, 25), Uncertain("years", 5, 5, 5, "fixed")]
    f = lambda v: {"m": v["hbm"] - 10 + 0 * v["years"]}
    for kwargs, parameter in (({"name": "nope"}, "name"), ({"name": "years"}, "name"), ({"threshold": math.nan}, "threshold"),
                              ({"search": (5, 1)}, "search"), ({"wins_when": "sideways"}, "wins_when"),
                              ({"output": "nope"}, "output")):
        args = {"name": "hbm", "output": "m", **kwargs}
        with pytest.raises(UserError) as e:
            break_even(f, inputs, args.pop("name"), args.pop("output"), **args)
        assert e.value.parameter == parameter


# ---------------------------------------------------------------------------- plots

def test_plots_return_figures_with_what_they_show():
    mc = propagate(cost_model, INPUTS, 500, 0)
    fig = plot_distributions(mc, ["build_usd_per_Mtok", "buy_usd_per_Mtok"], unit="USD per M tokens")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and len(ax.lines) == 4                     # two histograms, two 90 % intervals
    assert "90 % in" in ax.get_legend().get_texts()[0].get_text()
    assert len(plot_distributions(mc, ["buy_usd_per_Mtok"], kind="ecdf", log=True).axes[0].lines) == 3
    t = tornado(cost_model, INPUTS, "build_usd_per_Mtok")
    assert [x.get_text() for x in plot_tornado(t).axes[0].get_yticklabels()][-1] == t.bars[0].name
    s = sobol(cost_model, INPUTS, "build_usd_per_Mtok", n_base=64, seed=0)
    assert [x.get_text() for x in plot_sobol(s, top=2).axes[0].get_yticklabels()] == [s.indices[1].name, s.indices[0].name]
    with pytest.raises(UserError) as e:
        plot_distributions(mc, "build_usd_per_Mtok")
    assert e.value.parameter == "outputs"
