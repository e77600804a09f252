"""Time to silicon: the custom chip's phases, milestone dates and bottom-up NRE.

Inputs and their sources are in ``data/schedule.yaml`` (phases, respin odds, team, IP, EDA,
packaging) and ``data/cost.yaml`` (mask set and wafer cost per node). One piece of
arithmetic (:func:`evaluate_silicon`) turns a value for every input into phase months and
NRE components; it works elementwise on numpy arrays, so a Monte Carlo passes arrays of
draws, and :func:`time_to_silicon` passes the values, the lows and the highs. Every
output grows with every input, so the all-low and all-high cases bound the result.

Months are calendar months of 365.25 / 12 days; money is US dollars.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ...checks import check_date, check_kind, check_numeric, check_real
from ...errors import UserError
from ..frames import data_frame
from ..plotting import new_axes
from ..specs import DATA_DIR, SpecError, UncertainFigure, load_yaml, need, uncertain_figure
from .pricing import cost_inputs

SCHEDULE_FILE = DATA_DIR / "schedule.yaml"
#: The distribution shapes a Monte Carlo may draw an input from.
DAYS_PER_MONTH = 365.25 / 12
#: Dates before this are refused (no figure here describes them).
EARLIEST_DATE = dt.date(2000, 1, 1)
#: The phases that consume hardware engineers' time (all but the production ramp).
HARDWARE_PHASES = ("architecture", "rtl", "verification", "physical", "fab", "bringup", "respin")


@dataclass(frozen=True)
class PhaseInput:
    """One phase of ``data/schedule.yaml``: its months, or months by node class."""

    name: str
    label: str
    months: UncertainFigure | None
    by_node_class: dict[str, UncertainFigure] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleInputs:
    phases: dict[str, PhaseInput]
    node_class: dict[str, str]
    respin_probability: UncertainFigure
    nre: dict[str, UncertainFigure]
    incumbent: dict[str, UncertainFigure]
    anchors: dict[str, dict[str, Any]]


def _figure(path: Path, where: str, d: Any) -> UncertainFigure:
    return uncertain_figure(path, where, d)


def _phase(path: Path, name: str, d: Any) -> PhaseInput:
    where = f"phases.{name}"
    label = need(path, where, d, "label", str)
    by_class = need(path, where, d, "by_node_class", dict, optional=True)
    if by_class is not None:
        return PhaseInput(name, label, None, {k: _figure(path, f"{where}.by_node_class.{k}", v) for k, v in by_class.items()})
    return PhaseInput(name, label, _figure(path, f"{where}.months", need(path, where, d, "months", dict)))


@cache
def schedule_inputs(path: str = str(SCHEDULE_FILE)) -> ScheduleInputs:
    """The inputs of ``data/schedule.yaml`` (or ``path``), checked: a malformed figure
    (missing field, low > high, unknown shape) raises a :class:`SpecError` naming the file
    and the field."""
    p = Path(path)
    d = load_yaml(p)
    phases = {name: _phase(p, name, v) for name, v in need(p, "", d, "phases", dict).items()}
    missing = [n for n in (*HARDWARE_PHASES, "ramp") if n not in phases]
    if missing:
        raise SpecError(p, "phases", f"missing {', '.join(missing)}")
    node_class = {str(k): str(v) for k, v in need(p, "", d, "node_class", dict).items()}
    fab_classes = phases["fab"].by_node_class
    for node, cls in node_class.items():
        if cls not in fab_classes:
            raise SpecError(p, f"node_class.{node}", f"{cls!r} has no phases.fab.by_node_class entry")
    group = lambda key: {k: _figure(p, f"{key}.{k}", v) for k, v in need(p, "", d, key, dict).items()}  # noqa: E731
    return ScheduleInputs(phases, node_class, _figure(p, "respin_probability", need(p, "", d, "respin_probability", dict)),
                          group("nre"), group("incumbent"), dict(need(p, "", d, "anchors", dict)))


def check_start(name: str, value: Any) -> dt.date:
    """A date (or ``YYYY-MM-DD``) on or after 2000-01-01."""
    day = check_date(name, value)
    if isinstance(day, dt.datetime):
        day = day.date()
    if day < EARLIEST_DATE:
        raise UserError(f"{name}: must be on or after {EARLIEST_DATE.isoformat()}, not {day.isoformat()}", parameter=name)
    return day


def add_months(start: dt.date, months: float) -> dt.date:
    """``start`` plus ``months`` calendar months of 365.25 / 12 days each (rounded to a day)."""
    return start + dt.timedelta(days=round(float(months) * DAYS_PER_MONTH))


def _node_key(node: Any) -> str:
    key = str(node).lower()
    known = [n for n in cost_inputs().nodes if n in schedule_inputs().node_class]
    if key not in known:
        raise UserError(f"node: no schedule and cost data for {node!r}; known: {', '.join(known)}", parameter="node")
    return key


def _respin_probability(respin: bool | float | None) -> float:
    if respin is None:
        return schedule_inputs().respin_probability.value
    if isinstance(respin, bool):
        return 1.0 if respin else 0.0
    return check_real("respin", respin, lo=0.0, hi=1.0)


def silicon_inputs(node: str) -> dict[str, UncertainFigure]:
    """Every input of :func:`evaluate_silicon` for ``node``, keyed as it expects them:
    ``months.<phase>``, ``nre.<figure>``, ``respin`` (the probability of a respin),
    ``mask_set_usd`` and ``wafer_cost_usd`` (from ``data/cost.yaml``). A Monte Carlo draws
    each from its range and shape and passes the arrays to :func:`evaluate_silicon`."""
    key = _node_key(node)
    si = schedule_inputs()
    out: dict[str, UncertainFigure] = {}
    for name, ph in si.phases.items():
        out[f"months.{name}"] = ph.months if ph.months is not None else ph.by_node_class[si.node_class[key]]
    out.update({f"nre.{k}": f for k, f in si.nre.items()})
    out["respin"] = si.respin_probability
    for k in ("mask_set_usd", "wafer_cost_usd"):
        f = cost_inputs().nodes[key][k]
        out[k] = UncertainFigure(f.value, f.low, f.high, f"models/data/cost.yaml nodes.{key}.{k}: {f.source}")
    return out


def evaluate_silicon(values: Mapping[str, Any]) -> dict[str, Any]:
    """Phase months and NRE components from one value per input of :func:`silicon_inputs`
    (floats, or numpy arrays of draws that broadcast together). ``respin`` is a
    probability (an expected respin) or a drawn 0/1.

    Returns ``months.<phase>``, ``months_hardware`` (start to the end of bring-up and
    respin), ``months_total`` (start to volume), ``nre.<component>`` (USD) and
    ``nre_total_usd``.
    """
    check_kind("values", values, ("keys", "items"), "a mapping of input name -> value (silicon_inputs(node))")
    for k, x in values.items():
        check_numeric(f"values[{k!r}]", x)
    si = schedule_inputs()
    expected = {*(f"months.{p}" for p in si.phases), *(f"nre.{k}" for k in si.nre), "respin", "mask_set_usd", "wafer_cost_usd"}
    if set(values) != expected:
        missing, unknown = sorted(expected - set(values)), sorted(set(values) - expected)
        raise UserError(f"values: {'missing ' + ', '.join(missing) if missing else ''}"
                        f"{'; ' if missing and unknown else ''}{'unknown ' + ', '.join(unknown) if unknown else ''}"
                        " (the keys of silicon_inputs(node))", parameter="values")
    v = {k: np.asarray(x, dtype=float) if not isinstance(x, float | int) else float(x) for k, x in values.items()}
    respin = v["respin"]
    months = {k: x for k, x in v.items() if k.startswith("months.")}
    months["months.respin"] = respin * months["months.respin"]
    hardware = sum(months[f"months.{p}"] for p in HARDWARE_PHASES)
    total = sum(months.values())
    per_year = v["nre.usd_per_engineer_year"]
    nre = {
        "hardware_engineering_usd": v["nre.hardware_engineers"] * hardware / 12 * per_year,
        "software_engineering_usd": v["nre.software_engineers"] * total / 12 * per_year,
        "mask_set_usd": v["mask_set_usd"],
        "respin_masks_usd": respin * v["nre.respin_mask_fraction"] * v["mask_set_usd"],
        "prototype_wafers_usd": v["nre.prototype_wafers"] * v["wafer_cost_usd"] * (1 + respin),
        "test_chips_usd": v["nre.test_chips_usd"],
        "ip_licences_usd": v["nre.ip_licences_usd"],
        "eda_usd": v["nre.eda_usd_per_year"] * hardware / 12,
        "packaging_development_usd": v["nre.packaging_development_usd"],
    }
    out: dict[str, Any] = dict(months)
    out["months_hardware"], out["months_total"] = hardware, total
    out.update({f"nre.{k}": x for k, x in nre.items()})
    out["nre_total_usd"] = sum(nre.values())
    return out


@dataclass(frozen=True)
class Band:
    """A quantity's value and the range that its inputs' ranges imply (units in the
    field that holds it)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class DateBand:
    """A date with its earliest (all inputs low) and latest (all inputs high) case."""

    value: dt.date
    low: dt.date
    high: dt.date

    def to_dict(self) -> dict[str, str]:
        return {"value": self.value.isoformat(), "low": self.low.isoformat(), "high": self.high.isoformat()}


