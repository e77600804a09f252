"""The decision as one vectorised function of its uncertain inputs.

For every weighed option and every draw of the inputs (numpy arrays, one value per draw):

1. **One device's lifetime cost** (:func:`~systolab.models.cost.tco.per_device_tco`): the
   GPU at its street price in its HGX or PCIe system, or the chip at its manufacturing cost
   (die from wafer cost, yield and dies per wafer at its modelled area; memory; package) on
   its board in its server; network, facility, energy at its power by phase, maintenance
   and operations.
2. **The deployment the budget buys** (:func:`~systolab.models.cost.tco.deploy`): whole
   replicas of ``tp`` devices after the chip's NRE (drawn bottom-up by
   :func:`~systolab.models.cost.schedule.evaluate_silicon`), within the power cap.
3. **What it delivers**: the fleet's output tokens/s within the service targets (the
   goodput point's rate per device x units, times the serving model's measured error), at
   the utilisation drawn; over the device lifetime (``usd_per_Mtok``) and over the horizon
   from the decision date (``tokens_per_usd_h``): a GPU fleet goes live at once and improves
   with the incumbent's software; the chip goes live after its time to silicon (a drawn
   respin included). A fleet retires at the end of its lifetime.

Outputs are keyed ``<measure>.<option>``; ``advantage.<gpu>`` is log(chip's tokens per $
over the horizon / the GPU's): building beats buying that GPU where it is > 0.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..chip.config import ChipConfig
from ..cost.pricing import cost_inputs
from ..cost.schedule import evaluate_silicon, schedule_inputs, silicon_inputs
from ..cost.tco import HOURS_PER_YEAR, Deployment, custom_system, deploy, per_device_tco, system_for_gpu, tco_figures
from ..cost.timeline import tokens_over_horizon
from ..gpu.specs import get_gpu
from ..silicon.area import chip_area
from ..silicon.memory import get_memory_kind
from ..specs import DATA_DIR, load_yaml
from .served import Served
from .uncertainty import Uncertain

DECISION_FILE = DATA_DIR / "decision.yaml"

Model = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


def decision_data() -> dict[str, Any]:
    """``data/decision.yaml``: defaults, service targets and model-error factors."""
    return load_yaml(DECISION_FILE)


@cache
def _tco_names() -> frozenset[str]:
    return frozenset(tco_figures())


def _tco_draws(v: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The draws the TCO reads (it refuses names it does not know)."""
    names = _tco_names()
    return {k: x for k, x in v.items() if k in names}


def chip_system(served: Served) -> str:
    """The server the chip goes in (:func:`~systolab.models.cost.tco.custom_system`)."""
    return custom_system(served.devices_per_replica)


@dataclass(frozen=True)
class Setting:
    """What the decision holds fixed: the budget (USD), the horizon (years), the power
    cap (MW of facility power, or None) and the options as served."""

    budget_usd: float
    horizon_years: float
    power_cap_MW: float | None
    gpus: tuple[Served, ...]
    chip: Served | None
    chip_config: ChipConfig | None


def _ranged(name: str, low: float, mode: float, high: float, source: str, unit: str = "",
            shape: str = "triangular") -> Uncertain:
    """An input drawn from [low, high] (fixed at ``mode`` where the source gives no range)."""
    return Uncertain(name, low, mode, high, shape if low < high else "fixed", source, unit)


def _row(name: str, d: Mapping[str, Any], *, kind: str = "input", unit: str = "") -> Uncertain:
    row = dict(d)
    row.setdefault("unit", unit)
    return Uncertain.from_row(name, row, kind=kind)


def decision_inputs(s: Setting) -> list[Uncertain]:
    """Every uncertain input of :func:`decision_model` for ``s``, each with its source:
    TCO figures (one electricity price, PUE and lifetime for every option), GPU prices,
    the chip's wafer, yield, memory and package costs, its schedule and NRE, the
    incumbent's software gain and the models' measured errors."""
    out: dict[str, Uncertain] = {}
    systems = [system_for_gpu(g.option.name) for g in s.gpus] + ([chip_system(s.chip)] if s.chip else [])
    for system in dict.fromkeys(systems):
        for name, row in tco_figures(system).items():
            out.setdefault(name, _row(name, row))
    ops = cost_inputs().operations["utilization"]
    out["operations.utilization"] = _ranged("operations.utilization", ops.low, ops.value, ops.high, ops.source,
                                            "fraction")
    for g in s.gpus:
        p = get_gpu(g.option.name).price
        assert p is not None                    # options without a price are not weighed
        out[f"gpu.{g.option.name}.price_usd"] = _ranged(f"gpu.{g.option.name}.price_usd", p.low_usd, p.mid_usd,
                                                        p.high_usd, f"{p.source} ({p.confidence})", "USD")
    data = decision_data()
    errors = data["model_errors"]
    gain = schedule_inputs().incumbent["software_gain_per_year"]
    out["incumbent.software_gain_per_year"] = _ranged("incumbent.software_gain_per_year", gain.low, gain.value,
                                                      gain.high, gain.source, "fraction/year", gain.shape)
    if s.gpus:
        for e in ("gpu_serving", "gpu_power"):
            if "low" in errors[e]:
                out[f"error.{e}"] = _row(f"error.{e}", errors[e], kind="model_error", unit="factor")
    if s.chip is not None and s.chip_config is not None:
        out.update(_chip_inputs(s.chip_config, errors))
    return list(out.values())


