"""Process-node table (``data/nodes.yaml``): gates and bits to mm², energy scaling, clocks, and
the facts about each node that the legal layer reads (planar or not, nm class, foundry)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need

NODES_FILE = DATA_DIR / "nodes.yaml"


@dataclass(frozen=True)
class Sourced:
    """A figure with its source; ``low``/``high`` bound it where sources disagree (None: no range given)."""

    value: float
    source: str
    confidence: str
    low: float | None = None
    high: float | None = None

    @property
    def uncertain(self) -> bool:
        return self.confidence != "high"

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high); (value, value) where the file gives no range."""
        return (self.value if self.low is None else self.low, self.value if self.high is None else self.high)

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.bounds[0], "high": self.bounds[1], "source": self.source,
                "confidence": self.confidence}


@dataclass(frozen=True)
class Node:
    name: str
    logic_density_MTr_per_mm2: Sourced
    sram_bitcell_um2: Sourced
    energy_scale_vs_45nm: Sourced
    default_clock_MHz: Sourced
    placement_utilization: float
    sram_macro_efficiency: float
    planar: bool                        # planar transistors (28 nm and above) or not (FinFET from 16/14 nm)
    nm_class: float                     # the node's nm class: 7 for N7 and for a domestic 7 nm-class node
    foundry: str                        # who offers the node
    access_note: str                    # free text: facts about who can buy it, with sources; the legal layer decides
    process_source: str                 # the source for planar, nm_class, foundry and access_note
    capacity_wafers_per_month: Sourced | None = None   # 300 mm wafer starts a month, where public
    reported_yield: Sourced | None = None              # die yield reported for products on the node, fraction

    @property
    def nand2_um2(self) -> float:
        """Area of one NAND2 (4 transistors) from the NAND2-weighted density metric."""
        return 4.0 / self.logic_density_MTr_per_mm2.value

    def logic_mm2(self, nand2_equivalent: float) -> float:
        """Placed-and-routed area of this many NAND2-equivalent gates."""
        return nand2_equivalent * self.nand2_um2 / self.placement_utilization / 1e6

    def sram_mm2(self, bits: float) -> float:
        """SRAM macro area: bitcell area x bits / array efficiency."""
        if bits < 0:
            raise UserError(f"bits: must be >= 0, not {bits}")
        return bits * self.sram_bitcell_um2.value / self.sram_macro_efficiency / 1e6

    def to_dict(self) -> dict:
        figures = ("logic_density_MTr_per_mm2", "sram_bitcell_um2", "energy_scale_vs_45nm", "default_clock_MHz",
                   "capacity_wafers_per_month", "reported_yield")
        out: dict = {"name": self.name, "planar": self.planar, "nm_class": self.nm_class, "foundry": self.foundry,
                     "access_note": self.access_note, "process_source": self.process_source}
        for f in figures:
            s: Sourced | None = getattr(self, f)
            out[f] = None if s is None else s.to_dict()
        return out

    def flags(self) -> list[str]:
        """What is estimated rather than measured at this node."""
        out = []
        for field in ("logic_density_MTr_per_mm2", "sram_bitcell_um2", "energy_scale_vs_45nm", "default_clock_MHz"):
            s: Sourced = getattr(self, field)
            if s.uncertain:
                out.append(f"{self.name} {field} = {s.value:g} ({s.confidence}: {s.source})")
        return out


def _sourced(p: Path, where: str, f: dict) -> Sourced:
    """A figure ``{value, source, confidence[, low, high]}``; a range needs both ends around the value."""
    num = (int, float)
    value = need(p, where, f, "value", num, positive=True)
    low = need(p, where, f, "low", num, positive=True, optional=True)
    high = need(p, where, f, "high", num, positive=True, optional=True)
    if (low is None) != (high is None):
        raise SpecError(p, f"{where}.{'high' if high is None else 'low'}", "missing (a range needs low and high)")
    if low is not None and not low <= value <= high:
        raise SpecError(p, where, f"needs low <= value <= high, not {low}, {value}, {high}")
    return Sourced(value, need(p, where, f, "source", str), need(p, where, f, "confidence", str), low, high)


