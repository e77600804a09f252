"""A custom chip: N identical systolab cores, SRAM, DRAM/HBM, NoC and I/O at a node.

Described in ``data/chips.yaml`` (or any YAML with the same schema) and validated on load;
from it follow peak rates, die area, power, cost and export class, each from the model that
owns it: area from :mod:`.area` (fitted to Yosys synthesis) and :meth:`Node.sram_mm2`,
power and energy from :mod:`.energy`, cost from :mod:`.cost`, time from :mod:`.perf`
(the cycle model of the core's RTL), export class from :mod:`.export_control`.

What the chip model leaves out (stated wherever a number depends on it): the controller
and FIFO logic of each core (the area model covers the array and its skew registers; the
buffers are SRAM macros), reuse through the global SRAM (its area and leakage count, but
every core streams its operands from DRAM as the RTL does), and chip-to-chip scaling.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import AcceleratorConfig
from ..errors import ConfigError, UserError
from .specs import DATA_DIR, SpecError, load_yaml

CHIPS_FILE = DATA_DIR / "chips.yaml"
DRAM_KINDS = ("HBM", "DDR")


@dataclass(frozen=True)
class DramConfig:
    kind: str
    stacks: int
    GB_per_stack: float
    GBps_per_stack: float
    phy_mm2_per_stack: float
    latency_ns: float

    @property
    def GBps(self) -> float:
        return self.stacks * self.GBps_per_stack

    @property
    def GB(self) -> float:
        return self.stacks * self.GB_per_stack


@dataclass(frozen=True)
class ChipConfig:
    name: str
    description: str
    core: AcceleratorConfig
    cores: int
    clock_mhz: float
    node: str
    global_sram_mib: float
    noc_overhead_fraction: float
    io_area_mm2: float
    io_bidir_GBps: float
    dram: DramConfig
    volume_units: int

    # -- peak rates ------------------------------------------------------------------------
    @property
    def peak_tops(self) -> float:
        """Dense peak in the core's dtype: 2 ops per MAC per PE per cycle."""
        return 2 * self.core.rows * self.core.cols * self.cores * self.clock_mhz * 1e6 / 1e12

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    def with_cores(self, cores: int) -> "ChipConfig":
        return replace(self, cores=cores)

    # -- derived views (each from its model) -------------------------------------------------
    def area(self) -> dict:
        """Die area breakdown in mm²."""
        from .area import model_area
        from .nodes import get_node

        node = get_node(self.node)
        array = model_area(self.core, node=self.node)
        buf_kib = self.core.a_buffer_kib + self.core.b_buffer_kib + (self.core.acc_buffer_kib if self.core.dataflow == "ws"
                                                                     else 0)
        core_sram = node.sram_mm2(buf_kib * 1024 * 8)
        cores = self.cores * (array.mm2 + core_sram)
        noc = cores * self.noc_overhead_fraction
        glob = node.sram_mm2(self.global_sram_mib * 2**20 * 8)
        phy = self.dram.stacks * self.dram.phy_mm2_per_stack
        total = cores + noc + glob + phy + self.io_area_mm2
        return {"die_mm2": total, "core_array_mm2": array.mm2, "core_sram_mm2": core_sram, "cores_mm2": cores,
                "noc_mm2": noc, "global_sram_mm2": glob, "dram_phy_mm2": phy, "io_mm2": self.io_area_mm2,
                "basis": list(array.assumptions)}

    def power_W(self) -> dict:
        """Design power: all cores busy at the clock, plus DRAM at full bandwidth."""
        from .energy import chip_power_W, energy_data

        logic = chip_power_W(self.core, cores=self.cores, node=self.node, clock_MHz=self.clock_mhz)
        dram_pj = energy_data()["dram_pJ_per_byte"][self.dram.kind]["value"]
        dram = self.dram.GBps * 1e9 * dram_pj * 1e-12
        return {"tdp_W": logic["total_W"] + dram, "logic_W": logic["total_W"], "leakage_W": logic["leakage_W"],
                "dram_W": dram, "basis": logic["basis"]}

    def unit_cost(self) -> dict:
        from .cost import nre_per_unit, unit_cost

        die = self.area()["die_mm2"]
        part = unit_cost(die_area_mm2=die, node=self.node, memory_GB=self.dram.GB, memory_kind=self.dram.kind)
        nre = nre_per_unit(self.node, self.volume_units)
        return {"usd": part.usd + nre.usd, "low_usd": part.low_usd + nre.low_usd, "high_usd": part.high_usd + nre.high_usd,
                "manufacturing_usd": part.usd, "nre_per_unit_usd": nre.usd, "breakdown": part.breakdown,
                "sources": list(part.sources + nre.sources)}

    def export_class(self, rule_date: str | None = None):
        from .export_control import classify_custom

        return classify_custom(rows=self.core.rows, cols=self.core.cols, dtype=self.core.dtype,
                               clock_mhz=self.clock_mhz, die_area_mm2=self.area()["die_mm2"], cores=self.cores,
                               io_bidir_GBps=self.io_bidir_GBps, dram_bw_GBps=self.dram.GBps, rule_date=rule_date)

    def workload_perf(self, gemms):
        from .perf import workload_perf

        return workload_perf(self.core, gemms, cores=self.cores, clock_hz=self.clock_hz,
                             dram_bytes_per_s=self.dram.GBps * 1e9, dram_latency_ns=self.dram.latency_ns)

    def summary(self) -> dict:
        a, p, c, e = self.area(), self.power_W(), self.unit_cost(), self.export_class()
        return {"name": self.name, "description": self.description, "core": self.core.to_dict(), "cores": self.cores,
                "clock_mhz": self.clock_mhz, "node": self.node, "peak_tops": self.peak_tops,
                "dram_GBps": self.dram.GBps, "dram_GB": self.dram.GB, "die_mm2": a["die_mm2"],
                "tdp_W": p["tdp_W"], "unit_cost_usd": c["usd"], "unit_cost_range_usd": [c["low_usd"], c["high_usd"]],
                "eccn": e.eccn, "tpp": e.tpp, "performance_density": e.performance_density,
                "area": a, "power": p, "cost": c}


