"""Total cost of ownership: the data, one device's lifetime cost, the deployment a budget
buys, and that arrays of draws give what scalar calls give."""
import json
import math

import numpy as np
import pytest

from systolab.errors import UserError
from systolab.models.cost import (
    Deployment,
    TcoBreakdown,
    deploy,
    gpu_per_device_tco,
    per_device_tco,
    system_for_gpu,
    tco_figures,
    tco_inputs,
    usd_per_million_tokens_tco,
    waterfall,
)
from systolab.models.cost.pricing import cost_inputs
from systolab.models.cost.tco import COMPONENTS, HOURS_PER_YEAR, SHAPES, TCO_FILE, figure_names
from systolab.models.gpu.specs import load_gpus
from systolab.models.specs import SpecError

H100 = {"system": "hgx-h100-8gpu", "accelerator_usd": 32500.0, "peak_power_W": 700.0, "avg_power_W": 450.0,
        "idle_power_W": 100.0, "utilization": 0.6}
CHIP = {"system": "custom-oam-8", "accelerator_usd": 4000.0, "peak_power_W": 500.0, "avg_power_W": 300.0,
        "idle_power_W": 60.0, "utilization": 0.6}


def value(name):
    return tco_figures()[name]["value"]


# --- data -----------------------------------------------------------------------------

def test_every_figure_has_a_source_a_shape_and_an_ordered_range():
    figures = tco_figures()
    assert len(figures) > 40
    for name, f in figures.items():
        assert f["source"].strip(), name
        assert f["low"] <= f["value"] <= f["high"], name
        assert f["shape"] in SHAPES, name
        assert f["confidence"], name
        if f["shape"] == "fixed":
            assert f["low"] == f["value"] == f["high"], name


def test_public_sources_beside_the_assumptions():
    sources = {n: f["source"] for n, f in tco_figures().items()}
    assert "Cushman" in sources["facility.usd_per_W"]
    assert "CBRE" in sources["facility.colo_usd_per_kW_month"]
    assert "DGX H100" in sources["system.hgx-h100-8gpu.power_overhead_W"]
    # electricity, PUE and lifetime are cost.yaml's figures, read from there (one copy)
    ops = cost_inputs().operations
    assert value("electricity.usd_per_kWh") == ops["usd_per_kWh"].value
    assert value("facility.pue") == ops["pue"].value
    assert value("lifetime.years") == ops["lifetime_years"].value
    assert "cost.yaml" in sources["facility.pue"]


def test_every_gpu_has_a_system_and_the_systems_name_real_fabrics():
    for gpu_id in load_gpus():
        assert system_for_gpu(gpu_id) in tco_inputs().systems
    assert system_for_gpu("h20") == system_for_gpu("h100-sxm") == "hgx-h100-8gpu"
    assert system_for_gpu("l40s") == "pcie-8gpu"
    with pytest.raises(UserError) as e:
        system_for_gpu("tpu-v5")
    assert e.value.parameter == "gpu"


def test_one_options_figures_are_those_its_calculation_reads():
    owned = tco_figures("hgx-h100-8gpu")
    assert "facility.usd_per_W" in owned and "facility.colo_usd_per_kW_month" not in owned
    colo = tco_figures("hgx-h100-8gpu", facility="colo")
    assert "facility.colo_usd_per_kW_month" in colo and "facility.usd_per_W" not in colo
    assert "system.custom-oam-8.board_usd" in tco_figures("custom-oam-8")
    assert "network.ethernet-400g.usd_per_device" in tco_figures("hgx-h100-8gpu", fabric="ethernet-400g")
    assert per_device_tco(**H100).figures == figure_names("hgx-h100-8gpu")


def test_a_bad_data_file_names_the_field(tmp_path):
    text = TCO_FILE.read_text()
    bad = tmp_path / "tco.yaml"
    bad.write_text(text.replace("{value: 11.7, low: 9.3", "{value: 11.7, low: 12.3"))
    with pytest.raises(SpecError, match="shared.facility.usd_per_W"):
        tco_inputs(str(bad))
    bad.write_text(text.replace("shape: triangular", "shape: gaussian", 1))
    with pytest.raises(SpecError, match="shape"):
        tco_inputs(str(bad))


# --- one device -------------------------------------------------------------------------

