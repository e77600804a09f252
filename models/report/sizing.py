"""Sizing a chip to a budget: the most cores that fit a die area and/or a power, a GPU's
die area, power or price, or an export class; each never past the reticle limit.

Every function takes a :class:`~systolab.models.chip.config.ChipConfig` (or a
:class:`~systolab.models.report.chip.Chip`) and returns the same class, resized with
:meth:`~systolab.models.chip.config.ChipConfig.with_cores` (each core keeps its slice of
the global SRAM).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from ...checks import check_chip, check_positive
from ...errors import UserError
from ..chip.config import ChipConfig, ReticleWarning
from ..cost.pricing import chip_unit_cost, gpu_price
from ..gpu.specs import get_gpu
from ..legal.build import buildability
from ..legal.export_control import check_allowed, classify_chip
from ..legal.purchase import Scenario
from ..silicon.area import chip_area
from ..silicon.energy import chip_power
from ..silicon.feasibility import check_feasible
from ..silicon.nodes import reticle_limit_mm2

C = TypeVar("C", bound=ChipConfig)


def check_reticle(chip: ChipConfig, *, warn: bool = False) -> float:
    """The die area of ``chip`` (mm²); above the reticle limit, warn with
    :class:`ReticleWarning` (``warn=True``, pointing at the caller's caller) or raise."""
    check_chip("chip", chip)
    die, limit = chip_area(chip).die_mm2, reticle_limit_mm2()
    if die > limit:
        msg = (f"{chip.name}: a {die:,.0f} mm² die exceeds the {limit:g} mm² reticle limit (one exposure "
               "field); it cannot be made as one die")
        if not warn:
            raise UserError(f"cores: {msg}", parameter="cores")
        warnings.warn(msg, ReticleWarning, stacklevel=3)
    return die


def resized(chip: C, cores: int) -> C:
    """``chip`` with ``cores`` cores (:meth:`~systolab.models.chip.config.ChipConfig.with_cores`),
    renamed ``<name>+cores=<n>`` as :meth:`~systolab.models.chip.config.ChipConfig.derive`
    names a variant, so that a report never shows two different chips under one name."""
    if cores == chip.cores:
        return chip
    return replace(chip.with_cores(cores), name=f"{chip.name}+cores={cores}")


def most_cores(chip: C, fits: Callable[[C], bool]) -> C:
    """The chip with the most cores for which ``fits(chip)`` holds (monotone: more cores
    never fit better); a budget that fits no core at all is a :class:`UserError`."""
    if not fits(chip.with_cores(1)):
        raise UserError("budget: not even one core fits (the fixed parts alone: DRAM PHYs, I/O, global SRAM)")
    lo, hi = 1, 2
    while fits(chip.with_cores(hi)):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(chip.with_cores(mid)) else (lo, mid)
    return resized(chip, lo)


def fit_cores(chip: C, *, die_mm2: float | None = None, power_W: float | None = None, reticle: bool = True,
              legal_for: Scenario | None = None, feasible: bool = False) -> C:
    """The chip with the most cores that fits a die-area (mm²) and/or power (W) budget
    ("what fits in 814 mm² at N4 under 700 W"), and (``reticle=True``) the reticle limit;
    with ``legal_for`` (a :class:`~systolab.models.legal.purchase.Scenario`) only chips that
    buyer could have built on that date count (more cores never make a chip easier to
    build); with ``feasible`` the result must fit physically (memory PHYs along its edge,
    package, power density), or the fit is refused naming the limit."""
    if die_mm2 is None and power_W is None:
        raise UserError("budget: give die_mm2, power_W or both")
    if legal_for is not None and not isinstance(legal_for, Scenario):
        raise TypeError(f"legal_for must be a Scenario (systolab.scenario), not {type(legal_for).__name__}")
    die_cap_given = None if die_mm2 is None else check_positive("die_mm2", die_mm2)
    power_cap = None if power_W is None else check_positive("power_W", power_W)
    caps = [d for d in (die_cap_given, reticle_limit_mm2() if reticle else None) if d is not None]
    die_cap = min(caps) if caps else None
    fitted = most_cores(chip, lambda c: (die_cap is None or chip_area(c).die_mm2 <= die_cap)
                        and (power_cap is None or chip_power(c).tdp_W <= power_cap)
                        and (legal_for is None or buildability(c, legal_for, options=False).can_build))
    if feasible:
        check_feasible(fitted, warn=False)
    return fitted


def match_gpu(chip: C, gpu_id: str, *, by: str) -> C:
    """The chip resized to a GPU's die area (``by="area"``), power (``"power"``) or price
    (``"price"``, by unit cost) for iso comparisons, never past the reticle limit (what
    binds is the smaller of the two; compare with :func:`check_reticle`)."""
    gpu = get_gpu(gpu_id)
    if by == "area":
        if gpu.die_area_mm2 is None:
            raise UserError(f"gpu: {gpu_id} has no published die area")
        return fit_cores(chip, die_mm2=gpu.die_area_mm2)
    if by == "power":
        return fit_cores(chip, power_W=gpu.tdp_W)
    if by == "price":
        price = gpu_price(gpu)
        if price is None:
            raise UserError(f"gpu: {gpu_id} has no public price")
        cap, limit = price.usd, reticle_limit_mm2()
        return most_cores(chip, lambda c: chip_unit_cost(c).usd <= cap and chip_area(c).die_mm2 <= limit)
    raise UserError(f"by: must be area, power or price, not {by!r}")


def largest_outside(chip: C, *, allowed: tuple[str, ...] = ("none",), rule_date: str | None = None) -> C:
    """The chip with the most cores whose ECCN 3A090 class is in ``allowed`` (default: not
    controlled) under the rule set of ``rule_date`` (default: the latest), up to the
    reticle limit (compare the result's die with :func:`reticle_limit_mm2` to see which
    binds)."""
    check_chip("chip", chip)
    check_allowed(allowed)
    limit = reticle_limit_mm2()
    best, n = None, 1
    while chip_area(chip.with_cores(n)).die_mm2 <= limit:
        if classify_chip(chip.with_cores(n), rule_date=rule_date).eccn in allowed:
            best = n
        elif best is not None:
            break
        n += 1
    if best is None:
        raise UserError(f"allowed: no core count within the reticle limit keeps {chip.name} in {', '.join(allowed)}")
    return resized(chip, best)