# -- loading -----------------------------------------------------------------------------------
def _num(path: Path, where: str, d: dict, key: str, *, lo: float = 0.0, integer: bool = False,
         allow_zero: bool = False) -> Any:
    v = d.get(key)
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or (v < lo if allow_zero else v <= lo):
        raise SpecError(path, f"{where}.{key}", f"must be a {'whole' if integer else ''} number "
                                                f"{'>=' if allow_zero else '>'} {lo:g}, not {v!r}")
    return v


def _chip(path: Path, name: str, d: Any) -> ChipConfig:
    where = f"chips.{name}"
    if not isinstance(d, dict):
        raise SpecError(path, where, "must be a table")
    try:
        core = AcceleratorConfig.from_dict(d.get("core") or {}, source=f"{path}: {where}.core")
    except ConfigError as exc:
        raise SpecError(path, f"{where}.core.{exc.field}", str(exc).split(": ", 1)[-1]) from None
    dr = d.get("dram")
    if not isinstance(dr, dict):
        raise SpecError(path, f"{where}.dram", "must be a table")
    if dr.get("kind") not in DRAM_KINDS:
        raise SpecError(path, f"{where}.dram.kind", f"must be one of {', '.join(DRAM_KINDS)}, not {dr.get('kind')!r}")
    dram = DramConfig(dr["kind"], _num(path, f"{where}.dram", dr, "stacks", integer=True),
                      _num(path, f"{where}.dram", dr, "GB_per_stack"), _num(path, f"{where}.dram", dr, "GBps_per_stack"),
                      _num(path, f"{where}.dram", dr, "phy_mm2_per_stack", allow_zero=True),
                      _num(path, f"{where}.dram", dr, "latency_ns"))
    from .nodes import load_nodes

    if d.get("node") not in load_nodes():
        raise SpecError(path, f"{where}.node", f"must be one of {', '.join(load_nodes())}, not {d.get('node')!r}")
    frac = _num(path, where, d, "noc_overhead_fraction", allow_zero=True)
    if frac >= 1:
        raise SpecError(path, f"{where}.noc_overhead_fraction", f"must be < 1, not {frac}")
    return ChipConfig(name, " ".join(str(d.get("description", "")).split()), core,
                      _num(path, where, d, "cores", integer=True), _num(path, where, d, "clock_mhz"), d["node"],
                      _num(path, where, d, "global_sram_mib", allow_zero=True), frac,
                      _num(path, where, d, "io_area_mm2", allow_zero=True),
                      _num(path, where, d, "io_bidir_GBps", allow_zero=True), dram,
                      _num(path, where, d, "volume_units", integer=True))


