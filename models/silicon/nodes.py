"""Process-node table (``data/nodes.yaml``): gates and bits to mm², energy scaling, clocks."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ...errors import UserError
from ..specs import DATA_DIR, load_yaml, need

NODES_FILE = DATA_DIR / "nodes.yaml"


@dataclass(frozen=True)
class Sourced:
    value: float
    source: str
    confidence: str

    @property
    def uncertain(self) -> bool:
        return self.confidence != "high"


@dataclass(frozen=True)
class Node:
    name: str
    logic_density_MTr_per_mm2: Sourced
    sram_bitcell_um2: Sourced
    energy_scale_vs_45nm: Sourced
    default_clock_MHz: Sourced
    placement_utilization: float
    sram_macro_efficiency: float

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

    def flags(self) -> list[str]:
        """What is estimated rather than measured at this node."""
        out = []
        for field in ("logic_density_MTr_per_mm2", "sram_bitcell_um2", "energy_scale_vs_45nm", "default_clock_MHz"):
            s: Sourced = getattr(self, field)
            if s.uncertain:
                out.append(f"{self.name} {field} = {s.value:g} ({s.confidence}: {s.source})")
        return out


@cache
def load_nodes(path: str = str(NODES_FILE)) -> dict[str, Node]:
    p = Path(path)
    d = load_yaml(p)
    util = need(p, "", d, "placement_utilization", (int, float), positive=True)
    eff = need(p, "", d, "sram_macro_efficiency", (int, float), positive=True)
    out = {}
    for name, n in need(p, "", d, "nodes", dict).items():
        def s(field: str, name=name, n=n) -> Sourced:
            f = need(p, f"nodes.{name}", n, field, dict)
            w = f"nodes.{name}.{field}"
            return Sourced(need(p, w, f, "value", (int, float), positive=True), need(p, w, f, "source", str),
                           need(p, w, f, "confidence", str))
        out[name] = Node(name, s("logic_density_MTr_per_mm2"), s("sram_bitcell_um2"), s("energy_scale_vs_45nm"),
                         s("default_clock_MHz"), util, eff)
    return out


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
