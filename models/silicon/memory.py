"""Off-chip memory kinds (HBM stacks, LPDDR and DDR channels, GDDR packages) as data, and
the 3A090.c test of one HBM device.

``data/memory_kinds.yaml`` gives each kind's figures per device (stack, package or channel),
each with a source and, where uncertain, a range: bandwidth (GB/s), capacity (GB), the PHY's
area on the logic die (mm²) and the die edge it takes (mm), energy (pJ/bit), price (USD/GB),
the device's footprint (mm²) and its loaded latency (ns). ``HBM`` (what ``chips.yaml``
names) is an alias of ``HBM3``; ``DDR`` is a generic DRAM channel. The area, energy and
cost models read their PHY area, pJ/bit and USD/GB here.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ...checks import check_date
from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need

MEMORY_KINDS_FILE = DATA_DIR / "memory_kinds.yaml"
#: The per-device figures every kind gives, units in the names.
FIGURES = ("GBps", "GB", "phy_mm2", "beachfront_mm", "pJ_per_bit", "usd_per_GB", "footprint_mm2", "latency_ns")


@dataclass(frozen=True)
class MemoryFigure:
    """One figure of a memory kind with its range and where it came from."""

    value: float
    low: float
    high: float
    source: str
    confidence: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "source": self.source,
                "confidence": self.confidence}


@dataclass(frozen=True)
class MemoryKind:
    """A memory kind, per device (``device`` says which: a stack, a channel, a package).

    ``GBps`` GB/s, ``GB`` capacity, ``phy_mm2`` PHY area on the logic die, ``beachfront_mm``
    die edge its PHY takes, ``pJ_per_bit`` access energy, ``usd_per_GB`` price,
    ``footprint_mm2`` the device's stack or package area, ``latency_ns`` loaded read latency.
    ``in_package``: the devices sit beside the die in its package (HBM on an interposer).
    """

    name: str
    family: str
    device: str
    in_package: bool
    uncertain: bool
    note: str
    GBps: MemoryFigure
    GB: MemoryFigure
    phy_mm2: MemoryFigure
    beachfront_mm: MemoryFigure
    pJ_per_bit: MemoryFigure
    usd_per_GB: MemoryFigure
    footprint_mm2: MemoryFigure
    latency_ns: MemoryFigure

    @property
    def bandwidth_density(self) -> float:
        """The device's bandwidth over its footprint, GB/s per mm² (3A090.c's measure)."""
        return self.GBps.value / self.footprint_mm2.value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "device": self.device, "in_package": self.in_package,
                "uncertain": self.uncertain, "note": self.note,
                **{f: getattr(self, f).to_dict() for f in FIGURES}}


def _figure(path: Path, where: str, d: Any) -> MemoryFigure:
    num = (int, float)
    value = need(path, where, d, "value", num)
    low, high = (need(path, where, d, key, num, optional=True) for key in ("low", "high"))
    # numbers kept as the file writes them (15, not 15.0), so that results print as before
    f = MemoryFigure(value, value if low is None else low, value if high is None else high,
                     need(path, where, d, "source", str), str(d.get("confidence", "high")))
    if not f.low <= f.value <= f.high or f.value <= 0:
        raise SpecError(path, where, f"needs 0 < low <= value <= high, not {f.low}, {f.value}, {f.high}")
    return f


def _kind(path: Path, name: str, d: Any) -> MemoryKind:
    where = f"kinds.{name}"
    return MemoryKind(name, need(path, where, d, "family", str), need(path, where, d, "device", str),
                      bool(need(path, where, d, "in_package", bool)), bool(d.get("uncertain", False)),
                      " ".join(str(d.get("note", "")).split()),
                      *(_figure(path, f"{where}.{f}", need(path, where, d, f, dict)) for f in FIGURES))


@cache
def memory_kinds(path: str = str(MEMORY_KINDS_FILE)) -> dict[str, MemoryKind]:
    """Every kind in the file by name, aliases (``HBM``) resolved to the kind they name."""
    p = Path(path)
    d = load_yaml(p)
    if not isinstance(d, dict) or d.get("schema") != "systolab-memory-kinds/1":
        raise SpecError(p, "schema", "must be systolab-memory-kinds/1")
    table = need(p, "", d, "kinds", dict)
    out = {str(n): _kind(p, str(n), k) for n, k in table.items() if "alias_of" not in k}
    for n, k in table.items():
        if "alias_of" in k:
            if k["alias_of"] not in out:
                raise SpecError(p, f"kinds.{n}.alias_of", f"names no kind in the file: {k['alias_of']!r}")
            out[str(n)] = out[k["alias_of"]]
    return {n: out[n] for n in table}


def list_memory_kinds() -> list[str]:
    """Names of the memory kinds (aliases included), in the file's order."""
    return list(memory_kinds())


def get_memory_kind(name: str | MemoryKind) -> MemoryKind:
    """A memory kind by name (a :class:`MemoryKind` passes through); an unknown name is a
    :class:`UserError` naming ``memory-kind``."""
    if isinstance(name, MemoryKind):
        return name
    kinds = memory_kinds()
    if name not in kinds:
        raise UserError(f"memory-kind: {name!r} is not one of {', '.join(kinds)}", parameter="memory-kind")
    return kinds[name]


@dataclass(frozen=True)
class HbmRule:
    """3A090.c of the December 2024 rule: an HBM device whose bandwidth density exceeds
    ``GBps_per_mm2_above`` (GB/s per mm²) from ``effective`` on."""

    effective: dt.date
    eccn: str
    families: tuple[str, ...]
    GBps_per_mm2_above: float
    citation: str


@cache
def hbm_rule(path: str = str(MEMORY_KINDS_FILE)) -> HbmRule:
    p = Path(path)
    r = need(p, "rules", need(p, "", load_yaml(p), "rules", dict), "hbm_3a090c", dict)
    where = "rules.hbm_3a090c"
    eff = need(p, where, r, "effective", (dt.date, str))
    return HbmRule(eff if isinstance(eff, dt.date) else dt.date.fromisoformat(eff), need(p, where, r, "eccn", str),
                   tuple(need(p, where, r, "families", list)),
                   float(need(p, where, r, "GBps_per_mm2_above", (int, float), positive=True)),
                   " ".join(need(p, where, r, "citation", str).split()))


def memory_class(kind: str | MemoryKind, date: dt.date | str) -> tuple[str | None, tuple[str, ...]]:
    """The export class of one device of ``kind`` on ``date``: (``"3A090.c"`` or None, the
    reasons). 3A090.c holds an HBM device whose bandwidth over its stack footprint is above
    2 GB/s per mm², from 2024-12-02 on (89 FR 96790); nothing before it."""
    k = get_memory_kind(kind)
    day = check_date("date", date)
    rule = hbm_rule()
    density = k.bandwidth_density
    measure = f"{k.GBps.value:g} GB/s over {k.footprint_mm2.value:g} mm² = {density:.3g} GB/s/mm²"
    if day < rule.effective:
        return None, (f"{day}: before {rule.eccn} took effect on {rule.effective} ({rule.citation})",)
    if k.family not in rule.families:
        return None, (f"{k.name} is {k.family}, not HBM: {rule.eccn} controls high bandwidth memory only",)
    if density > rule.GBps_per_mm2_above:
        return rule.eccn, (f"{k.name}: {measure} > {rule.GBps_per_mm2_above:g} ({rule.citation})",)
    return None, (f"{k.name}: {measure}, not above {rule.GBps_per_mm2_above:g} ({rule.citation})",)
