"""Silicon area: from synthesis of the generated RTL, and an analytic model fitted to it.

Analytic model (transistors, generic-gate flow; NAND2-equivalent = transistors / 4):

    area = rows x cols x PE(dataflow, dtype, overflow, acc_bits) + top(dataflow, rows, cols, ...)

* PE = a + b x acc_bits for each (dataflow, dtype, overflow): the multiplier is fixed by the
  input format and the adder and registers grow linearly with the accumulator (synthesis
  confirms it: e.g. the OS int8 PE grows 233-235 transistors per accumulator bit).
  Floating-point formats accumulate in fp32 only, so their PE is one synthesised constant
  per (dataflow, dtype, subnormals) (b = 0); the top level carries raw bits, so it is the
  same logic as an integer array of the same widths and shares its fit.
* top = g_reg x skew_register_bits + g_mux x output_mux_bits + g_row x rows + g_col x cols
  + g_0 per dataflow, with the register and multiplexer bit counts the array's structure
  implies (operand skew triangles, WS partial-sum skew and de-skew, the OS output-row
  multiplexer), fitted by least squares weighted by 1 / total area (relative error).

* Pipelined floating-point MACs (``mac_stages`` = S > 1): the PE gains S - 1 register
  layers in the MAC and, output-stationary, S - 1 more accumulators and results with
  their select logic. Its size is not linear in S (the cuts sit at boundaries of different
  widths, and ABC simplifies less across them, differently with and without subnormals),
  so the fit holds the synthesised PE of each (dataflow, format, subnormal mode) at
  S = 1..7 and takes it as the PE at S > 1 (S = 1 keeps the fitted constant above). The
  top level counts what S adds: the row-group tag in the output-stationary operand skew,
  that array's output multiplexer over S x rows result rows, and the weight-stationary
  operand skew of k x S cycles for row k, priced at the S = 1 coefficients.

``benchmarks/area_fit.py`` synthesises the training grid, fits, checks configurations the
fit never saw (up to 16x16), and writes ``data/area_fit.yaml`` with coefficients and
residuals. mm² at a node: NAND2-equivalents x NAND2 area / placement utilisation
(``data/nodes.yaml``). SRAM is not synthesised as flip-flops: it is sized as macros
(bits x bitcell / array efficiency, :meth:`Node.sram_mm2`); the bare array has none yet.

A chip's die (:func:`chip_area`) adds to its cores the parts that are not arrays, from
``data/die.yaml`` (each figure with its public source and range): its SRAM at the density
of caches on a logic die (:func:`sram_die_mm2`), control processors (:func:`scalar_core_mm2`)
and the floorplan's white space.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...checks import check_chip, check_int, check_nonnegative
from ...config import AcceleratorConfig
from ...errors import UserError
from ..specs import DATA_DIR, SpecError, UncertainFigure, load_yaml, need, uncertain_figure
from .nodes import get_node

if TYPE_CHECKING:          # typing only: the chip's configuration imports the nodes of this package
    from ..chip.config import ChipConfig

FIT_FILE = DATA_DIR / "area_fit.yaml"
DIE_FILE = DATA_DIR / "die.yaml"
#: The vector lane's gate count is kept beside its energy (``data/energy.yaml: vector_lane``).
ENERGY_FILE = DATA_DIR / "energy.yaml"
TOP_TERMS = ("reg", "mux", "row", "col", "const")


def pe_family(config: AcceleratorConfig) -> str:
    mode = config.subnormals if config.is_float else config.overflow
    return f"{config.dataflow}_{config.dtype}_{mode}"


def top_features(config: AcceleratorConfig, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    R, C = rows or config.rows, cols or config.cols
    b, acc, S = config.input_dtype.bits, config.acc_bits, config.mac_stages
    tri_r, tri_c = R * (R - 1) / 2, C * (C - 1) / 2
    if config.dataflow == "os":
        group_bits = (S - 1).bit_length()        # the row-group tag a pipelined PE's operands carry
        regs = tri_r * (b + 2 + group_bits) + tri_c * b   # A skew with valid/last(/group), B skew
        mux: float = S * R * C * acc              # output row select over S row groups
    else:
        regs = S * tri_r * (b + 3) + 2 * tri_c * acc  # A skew (k x S for row k) with valid/last/bank; psum skew + de-skew
        mux = 0.0
    return np.array([regs, mux, R, C, 1.0])


@dataclass(frozen=True)
class PipelinedPE:
    """A float PE family's synthesised size at each MAC depth S (S = 1 included):
    ``transistors[S]`` and ``flip_flops[S]``."""

    transistors: dict[int, int]
    flip_flops: dict[int, int]

    def growth(self, stages: int) -> tuple[int, int]:
        """(transistors, flip-flops) the PE gains from 1 to ``stages`` MAC stages."""
        return (self.transistors[stages] - self.transistors[1], self.flip_flops[stages] - self.flip_flops[1])


@dataclass(frozen=True)
class AreaFit:
    pe: dict[str, tuple[float, float]]   # family -> (a, b): PE transistors = a + b * acc_bits (S = 1)
    top: dict[str, np.ndarray]           # dataflow -> coefficients for TOP_TERMS
    residuals: dict
    source: str
    pipelined: dict[str, PipelinedPE] = field(default_factory=dict)   # float family -> its PE at each S
    #: flip-flops of the int8 output-stationary PE with a 32-bit accumulator (the energy anchor)
    anchor_flip_flops: int | None = None

    def _pipelined(self, config: AcceleratorConfig) -> PipelinedPE:
        pipe = self.pipelined.get(pe_family(config))
        if pipe is None or config.mac_stages not in pipe.transistors:
            raise UserError(f"mac_stages: no area fit for {pe_family(config)} at {config.mac_stages} stages; "
                            "rerun benchmarks/area_fit.py", parameter="mac_stages")
        return pipe

    def pe_growth(self, config: AcceleratorConfig) -> tuple[float, int]:
        """(transistors, flip-flops) ``config``'s PE gains from its MAC's pipeline
        (``mac_stages`` - 1 register layers and, output-stationary, the extra accumulators
        and results), synthesised: (0, 0) at one stage."""
        if config.mac_stages == 1:
            return 0.0, 0
        tr, ff = self._pipelined(config).growth(config.mac_stages)
        return float(tr), ff

    def pe_transistors(self, config: AcceleratorConfig) -> float:
        """Transistors of one PE of ``config``, its MAC pipeline included."""
        fam = pe_family(config)
        if fam not in self.pe:
            raise UserError(f"dtype: no area fit for {fam}; rerun benchmarks/area_fit.py")
        if config.mac_stages > 1:
            return float(self._pipelined(config).transistors[config.mac_stages])
        a, b = self.pe[fam]
        return a + b * config.acc_bits


def fit(samples: list[tuple[AcceleratorConfig, int, int]]) -> AreaFit:
    """Fit from (config, PE transistors, top-level transistors) synthesis samples."""
    by_family: dict[str, dict[int, int]] = {}
    floats = {pe_family(c) for c, _, _ in samples if c.is_float}
    for c, p, _ in samples:
        by_family.setdefault(pe_family(c), {})[c.acc_bits] = p
    pe = {}
    for fam, pts in sorted(by_family.items()):
        if fam in floats:                  # one accumulator width: the synthesised PE itself
            pe[fam] = (float(next(iter(pts.values()))), 0.0)
            continue
        if len(pts) < 2:
            raise ValueError(f"need PEs of at least two accumulator widths for {fam}, have {sorted(pts)}")
        b, a = np.polyfit(list(pts), list(pts.values()), 1)
        pe[fam] = (float(a), float(b))
    top, res = {}, {}
    partial = AreaFit(pe, {}, {}, "")
    for df in ("os", "ws"):
        rows = [s for s in samples if s[0].dataflow == df]
        if len(rows) < len(TOP_TERMS):
            raise ValueError(f"need at least {len(TOP_TERMS)} {df} samples to fit, have {len(rows)}")
        X = np.array([top_features(c) for c, _, _ in rows])
        y = np.array([t for _, _, t in rows], float)
        total = np.array([c.rows * c.cols * p + t for c, p, t in rows], float)
        w = 1 / total
        top[df] = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)[0]
        pred = np.array([c.rows * c.cols * partial.pe_transistors(c) for c, _, _ in rows]) + X @ top[df]
        rel = (pred - total) / total
        res[df] = {"samples": len(rows), "max_abs_rel_error": float(np.max(np.abs(rel))),
                   "rms_rel_error": float(np.sqrt(np.mean(rel ** 2)))}
    return AreaFit(pe, top, res, "fitted in memory")


def fit_pipelined(base: AreaFit, samples: list[tuple[AcceleratorConfig, int, int]], *,
                  anchor_flip_flops: int) -> AreaFit:
    """``base`` with the pipelined float PEs of ``samples``: (config, PE transistors, PE
    flip-flops) from synthesis, each float family at S = 1 and at each depth it should
    cover. The S = 1 coefficients (PE and top level) stay as they are."""
    tr: dict[str, dict[int, int]] = {}
    ff: dict[str, dict[int, int]] = {}
    for c, t, f in samples:
        if not c.is_float:
            raise ValueError(f"only floating-point MACs are pipelined, not {c.name}")
        tr.setdefault(pe_family(c), {})[c.mac_stages] = t
        ff.setdefault(pe_family(c), {})[c.mac_stages] = f
    missing = sorted(k for k, v in tr.items() if 1 not in v)
    if missing:
        raise ValueError(f"need each pipelined family at one stage too: {missing}")
    pipelined = {k: PipelinedPE(dict(sorted(tr[k].items())), dict(sorted(ff[k].items()))) for k in sorted(tr)}
    return replace(base, pipelined=pipelined, anchor_flip_flops=anchor_flip_flops)


@cache
def load_fit(path: str = str(FIT_FILE)) -> AreaFit:
    p = Path(path)
    d = load_yaml(p)
    pe = {}
    for fam, ab in need(p, "", d, "pe", dict).items():
        pe[fam] = (float(need(p, f"pe.{fam}", ab, "a", (int, float))), float(need(p, f"pe.{fam}", ab, "b", (int, float))))
    top = {}
    for df in ("os", "ws"):
        block = need(p, "top", need(p, "", d, "top", dict), df, dict)
        top[df] = np.array([need(p, f"top.{df}", block, t, (int, float)) for t in TOP_TERMS])
    if "residuals" not in d:
        raise SpecError(p, "residuals", "missing: the fit must report its error")
    pipelined, anchor = _load_pipelined(p, d.get("pipelined_pe"))
    return AreaFit(pe, top, d["residuals"], need(p, "", d, "source", str), pipelined, anchor)


def _load_pipelined(p: Path, block: Any) -> tuple[dict[str, PipelinedPE], int | None]:
    """The ``pipelined_pe`` block: {anchor_flip_flops, pes: {key: {S: {transistors, flip_flops}}}}."""
    if block is None:
        return {}, None
    if not isinstance(block, dict):
        raise SpecError(p, "pipelined_pe", "must be a mapping")
    anchor = need(p, "pipelined_pe", block, "anchor_flip_flops", int, positive=True)
    out = {}
    for key, by_s in need(p, "pipelined_pe", block, "pes", dict).items():
        if not isinstance(by_s, dict) or 1 not in by_s:
            raise SpecError(p, f"pipelined_pe.pes.{key}", "must map stages (1 included) to {transistors, flip_flops}")
        tr, ff = {}, {}
        for s, v in by_s.items():
            where = f"pipelined_pe.pes.{key}.{s}"
            tr[int(s)] = need(p, where, v, "transistors", int, positive=True)
            ff[int(s)] = need(p, where, v, "flip_flops", int, positive=True)
        out[key] = PipelinedPE(tr, ff)
    return out, anchor


@dataclass(frozen=True)
class AreaEstimate:
    transistors: float
    pe_transistors: float
    top_transistors: float
    nand2_equivalent: float
    mm2: float | None
    node: str | None
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict:
        return dict(self.__dict__, assumptions=list(self.assumptions))


MAX_MODEL_DIM = 1024


def model_area(config: AcceleratorConfig, *, node: str | None = None, rows: int | None = None,
               cols: int | None = None, fit_: AreaFit | None = None) -> AreaEstimate:
    """Analytic area of the array for ``config`` (transistors; mm² when ``node`` is given).

    ``rows``/``cols`` override the configuration's size, up to 1024, to extrapolate to
    arrays larger than the generator builds (128x128, 256x256); the result says so.
    """
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    for name, v in (("rows", rows), ("cols", cols)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_MODEL_DIM):
            raise UserError(f"{name}: must be an integer in 1..{MAX_MODEL_DIM}, not {v!r}")
    R, C = rows or config.rows, cols or config.cols
    f = fit_ or load_fit()
    pe = f.pe_transistors(config)
    top = float(top_features(config, R, C) @ f.top[config.dataflow])
    tr = R * C * pe + top
    mm2, notes = None, [f"analytic fit to generic-gate synthesis ({f.source})"]
    if R > 16 or C > 16:
        notes.append(f"{R}x{C} extrapolates beyond the held-out check (up to 16x16)")
    if node is not None:
        n = get_node(node)
        mm2 = n.logic_mm2(tr / 4)
        notes += [f"NAND2 = 4 transistors = {n.nand2_um2:.4f} um2 at {n.name}; placement utilisation "
                  f"{n.placement_utilization:.0%}"] + n.flags()
    return AreaEstimate(tr, pe, top, tr / 4, mm2, node, tuple(notes))


def synth_area_mm2(transistors: float, node: str) -> float:
    """mm² of a synthesised netlist's transistor estimate at ``node``."""
    if transistors <= 0:
        raise UserError(f"transistors: must be > 0, not {transistors}")
    return get_node(node).logic_mm2(transistors / 4)