@lru_cache(maxsize=8)
def load_chips(path: str = str(CHIPS_FILE)) -> tuple[str, dict[str, ChipConfig]]:
    """(default chip name, chips by name) from a chips YAML file."""
    p = Path(path)
    d = load_yaml(p)
    if not isinstance(d, dict) or d.get("schema") != "systolab-chips/1":
        raise SpecError(p, "schema", "must be systolab-chips/1")
    chips = d.get("chips")
    if not isinstance(chips, dict) or not chips:
        raise SpecError(p, "chips", "must be a non-empty table of chips")
    out = {name: _chip(p, name, c) for name, c in chips.items()}
    default = d.get("default", next(iter(out)))
    if default not in out:
        raise SpecError(p, "default", f"names no chip in the file: {default!r}")
    return default, out


def get_chip(name_or_file: str | None = None) -> ChipConfig:
    """A chip by name from ``data/chips.yaml`` (the default when None), or the default chip
    of another chips YAML file."""
    if name_or_file and Path(name_or_file).suffix in (".yaml", ".yml"):
        if not Path(name_or_file).is_file():
            raise UserError(f"chip: no such file: {name_or_file}")
        default, chips = load_chips(str(Path(name_or_file).resolve()))
        return chips[default]
    default, chips = load_chips()
    name = name_or_file or default
    if name not in chips:
        raise UserError(f"chip: {name!r} is not in {CHIPS_FILE.name} ({', '.join(chips)}) nor a .yaml file")
    return chips[name]


# -- sizing ------------------------------------------------------------------------------------
def fit_cores(chip: ChipConfig, *, die_mm2: float | None = None, power_W: float | None = None) -> ChipConfig:
    """The chip with the most cores that fits a die-area and/or power budget
    ("what fits in 814 mm² at N4 under 700 W")."""
    if die_mm2 is None and power_W is None:
        raise UserError("budget: give die_mm2, power_W or both")
    for name, v in (("die_mm2", die_mm2), ("power_W", power_W)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise UserError(f"{name}: must be > 0, not {v!r}")

    def fits(n: int) -> bool:
        c = chip.with_cores(n)
        return ((die_mm2 is None or c.area()["die_mm2"] <= die_mm2)
                and (power_W is None or c.power_W()["tdp_W"] <= power_W))

    if not fits(1):
        raise UserError("budget: not even one core fits (the fixed parts alone: DRAM PHYs, I/O, global SRAM)")
    lo, hi = 1, 2
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return chip.with_cores(lo)


def match_gpu(chip: ChipConfig, gpu_id: str, *, by: str) -> ChipConfig:
    """The chip resized to a GPU's die area (``by="area"``), power (``"power"``) or price
    (``"price"``, by unit cost) for iso comparisons."""
    from .cost import gpu_price
    from .gpu_specs import get_gpu

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
        best = chip.with_cores(1)
        for n in range(1, 4097):
            c = chip.with_cores(n)
            if c.unit_cost()["usd"] > price.usd:
                break
            best = c
        return best
    raise UserError(f"by: must be area, power or price, not {by!r}")


def largest_outside(chip: ChipConfig, *, allowed: tuple[str, ...] = ("none",), rule_date: str | None = None,
                    max_cores: int = 4096) -> ChipConfig:
    """The chip with the most cores whose ECCN 3A090 class is in ``allowed`` (default: not
    controlled) under the rule set of ``rule_date`` (default: the latest)."""
    if not allowed:
        raise UserError("allowed: name at least one class, e.g. none")
    best = None
    for n in range(1, max_cores + 1):
        if chip.with_cores(n).export_class(rule_date).eccn in allowed:
            best = n
        elif best is not None:
            break
    if best is None:
        raise UserError(f"allowed: no core count up to {max_cores} keeps {chip.name} in {', '.join(allowed)}")
    return chip.with_cores(best)