def test_components_sum_to_total_and_capex_plus_opex():
    for args in (H100, CHIP):
        b = per_device_tco(**args)
        assert sum(b.components().values()) == pytest.approx(b.total_usd, rel=1e-12)
        assert b.capex_usd + b.opex_usd == pytest.approx(b.total_usd, rel=1e-12)
        assert all(v > 0 for v in b.components().values())


def test_h100_breakdown_hand_computed():
    b = per_device_tco(**H100)
    life, pue, kwh = value("lifetime.years"), value("facility.pue"), value("electricity.usd_per_kWh")
    overhead_W = value("system.hgx-h100-8gpu.power_overhead_W") / 8 + value("network.infiniband-400g.power_W")
    assert b.it_power_W == pytest.approx(700 + overhead_W)
    assert b.facility_power_W == pytest.approx((700 + overhead_W) * pue)
    mean_W = 0.6 * 450 + 0.4 * 100 + overhead_W * value("power.overhead_avg_fraction")
    assert b.energy_usd == pytest.approx(mean_W / 1000 * pue * HOURS_PER_YEAR * life * kwh)
    assert b.system_usd == pytest.approx(value("system.hgx-h100-8gpu.server_usd") / 8)
    building = value("facility.usd_per_W") * b.it_power_W * life / value("facility.lifetime_years")
    racks = value("facility.rack_usd_per_kW") * b.it_power_W / 1000
    assert b.facility_usd == pytest.approx(building + racks)
    hardware = 32500 + b.system_usd + b.network_usd
    assert b.maintenance_usd == pytest.approx(value("maintenance.fraction_per_year") * hardware * life)


def test_custom_chip_pays_its_board_and_power_delivery():
    b = per_device_tco(**CHIP)
    expected = (value("system.custom-oam-8.server_usd") / 8 + value("system.custom-oam-8.scale_up_usd")
                + value("system.custom-oam-8.board_usd") + value("system.custom-oam-8.power_delivery_usd_per_W") * 500)
    assert b.system_usd == pytest.approx(expected)
    assert b.fabric == "ethernet-400g"


def test_colocation_rents_what_owning_builds():
    owned, colo = per_device_tco(**H100), per_device_tco(**H100, facility="colo")
    racks = value("facility.rack_usd_per_kW") * owned.it_power_W / 1000
    rent = value("facility.colo_usd_per_kW_month") * owned.it_power_W / 1000 * 12 * value("lifetime.years")
    assert colo.facility_usd == pytest.approx(rent + racks)
    assert colo.opex_usd - owned.opex_usd == pytest.approx(rent)
    # each mode ignores the other's figure
    assert per_device_tco(**H100, facility="colo", figures={"facility.usd_per_W": 99.0}).total_usd == colo.total_usd
    assert per_device_tco(**H100, figures={"facility.colo_usd_per_kW_month": 999.0}).total_usd == owned.total_usd


def test_more_utilization_costs_more_energy_and_idle_power_counts():
    low = per_device_tco(**{**H100, "utilization": 0.2})
    high = per_device_tco(**{**H100, "utilization": 0.9})
    assert high.energy_usd > low.energy_usd
    assert per_device_tco(**{**H100, "idle_power_W": 0.0}).energy_usd < per_device_tco(**H100).energy_usd


# --- arrays -----------------------------------------------------------------------------

def test_arrays_of_draws_equal_scalar_calls_elementwise():
    rng = np.random.default_rng(7)
    n = 16
    draws = {"facility.usd_per_W": rng.uniform(9.3, 16.5, n), "electricity.usd_per_kWh": rng.uniform(0.05, 0.15, n),
             "lifetime.years": rng.uniform(3, 6, n), "system.hgx-h100-8gpu.server_usd": rng.uniform(25e3, 70e3, n),
             "system.custom-oam-8.board_usd": rng.uniform(300, 1200, n)}   # another option's: ignored here
    price = rng.uniform(25e3, 40e3, n)
    vec = per_device_tco(**{**H100, "accelerator_usd": price}, figures=draws)
    assert isinstance(vec.total_usd, np.ndarray) and vec.total_usd.shape == (n,)
    budget = rng.uniform(1e8, 1e9, n)
    dep = deploy(budget_usd=budget, per_device=vec, fixed_usd=1e7, devices_per_replica=8, power_cap_MW=50.0)
    for i in range(n):
        one = per_device_tco(**{**H100, "accelerator_usd": float(price[i])},
                             figures={k: float(v[i]) for k, v in draws.items()})
        for k in (*COMPONENTS, "total_usd", "it_power_W", "facility_power_W"):
            assert getattr(vec, k)[i] == pytest.approx(getattr(one, k), rel=1e-12), k
        d1 = deploy(budget_usd=float(budget[i]), per_device=one, fixed_usd=1e7, devices_per_replica=8,
                    power_cap_MW=50.0)
        assert dep.units[i] == d1.units and dep.limited_by[i] == d1.limited_by
        assert dep.lines["unspent_usd"][i] == pytest.approx(d1.lines["unspent_usd"], rel=1e-9)


