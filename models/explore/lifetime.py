"""Lifetime cost per million tokens of a serving design, as ``systolab fleet`` and
``systolab decide`` count it, for an exploration's objective.

A design's serving point is priced in two steps, so that the store's results do not
depend on the budget (changing it re-evaluates nothing):

1. when the point is evaluated, :func:`lifetime_record` keeps one device's lifetime cost
   (:func:`~systolab.models.serving.model.lifetime_cost`: the device at its value, its
   share of the server, network and facility, energy at the serving point's power,
   maintenance and operations, at the cost model's utilisation) and the chip's bottom-up
   NRE (:func:`~systolab.models.cost.schedule.nre_breakdown`; none for a GPU);
2. when the points are read, :func:`lifetime_metrics` buys whole deployments with the
   space's budget (:func:`~systolab.models.cost.tco.deploy` with the NRE as its fixed
   cost, as :func:`~systolab.models.serving.fleet.fleet` does) and divides one device's
   lifetime cost plus its share of the NRE by the output tokens it serves over its
   lifetime: ``usd_per_million_tokens_tco``, USD per million output tokens.

The record also holds the same cost with the decision's measured model errors at their
modes (``models/data/decision.yaml`` ``model_errors``: the chip's die area and power are
under-predicted, modes 2.4 and 1.7): the die priced at the corrected area, the device
drawing the corrected power. A space opts into it with ``corrected: true``; only the
cost changes (the serving point, the die area and the power the constraints judge stay
the model's).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import UserError
from ..cost.pricing import cost_inputs, unit_cost
from ..cost.tco import TcoBreakdown, custom_system, deploy, per_device_tco, usd_per_million_tokens_tco
from ..serving.model import ChipServing, GpuServing, ServingResult, device_prices, get_device, lifetime_cost
from ..silicon.area import chip_area
from ..specs import DATA_DIR, load_yaml

#: The decision's model errors applied by ``corrected: true`` (factors on the model's value).
CORRECTED_ERRORS = ("chip_area", "chip_power")
#: What :func:`lifetime_metrics` adds to a serving workload's metrics.
LIFETIME_METRICS = ("usd_per_million_tokens_tco", "lifetime_cost_per_device_usd", "tco_units")


def model_error_modes() -> dict[str, float]:
    """The modes of the decision's chip area and power errors (factors, ``models/data/decision.yaml``)."""
    errors = load_yaml(DATA_DIR / "decision.yaml")["model_errors"]
    return {e: float(errors[e]["value"]) for e in CORRECTED_ERRORS}


def _corrected_cost(dev: ChipServing, r: ServingResult) -> TcoBreakdown | None:
    """One chip's lifetime cost with its area and power corrected by the decision's modal
    errors (as ``systolab decide`` does at the modes); None when no corrected die fits a wafer."""
    err = model_error_modes()
    chip = dev.chip
    try:
        part = unit_cost(die_area_mm2=chip_area(chip).die_mm2 * err["chip_area"], node=chip.node,
                         memory_GB=chip.dram.GB, memory_kind=chip.dram.kind)
    except UserError:
        return None
    peak_W = dev.power_W * err["chip_power"]
    serving_W = min((r.power_W if r.power_W is not None else dev.power_W) * err["chip_power"], peak_W)
    idle_W = min((r.idle_power_W if r.idle_power_W is not None else serving_W) * err["chip_power"], peak_W)
    return per_device_tco(system=custom_system(r.devices), accelerator_usd=part.usd, peak_power_W=peak_W,
                          avg_power_W=serving_W, idle_power_W=idle_W,
                          utilization=cost_inputs().operations["utilization"].value)


def lifetime_record(device: Any, r: ServingResult) -> dict | None:
    """What :func:`lifetime_metrics` needs of ``device`` (a chip or a GPU id, as the serving
    model takes it) serving ``r``: ``per_device`` (the lifetime cost's breakdown, USD),
    ``corrected`` (the same with the decision's modal errors: a chip's area and power; a
    GPU's errors have mode 1, so its cost; None when no corrected die fits a wafer),
    ``nre_usd`` and ``devices`` (per replica). None for a device without a price."""
    dev = get_device(device, r.dtype)
    if isinstance(dev, GpuServing) and dev.price_usd is None:
        return None
    prices, nre = device_prices(dev)
    per_device = lifetime_cost(dev, devices=r.devices, power_W=r.power_W, idle_power_W=r.idle_power_W,
                               accelerator_usd=prices[0])
    # the decision's GPU errors have mode 1: a GPU's corrected cost is its cost
    corrected = _corrected_cost(dev, r) if isinstance(dev, ChipServing) else per_device
    return {"per_device": per_device.to_dict(), "corrected": None if corrected is None else corrected.to_dict(),
            "nre_usd": float(nre), "devices": r.devices}


def _breakdown(d: dict) -> TcoBreakdown:
    """A stored breakdown (:meth:`TcoBreakdown.to_dict` of floats) as the dataclass again."""
    fields: dict[str, Any] = {f.name: d[f.name] for f in dataclasses.fields(TcoBreakdown)}
    return TcoBreakdown(**{**fields, "figures": tuple(d["figures"])})


def lifetime_metrics(record: dict | None, tokens_per_s: float | None, budget_usd: float, *,
                     corrected: bool = False) -> dict:
    """The :data:`LIFETIME_METRICS` of a serving point: ``tco_units`` (the devices
    ``budget_usd`` buys as whole replicas at their lifetime cost after the NRE),
    ``lifetime_cost_per_device_usd`` (USD) and ``usd_per_million_tokens_tco`` (one device's
    lifetime cost plus its share of the NRE over the output tokens it serves at
    ``tokens_per_s`` and the cost model's utilisation, USD per million tokens); all None
    without a record (no price, or a point that misses its targets), a rate, or (for
    ``corrected``) a corrected cost, and the rate None when the budget buys no unit."""
    none = dict.fromkeys(LIFETIME_METRICS)
    if record is None or not tokens_per_s:
        return none
    stored = record["corrected" if corrected else "per_device"]
    if stored is None:
        return none
    per_device = _breakdown(stored)
    fixed = min(record["nre_usd"], budget_usd)
    dep = deploy(budget_usd=budget_usd, per_device=per_device, fixed_usd=fixed, devices_per_replica=record["devices"])
    units = int(dep.units)
    usd = (float(usd_per_million_tokens_tco(per_device, tokens_per_s=tokens_per_s,
                                            nre_per_unit_usd=float(dep.nre_per_unit_usd)))
           if units > 0 else None)
    return {"usd_per_million_tokens_tco": usd, "lifetime_cost_per_device_usd": float(per_device.total_usd),
            "tco_units": units}


__all__ = ["CORRECTED_ERRORS", "LIFETIME_METRICS", "lifetime_metrics", "lifetime_record", "model_error_modes"]