@dataclass(frozen=True)
class NreBreakdown:
    """Bottom-up NRE in USD: each component and the total, with their ranges, beside the
    IBS-based design cost plus mask set of ``data/cost.yaml`` for the same node."""

    node: str
    components: dict[str, Band]
    total: Band
    ibs_usd: Band
    sources: tuple[str, ...]

    @property
    def ratio_to_ibs(self) -> float:
        """Bottom-up total / (IBS design cost + mask set), at their values."""
        return self.total.value / self.ibs_usd.value

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "components": {k: b.to_dict() for k, b in self.components.items()},
                "total_usd": self.total.to_dict(), "ibs_usd": self.ibs_usd.to_dict(),
                "ratio_to_ibs": self.ratio_to_ibs, "sources": list(self.sources)}

    def to_frame(self):
        """One row per component (USD) and one for the total."""
        rows = [{"component": k, "usd": b.value, "low_usd": b.low, "high_usd": b.high} for k, b in self.components.items()]
        rows.append({"component": "total", "usd": self.total.value, "low_usd": self.total.low, "high_usd": self.total.high})
        return data_frame(rows)


@dataclass(frozen=True)
class Phase:
    """One phase: its months on the critical path, and the dates it starts and ends."""

    name: str
    label: str
    months: Band
    start: DateBand
    end: DateBand

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.name, "label": self.label, "months": self.months.to_dict(),
                "start": self.start.to_dict(), "end": self.end.to_dict()}


