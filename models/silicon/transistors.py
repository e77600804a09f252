"""Transistor count of a custom chip, and its check against published chips.

A chip's transistors, in billions:

* logic: each core's array from the area fit (:func:`~.area.model_area`, generic-gate
  synthesis, 4 transistors per NAND2-equivalent), times the cores;
* SRAM: bits (the cores' buffers and the global SRAM) x 6 (the 6T bitcell) x a periphery
  factor for decoders, sense amplifiers and drivers;
* uncore: the NoC, DMA, control and vector unit, and the DRAM PHYs and I/O, from their
  areas in the chip's area model (:func:`~.area.chip_area`) at the node's logic density
  (PHY and I/O at a fraction of it: they are mostly analogue).

Every factor and its source is in ``data/transistors.yaml``; ``low``/``high`` combine the
stated ranges. :func:`transistor_validation` checks the method against published chips:
NVIDIA GPUs by density (node density x die area) and accelerators whose structure is public
(MACs + SRAM); :func:`validation_table` writes it as Markdown.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...checks import check_chip
from ...config import AcceleratorConfig
from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .area import chip_area, core_area, load_fit
from .nodes import Node, get_node

if TYPE_CHECKING:          # typing only: the chip's configuration imports the nodes of this package
    from ..chip.config import ChipConfig

TRANSISTORS_FILE = DATA_DIR / "transistors.yaml"
GPUS_FILE = DATA_DIR / "gpus.yaml"
BITS_PER_KIB = 1024 * 8
BITS_PER_MIB = 2**20 * 8


@dataclass(frozen=True)
class Ranged:
    """A factor with its stated range and source."""

    value: float
    low: float
    high: float
    source: str
    uncertain: bool


@dataclass(frozen=True)
class TransistorFigures:
    """The per-cell figures of ``data/transistors.yaml``."""

    logic: Ranged                # factor on the generic-gate count (value 1)
    sram_per_bit: float          # transistors per bitcell
    sram_periphery: Ranged       # factor on the bitcells
    phy_io_density: float        # PHY and I/O transistor density / logic density
    uncore: Ranged               # factor on the uncore estimate (value 1)
    other_fraction: Ranged       # structural check: the rest of a chip / (MACs + SRAM)
    density: Ranged              # density check: whole-die / peak density (value: utilisation)
    sources: tuple[str, ...]


def _ranged(p: Path, where: str, d: dict, *, value: float | None = None, low: str = "low", high: str = "high",
            source: str = "source") -> Ranged:
    v = value if value is not None else need(p, where, d, "value", (int, float), positive=True)
    lo = need(p, where, d, low, (int, float), positive=True)
    hi = need(p, where, d, high, (int, float), positive=True)
    if not lo <= v <= hi:
        raise SpecError(p, where, f"needs {low} <= value <= {high}, not {lo}, {v}, {hi}")
    return Ranged(float(v), float(lo), float(hi), need(p, where, d, source, str), bool(d.get("uncertain", False)))


@cache
def load_transistor_figures(path: str = str(TRANSISTORS_FILE)) -> TransistorFigures:
    """The figures of ``path``; a bad file raises :class:`SpecError` naming the field."""
    p = Path(path)
    d = load_yaml(p)
    logic = _ranged(p, "logic", need(p, "", d, "logic", dict), value=1.0, low="low_factor", high="high_factor")
    sram = need(p, "", d, "sram", dict)
    periphery = _ranged(p, "sram", sram, value=need(p, "sram", sram, "periphery_factor", (int, float), positive=True),
                        low="periphery_low", high="periphery_high", source="periphery_source")
    unc = need(p, "", d, "uncore", dict)
    uncore = _ranged(p, "uncore", unc, value=1.0, low="low_factor", high="high_factor", source="phy_io_source")
    other = _ranged(p, "structural_other_fraction", need(p, "", d, "structural_other_fraction", dict))
    dens = need(p, "", d, "density_check", dict)
    density = _ranged(p, "density_check", dens, value=float(load_yaml(DATA_DIR / "nodes.yaml")["placement_utilization"]),
                      low="low_factor", high="high_factor")
    per_bit = need(p, "sram", sram, "transistors_per_bit", (int, float), positive=True)
    sources = (f"logic: {logic.source}", f"SRAM: {per_bit:g} transistors per bit "
               f"({need(p, 'sram', sram, 'bitcell_source', str)}); periphery x{periphery.value:g} "
               f"({periphery.low:g}-{periphery.high:g}): {periphery.source}",
               f"uncore: NoC, DMA, control and vector unit from their area at the node's logic density; "
               f"PHY and I/O at {need(p, 'uncore', unc, 'phy_io_density_factor', (int, float)):g} of it: {uncore.source}")
    return TransistorFigures(logic, float(per_bit), periphery,
                             float(need(p, "uncore", unc, "phy_io_density_factor", (int, float), positive=True)),
                             uncore, other, density, sources)


@dataclass(frozen=True)
class TransistorEstimate:
    """A chip's transistors by part, billions; ``low_B``/``high_B`` the stated range."""

    chip: str
    node: str
    logic_B: float           # the cores' PE arrays (area fit)
    sram_B: float            # the cores' buffers and the global SRAM, bitcells and periphery
    uncore_B: float          # NoC, DMA, control, vector unit, DRAM PHYs and I/O
    total_B: float
    low_B: float
    high_B: float
    sram_bits: float
    assumptions: tuple[str, ...]

    @property
    def transistors(self) -> float:
        """The total, in transistors (not billions)."""
        return self.total_B * 1e9

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, assumptions=list(self.assumptions))