# -- the parts of a die that are not arrays ------------------------------------------------------
#: An uncertain figure of ``data/die.yaml`` (the project's schema, :class:`~systolab.models.specs.UncertainFigure`).
DieFigure = UncertainFigure


@dataclass(frozen=True)
class DieData:
    """The die figures (``data/die.yaml``): SRAM's bitcell share on a logic die, a control
    processor's area (mm²) and dynamic power (mW/GHz) at ``scalar_core_node``, the white
    space as a fraction of the placed blocks, and the idle (static) floor, W per mm² of die."""

    sram_die_efficiency: DieFigure
    scalar_core_node: str
    scalar_core_mm2: DieFigure
    scalar_core_mW_per_GHz: DieFigure
    whitespace_fraction: DieFigure
    idle_W_per_die_mm2: DieFigure

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, DieFigure) else v for k, v in self.__dict__.items()}


def _die_figure(p: Path, where: str, d: Any) -> DieFigure:
    return uncertain_figure(p, where, d, range_optional=True, positive=True)


@cache
def die_data(path: str = str(DIE_FILE)) -> DieData:
    """The die figures of ``data/die.yaml`` (or a file of its schema), validated."""
    p = Path(path)
    d = load_yaml(p)
    if not isinstance(d, dict) or d.get("schema") != "systolab-die/1":
        raise SpecError(p, "schema", "must be systolab-die/1")
    core = need(p, "", d, "scalar_core", dict)
    node = need(p, "scalar_core", core, "node", str)
    get_node(node)
    eff = _die_figure(p, "sram_die_efficiency", need(p, "", d, "sram_die_efficiency", dict))
    if eff.high > 1:
        raise SpecError(p, "sram_die_efficiency", f"is a share of the area: at most 1, not {eff.high}")
    return DieData(
        eff, node, _die_figure(p, "scalar_core.mm2", need(p, "scalar_core", core, "mm2", dict)),
        _die_figure(p, "scalar_core.dynamic_mW_per_GHz", need(p, "scalar_core", core, "dynamic_mW_per_GHz", dict)),
        _die_figure(p, "whitespace_fraction", need(p, "", d, "whitespace_fraction", dict)),
        _die_figure(p, "idle_W_per_die_mm2", need(p, "", d, "idle_W_per_die_mm2", dict)))