@dataclass(frozen=True)
class SiliconSchedule:
    """When the custom chip reaches volume and what it costs to get there.

    ``phases`` in order with their months and dates; ``available`` the date of first
    volume; ``milestones`` the end date of each phase; ``months`` the total; ``nre_usd``
    the bottom-up NRE; ``respin_probability``
    the respin odds used (the respin phase counts its expected months; its low case has no
    respin and its high case has one)."""

    start: dt.date
    node: str
    node_class: str
    respin_probability: float
    phases: tuple[Phase, ...]
    available: DateBand
    months: Band
    nre_usd: NreBreakdown
    sources: tuple[str, ...]

    @property
    def milestones(self) -> dict[str, DateBand]:
        """The date each phase ends (value, earliest, latest), by phase name."""
        return {p.name: p.end for p in self.phases}

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "node": self.node, "node_class": self.node_class,
                "respin_probability": self.respin_probability, "phases": [p.to_dict() for p in self.phases],
                "available": self.available.to_dict(), "months": self.months.to_dict(), "nre_usd": self.nre_usd.to_dict(),
                "sources": list(self.sources)}

    def to_frame(self):
        """One row per phase: months (value, low, high) and the end date of each case."""
        return data_frame({"phase": p.name, "label": p.label, "months": p.months.value, "months_low": p.months.low,
                           "months_high": p.months.high, "start": p.start.value, "end": p.end.value,
                           "end_low": p.end.low, "end_high": p.end.high} for p in self.phases)


def _cases(inputs: Mapping[str, UncertainFigure], p: float) -> dict[str, dict[str, Any]]:
    """The value, all-low and all-high cases; the respin is expected (value), absent
    (low, unless certain) or present (high, unless impossible)."""
    cases = {c: evaluate_silicon({k: getattr(f, c) for k, f in inputs.items() if k != "respin"}
                                 | {"respin": {"value": p, "low": float(p >= 1), "high": float(p > 0)}[c]})
             for c in ("value", "low", "high")}
    return cases


def _nre(key: str, inputs: Mapping[str, UncertainFigure], cases: dict[str, dict[str, Any]]) -> NreBreakdown:
    band = lambda k: Band(*(float(cases[c][k]) for c in ("value", "low", "high")))  # noqa: E731
    components = {k.removeprefix("nre."): band(k) for k in cases["value"] if k.startswith("nre.")}
    node_costs = cost_inputs().nodes[key]
    ibs = Band(*(node_costs["design_nre_usd"].at(c) + node_costs["mask_set_usd"].at(c) for c in ("value", "low", "high")))
    sources = tuple(dict.fromkeys(f.source for f in inputs.values()))
    return NreBreakdown(key, components, band("nre_total_usd"), ibs, sources)