def sram_transistors(bits: float, figures: TransistorFigures | None = None, *, factor: float | None = None) -> float:
    """Transistors of ``bits`` of SRAM: bitcells x the periphery factor (the stated one by default)."""
    if bits < 0:
        raise UserError(f"bits: must be >= 0, not {bits}")
    f = figures or load_transistor_figures()
    return bits * f.sram_per_bit * (f.sram_periphery.value if factor is None else factor)


def logic_transistors_in(mm2: float, node: Node | str) -> float:
    """Transistors of standard-cell logic placed in ``mm2`` at ``node`` (the inverse of
    :meth:`Node.logic_mm2`: peak density x placement utilisation)."""
    n = get_node(node)
    return mm2 * n.logic_density_MTr_per_mm2.value * 1e6 * n.placement_utilization


def chip_transistors(chip: ChipConfig) -> TransistorEstimate:
    """Transistors of ``chip`` (billions), by part, with a low/high range and the assumptions."""
    check_chip("chip", chip)
    f = load_transistor_figures()
    node = get_node(chip.node)
    array, _ = core_area(chip.core, chip.node)
    logic = chip.cores * array.transistors
    bits = chip.cores * chip.core.buffer_kib * BITS_PER_KIB + chip.global_sram_mib * BITS_PER_MIB
    sram = sram_transistors(bits, f)
    area = chip_area(chip)
    digital = logic_transistors_in(area.noc_mm2 + area.vector_mm2, node)
    analogue = logic_transistors_in(area.dram_phy_mm2 + area.io_mm2, node) * f.phy_io_density
    uncore = digital + analogue
    total = logic + sram + uncore
    low = logic * f.logic.low + sram * f.sram_periphery.low / f.sram_periphery.value + uncore * f.uncore.low
    high = logic * f.logic.high + sram * f.sram_periphery.high / f.sram_periphery.value + uncore * f.uncore.high
    notes = (*f.sources, f"{chip.cores} cores of {array.transistors / 1e6:.2f} M transistors "
             f"({chip.core.rows}x{chip.core.cols} {chip.core.dtype}); {bits / BITS_PER_MIB:.1f} MiB SRAM",
             *array.assumptions)
    return TransistorEstimate(chip.name, node.name, logic / 1e9, sram / 1e9, uncore / 1e9, total / 1e9,
                              low / 1e9, high / 1e9, bits, notes)


# -- the check against published chips ---------------------------------------------------------
@dataclass(frozen=True)
class TransistorCheck:
    """A published chip's transistor count against the estimate, billions."""

    chip: str
    method: str               # "density" (node density x die area) or "structural" (MACs + SRAM)
    node: str
    die_area_mm2: float
    published_B: float
    estimate_B: float
    low_B: float
    high_B: float
    source: str
    uncertain: bool

    @property
    def error_pct(self) -> float:
        """The estimate over the published count, minus one, in percent."""
        return 100 * (self.estimate_B - self.published_B) / self.published_B

    @property
    def in_range(self) -> bool:
        return self.low_B <= self.published_B <= self.high_B

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, error_pct=self.error_pct, in_range=self.in_range)


