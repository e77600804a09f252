"""Whether a chip fits physically: its memory PHYs along the die's edge, the die and its
in-package memory on an interposer, its power over its die, the die within the reticle.

Limits and their sources are in ``data/packaging.yaml`` (the reticle in ``data/nodes.yaml``),
the memory devices' beachfront and footprint in ``data/memory_kinds.yaml``. The die is taken
as square (side = sqrt of :func:`~systolab.models.silicon.area.chip_area`'s die area).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...checks import check_chip
from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .area import chip_area
from .energy import chip_power
from .memory import get_memory_kind
from .nodes import reticle_limit_mm2

if TYPE_CHECKING:          # typing only: the chip's configuration imports this package
    from ..chip.config import ChipConfig

PACKAGING_FILE = DATA_DIR / "packaging.yaml"
LIMITS = ("edge_reserved_fraction", "interposer_mm2", "interposer_spacing_factor", "power_density_W_per_mm2")


class FeasibilityWarning(UserWarning):
    """A chip fails a physical limit (warned rather than refused)."""


@cache
def packaging_limits(path: str = str(PACKAGING_FILE)) -> dict[str, tuple[float, str]]:
    """Each limit of ``data/packaging.yaml``: (value, source)."""
    p = Path(path)
    d = load_yaml(p)
    if not isinstance(d, dict) or d.get("schema") != "systolab-packaging/1":
        raise SpecError(p, "schema", "must be systolab-packaging/1")
    out = {}
    for key in LIMITS:
        f = need(p, "", d, key, dict)
        out[key] = (float(need(p, key, f, "value", (int, float), positive=True)),
                    " ".join(need(p, key, f, "source", str).split()))
    return out


@dataclass(frozen=True)
class Check:
    """One physical check: ``value`` against ``limit`` (same units, named in ``name``),
    ``ok`` when within it; ``field`` is the chip field to change when not."""

    name: str
    value: float
    limit: float
    ok: bool
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit, "ok": self.ok, "field": self.field,
                "message": self.message}


@dataclass(frozen=True)
class Feasibility:
    """The physical checks of one chip; ``feasible`` when every one passes."""

    chip: str
    checks: tuple[Check, ...]

    @property
    def feasible(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"chip": self.chip, "feasible": self.feasible, "checks": [c.to_dict() for c in self.checks]}


def _check(name: str, value: float, limit: float, field: str, what: str, source: str) -> Check:
    ok = value <= limit
    verdict = "within" if ok else "exceeds"
    return Check(name, value, limit, ok, field, f"{name}: {what} {value:,.4g} {verdict} the limit {limit:,.4g} ({source})")


def chip_feasibility(chip: ChipConfig) -> Feasibility:
    """The chip's physical checks: memory beachfront (mm of die edge), interposer area (mm²,
    in-package memory only), power density (W/mm²) and the reticle (mm²)."""
    check_chip("chip", chip)
    lim = packaging_limits()
    kind = get_memory_kind(chip.dram.kind)
    die = chip_area(chip).die_mm2
    side = math.sqrt(die)
    reserve, reserve_src = lim["edge_reserved_fraction"]
    usable = 4 * side * (1 - reserve)
    front = chip.dram.stacks * kind.beachfront_mm.value
    checks = [_check("beachfront_mm", front, usable, "dram.stacks",
                     f"{chip.dram.stacks} {kind.name} PHYs x {kind.beachfront_mm.value:g} mm of edge =",
                     f"a square die of {die:,.0f} mm² has {4 * side:,.1f} mm of edge, {reserve:.0%} kept for I/O and "
                     f"power: {reserve_src}; beachfront: {kind.beachfront_mm.source}")]
    if kind.in_package:
        spacing, spacing_src = lim["interposer_spacing_factor"]
        limit, limit_src = lim["interposer_mm2"]
        area = (die + chip.dram.stacks * kind.footprint_mm2.value) * spacing
        checks.append(_check("interposer_mm2", area, limit, "dram.stacks",
                             f"(die {die:,.0f} + {chip.dram.stacks} x {kind.footprint_mm2.value:g} mm² stacks) x "
                             f"{spacing:g} spacing =", f"{limit_src}; spacing: {spacing_src}"))
    power = chip_power(chip)
    density, density_src = lim["power_density_W_per_mm2"]
    # The die's own power: the DRAM access energy in the TDP is mostly dissipated in the
    # memory devices and their interface, not spread over the logic die.
    on_die = power.tdp_W - power.dram_W
    checks.append(_check("power_density_W_per_mm2", on_die / die, density, "clock_mhz",
                         f"TDP {power.tdp_W:,.0f} W less {power.dram_W:,.0f} W of DRAM access = {on_die:,.0f} W "
                         f"over {die:,.0f} mm² =", density_src))
    checks.append(_check("die_mm2", die, reticle_limit_mm2(), "cores", "the die's",
                         "one exposure field (data/nodes.yaml: reticle_limit_mm2)"))
    return Feasibility(chip.name, tuple(checks))


def check_feasible(chip: ChipConfig, *, warn: bool) -> Feasibility:
    """:func:`chip_feasibility`, then for a failed check either a :class:`FeasibilityWarning`
    (``warn``) or a :class:`UserError` naming the limit and the chip field to change."""
    check_chip("chip", chip)
    f = chip_feasibility(chip)
    for c in f.failures:
        message = f"{c.field}: chip {chip.name} does not fit: {c.message}"
        if not warn:
            raise UserError(message, parameter=c.field)
        warnings.warn(message, FeasibilityWarning, stacklevel=2)
    return f