def test_scalar_inputs_give_floats_and_a_shared_axis_broadcasts():
    b = per_device_tco(**H100)
    assert isinstance(b.total_usd, float) and b.draws == 1
    grid = per_device_tco(**{**H100, "utilization": np.array([[0.2], [0.8]]),
                             "accelerator_usd": np.array([25e3, 30e3, 40e3])})
    assert grid.total_usd.shape == grid.lifetime_years.shape == (2, 3)
    assert grid.total_usd[1, 2] == pytest.approx(per_device_tco(**{**H100, "utilization": 0.8,
                                                                    "accelerator_usd": 40e3}).total_usd)


def test_ten_thousand_draws_are_one_vectorised_call():
    rng = np.random.default_rng(0)
    n = 10_000
    b = per_device_tco(**{**H100, "accelerator_usd": rng.uniform(25e3, 40e3, n)},
                       figures={"facility.pue": rng.uniform(1.1, 1.6, n)})
    d = deploy(budget_usd=7e9, per_device=b, devices_per_replica=8)
    assert d.units.shape == (n,) and d.units.dtype == np.int64
    spent = sum(d.lines.values())
    assert np.allclose(spent, 7e9, rtol=1e-12, atol=0)
    summary = d.to_dict()                                  # summaries, not 10,000-long lists
    assert summary["limited_by"] == {"budget": n} and type(next(iter(summary["limited_by"]))) is str
    json.dumps(summary)
    assert len(d.to_dict(full=True)["units"]) == n


# --- deployment -------------------------------------------------------------------------

def test_deployment_lines_sum_exactly_to_the_budget():
    for args, fixed, per_replica in ((H100, 0.0, 8), (CHIP, 3.0e8, 8), (H100, 0.0, 1)):
        d = deploy(budget_usd=7e9, per_device=per_device_tco(**args), fixed_usd=fixed, devices_per_replica=per_replica)
        assert math.fsum(d.lines.values()) == pytest.approx(7e9, rel=1e-13)
        assert set(d.lines) == {*COMPONENTS, "nre_usd", "unspent_usd"}
        assert d.lines["nre_usd"] == fixed
        assert d.units % per_replica == 0 and d.units > 0
        # whole replicas: what is left does not buy another one
        assert 0 <= d.lines["unspent_usd"] < d.per_device.total_usd * per_replica
        assert d.limited_by == "budget" and d.reason == ""


def test_an_exact_multiple_buys_every_replica():
    b = per_device_tco(**H100)
    d = deploy(budget_usd=b.total_usd * 24, per_device=b, devices_per_replica=8)
    assert d.units == 24 and d.lines["unspent_usd"] == pytest.approx(0, abs=1e-6)


def test_nre_is_spread_over_the_units_bought():
    b = per_device_tco(**CHIP)
    small = deploy(budget_usd=1e9, per_device=b, fixed_usd=3e8)
    large = deploy(budget_usd=7e9, per_device=b, fixed_usd=3e8)
    assert large.units > small.units
    assert large.nre_per_unit_usd < small.nre_per_unit_usd
    for d in (small, large):
        assert d.nre_per_unit_usd * d.units == pytest.approx(3e8)
        assert d.total_per_unit_usd == pytest.approx(b.total_usd + 3e8 / d.units)


