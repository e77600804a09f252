"""Cost: dies per wafer, yield, die and unit cost, NRE, GPU prices, fleets and $/token.

Inputs and their bases are in ``data/cost.yaml``. Uncertain inputs carry low/high bounds;
every estimate is returned with the range that the bounds imply (all favourable vs all
unfavourable inputs, since each cost is monotone in each input), so the uncertainty is
shown rather than hidden.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ...checks import check_chip, check_gpu_spec, check_int, check_nonnegative, check_positive
from ...errors import UserError
from ..chip.config import ChipConfig
from ..gpu.model import estimate_workload
from ..gpu.specs import GpuSpec, get_gpu, load_gpus
from ..silicon.area import chip_area
from ..silicon.memory import get_memory_kind, memory_kinds
from ..specs import DATA_DIR, SpecError, load_yaml, need

COST_FILE = DATA_DIR / "cost.yaml"
CASES = ("low", "value", "high")


@dataclass(frozen=True)
class Figure:
    """One cost input of ``data/cost.yaml``: its value and low/high range (units in the
    field's name there), its source and confidence."""

    value: float
    low: float
    high: float
    source: str
    confidence: str

    def at(self, case: str, *, higher_is_costlier: bool = True) -> float:
        if case == "value":
            return self.value
        pick_low = (case == "low") == higher_is_costlier
        return self.low if pick_low else self.high


@dataclass(frozen=True)
class Estimate:
    """A cost with its uncertainty range and where its inputs came from."""

    usd: float
    low_usd: float
    high_usd: float
    breakdown: dict[str, float] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"usd": self.usd, "low_usd": self.low_usd, "high_usd": self.high_usd,
                "breakdown": self.breakdown, "sources": list(self.sources)}


def _figure(path: Path, where: str, d: Any) -> Figure:
    num = (int, float)
    f = Figure(need(path, where, d, "value", num), need(path, where, d, "low", num), need(path, where, d, "high", num),
               need(path, where, d, "source", str), need(path, where, d, "confidence", str))
    if not f.low <= f.value <= f.high:
        raise SpecError(path, where, f"needs low <= value <= high, not {f.low}, {f.value}, {f.high}")
    return f


@dataclass(frozen=True)
class CostInputs:
    wafer_diameter_mm: float
    edge_exclusion_mm: float
    nodes: dict[str, dict[str, Figure]]
    alpha: float
    memory_usd_per_GB: dict[str, Figure]       # by memory kind, from data/memory_kinds.yaml
    packaging_usd: dict[str, Figure]
    operations: dict[str, Figure]
    default_budget_usd: float


@cache
def cost_inputs(path: str = str(COST_FILE)) -> CostInputs:
    p = Path(path)
    d = load_yaml(p)
    num = (int, float)
    nodes = {}
    for node, figs in need(p, "", d, "nodes", dict).items():
        nodes[node] = {k: _figure(p, f"nodes.{node}.{k}", need(p, f"nodes.{node}", figs, k, dict))
                       for k in ("wafer_cost_usd", "defect_density_per_cm2", "design_nre_usd", "mask_set_usd")}
    group = lambda key: {k: _figure(p, f"{key}.{k}", v) for k, v in need(p, "", d, key, dict).items()}  # noqa: E731
    return CostInputs(
        wafer_diameter_mm=need(p, "", d, "wafer_diameter_mm", num, positive=True),
        edge_exclusion_mm=need(p, "", d, "edge_exclusion_mm", num),
        nodes=nodes,
        alpha=need(p, "yield_model", need(p, "", d, "yield_model", dict), "alpha", num, positive=True),
        memory_usd_per_GB={n: Figure(k.usd_per_GB.value, k.usd_per_GB.low, k.usd_per_GB.high, k.usd_per_GB.source,
                                     k.usd_per_GB.confidence) for n, k in memory_kinds().items()},
        packaging_usd=group("packaging_usd"),
        operations=group("operations"),
        default_budget_usd=need(p, "", d, "default_budget_usd", num, positive=True),
    )


def _positive(name: str, v: Any) -> float:
    return check_positive(name, v)


def _node(node: str) -> dict[str, Figure]:
    nodes = cost_inputs().nodes
    key = str(node).lower()
    if key not in nodes:
        raise UserError(f"node: no cost data for {node!r}; known: {', '.join(nodes)}")
    return nodes[key]


def dies_per_wafer(die_area_mm2: float, *, wafer_diameter_mm: float | None = None,
                   edge_exclusion_mm: float | None = None) -> int:
    """Gross dies per wafer: pi r^2 / A - pi d / sqrt(2 A), on the usable diameter."""
    a = _positive("die_area_mm2", die_area_mm2)
    ci = cost_inputs()
    diameter = ci.wafer_diameter_mm if wafer_diameter_mm is None else check_positive("wafer_diameter_mm", wafer_diameter_mm)
    edge = ci.edge_exclusion_mm if edge_exclusion_mm is None else check_nonnegative("edge_exclusion_mm", edge_exclusion_mm)
    d = diameter - 2 * edge
    n = math.pi * (d / 2) ** 2 / a - math.pi * d / math.sqrt(2 * a)
    return max(0, math.floor(n))