def nre_breakdown(node: str, *, respin: bool | float | None = None) -> NreBreakdown:
    """The bottom-up NRE of a chip at ``node`` (as :func:`time_to_silicon` reports it,
    without the dates): each component and the total with their ranges, beside IBS's."""
    key = _node_key(node)
    inputs = silicon_inputs(key)
    return _nre(key, inputs, _cases(inputs, _respin_probability(respin)))


def time_to_silicon(*, start: dt.date | str, node: str, respin: bool | float | None = None) -> SiliconSchedule:
    """The custom chip's schedule from project ``start`` at ``node`` (a node of
    ``data/cost.yaml`` and ``data/schedule.yaml``): each phase's months and dates, the
    date of first volume and the bottom-up NRE, each with its range.

    ``respin``: True (a respin happens), False (none) or a probability; None takes the
    industry rate of ``data/schedule.yaml`` (Wilson Research Group studies).
    """
    day = check_start("start", start)
    key = _node_key(node)
    p = _respin_probability(respin)
    si = schedule_inputs()
    inputs = silicon_inputs(key)
    cases = _cases(inputs, p)
    phases, ends = [], {c: 0.0 for c in cases}
    for name, ph in si.phases.items():
        begin = DateBand(*(add_months(day, ends[c]) for c in ("value", "low", "high")))
        for c in cases:
            ends[c] += float(cases[c][f"months.{name}"])
        months = Band(*(float(cases[c][f"months.{name}"]) for c in ("value", "low", "high")))
        phases.append(Phase(name, ph.label, months, begin, DateBand(*(add_months(day, ends[c]) for c in ("value", "low", "high")))))
    band = lambda k: Band(*(float(cases[c][k]) for c in ("value", "low", "high")))  # noqa: E731
    nre = _nre(key, inputs, cases)
    return SiliconSchedule(day, key, si.node_class[key], p, tuple(phases), phases[-1].end, band("months_total"), nre, nre.sources)


def _month_ticks(ax, start: dt.date, last_month: float) -> None:
    """Label the x axis (months from ``start``) with calendar dates every six months."""
    ticks = np.arange(0, last_month + 6, 6)
    ax.set_xticks(ticks)
    ax.set_xticklabels([add_months(start, m).strftime("%Y-%m") for m in ticks], rotation=45, ha="right")


def plot_timeline(schedule: SiliconSchedule, gpu_available: Mapping[str, dt.date | str] | None = None, *, ax=None):
    """A Gantt chart of ``schedule``'s phases (value case; whiskers span each phase end's
    earliest to latest date) with a marker at each GPU's availability date
    (``gpu_available``: name -> date; dates before the project start are drawn at it).
    Returns the matplotlib ``Figure``."""
    gpus = {str(k): check_start(f"gpu_available[{k!r}]", v) for k, v in (gpu_available or {}).items()}
    fig, ax = new_axes(ax, (9, 0.45 * len(schedule.phases) + 2.5))
    to_month = lambda d: (d - schedule.start).days / DAYS_PER_MONTH  # noqa: E731
    for i, ph in enumerate(schedule.phases):
        left, right = to_month(ph.start.value), to_month(ph.end.value)
        ax.barh(i, right - left, left=left, color="tab:blue" if ph.name != "respin" else "tab:orange", alpha=0.8)
        ax.errorbar(right, i, xerr=[[right - to_month(ph.end.low)], [to_month(ph.end.high) - right]],
                    fmt="none", ecolor="0.3", capsize=3)
    ax.set_yticks(range(len(schedule.phases)))
    ax.set_yticklabels([ph.label for ph in schedule.phases])
    ax.invert_yaxis()
    last = to_month(schedule.available.high)
    styles = ("--", ":", "-.")
    for j, (name, day) in enumerate(sorted(gpus.items(), key=lambda kv: kv[1])):
        m = max(0.0, to_month(day))
        last = max(last, m)
        when = f"{day.isoformat()}{', before the start' if day < schedule.start else ''}"
        ax.axvline(m, color=f"C{2 + j % 8}", linestyle=styles[j % 3], linewidth=1.5, label=f"{name} available ({when})")
    ax.axvline(to_month(schedule.available.value), color="tab:red", linewidth=1.5,
               label=f"chip in volume ({schedule.available.value.isoformat()})")
    ax.legend(loc="upper right", fontsize=8)
    _month_ticks(ax, schedule.start, last)
    ax.set_xlim(-1, last + 1)          # a margin, so that a marker at the start shows
    ax.set_xlabel("date (bars: value case; whiskers: earliest to latest end)")
    ax.set_title(f"Time to silicon at {schedule.node}: volume {schedule.available.value.isoformat()} "
                 f"({schedule.available.low.isoformat()} to {schedule.available.high.isoformat()})")
    fig.tight_layout()
    return fig
