"""Replicas of published accelerators: systolab's models against silicon that shipped.

Each replica in ``data/replicas.yaml`` is a :class:`ChipConfig` within systolab's design
space (cores of at most 64x64, global SRAM, a memory kind) that stands for a published chip,
beside that chip's published figures with their sources. :func:`replica_table` evaluates the
models on every replica and sets them beside the published figures:

* die area, mm²: :func:`~systolab.models.silicon.area.chip_area`, with the replica's
  control processors (``scalar_cores``, mapped from its publications);
* peak TOPS in the chip's dtype: :attr:`ChipConfig.peak_tops`;
* TDP, W: the design power of :func:`~systolab.models.silicon.energy.chip_power` (the same
  control processors);
* one throughput or efficiency figure: a catalogue workload's units per second through the
  chip's performance model (:func:`~systolab.models.report.evaluate.evaluate_chip`), or peak
  TOPS per modelled design watt against the published TOPS per published watt.

Errors are ``100 x (model - published) / published``. Nothing is fitted to the replicas. As a
second reading, :attr:`ReplicaRow.held_out` scales a replica's modelled area or power by the
geometric mean of published/modelled over the *other* replicas (leave-one-out): what a
single un-modelled overhead factor, learned without the chip, would predict. It is a check
of how systematic the gap is, not a model change: the systolab models are as they are.

Why the model sits where it does (component by component) is in ``docs/replicas.md``.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ...errors import ConfigError, UserError
from ..chip.config import ChipConfig
from ..frames import data_frame
from ..silicon.area import chip_area
from ..silicon.energy import chip_power, design_sram_W
from ..specs import DATA_DIR, SpecError, UncertainFigure, load_yaml, need, uncertain_figure
from ..workloads.catalog import get_workload
from .evaluate import evaluate_chip

REPLICAS_FILE = DATA_DIR / "replicas.yaml"
#: Quantities of the table, in order, with their units.
QUANTITIES = {"die_mm2": "mm2", "peak_tops": "TOPS", "tdp_W": "W", "figure": ""}
#: Quantities whose held-out (leave-one-out overhead) reading is computed.
HELD_OUT = ("die_mm2", "tdp_W")
FIGURE_KINDS = ("workload", "tops_per_W")


#: A published figure: ``value`` with its ``source``; ``low``/``high`` where uncertain (equal to
#: ``value`` when the maker states it exactly): the project's uncertain-figure type.
Published = UncertainFigure


@dataclass(frozen=True)
class Replica:
    """A published accelerator as a systolab chip, with its published figures.

    ``figure_kind`` is ``workload`` (``workload`` at ``batch``, units per second) or
    ``tops_per_W`` (peak TOPS per watt of ``figure_power``); ``sram_GBps`` is the on-chip
    SRAM bandwidth (GB/s) that serves a DRAM-less chip's operands in the performance model;
    ``scalar_cores`` the control processors its makers describe (area and power through
    ``chip_area``/``chip_power``'s ``scalar_cores``)."""

    key: str
    name: str
    chip: ChipConfig
    mapping: str
    unmapped: str
    die_mm2: Published
    peak_tops: Published
    tdp_W: Published
    figure: Published
    figure_name: str
    figure_unit: str
    figure_kind: str
    workload: str | None = None
    batch: int = 1
    figure_power: Published | None = None
    sram_GBps: Published | None = None
    scalar_cores: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "chip": self.chip.to_dict(), "mapping": self.mapping,
                "unmapped": self.unmapped, "die_mm2": self.die_mm2.to_dict(), "peak_tops": self.peak_tops.to_dict(),
                "tdp_W": self.tdp_W.to_dict(), "figure": self.figure.to_dict(), "figure_name": self.figure_name,
                "figure_unit": self.figure_unit, "figure_kind": self.figure_kind, "workload": self.workload,
                "batch": self.batch,
                "figure_power": None if self.figure_power is None else self.figure_power.to_dict(),
                "sram_GBps": None if self.sram_GBps is None else self.sram_GBps.to_dict(),
                "scalar_cores": self.scalar_cores}


def _published(path: Path, where: str, d: Any) -> Published:
    return uncertain_figure(path, where, d, range_optional=True, positive=True)