def die_yield(die_area_mm2: float, defect_density_per_cm2: float, *, alpha: float | None = None) -> float:
    """Negative-binomial yield (1 + A D0 / alpha)^-alpha, A in cm^2."""
    a = _positive("die_area_mm2", die_area_mm2) / 100.0
    check_nonnegative("defect_density_per_cm2", defect_density_per_cm2)
    al = check_positive("alpha", alpha) if alpha is not None else cost_inputs().alpha
    return (1 + a * defect_density_per_cm2 / al) ** -al


def die_cost(die_area_mm2: float, node: str) -> Estimate:
    """Cost of one good die: wafer cost / (dies per wafer x yield)."""
    figs = _node(node)
    dpw = dies_per_wafer(die_area_mm2)
    if dpw == 0:
        raise UserError(f"die_area_mm2: {die_area_mm2} mm2 does not fit on a wafer")
    vals = {}
    for case in CASES:
        y = die_yield(die_area_mm2, figs["defect_density_per_cm2"].at(case))
        vals[case] = figs["wafer_cost_usd"].at(case) / (dpw * y)
    y_mid = die_yield(die_area_mm2, figs["defect_density_per_cm2"].value)
    return Estimate(vals["value"], vals["low"], vals["high"],
                    {"dies_per_wafer": dpw, "yield": y_mid, "wafer_cost_usd": figs["wafer_cost_usd"].value},
                    (figs["wafer_cost_usd"].source, figs["defect_density_per_cm2"].source))


def unit_cost(*, die_area_mm2: float, node: str, memory_GB: float = 0.0, memory_kind: str = "HBM",
              package: str | None = None) -> Estimate:
    """Manufacturing cost of one packaged part: good die + memory + packaging and test."""
    ci = cost_inputs()
    if memory_kind not in ci.memory_usd_per_GB:
        raise UserError(f"memory_kind: choose one of {', '.join(ci.memory_usd_per_GB)}, not {memory_kind!r}")
    memory_GB = check_nonnegative("memory_GB", memory_GB)
    package = package or ("hbm_2p5d" if get_memory_kind(memory_kind).in_package and memory_GB > 0 else "organic")
    if package not in ci.packaging_usd:
        raise UserError(f"package: choose one of {', '.join(ci.packaging_usd)}, not {package!r}")
    die = die_cost(die_area_mm2, node)
    mem, pkg = ci.memory_usd_per_GB[memory_kind], ci.packaging_usd[package]
    by_case = {"low": die.low_usd, "value": die.usd, "high": die.high_usd}
    totals = {c: by_case[c] + memory_GB * mem.at(c) + pkg.at(c) for c in CASES}
    return Estimate(totals["value"], totals["low"], totals["high"],
                    {"die_usd": die.usd, "memory_usd": memory_GB * mem.value, "package_usd": pkg.value,
                     **{k: v for k, v in die.breakdown.items()}},
                    die.sources + (mem.source, pkg.source))


def nre_per_unit(node: str, volume: int) -> Estimate:
    """Design and mask-set cost spread over ``volume`` units."""
    volume = check_int("volume", volume, hi=1 << 40)
    f = _node(node)
    tot = {c: (f["design_nre_usd"].at(c) + f["mask_set_usd"].at(c)) / volume for c in CASES}
    return Estimate(tot["value"], tot["low"], tot["high"],
                    {"design_nre_usd": f["design_nre_usd"].value, "mask_set_usd": f["mask_set_usd"].value,
                     "volume": volume}, (f["design_nre_usd"].source, f["mask_set_usd"].source))


@dataclass(frozen=True)
class UnitCost:
    """What one of a custom chip costs, USD: manufacturing (die, memory, packaging and
    test) plus its share of the NRE, with the range the inputs' bounds imply."""

    usd: float
    low_usd: float
    high_usd: float
    manufacturing_usd: float
    nre_per_unit_usd: float
    breakdown: dict[str, float]
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"usd": self.usd, "low_usd": self.low_usd, "high_usd": self.high_usd,
                "manufacturing_usd": self.manufacturing_usd, "nre_per_unit_usd": self.nre_per_unit_usd,
                "breakdown": dict(self.breakdown), "sources": list(self.sources)}