def test_the_power_cap_binds():
    b = per_device_tco(**H100)
    free = deploy(budget_usd=7e9, per_device=b, devices_per_replica=8)
    capped = deploy(budget_usd=7e9, per_device=b, devices_per_replica=8, power_cap_MW=20.0)
    assert capped.limited_by == "power" and free.limited_by == "budget"
    assert capped.units < free.units
    assert capped.facility_power_MW <= 20.0 < capped.facility_power_MW + 8 * b.facility_power_W / 1e6
    assert capped.units == 8 * math.floor(20e6 / (8 * b.facility_power_W))
    assert math.fsum(capped.lines.values()) == pytest.approx(7e9, rel=1e-13)
    assert deploy(budget_usd=7e9, per_device=b, power_cap_MW=1e6).limited_by == "budget"


def test_zero_affordable_units_is_an_answer_with_a_reason():
    b = per_device_tco(**H100)
    d = deploy(budget_usd=3e8 + 1000.0, per_device=b, fixed_usd=3e8)
    assert d.units == 0 and "no units" in d.reason and math.isnan(d.nre_per_unit_usd)
    assert math.fsum(d.lines.values()) == pytest.approx(3e8 + 1000.0)
    p = deploy(budget_usd=1e9, per_device=b, devices_per_replica=8, power_cap_MW=0.001)
    assert p.units == 0 and p.limited_by == "power" and "power cap" in p.reason


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"budget_usd": 0.0}, "budget_usd"),
    ({"budget_usd": -1e9}, "budget_usd"),
    ({"budget_usd": float("nan")}, "budget_usd"),
    ({"budget_usd": float("inf")}, "budget_usd"),
    ({"budget_usd": np.array([1e9, np.nan])}, "budget_usd"),
    ({"budget_usd": 1e9, "fixed_usd": 2e9}, "fixed_usd"),
    ({"budget_usd": 1e9, "fixed_usd": -1.0}, "fixed_usd"),
    ({"budget_usd": 1e9, "power_cap_MW": 0.0}, "power_cap_MW"),
    ({"budget_usd": 1e9, "power_cap_MW": -5.0}, "power_cap_MW"),
    ({"budget_usd": 1e9, "devices_per_replica": 0}, "devices_per_replica"),
    ({"budget_usd": np.ones(3) * 1e9, "fixed_usd": np.ones(4)}, "fixed_usd"),
])
def test_bad_deployment_inputs_name_their_parameter(kwargs, parameter):
    with pytest.raises(UserError) as e:
        deploy(per_device=per_device_tco(**H100), **kwargs)
    assert e.value.parameter == parameter
    assert str(e.value).startswith(parameter)


@pytest.mark.parametrize(("change", "parameter"), [
    ({"system": "dgx-z9"}, "system"),
    ({"fabric": "carrier-pigeon"}, "fabric"),
    ({"facility": "tent"}, "facility"),
    ({"utilization": 1.5}, "utilization"),
    ({"utilization": np.array([0.5, -0.1])}, "utilization"),
    ({"accelerator_usd": -1.0}, "accelerator_usd"),
    ({"accelerator_usd": "cheap"}, "accelerator_usd"),
    ({"peak_power_W": 0.0}, "peak_power_W"),
    ({"avg_power_W": 900.0}, "avg_power_W"),
    ({"idle_power_W": float("nan")}, "idle_power_W"),
    ({"figures": {"facility.usd_per_Watt": 10.0}}, "figures"),
    ({"figures": {"facility.pue": 0.9}}, "figures['facility.pue']"),
    ({"figures": {"lifetime.years": np.array([4.0, 0.0])}}, "figures['lifetime.years']"),
])
def test_bad_device_inputs_name_their_parameter(change, parameter):
    with pytest.raises(UserError) as e:
        per_device_tco(**{**H100, **change})
    assert e.value.parameter == parameter


# --- outputs ----------------------------------------------------------------------------

def test_usd_per_million_tokens_is_lifetime_cost_over_lifetime_tokens():
    b = per_device_tco(**H100)
    tokens = 1000 * 0.6 * value("lifetime.years") * HOURS_PER_YEAR * 3600
    assert usd_per_million_tokens_tco(b, tokens_per_s=1000) == pytest.approx(b.total_usd / tokens * 1e6)
    with_nre = usd_per_million_tokens_tco(b, tokens_per_s=1000, nre_per_unit_usd=5000.0)
    assert with_nre == pytest.approx((b.total_usd + 5000) / tokens * 1e6)
    rates = usd_per_million_tokens_tco(b, tokens_per_s=np.array([500.0, 1000.0]))
    assert rates[0] == pytest.approx(2 * rates[1])
    assert usd_per_million_tokens_tco(b, tokens_per_s=1000, utilization=0.0) == math.inf
    with pytest.raises(UserError) as e:
        usd_per_million_tokens_tco(b, tokens_per_s=0)
    assert e.value.parameter == "tokens_per_s"