def sram_die_mm2(bits: float, node: str) -> float:
    """Die area of ``bits`` of SRAM at ``node``, mm²: bits x the node's bitcell over the
    bitcell share of a cache on a logic die (``data/die.yaml: sram_die_efficiency``), which
    counts the macros' periphery and the banking, wiring and redundancy around them."""
    bits = check_nonnegative("bits", bits)
    return bits * get_node(node).sram_bitcell_um2.value / die_data().sram_die_efficiency.value / 1e6


def scalar_core_mm2(node: str) -> float:
    """Area of one control processor with its L1 caches at ``node``, mm²: the published core
    (``data/die.yaml: scalar_core``) scaled by the logic density of its node over ``node``'s."""
    d = die_data()
    ref, at = get_node(d.scalar_core_node), get_node(node)
    return d.scalar_core_mm2.value * at.nand2_um2 / ref.nand2_um2


# -- a chip's die ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChipArea:
    """A chip's die area and its parts, mm²; ``basis`` the assumptions behind them."""

    die_mm2: float
    core_array_mm2: float       # one core's array (analytic fit)
    core_sram_mm2: float        # one core's own buffers (SRAM macros)
    cores_mm2: float            # all cores, arrays and buffers
    noc_mm2: float
    global_sram_mm2: float
    dram_phy_mm2: float
    io_mm2: float
    vector_mm2: float
    basis: tuple[str, ...]
    scalar_mm2: float = 0.0     # control processors
    whitespace_mm2: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"die_mm2": self.die_mm2, "core_array_mm2": self.core_array_mm2, "core_sram_mm2": self.core_sram_mm2,
                "cores_mm2": self.cores_mm2, "noc_mm2": self.noc_mm2, "global_sram_mm2": self.global_sram_mm2,
                "dram_phy_mm2": self.dram_phy_mm2, "io_mm2": self.io_mm2, "vector_mm2": self.vector_mm2,
                "scalar_mm2": self.scalar_mm2, "whitespace_mm2": self.whitespace_mm2, "basis": list(self.basis)}