def _chip_inputs(chip: ChipConfig, errors: Mapping[str, Any]) -> dict[str, Uncertain]:
    out: dict[str, Uncertain] = {}
    for key, fig in silicon_inputs(chip.node).items():
        name = "chip.wafer_cost_usd" if key == "wafer_cost_usd" else f"schedule.{key}"
        if key == "respin":          # a drawn respin: one when the uniform draw falls under the probability
            out["schedule.respin_draw"] = Uncertain("schedule.respin_draw", 0.0, 0.5, 1.0, "uniform",
                                                    f"respin with probability {fig.value:g}: {fig.source}", "quantile")
            continue
        out[name] = _ranged(name, fig.low, fig.value, fig.high, fig.source, shape=fig.shape)
    node = cost_inputs().nodes[chip.node]
    d0 = node["defect_density_per_cm2"]
    out["chip.defect_density_per_cm2"] = _ranged("chip.defect_density_per_cm2", d0.low, d0.value, d0.high,
                                                 d0.source, "per cm2")
    mem = get_memory_kind(chip.dram.kind).usd_per_GB
    out[f"memory.{chip.dram.kind}.usd_per_GB"] = _ranged(f"memory.{chip.dram.kind}.usd_per_GB", mem.low,
                                                         mem.value, mem.high, mem.source, "USD/GB")
    pkg_name = "hbm_2p5d" if get_memory_kind(chip.dram.kind).in_package else "organic"
    pkg = cost_inputs().packaging_usd[pkg_name]
    out["chip.package_usd"] = _ranged("chip.package_usd", pkg.low, pkg.value, pkg.high, pkg.source, "USD")
    for e in ("chip_serving", "chip_power", "chip_area", "chip_software_gain_per_year"):
        kind = "input" if e == "chip_software_gain_per_year" else "model_error"
        out[f"error.{e}"] = _row(f"error.{e}", errors[e], kind=kind)
    return out


def die_cost_usd(area_mm2: Any, wafer_cost_usd: Any, defect_density_per_cm2: Any) -> np.ndarray:
    """Cost of one good die, USD, vectorised: wafer cost / (gross dies per wafer x
    negative-binomial yield), as :func:`~systolab.models.cost.pricing.die_cost` computes it
    for one value (same wafer, edge exclusion and clustering; tests check they agree)."""
    ci = cost_inputs()
    a = np.asarray(area_mm2, dtype=float)
    d = ci.wafer_diameter_mm - 2 * ci.edge_exclusion_mm
    gross = np.floor(math.pi * (d / 2) ** 2 / a - math.pi * d / np.sqrt(2 * a))
    good = np.maximum(gross, 0) * (1 + a / 100 * np.asarray(defect_density_per_cm2) / ci.alpha) ** -ci.alpha
    with np.errstate(divide="ignore"):
        return np.where(good > 0, np.asarray(wafer_cost_usd) / good, np.inf)


def _spend(dep: Any) -> np.ndarray:
    return np.asarray(dep.budget_usd) - np.asarray(dep.lines["unspent_usd"])


def _measures(name: str, dep: Any, rate: np.ndarray, util: np.ndarray, delay_years: Any, gain: Any,
              horizon_years: float) -> dict[str, np.ndarray]:
    """An option's outputs from its deployment and its rate per device (tokens/s)."""
    units = np.asarray(dep.units, dtype=float)
    fleet = units * rate                                    # tokens/s while serving
    life = np.asarray(dep.per_device.lifetime_years, dtype=float)
    lifetime_tokens = fleet * util * life * HOURS_PER_YEAR * 3600     # the TCO's year, as its energy
    with np.errstate(divide="ignore", invalid="ignore"):
        per_m = np.where(lifetime_tokens > 0, _spend(dep) / lifetime_tokens * 1e6, np.inf)
    # the fleet runs from its go-live until it retires or the horizon ends
    end = np.minimum(horizon_years, np.asarray(delay_years) + life)
    horizon_tokens = tokens_over_horizon(fleet * util, delay_years, np.maximum(end, 1e-9), gain)
    return {f"units.{name}": units, f"fleet_tokens_per_s.{name}": fleet, f"usd_per_Mtok.{name}": per_m,
            f"tokens_per_usd_h.{name}": np.asarray(horizon_tokens) / np.asarray(dep.budget_usd),
            f"facility_MW.{name}": np.asarray(dep.facility_power_MW, dtype=float),
            f"spent_usd.{name}": _spend(dep), f"delay_years.{name}": np.broadcast_to(delay_years, units.shape) * 1.0}


