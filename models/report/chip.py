"""The chip as notebooks and scripts use it: a :class:`Chip` is a
:class:`~systolab.models.chip.config.ChipConfig` (the same fields, validated alike) whose
methods hand it to the model of each layer: area (:mod:`~systolab.models.silicon.area`),
power (:mod:`~systolab.models.silicon.energy`), cost (:mod:`~systolab.models.cost.pricing`),
export class (:mod:`~systolab.models.legal.export_control`), time
(:mod:`~systolab.models.chip.workload`) and the evaluation of a workload
(:mod:`~systolab.models.report.evaluate`). :func:`get_chip` (``systolab.get_chip``) returns one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import fields
from functools import lru_cache
from typing import Any, Self

from ...checks import check_chip
from ...errors import UserError
from ..chip import config
from ..chip.config import ChipConfig
from ..chip.workload import chip_workload_perf
from ..core.perf import WorkloadPerf
from ..cost.pricing import UnitCost, chip_unit_cost
from ..legal.build import buildability
from ..legal.export_control import ExportClass, classify_chip
from ..legal.purchase import Scenario
from ..silicon.area import ChipArea, chip_area
from ..silicon.energy import ChipPower, chip_power, vector_pJ_per_op
from ..silicon.feasibility import check_feasible
from ..workloads.catalog import Workload
from .evaluate import Evaluation, evaluate_chip
from .sizing import check_reticle


class Chip(ChipConfig):
    """A :class:`ChipConfig` with the models' views of it as methods (each a delegation to
    the function named in its docstring). Its variants (:meth:`derive`,
    :meth:`with_cores`) are ``Chip`` s too; :meth:`derive` warns with
    :class:`~systolab.models.chip.config.ReticleWarning` when the die exceeds the reticle limit."""

    def derive(self, *, name: str | None = None, legal_for: Scenario | None = None, feasible: bool = False,
               **changes: Any) -> Self:
        """:meth:`ChipConfig.derive`, warning past the reticle limit; with ``legal_for`` (a
        :class:`~systolab.models.legal.purchase.Scenario`) a chip that buyer could not have
        built on that date is refused with the reasons, and with ``feasible`` one that does
        not fit physically, naming the limit."""
        if legal_for is not None and not isinstance(legal_for, Scenario):
            raise TypeError(f"legal_for must be a Scenario (systolab.scenario), not {type(legal_for).__name__}")
        out = super().derive(name=name, **changes)
        if out is not self:
            check_reticle(out, warn=True)
        if feasible:
            check_feasible(out, warn=False)
        if legal_for is not None:
            b = buildability(out, legal_for, options=False)
            if not b.can_build:
                raise UserError(f"legal_for: {out.name} could not be built for a buyer in {b.buyer} on {b.date}: "
                                f"{b.status.replace('_', ' ')} ({'; '.join(b.reasons[:3])})", parameter="legal_for")
        return out

    def check_reticle(self, *, warn: bool = False) -> float:
        """:func:`~systolab.models.report.sizing.check_reticle`: the die area, mm²."""
        return check_reticle(self, warn=warn)

    def area(self) -> ChipArea:
        """The die's area, mm², and its breakdown (cores, NoC, global SRAM, DRAM PHYs, I/O,
        vector unit):
        :func:`~systolab.models.silicon.area.chip_area`."""
        return chip_area(self)

    def power_W(self) -> ChipPower:
        """The chip's design power (TDP), W, and its breakdown (the cores' logic, leakage,
        DRAM, vector unit):
        :func:`~systolab.models.silicon.energy.chip_power`."""
        return chip_power(self)

    def vector_pJ_per_op(self) -> float:
        """:func:`~systolab.models.silicon.energy.vector_pJ_per_op`: pJ per vector element operation."""
        return vector_pJ_per_op(self)

    def unit_cost(self) -> UnitCost:
        """What one chip costs to make, USD, with its low and high estimates and the breakdown
        (dies per wafer and yield, memory, packaging and test, NRE spread over the volume):
        :func:`~systolab.models.cost.pricing.chip_unit_cost`."""
        return chip_unit_cost(self)

    def export_class(self, rule_date: str | dt.date | None = None) -> ExportClass:
        """The chip's ECCN 3A090 class under the rules in force on ``rule_date`` (default: the
        latest), with its TPP, performance density and the rule that decided it:
        :func:`~systolab.models.legal.export_control.classify_chip`."""
        return classify_chip(self, rule_date=rule_date)

    def workload_perf(self, gemms: Any) -> WorkloadPerf:
        """:func:`~systolab.models.chip.workload.chip_workload_perf`: ``gemms`` mapped and timed."""
        return chip_workload_perf(self, gemms)

    def evaluate(self, workload: Workload) -> Evaluation:
        """:func:`~systolab.models.report.evaluate.evaluate_chip`: throughput, seconds, J per
        unit, average W, the chip-level bound and a per-GEMM table."""
        return evaluate_chip(self, workload)

    def energy(self, workload: Workload) -> float:
        """Energy of one run of ``workload``, J (see :meth:`evaluate`)."""
        return evaluate_chip(self, workload).energy_J

    def summary(self) -> dict[str, Any]:
        """The chip's configuration and headline figures in one dict (peak TOPS, DRAM GB/s
        and GB, die mm², TDP W, unit cost USD, export class, and their breakdowns), as
        ``systolab compare`` writes it in summary.json: :func:`chip_summary`."""
        return chip_summary(self)

    def _repr_html_(self) -> str:
        return chip_html(self)


def chip_summary(chip: ChipConfig) -> dict[str, Any]:
    """The chip's configuration and figures in one table (the ``chip`` of ``systolab
    compare``'s summary.json): peak TOPS, DRAM GB/s and GB, die mm², TDP W, unit cost USD,
    export class, and the area, power and cost breakdowns."""
    check_chip("chip", chip)
    a, p, c, e = chip_area(chip), chip_power(chip), chip_unit_cost(chip), classify_chip(chip)
    return {"name": chip.name, "description": chip.description, "core": chip.core.to_dict(), "cores": chip.cores,
            "clock_mhz": chip.clock_mhz, "node": chip.node, "peak_tops": chip.peak_tops,
            "dram_GBps": chip.dram.GBps, "dram_GB": chip.dram.GB, "die_mm2": a.die_mm2,
            "tdp_W": p.tdp_W, "unit_cost_usd": c.usd, "unit_cost_range_usd": [c.low_usd, c.high_usd],
            "eccn": e.eccn, "tpp": e.tpp, "performance_density": e.performance_density,
            "area": a.to_dict(), "power": p.to_dict(), "cost": c.to_dict()}


def chip_html(chip: ChipConfig) -> str:
    """The chip in one line of HTML (how a notebook shows it)."""
    check_chip("chip", chip)
    s = chip_summary(chip)
    return (f"<b>{chip.name}</b>: {chip.cores} x {chip.core.name} at {chip.clock_mhz:g} MHz, {chip.node}; "
            f"{s['peak_tops']:,.0f} {chip.core.dtype} TOPS, {s['die_mm2']:,.0f} mm², {s['tdp_W']:,.0f} W TDP, "
            f"{chip.dram.GBps:,.0f} GB/s {chip.dram.kind}, ~${s['unit_cost_usd']:,.0f}, ECCN {s['eccn']}"
            f"<br><i>{chip.description}</i>")


@lru_cache(maxsize=64)
def _as_chip(chip: ChipConfig) -> Chip:
    return Chip(**{f.name: getattr(chip, f.name) for f in fields(chip)})


def as_chip(chip: ChipConfig) -> Chip:
    """``chip`` as a :class:`Chip` (itself when it is one)."""
    check_chip("chip", chip)
    return chip if isinstance(chip, Chip) else _as_chip(chip)


def get_chip(name_or_file: str | ChipConfig | None = None) -> Chip:
    """A chip by name from ``data/chips.yaml`` (the default when None), or the default chip
    of another chips YAML file, as a :class:`Chip`
    (see :func:`systolab.models.chip.config.get_chip`)."""
    return as_chip(config.get_chip(name_or_file))