@cache
def vector_lane_area(path: str = str(ENERGY_FILE)) -> tuple[float, str]:
    """(NAND2-equivalents, source) of one lane of a chip's vector unit."""
    p = Path(path)
    lane = need(p, "", load_yaml(p), "vector_lane", dict)
    return need(p, "vector_lane", lane, "nand2_equivalent", (int, float), positive=True), \
        need(p, "vector_lane", lane, "area_source", str)


@lru_cache(maxsize=256)
def core_area(core: AcceleratorConfig, node: str) -> tuple[AreaEstimate, float]:
    """(array area model, core SRAM mm²) of one core at ``node``: the part of a chip's area
    that sizing searches ask for again and again. The core's buffers are SRAM at die-level
    density (:func:`sram_die_mm2`)."""
    return model_area(core, node=node), sram_die_mm2(core.buffer_kib * 1024 * 8, node)


def chip_area(chip: ChipConfig, *, scalar_cores: int = 0) -> ChipArea:
    """Die area of ``chip`` and its breakdown, mm²: its cores (array fit and buffers), the
    NoC as a fraction of them, the global SRAM (SRAM at die-level density), DRAM PHYs, I/O,
    the vector unit, ``scalar_cores`` control processors (:func:`scalar_core_mm2`; a chip
    of ``chips.yaml`` has none) and the white space around all of them (``data/die.yaml``)."""
    check_chip("chip", chip)
    scalar_cores = check_int("scalar_cores", scalar_cores, lo=0, hi=1 << 20)
    node = get_node(chip.node)
    die = die_data()
    array, core_sram = core_area(chip.core, chip.node)
    assert array.mm2 is not None                 # given a node, the model states mm²
    cores = chip.cores * (array.mm2 + core_sram)
    noc = cores * chip.noc_overhead_fraction
    glob = sram_die_mm2(chip.global_sram_mib * 2**20 * 8, chip.node)
    phy = chip.dram.stacks * chip.dram.phy_mm2_per_stack
    lane_nand2, lane_source = vector_lane_area()
    vector = node.logic_mm2(chip.lanes * lane_nand2)
    scalar = scalar_cores * scalar_core_mm2(chip.node)
    blocks = cores + noc + glob + phy + chip.io_area_mm2 + vector + scalar
    white = blocks * die.whitespace_fraction.value
    basis: tuple[str, ...] = (f"SRAM at {die.sram_die_efficiency.value:.3g} bitcell share on the die "
             f"(data/die.yaml: {die.sram_die_efficiency.source})",
             f"white space {die.whitespace_fraction.value:.0%} of the blocks ({die.whitespace_fraction.source})")
    if scalar_cores:
        basis += (f"{scalar_cores} control processors of {scalar_core_mm2(chip.node):.3g} mm2 "
                  f"({die.scalar_core_mm2.source})",)
    return ChipArea(blocks + white, array.mm2, core_sram, cores, noc, glob, phy, chip.io_area_mm2, vector,
                    tuple(array.assumptions) + (lane_source,) + basis, scalar, white)