def _replica(path: Path, key: str, d: Any) -> Replica:
    where = f"replicas.{key}"
    try:
        chip = ChipConfig.from_dict(key, need(path, where, d, "chip", dict))
    except ConfigError as exc:
        raise SpecError(path, f"{where}.chip.{exc.field}", str(exc).split(": ", 1)[-1]) from None
    pub = need(path, where, d, "published", dict)
    fig = need(path, f"{where}.published", pub, "figure", dict)
    fwhere = f"{where}.published.figure"
    kind = need(path, fwhere, fig, "kind", str)
    if kind not in FIGURE_KINDS:
        raise SpecError(path, f"{fwhere}.kind", f"must be one of {', '.join(FIGURE_KINDS)}, not {kind!r}")
    power = _published(path, f"{fwhere}.power", need(path, fwhere, fig, "power", dict)) if kind == "tops_per_W" \
        else None
    workload = need(path, fwhere, fig, "workload", str) if kind == "workload" else None
    sram = d.get("sram_GBps")
    scalar = d.get("scalar_cores", 0)
    if isinstance(scalar, bool) or not isinstance(scalar, int) or scalar < 0:
        raise SpecError(path, f"{where}.scalar_cores", f"must be an integer >= 0, not {scalar!r}")
    return Replica(
        key=key, name=need(path, where, d, "name", str), chip=chip, mapping=" ".join(need(path, where, d, "mapping",
                                                                                           str).split()),
        unmapped=" ".join(need(path, where, d, "unmapped", str).split()),
        die_mm2=_published(path, f"{where}.published.die_mm2", need(path, f"{where}.published", pub, "die_mm2", dict)),
        peak_tops=_published(path, f"{where}.published.peak_tops",
                             need(path, f"{where}.published", pub, "peak_tops", dict)),
        tdp_W=_published(path, f"{where}.published.tdp_W", need(path, f"{where}.published", pub, "tdp_W", dict)),
        figure=_published(path, fwhere, fig), figure_name=need(path, fwhere, fig, "name", str),
        figure_unit=need(path, fwhere, fig, "unit", str), figure_kind=kind, workload=workload,
        batch=int(fig.get("batch", 1)), figure_power=power,
        sram_GBps=None if sram is None else _published(path, f"{where}.sram_GBps", sram), scalar_cores=scalar)


@cache
def _load(path: str, mtime_ns: int) -> tuple[Replica, ...]:
    p = Path(path)
    d = _check_schema(p)
    reps = need(p, "", d, "replicas", dict)
    return tuple(_replica(p, str(k), v) for k, v in reps.items())


def _check_schema(p: Path) -> dict:
    d = load_yaml(p)
    if not isinstance(d, dict) or d.get("schema") != "systolab-replicas/1":
        raise SpecError(p, "schema", "must be systolab-replicas/1")
    return d