def _text(p: Path, where: str, n: dict, key: str) -> str:
    v = need(p, where, n, key, str)
    if not v.strip():
        raise SpecError(p, f"{where}.{key}", "must not be empty")
    return v


def _node(p: Path, name: str, n: dict, util: float, eff: float) -> Node:
    w = f"nodes.{name}"

    def s(field: str) -> Sourced:
        return _sourced(p, f"{w}.{field}", need(p, w, n, field, dict))

    def maybe(field: str) -> Sourced | None:
        f = need(p, w, n, field, dict, optional=True)
        return None if f is None else _sourced(p, f"{w}.{field}", f)

    y = maybe("reported_yield")
    if y is not None and y.bounds[1] > 1:
        raise SpecError(p, f"{w}.reported_yield", f"is a fraction: must be <= 1, not {y.bounds[1]}")
    return Node(name, s("logic_density_MTr_per_mm2"), s("sram_bitcell_um2"), s("energy_scale_vs_45nm"),
                s("default_clock_MHz"), util, eff,
                planar=need(p, w, n, "planar", bool),
                nm_class=float(need(p, w, n, "nm_class", (int, float), positive=True)),
                foundry=_text(p, w, n, "foundry"), access_note=_text(p, w, n, "access_note"),
                process_source=_text(p, w, n, "process_source"),
                capacity_wafers_per_month=maybe("capacity_wafers_per_month"),
                reported_yield=y)


@cache
def load_nodes(path: str = str(NODES_FILE)) -> dict[str, Node]:
    p = Path(path)
    d = load_yaml(p)
    util = need(p, "", d, "placement_utilization", (int, float), positive=True)
    eff = need(p, "", d, "sram_macro_efficiency", (int, float), positive=True)
    return {name: _node(p, name, n, util, eff) for name, n in need(p, "", d, "nodes", dict).items()}


@cache
def reticle_limit_mm2(path: str = str(NODES_FILE)) -> float:
    """The largest die one lithography exposure field prints, mm² (``data/nodes.yaml``)."""
    p = Path(path)
    f = need(p, "", load_yaml(p), "reticle_limit_mm2", dict)
    return float(need(p, "reticle_limit_mm2", f, "value", (int, float), positive=True))


def get_node(name: Node | str) -> Node:
    """A node by name (``n4``, ``N7`` ...); a :class:`Node` passes through, so that a caller
    resolves a name once and hands the object on."""
    if isinstance(name, Node):
        return name
    nodes = load_nodes()
    key = str(name).lower()
    if key not in nodes:
        raise UserError(f"node: unknown node {name!r}; choose one of {', '.join(nodes)}")
    return nodes[key]


def foundries() -> tuple[str, ...]:
    """The foundries that offer the nodes of ``data/nodes.yaml``, as named there."""
    return tuple(sorted({n.foundry for n in load_nodes().values()}))


def node_at_foundry(node: Node | str, foundry: str) -> str:
    """The node of ``foundry`` (case-insensitive) nearest in nm class to ``node``: ``node``
    itself when that foundry offers it, else the nearest class (the coarser on a tie, the one
    a design moved there could at least be made at). An unknown foundry names ``foundry``."""
    here = get_node(node)
    if not isinstance(foundry, str) or not foundry.strip():
        raise UserError(f"foundry: give a foundry name ({', '.join(foundries())}), not {foundry!r}", parameter="foundry")
    offered = [n for n in load_nodes().values() if n.foundry.lower() == foundry.strip().lower()]
    if not offered:
        raise UserError(f"foundry: unknown foundry {foundry!r}; choose one of {', '.join(foundries())}",
                        parameter="foundry")
    if here in offered:
        return here.name
    return min(offered, key=lambda n: (abs(n.nm_class - here.nm_class), -n.nm_class)).name