def density_check(gpu_id: str, node: str, *, figures: TransistorFigures | None = None,
                  gpus_path: str | Path = GPUS_FILE) -> TransistorCheck:
    """``gpu_id`` of ``data/gpus.yaml``: its published count against ``node``'s density x its die."""
    f = figures or load_transistor_figures()
    p = Path(gpus_path)
    gpus = need(p, "", load_yaml(p), "gpus", dict)
    if gpu_id not in gpus:
        raise UserError(f"gpu: unknown GPU {gpu_id!r} in {p.name}", parameter="gpu")
    g = gpus[gpu_id]
    area = need(p, f"gpus.{gpu_id}", g, "die_area_mm2", (int, float), positive=True)
    published = need(p, f"gpus.{gpu_id}", g, "transistors_B", (int, float), positive=True)
    peak = get_node(node).logic_density_MTr_per_mm2.value * area / 1e3        # billions
    return TransistorCheck(str(g.get("name", gpu_id)), "density", f"{g.get('process_node', '?')} (as {node})", area,
                           float(published), peak * f.density.value, peak * f.density.low, peak * f.density.high,
                           f"data/gpus.yaml; {f.density.source}", True)


def mac_transistors(dtype: str) -> float:
    """Transistors of one output-stationary PE of ``dtype`` (32-bit accumulator), from the area fit."""
    return load_fit().pe_transistors(AcceleratorConfig(rows=2, cols=2, dtype=dtype))


def structural_check(key: str, entry: dict, figures: TransistorFigures | None = None) -> TransistorCheck:
    """A chip of ``data/transistors.yaml: structural_chips``: MACs x PE + SRAM, plus the
    stated fraction for everything else."""
    f = figures or load_transistor_figures()
    p, w = TRANSISTORS_FILE, f"structural_chips.{key}"
    macs = need(p, w, entry, "macs", int, positive=True) * mac_transistors(need(p, w, entry, "mac_dtype", str))
    bits = need(p, w, entry, "sram_MiB", (int, float), positive=True) * BITS_PER_MIB
    core = macs + sram_transistors(bits, f)
    lo = macs + sram_transistors(bits, f, factor=f.sram_periphery.low)
    hi = macs + sram_transistors(bits, f, factor=f.sram_periphery.high)
    return TransistorCheck(need(p, w, entry, "name", str), "structural", need(p, w, entry, "node", str),
                           float(need(p, w, entry, "die_area_mm2", (int, float), positive=True)),
                           float(need(p, w, entry, "transistors_B", (int, float), positive=True)),
                           core * (1 + f.other_fraction.value) / 1e9, lo * (1 + f.other_fraction.low) / 1e9,
                           hi * (1 + f.other_fraction.high) / 1e9, need(p, w, entry, "source", str),
                           bool(entry.get("uncertain", False)))


def transistor_validation(path: str | Path = TRANSISTORS_FILE) -> tuple[TransistorCheck, ...]:
    """Every chip of the check: the GPUs by density, then the accelerators by structure."""
    p = Path(path)
    d = load_yaml(p)
    f = load_transistor_figures(str(p))
    rows = [density_check(gpu, need(p, f"density_chips.{gpu}", v, "node", str), figures=f)
            for gpu, v in need(p, "", d, "density_chips", dict).items()]
    rows += [structural_check(k, v, f) for k, v in need(p, "", d, "structural_chips", dict).items()]
    return tuple(rows)


def validation_table(rows: tuple[TransistorCheck, ...] | None = None) -> str:
    """The check as a Markdown table."""
    out = ["| chip | method | node | die mm² | published B | estimate B | error % | range B |",
           "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows if rows is not None else transistor_validation():
        out.append(f"| {r.chip} | {r.method} | {r.node} | {r.die_area_mm2:g} | {r.published_B:g} | "
                   f"{r.estimate_B:.1f} | {r.error_pct:+.0f} | {r.low_B:.1f}-{r.high_B:.1f} |")
    return "\n".join(out)