def test_results_serialise_and_tabulate():
    b = per_device_tco(**H100)
    d = deploy(budget_usd=7e9, per_device=b, devices_per_replica=8)
    out = json.loads(json.dumps(d.to_dict()))
    assert out["units"] == d.units and out["per_device"]["total_usd"] == pytest.approx(b.total_usd)
    frame = d.to_frame()
    assert list(frame["item"])[-1] == "budget_usd" and frame["share"].iloc[-1] == 1.0
    assert frame["usd"].iloc[:-1].sum() == pytest.approx(7e9)
    bf = b.to_frame()
    assert bf.set_index("item").loc["total_usd", "usd"] == pytest.approx(b.total_usd)
    arr = per_device_tco(**{**H100, "utilization": np.linspace(0.1, 0.9, 9)}).to_dict()
    assert set(arr["energy_usd"]) == {"n", "mean", "p5", "p50", "p95"}


def test_waterfall_stacks_each_option_to_its_total():
    gpu, chip = per_device_tco(**H100), per_device_tco(**CHIP)
    fig = waterfall({"h100-sxm": gpu, "chip": chip})
    ax = fig.axes[0]
    ends = {}
    for patch in ax.patches:
        y = round(patch.get_y() + patch.get_height() / 2)
        ends[y] = max(ends.get(y, 0.0), patch.get_x() + patch.get_width())
    assert ends[0] == pytest.approx(gpu.total_usd) and ends[1] == pytest.approx(chip.total_usd)
    deps = {"h100": deploy(budget_usd=7e9, per_device=gpu, devices_per_replica=8)}
    assert waterfall(deps).axes[0].get_xlabel().startswith("million USD")
    with pytest.raises(UserError) as e:
        waterfall({"a": gpu, "b": deps["h100"]})
    assert e.value.parameter == "options"
    assert isinstance(deps["h100"], Deployment) and isinstance(gpu, TcoBreakdown)


def test_a_gpu_by_id_comes_in_its_system_at_its_tdp_and_street_price():
    gpu = load_gpus()["h100-sxm"]
    b = gpu_per_device_tco("h100-sxm", avg_power_W=450.0, idle_power_W=100.0, utilization=0.6)
    assert b == per_device_tco(**{**H100, "accelerator_usd": gpu.price.mid_usd, "peak_power_W": gpu.tdp_W})
    assert gpu_per_device_tco("h100-sxm", accelerator_usd=1.0, avg_power_W=450.0, idle_power_W=100.0,
                              utilization=0.6).accelerator_usd == 1.0
    with pytest.raises(UserError) as e:            # no public price in gpus.yaml
        gpu_per_device_tco("l20", avg_power_W=200.0, idle_power_W=30.0, utilization=0.5)
    assert e.value.parameter == "accelerator_usd"
    with pytest.raises(UserError) as e:
        gpu_per_device_tco("h999", avg_power_W=200.0, idle_power_W=30.0, utilization=0.5)
    assert e.value.parameter == "gpu"


def test_a_deployment_needs_a_device_that_costs_something_and_a_sane_budget():
    free = per_device_tco(**{**H100, "accelerator_usd": 0.0}, figures={n: 0.0 for n in (
        "system.hgx-h100-8gpu.server_usd", "network.infiniband-400g.usd_per_device", "facility.usd_per_W",
        "facility.rack_usd_per_kW", "electricity.usd_per_kWh", "operations.staff_per_MW")})
    assert free.total_usd == 0.0
    with pytest.raises(UserError) as e:
        deploy(budget_usd=1e9, per_device=free)
    assert e.value.parameter == "per_device"
    with pytest.raises(UserError) as e:
        deploy(budget_usd=1e300, per_device=per_device_tco(**H100))
    assert e.value.parameter == "budget_usd"