def chip_unit_cost(chip: ChipConfig) -> UnitCost:
    """Cost of one ``chip``: the packaged part at its die area and DRAM, plus the NRE spread
    over its ``volume_units``."""
    check_chip("chip", chip)
    part = unit_cost(die_area_mm2=chip_area(chip).die_mm2, node=chip.node, memory_GB=chip.dram.GB,
                     memory_kind=chip.dram.kind)
    nre = nre_per_unit(chip.node, chip.volume_units)
    return UnitCost(part.usd + nre.usd, part.low_usd + nre.low_usd, part.high_usd + nre.high_usd, part.usd, nre.usd,
                    part.breakdown, part.sources + nre.sources)


def gpu_price(gpu: GpuSpec) -> Estimate | None:
    """Street price of a GPU where one is public (always an estimate), else None."""
    check_gpu_spec("gpu", gpu)
    if gpu.price is None:
        return None
    p = gpu.price
    return Estimate(p.mid_usd, p.low_usd, p.high_usd, {}, (f"{p.source} ({p.confidence})",))


def buy_units(*, unit_price_usd: float, throughput_per_unit: float, budget_usd: float | None = None) -> dict:
    """How many units of ``unit_price_usd`` (USD each) a budget buys (USD, default $7B) and
    their aggregate throughput (``throughput_per_unit`` times the units, in its unit). Not
    :func:`systolab.fleet`, the serving fleet of LLM replicas, which buys whole deployments
    (``models/cost/tco.py: deploy``)."""
    budget = _positive("budget_usd", budget_usd if budget_usd is not None else cost_inputs().default_budget_usd)
    price = _positive("unit_price_usd", unit_price_usd)
    check_nonnegative("throughput_per_unit", throughput_per_unit)
    units = math.floor(budget / price)
    return {"budget_usd": budget, "unit_price_usd": price, "units": units,
            "aggregate_throughput": units * throughput_per_unit}


def usd_per_million_tokens(*, unit_capex_usd: float, power_W: float, tokens_per_s: float,
                           lifetime_years: float | None = None, pue: float | None = None,
                           usd_per_kWh: float | None = None, utilization: float | None = None) -> Estimate:
    """Serving cost per million tokens: amortised capex plus energy (with PUE), at a
    utilisation. Parameters left None take the stated assumptions and their ranges."""
    capex = _positive("unit_capex_usd", unit_capex_usd)
    watts = _positive("power_W", power_W)
    rate = _positive("tokens_per_s", tokens_per_s)
    ops = cost_inputs().operations

    def pick(name: str, given: float | None, case: str, costlier_when_higher: bool) -> float:
        if given is not None:
            return _positive(name, given)
        return ops[name].at(case, higher_is_costlier=costlier_when_higher)

    out = {}
    for case in CASES:
        life = pick("lifetime_years", lifetime_years, case, False)
        p = pick("pue", pue, case, True)
        price = pick("usd_per_kWh", usd_per_kWh, case, True)
        util = pick("utilization", utilization, case, False)
        if not 0 < util <= 1:
            raise UserError(f"utilization: must be in (0, 1], not {util}")
        hourly = capex / (life * 365 * 24) + watts * p / 1000 * price
        out[case] = hourly / (rate * 3600 * util) * 1e6
    return Estimate(out["value"], out["low"], out["high"], {},
                    tuple(ops[k].source for k in ("lifetime_years", "pue", "usd_per_kWh", "utilization")))


def gpu_fleet(gemms: list, *, gpu_ids: list[str] | None = None, budget_usd: float | None = None) -> list[dict]:
    """For each GPU with a public price: units a budget buys (default $7B) at the price's
    midpoint (and its range), and the fleet's throughput on ``gemms`` (workload runs per
    second, one run per GPU at a time). GPUs without a public price are listed with the
    reason instead of a guess."""
    ids = gpu_ids or list(load_gpus())
    rows: list[dict[str, Any]] = []
    for gid in ids:
        gpu = get_gpu(gid)
        price = gpu_price(gpu)
        if price is None:
            rows.append({"gpu": gid, "units": None, "note": "no public price in models/data/gpus.yaml"})
            continue
        seconds = estimate_workload(gpu, gemms).seconds
        mid = buy_units(unit_price_usd=price.usd, throughput_per_unit=1 / seconds, budget_usd=budget_usd)
        lo = buy_units(unit_price_usd=price.high_usd, throughput_per_unit=1 / seconds, budget_usd=budget_usd)
        hi = buy_units(unit_price_usd=price.low_usd, throughput_per_unit=1 / seconds, budget_usd=budget_usd)
        rows.append({"gpu": gid, "unit_price_usd": price.usd, "price_range_usd": [price.low_usd, price.high_usd],
                     "price_source": price.sources[0], "units": mid["units"],
                     "units_range": [lo["units"], hi["units"]], "workload_seconds": seconds,
                     "runs_per_second": mid["aggregate_throughput"],
                     "runs_per_second_range": [lo["aggregate_throughput"], hi["aggregate_throughput"]]})
    return rows