def load_replicas(path: str | Path = REPLICAS_FILE) -> tuple[Replica, ...]:
    """The replicas of ``data/replicas.yaml`` (or a file of its schema), validated: every
    chip is a valid :class:`ChipConfig` and every published figure has a source."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(p, "(file)", "no such file")
    return _load(str(p.resolve()), p.stat().st_mtime_ns)


# -- the table ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaRow:
    """One quantity of one replica: modelled against published.

    ``error_pct`` = 100 x (modelled - published) / published; ``in_range`` whether the
    model falls in the published range; ``held_out`` the modelled value times the geometric
    mean of published/modelled over the other replicas (area and TDP only, else None) and
    ``held_out_error_pct`` its error."""

    replica: str
    quantity: str
    name: str
    unit: str
    modelled: float
    published: float
    low: float
    high: float
    error_pct: float
    in_range: bool
    source: str
    basis: str
    held_out: float | None = None
    held_out_error_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _error_pct(model: float, published: float) -> float:
    return 100 * (model - published) / published


def _row(r: Replica, quantity: str, modelled: float, pub: Published, basis: str, name: str = "",
         unit: str = "") -> ReplicaRow:
    return ReplicaRow(r.key, quantity, name or quantity, unit or QUANTITIES[quantity], modelled, pub.value, pub.low,
                      pub.high, _error_pct(modelled, pub.value), pub.low <= modelled <= pub.high, pub.source, basis)


def replica_figure(r: Replica) -> tuple[float, str]:
    """(modelled value, basis) of ``r``'s throughput or efficiency figure: the workload's
    units per second on the chip (a DRAM-less chip's operands served at its SRAM
    bandwidth and latency), or peak TOPS per modelled design watt."""
    if r.figure_kind == "tops_per_W":
        return (r.chip.peak_tops / chip_power(r.chip, scalar_cores=r.scalar_cores).tdp_W,
                "peak TOPS / modelled design power (chip_power)")
    assert r.workload is not None
    chip = r.chip
    basis = f"{r.workload} at batch {r.batch} through evaluate_chip (the chip's cycle model, mapper 'fast')"
    if r.sram_GBps is not None:
        sram_latency_ns = chip.sram_latency_cycles * 1e3 / chip.clock_mhz
        chip = chip.derive(dram_GBps_per_stack=r.sram_GBps.value / chip.dram.stacks, dram_latency_ns=sram_latency_ns)
        basis += f"; operands served at the on-chip SRAM's {r.sram_GBps.value:,.0f} GB/s and latency"
    workload = get_workload(r.workload, dtype=chip.core.dtype, batch=r.batch)
    return evaluate_chip(chip, workload).throughput, basis


def replica_rows(r: Replica) -> tuple[ReplicaRow, ...]:
    """The rows of ``r``: die area (:func:`chip_area`), peak TOPS, TDP (the design power of
    :func:`chip_power`), both with the replica's control processors, and its
    throughput/efficiency figure."""
    area = chip_area(r.chip, scalar_cores=r.scalar_cores)
    power = chip_power(r.chip, scalar_cores=r.scalar_cores)
    figure, basis = replica_figure(r)
    return (
        _row(r, "die_mm2", area.die_mm2, r.die_mm2,
             f"chip_area: cores {area.cores_mm2:.1f} (arrays {area.core_array_mm2 * r.chip.cores:.1f}), NoC "
             f"{area.noc_mm2:.1f}, global SRAM {area.global_sram_mm2:.1f}, DRAM PHY {area.dram_phy_mm2:.1f}, "
             f"I/O {area.io_mm2:.1f}, vector {area.vector_mm2:.1f}, control processors {area.scalar_mm2:.1f}, "
             f"white space {area.whitespace_mm2:.1f} mm2"),
        _row(r, "peak_tops", r.chip.peak_tops, r.peak_tops,
             f"2 x {r.chip.cores} cores x {r.chip.core.rows}x{r.chip.core.cols} PEs x {r.chip.clock_mhz:g} MHz "
             f"({r.chip.core.dtype})"),
        _row(r, "tdp_W", power.tdp_W, r.tdp_W,
             f"chip_power: arrays {power.logic_W - power.leakage_W:.1f} + leakage {power.leakage_W:.1f} + SRAM "
             f"{power.sram_W:.1f} + DRAM {power.dram_W:.1f} + vector {power.vector_W:.1f} + control processors "
             f"{power.scalar_W:.1f} + static floor {power.static_W:.1f} W"),
        _row(r, "figure", figure, r.figure, basis, name=r.figure_name, unit=r.figure_unit),
    )


def _with_held_out(rows: list[ReplicaRow]) -> list[ReplicaRow]:
    """``rows`` with the leave-one-out overhead reading of area and TDP filled in."""
    out = []
    for row in rows:
        if row.quantity not in HELD_OUT:
            out.append(row)
            continue
        others = [math.log(o.published / o.modelled) for o in rows
                  if o.quantity == row.quantity and o.replica != row.replica]
        if not others:
            out.append(row)
            continue
        pred = row.modelled * math.exp(statistics.fmean(others))
        out.append(ReplicaRow(**{**row.__dict__, "held_out": pred,
                                 "held_out_error_pct": _error_pct(pred, row.published)}))
    return out


@dataclass(frozen=True)
class ReplicaTable:
    """Modelled against published figures for every replica (:class:`ReplicaRow`s), with
    the median absolute errors per quantity."""

    rows: tuple[ReplicaRow, ...]
    replicas: tuple[str, ...] = field(default=())

    def errors(self, quantity: str, *, held_out: bool = False) -> list[float]:
        """Errors of ``quantity`` over the replicas, %: the models' (or the held-out reading's)."""
        if quantity not in QUANTITIES:
            raise UserError(f"quantity: choose one of {', '.join(QUANTITIES)}, not {quantity!r}", parameter="quantity")
        rows = [r for r in self.rows if r.quantity == quantity]
        if held_out:
            return [r.held_out_error_pct for r in rows if r.held_out_error_pct is not None]
        return [r.error_pct for r in rows]

    def median_abs_error_pct(self, quantity: str, *, held_out: bool = False) -> float:
        """Median |error| of ``quantity`` over the replicas, %."""
        errs = self.errors(quantity, held_out=held_out)
        return statistics.median(abs(e) for e in errs) if errs else float("nan")

    def summary(self) -> dict[str, float]:
        """Median |error| per quantity, and of the held-out reading of area and TDP, %."""
        out = {f"median_abs_{q}_error_pct": self.median_abs_error_pct(q) for q in QUANTITIES}
        out.update({f"median_abs_{q}_held_out_error_pct": self.median_abs_error_pct(q, held_out=True)
                    for q in HELD_OUT})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"replicas": list(self.replicas), "rows": [r.to_dict() for r in self.rows], **self.summary()}

    def to_frame(self) -> Any:
        """One row per replica and quantity (pandas DataFrame)."""
        return data_frame(r.to_dict() for r in self.rows)


def replica_table(path: str | Path = REPLICAS_FILE) -> ReplicaTable:
    """Every replica of ``path`` evaluated: modelled against published die area, peak TOPS,
    TDP and throughput/efficiency figure, with errors and their medians."""
    reps = load_replicas(path)
    rows = [row for r in reps for row in replica_rows(r)]
    return ReplicaTable(tuple(_with_held_out(rows)), tuple(r.key for r in reps))


__all__ = [
    "design_sram_W", "load_replicas", "Published", "Replica", "replica_figure", "replica_rows", "replica_table",
    "ReplicaRow", "ReplicaTable", "REPLICAS_FILE",
]