def _gpu_measures(s: Setting, g: Served, v: Mapping[str, np.ndarray], n: int) -> tuple[dict[str, np.ndarray], Deployment]:
    name = g.option.name
    err_rate = v.get("error.gpu_serving", 1.0)
    err_power = v.get("error.gpu_power", 1.0)
    tdp = get_gpu(name).tdp_W
    util = v["operations.utilization"]
    dev = per_device_tco(system=system_for_gpu(name), accelerator_usd=v[f"gpu.{name}.price_usd"], peak_power_W=tdp,
                         avg_power_W=np.minimum(g.power_W * np.asarray(err_power), tdp),
                         idle_power_W=np.minimum(g.idle_power_W * np.asarray(err_power), tdp), utilization=util,
                         figures=_tco_draws(v))
    dep = deploy(budget_usd=np.full(n, s.budget_usd), per_device=dev, devices_per_replica=g.devices_per_replica,
                 power_cap_MW=s.power_cap_MW)
    return _measures(name, dep, g.tokens_per_s * np.asarray(err_rate) * np.ones(n), util, 0.0,
                     v["incumbent.software_gain_per_year"], s.horizon_years), dep


def _chip_measures(s: Setting, c: Served, v: Mapping[str, np.ndarray], n: int) -> tuple[dict[str, np.ndarray], Deployment]:
    assert s.chip_config is not None
    chip = s.chip_config
    name = c.option.name
    area = chip_area(chip).die_mm2 * v["error.chip_area"]
    manufacturing = (die_cost_usd(area, v["chip.wafer_cost_usd"], v["chip.defect_density_per_cm2"])
                     + chip.dram.GB * v[f"memory.{chip.dram.kind}.usd_per_GB"] + v["chip.package_usd"])
    p = silicon_inputs(chip.node)["respin"].value
    sil = evaluate_silicon({**{k.removeprefix("schedule."): x for k, x in v.items()
                               if k.startswith("schedule.") and k != "schedule.respin_draw"},
                            "respin": (v["schedule.respin_draw"] < p).astype(float),
                            "wafer_cost_usd": v["chip.wafer_cost_usd"]})
    err_p = v["error.chip_power"]
    peak = c.tdp_W * err_p
    util = v["operations.utilization"]
    dev = per_device_tco(system=chip_system(c), accelerator_usd=manufacturing, peak_power_W=peak,
                         avg_power_W=np.minimum(c.power_W * err_p, peak),
                         idle_power_W=np.minimum(c.idle_power_W * err_p, peak), utilization=util,
                         figures=_tco_draws(v))
    budget = np.full(n, s.budget_usd)
    nre = np.asarray(sil["nre_total_usd"], dtype=float) * np.ones(n)
    dep = deploy(budget_usd=budget, per_device=dev, fixed_usd=np.minimum(nre, budget),
                 devices_per_replica=c.devices_per_replica, power_cap_MW=s.power_cap_MW)
    out = _measures(name, dep, c.tokens_per_s * v["error.chip_serving"] * np.ones(n), util,
                    np.asarray(sil["months_total"], dtype=float) / 12, v["error.chip_software_gain_per_year"],
                    s.horizon_years)
    out[f"nre_usd.{name}"] = nre
    out[f"manufacturing_usd.{name}"] = np.asarray(manufacturing, dtype=float) * np.ones(n)
    return out, dep


def decision_model(s: Setting) -> Model:
    """``fn({input: draws}) -> {output: draws}`` for :mod:`~systolab.models.decision.uncertainty`
    (see the module for the outputs)."""

    def fn(v: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(v.values())))
        out: dict[str, np.ndarray] = {}
        for g in s.gpus:
            out.update(_gpu_measures(s, g, v, n)[0])
        if s.chip is not None:
            out.update(_chip_measures(s, s.chip, v, n)[0])
            mine = out[f"tokens_per_usd_h.{s.chip.option.name}"]
            for g in s.gpus:
                theirs = out[f"tokens_per_usd_h.{g.option.name}"]
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[f"advantage.{g.option.name}"] = np.log(np.maximum(mine, 1e-300) / np.maximum(theirs, 1e-300))
        return out

    return fn


def deployments_at_mode(s: Setting, inputs: Sequence[Uncertain]) -> dict[str, Deployment]:
    """Each weighed option's deployment with every input at its mode (one draw): the TCO
    waterfall and budget lines of the report."""
    v = {i.name: np.array([i.mode]) for i in inputs}
    out = {g.option.name: _gpu_measures(s, g, v, 1)[1] for g in s.gpus}
    if s.chip is not None:
        out[s.chip.option.name] = _chip_measures(s, s.chip, v, 1)[1]
    return out
