"""A custom chip's configuration: N identical systolab cores, SRAM, DRAM/HBM, NoC and I/O at a node.

Described in ``data/chips.yaml`` (or any YAML with the same schema) and validated on load.
:class:`ChipConfig` holds the configuration and what follows from it alone (slice sizes,
DRAM bytes per cycle, peak rates, the clock). What the models make of it lives in their
layers and takes a :class:`ChipConfig`: die area (:func:`systolab.models.silicon.area.chip_area`),
design power (:func:`systolab.models.silicon.energy.chip_power`), unit cost
(:func:`systolab.models.cost.pricing.chip_unit_cost`), export class
(:func:`systolab.models.legal.export_control.classify_chip`), time
(:mod:`systolab.models.chip.workload`) and the evaluation of a workload; the facade
:class:`systolab.models.report.chip.Chip` (what :func:`systolab.get_chip` returns) puts
them back together as methods.

What the chip model leaves out (stated wherever a number depends on it): the controller
and FIFO logic of each core and the chip's DMA and routing (the area model covers the
array and its skew registers; the buffers are SRAM macros; the NoC is a fraction of the
cores' area), and chip-to-chip scaling. Time comes from the chip's cycle model
(``models/chip/perf.py``, equal to the chip RTL's counters), with each GEMM blocked over the
global SRAM by the exhaustive search of ``models/chip/blocking.py``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Self

from ...blocking import writeback_stages
from ...checks import check_choice, check_int, check_real
from ...config import AcceleratorConfig, hash_once, state_without_hash
from ...errors import ConfigError, UserError
from ...files import is_user_file
from ..silicon.memory import get_memory_kind, list_memory_kinds
from ..silicon.nodes import load_nodes
from ..specs import DATA_DIR, SpecError, load_yaml
from .perf import beat_spacing

CHIPS_FILE = DATA_DIR / "chips.yaml"


class ReticleWarning(UserWarning):
    """A chip's die is larger than one lithography exposure field can print."""


@dataclass(frozen=True)
class DramConfig:
    """The chip's off-chip memory: ``stacks`` devices (HBM stacks, DRAM channels, GDDR
    packages) of a kind in ``data/memory_kinds.yaml``."""

    kind: str
    stacks: int
    GB_per_stack: float
    GBps_per_stack: float
    phy_mm2_per_stack: float
    latency_ns: float

    def __post_init__(self) -> None:
        _field(self, "kind", lambda v: check_choice("kind", v, list_memory_kinds()))
        _field(self, "stacks", lambda v: check_int("stacks", v, hi=64))
        for name, hi in (("GB_per_stack", 1e5), ("GBps_per_stack", 1e6), ("latency_ns", 1e6)):
            _field(self, name, partial(_positive_real, name, hi=hi))
        _field(self, "phy_mm2_per_stack", lambda v: check_real("phy_mm2_per_stack", v, lo=0.0, hi=1e4))

    @property
    def GBps(self) -> float:
        return self.stacks * self.GBps_per_stack

    @property
    def GB(self) -> float:
        return self.stacks * self.GB_per_stack

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_real(name: str, value: Any, *, hi: float) -> float:
    return check_real(name, value, lo=0.0, lo_open=True, hi=hi)


def _kind_figure(kind: Any, field: str) -> Any:
    """The figure of memory ``kind`` that stands in for DRAM ``field``;
    an unknown kind passes through for :class:`DramConfig` to name."""
    try:
        return getattr(get_memory_kind(kind), DRAM_FROM_KIND[field]).value
    except (UserError, TypeError):        # TypeError: an unhashable kind
        return None


def _field(obj: Any, name: str, check: Callable[[Any], Any]) -> None:
    """Set ``obj.name`` (frozen dataclass) to ``check(value)``; a :class:`UserError` from
    the check becomes a :class:`ConfigError` naming the field."""
    try:
        object.__setattr__(obj, name, check(getattr(obj, name)))
    except ConfigError:
        raise
    except UserError as exc:
        raise ConfigError(name, str(exc).split(": ", 1)[-1]) from None


#: Fields of a chip besides its name and description (the YAML schema; units in the names).
CHIP_FIELDS = ("core", "cores", "clock_mhz", "node", "global_sram_mib", "noc_overhead_fraction", "io_area_mm2",
               "io_bidir_GBps", "dram", "volume_units", "dma_channels", "dma_beat_bytes", "sram_latency_cycles",
               "acc_sram_fraction", "vector_lanes", "float_split_k")
#: The largest K-group count a floating-point chip's write-back adds by default: a tree of
#: two fp32 adder levels, each cut into registered half-adder stages (the write-back is
#: pipelined), so it is not the critical path, and the fp8 default chip's batch-1 decode is
#: within 2 % of int8's at the same clock (docs/timing.md, benchmarks/README.md).
FLOAT_SPLIT_K_DEFAULT = 4
#: The default before the write-back was pipelined (2026-12-08): a chip at this value keeps
#: the field out of its canonical JSON, so the hashes of results stored then still name the
#: chip they were computed for; every other value (the new default included) is hashed.
FLOAT_SPLIT_K_UNHASHED = 2
#: Chip fields a YAML table may leave out, with the value they then take (None: derived).
CHIP_DEFAULTS = {"dma_channels": 1, "dma_beat_bytes": None, "sram_latency_cycles": 2, "acc_sram_fraction": 0.25,
                 "vector_lanes": None, "float_split_k": FLOAT_SPLIT_K_DEFAULT}
DRAM_FIELDS = ("kind", "stacks", "GB_per_stack", "GBps_per_stack", "phy_mm2_per_stack", "latency_ns")
#: DRAM fields a YAML table may leave out: they then take the kind's figure (data/memory_kinds.yaml).
#: What a new memory kind brings to a derived chip (unless the derive gives it): each
#: device's bandwidth, capacity, PHY area and latency, from ``data/memory_kinds.yaml``.
DRAM_FROM_KIND = {"phy_mm2_per_stack": "phy_mm2", "GBps_per_stack": "GBps", "GB_per_stack": "GB",
                  "latency_ns": "latency_ns"}


@dataclass(frozen=True)
class ChipConfig:
    """A custom chip: ``cores`` identical systolab cores, a global SRAM, DRAM/HBM, NoC and
    I/O at a process node. Frozen and validated on construction (a bad field raises
    :class:`ConfigError` naming it); :meth:`derive` makes validated variants.

    Parameters
    ----------
    name, description : str
    core : AcceleratorConfig
        The core every one of the ``cores`` instances is.
    cores : int
        Number of cores, >= 1.
    clock_mhz : float
        Clock of the cores, MHz.
    node : str
        Process node id in ``data/nodes.yaml`` (``n4``, ``n7`` ...).
    global_sram_mib : float
        Shared on-chip SRAM, MiB (>= 0).
    noc_overhead_fraction : float
        NoC, clocking and control area as a fraction of the cores' area, in [0, 1).
    io_area_mm2, io_bidir_GBps : float
        Host and chip-to-chip I/O: its area (mm²) and aggregate bidirectional bandwidth (GB/s).
    dram : DramConfig
    volume_units : int
        Parts the NRE is spread over.
    dma_channels : int
        DMA channels, each with its own port to DRAM and an equal share of its bandwidth
        (a power of two; default 1).
    dma_beat_bytes : int
        A channel's DRAM beat, bytes (a power of two, a multiple of the core's beat;
        default the core's beat).
    sram_latency_cycles : int
        Cycles from a core's read command to its first beat from its SRAM slice (default 2).
    acc_sram_fraction : float
        Share of each core's slice of the global SRAM that holds accumulators (default 0.25).
    vector_lanes : int or None
        32-bit floating-point lanes of the vector unit that runs the non-GEMM work of a
        workload (norms, softmax, activations) at the chip clock; ``None`` (default): one
        per array column of every core (:attr:`lanes`). Its area and power are part of
        the chip's (``data/energy.yaml: vector_lane``).
    float_split_k : int
        Floating-point chips: the most K-groups (split-K ``gk``) whose fp32 partial sums
        the write-back adds, in a fixed-order tree of ``float_split_k`` leaves
        (``log2(float_split_k)`` fp32 adders, each cut into registered stages:
        :attr:`writeback_stages`); a power of two from 1 (no split-K) to the largest power
        of two <= ``cores`` (default 4; the default is cut to that power on smaller chips).
        The controller rejects a float descriptor with a larger ``gk`` and the mapper never
        proposes one. Ignored by integer chips; left out of :meth:`to_dict` and the hash on
        integer chips and at 2 (the default until 2026-12-08), so that every chip keeps the
        identity it had before the default changed.
    """

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
    dma_channels: int = 1
    dma_beat_bytes: int | None = None
    sram_latency_cycles: int = 2
    acc_sram_fraction: float = 0.25
    vector_lanes: int | None = None
    float_split_k: int = FLOAT_SPLIT_K_DEFAULT

    __hash__ = hash_once
    __getstate__ = state_without_hash

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("name", f"must be a non-empty string, not {self.name!r}")
        if not isinstance(self.description, str):
            raise ConfigError("description", f"must be a string, not {type(self.description).__name__}")
        if not isinstance(self.core, AcceleratorConfig):
            raise ConfigError("core", f"must be an AcceleratorConfig, not {type(self.core).__name__}")
        if not isinstance(self.dram, DramConfig):
            raise ConfigError("dram", f"must be a DramConfig, not {type(self.dram).__name__}")
        _field(self, "cores", lambda v: check_int("cores", v, hi=1 << 24))
        _field(self, "clock_mhz", lambda v: check_real("clock_mhz", v, lo=0.0, lo_open=True, hi=100_000.0))
        _field(self, "node", lambda v: check_choice("node", v, tuple(load_nodes())))
        _field(self, "global_sram_mib", lambda v: check_real("global_sram_mib", v, lo=0.0, hi=1 << 20))
        _field(self, "noc_overhead_fraction",
               lambda v: check_real("noc_overhead_fraction", v, lo=0.0, hi=1.0, hi_open=True))
        _field(self, "io_area_mm2", lambda v: check_real("io_area_mm2", v, lo=0.0, hi=1e5))
        _field(self, "io_bidir_GBps", lambda v: check_real("io_bidir_GBps", v, lo=0.0, hi=1e7))
        _field(self, "volume_units", lambda v: check_int("volume_units", v, hi=1 << 40))
        _field(self, "dma_channels", lambda v: check_int("dma_channels", v, hi=1 << 12))
        if self.dma_channels & (self.dma_channels - 1):
            raise ConfigError("dma_channels", f"must be a power of two, not {self.dma_channels}")
        W = self.core.beat_bytes
        if self.dma_beat_bytes is None:
            object.__setattr__(self, "dma_beat_bytes", W)
        _field(self, "dma_beat_bytes", lambda v: check_int("dma_beat_bytes", v, lo=W, hi=1 << 16))
        beat = self.dma_beat
        if beat & (beat - 1) or beat % W:
            raise ConfigError("dma_beat_bytes", f"must be a power of two and a multiple of the core's beat ({W} "
                                                f"bytes), not {self.dma_beat_bytes}")
        _field(self, "sram_latency_cycles", lambda v: check_int("sram_latency_cycles", v, hi=64))
        if self.vector_lanes is not None:
            _field(self, "vector_lanes", lambda v: check_int("vector_lanes", v, hi=1 << 26))
        _field(self, "acc_sram_fraction",
               lambda v: check_real("acc_sram_fraction", v, lo=0.0, lo_open=True, hi=1.0, hi_open=True))
        self._check_float_split_k()
        # what the chip's slices and accumulate-on-write need of the core (see hdl/chip.py)
        cfg = self.core
        if cfg.acc_bits % 8:
            raise ConfigError("core.acc_bits", f"must be a whole number of bytes on a chip (partial sums are added "
                                               f"in the SRAM in the accumulators' width), not {cfg.acc_bits}")
        if cfg.cols * cfg.acc_bytes % W:
            raise ConfigError("core.cols", f"cols x accumulator bytes ({cfg.cols} x {cfg.acc_bytes}) must be a "
                                           f"multiple of beat_bytes ({W}) so that every N-tile's results start on a beat")

    def _check_float_split_k(self) -> None:
        """A power of two up to the cores' largest (the default passes on a 1-core chip,
        whose tree then has one leaf, and on integer chips, which ignore it)."""
        _field(self, "float_split_k", lambda v: check_int("float_split_k", v, hi=1 << 24))
        k = self.float_split_k
        if k & (k - 1):
            raise ConfigError("float_split_k", f"must be a power of two, not {k}")
        top = largest_power_of_two(self.cores)
        if self.core.is_float and k > top and k != FLOAT_SPLIT_K_DEFAULT:
            raise ConfigError("float_split_k", f"must be at most {top} (the largest power of two <= cores, "
                                               f"{self.cores}), not {k}")

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Self:
        """A chip from its YAML table; unknown or missing keys raise :class:`ConfigError`
        naming them (``dram.kind``, ``core.rows`` ...)."""
        if not isinstance(data, Mapping):
            raise ConfigError(name, "must be a table of chip fields")
        unknown = sorted(set(data) - set(CHIP_FIELDS) - {"description"})
        if unknown:
            raise ConfigError(unknown[0], f"unknown chip field; known fields: {', '.join(CHIP_FIELDS)}, description")
        missing = [k for k in CHIP_FIELDS if k not in data and k not in CHIP_DEFAULTS]
        if missing:
            raise ConfigError(missing[0], "missing")
        try:
            core = AcceleratorConfig.from_dict(data["core"], source="core")
        except ConfigError as exc:
            raise ConfigError(f"core.{exc.field}", str(exc).split(": ", 1)[-1]) from None
        dr = data["dram"]
        if not isinstance(dr, Mapping):
            raise ConfigError("dram", "must be a table")
        unknown = sorted(set(dr) - set(DRAM_FIELDS))
        if unknown:
            raise ConfigError(f"dram.{unknown[0]}", f"unknown DRAM field; known fields: {', '.join(DRAM_FIELDS)}")
        missing = [k for k in DRAM_FIELDS if k not in dr and k not in DRAM_FROM_KIND]
        if missing:
            raise ConfigError(f"dram.{missing[0]}", "missing")
        try:
            dram = DramConfig(**{k: dr[k] if k in dr else _kind_figure(dr["kind"], k) for k in DRAM_FIELDS})
        except ConfigError as exc:
            raise ConfigError(f"dram.{exc.field}", str(exc).split(": ", 1)[-1]) from None
        rest = {k: data.get(k, CHIP_DEFAULTS.get(k)) for k in CHIP_FIELDS if k not in ("core", "dram")}
        return cls(name=name, description=" ".join(str(data.get("description", "")).split()), core=core,
                   dram=dram, **rest)

    def to_dict(self) -> dict[str, Any]:
        """The chip's fields as its YAML table holds them (plus ``name``); ``float_split_k``
        only on a floating-point chip and away from ``FLOAT_SPLIT_K_UNHASHED`` (the default
        before 2026-12-08, so that older hashes keep their meaning)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.core.is_float or self.float_split_k == FLOAT_SPLIT_K_UNHASHED:
            del d["float_split_k"]
        d["core"], d["dram"] = self.core.to_dict(), self.dram.to_dict()
        return d

    def canonical_json(self) -> str:
        """Every field but the name and description, as canonical JSON."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("name", "description")}
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of :meth:`canonical_json`: equal hardware, equal hash."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    # -- variants ----------------------------------------------------------------------------
    def derive(self, *, name: str | None = None, **changes: Any) -> Self:
        """A validated variant: core fields (``rows``, ``cols``, ``dataflow``, ``dtype``,
        buffers ...), chip fields (``cores``, ``clock_mhz``, ``node``, ``global_sram_mib`` ...)
        and DRAM fields (``dram_stacks``, ``dram_kind``, ``dram_GBps_per_stack`` ...); a new
        ``dram_kind`` brings its devices' bandwidth, capacity, PHY area and latency, unless
        given (``dram_GBps_per_stack`` ...).
        Renamed ``<name>+<field>=<value>,...`` unless ``name`` is given. Keeps the class
        (a :class:`~systolab.models.report.chip.Chip`'s variant is a ``Chip``, which also
        warns with :class:`ReticleWarning` when its die exceeds the reticle limit)."""
        core_keys = {f.name for f in fields(AcceleratorConfig)}
        core: dict[str, Any] = {}
        chip: dict[str, Any] = {}
        dram: dict[str, Any] = {}
        for key, value in changes.items():
            if key in core_keys:
                core[key] = value
            elif key.startswith("dram_") and key[5:] in DRAM_FIELDS:
                dram[key[5:]] = value
            elif key in CHIP_FIELDS and key not in ("core", "dram"):
                chip[key] = value
            else:
                known = sorted(core_keys) + [k for k in CHIP_FIELDS if k not in ("core", "dram")] + \
                    [f"dram_{k}" for k in DRAM_FIELDS]
                raise UserError(f"{key}: not a chip, core or DRAM field; known: {', '.join(known)}", parameter=key)
        if not changes and name is None:
            return self
        if "kind" in dram and dram["kind"] != self.dram.kind:
            for key in DRAM_FROM_KIND:
                dram.setdefault(key, _kind_figure(dram["kind"], key))
        auto = self.name + "+" + ",".join(f"{k}={changes[k]}" for k in sorted(changes)) if changes else self.name
        return replace(self, name=name if name is not None else auto,
                       core=self.core.replace(**core) if core else self.core,
                       dram=replace(self.dram, **dram) if dram else self.dram, **chip)

    def with_cores(self, cores: int) -> Self:
        """The chip resized to ``cores`` cores, each keeping its slice of the global SRAM
        (so blockings that fit one chip fit the other); ``float_split_k`` at most the new
        cores' largest power of two."""
        split = self.float_split_k
        if split != FLOAT_SPLIT_K_DEFAULT:
            split = min(split, largest_power_of_two(cores))
        return replace(self, cores=cores, global_sram_mib=self.global_sram_mib * cores / self.cores,
                       float_split_k=split)

    @property
    def dma_beat(self) -> int:
        """A DMA channel's DRAM beat, bytes: ``dma_beat_bytes``, which validation resolves
        (None becomes the core's beat)."""
        assert self.dma_beat_bytes is not None
        return self.dma_beat_bytes

    # -- the global SRAM, one slice per core ---------------------------------------------
    @property
    def slice_bytes(self) -> int:
        """Bytes of global SRAM per core."""
        return int(self.global_sram_mib * 2**20) // self.cores

    @property
    def operand_words(self) -> int:
        """Words (core beats) of a slice's operand memory, both buffers, in whole DMA beats."""
        beat = self.dma_beat
        return 2 * int(self.slice_bytes * (1 - self.acc_sram_fraction) / 2 // beat) * (beat // self.core.beat_bytes)

    @property
    def acc_words(self) -> int:
        """Words (core beats) of a slice's accumulator memory, both buffers, in whole DMA beats."""
        beat = self.dma_beat
        return 2 * int(self.slice_bytes * self.acc_sram_fraction / 2 // beat) * (beat // self.core.beat_bytes)

    @property
    def slice_queue_depth(self) -> int:
        """Commands a slice's port holds: more than a core's loader keeps in flight."""
        return 2 * (self.core.tile_m + self.core.cols) + 8

    @property
    def writeback_stages(self) -> int:
        """Register stages of the write-back reduction (derived, not a field): a DMA
        write-back beat is offered this many cycles after its accumulator read
        (:func:`~systolab.blocking.writeback_stages`: the cores, the accumulators' format and,
        for floats, ``float_split_k``; docs/timing.md)."""
        return writeback_stages(self.cores, is_float=self.core.is_float, split_k=self.float_split_k)

    @property
    def dram_latency_cycles(self) -> int:
        return max(1, round(self.dram.latency_ns * self.clock_mhz / 1000))

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per clock cycle, all channels together (reads and writes
        share it)."""
        return self.dram.GBps * 1e3 / self.clock_mhz

    @property
    def channel_bytes_per_cycle(self) -> float:
        """Each DMA channel's share of the DRAM bandwidth, bytes per cycle (rounded to 9
        significant digits, so that 4915.2 GB/s over 8 channels at 1.2 GHz is 512 exactly)."""
        return float(f"{self.dram_bytes_per_cycle / self.dma_channels:.9g}")

    @property
    def dram_effective_bytes_per_cycle(self) -> float:
        """What the DMA can move a cycle, all channels together: a channel moves whole beats,
        so a beat wider than the channel's share waits for the share to fill it (``hdl/dma.py``,
        ``sim/memory.py``), and a narrower one leaves the rest unused."""
        spacing = beat_spacing(self.dma_beat, self.channel_bytes_per_cycle)
        return self.dma_channels * min(self.dma_beat / spacing, self.channel_bytes_per_cycle)

    # -- peak rates ------------------------------------------------------------------------
    @property
    def peak_tops(self) -> float:
        """Dense peak in the core's dtype: 2 ops per MAC per PE per cycle."""
        return 2 * self.core.rows * self.core.cols * self.cores * self.clock_mhz * 1e6 / 1e12

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def lanes(self) -> int:
        """Lanes of the vector unit: ``vector_lanes``, or one per array column of every core."""
        return self.vector_lanes or self.cores * self.core.cols


def largest_power_of_two(n: int) -> int:
    """The largest power of two <= ``n`` (>= 1)."""
    return 1 << (max(1, n).bit_length() - 1)


# -- loading -----------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _load_chips(path: str, mtime_ns: int) -> tuple[str, dict[str, ChipConfig]]:
    p = Path(path)
    d = load_yaml(p)
    if not isinstance(d, dict) or d.get("schema") != "systolab-chips/1":
        raise SpecError(p, "schema", "must be systolab-chips/1")
    unknown = sorted(set(d) - {"schema", "default", "chips"})
    if unknown:
        raise SpecError(p, unknown[0], "unknown top-level key; known: schema, default, chips")
    chips = d.get("chips")
    if not isinstance(chips, dict) or not chips:
        raise SpecError(p, "chips", "must be a non-empty table of chips")
    out = {}
    for name, c in chips.items():
        try:
            out[str(name)] = ChipConfig.from_dict(str(name), c)
        except ConfigError as exc:
            raise SpecError(p, f"chips.{name}.{exc.field}", str(exc).split(": ", 1)[-1]) from None
    default = d.get("default", next(iter(out)))
    if default not in out:
        raise SpecError(p, "default", f"names no chip in the file: {default!r}")
    return default, out


def load_chips(path: str | Path = CHIPS_FILE) -> tuple[str, dict[str, ChipConfig]]:
    """(default chip name, chips by name) from a chips YAML file, validated: a bad file
    names the file and the field (``chips.x.dram.kind``)."""
    p = Path(path)
    if not is_user_file(path, parameter="chip"):       # the checked opener: over-long names, /proc, folders
        raise SpecError(p, "(file)", "no such file")
    return _load_chips(str(p.resolve()), p.stat().st_mtime_ns)


def list_chips() -> list[str]:
    """Names of the chips in ``data/chips.yaml`` (the default first)."""
    default, chips = load_chips()
    return [default] + [n for n in chips if n != default]


def get_chip(name_or_file: str | ChipConfig | None = None) -> ChipConfig:
    """A chip by name from ``data/chips.yaml`` (the default when None), or the default chip
    of another chips YAML file: its configuration (``systolab.get_chip`` returns it as a
    :class:`~systolab.models.report.chip.Chip`, with the models' views as methods)."""
    if isinstance(name_or_file, ChipConfig):
        return name_or_file
    if name_or_file is not None and not isinstance(name_or_file, str):
        raise UserError(f"chip: give a chip name or a .yaml file, not {type(name_or_file).__name__}")
    if name_or_file is not None and not name_or_file.strip():
        raise UserError("chip: give a chip name or a chips YAML file, not an empty string (None: the default chip)",
                        parameter="chip")
    if name_or_file and Path(name_or_file).suffix in (".yaml", ".yml"):
        if not is_user_file(name_or_file, parameter="chip"):
            raise UserError(f"chip: no such file: {name_or_file}", parameter="chip")
        try:
            default, chips = load_chips(name_or_file)
        except SpecError as exc:        # the file's own errors name the file and field; the parameter is chip
            raise UserError(f"chip: {exc}", parameter="chip") from None
        return chips[default]
    default, chips = load_chips()
    name = name_or_file or default
    if name not in chips:
        raise UserError(f"chip: {name!r} is not in {CHIPS_FILE.name} ({', '.join(chips)}) nor a .yaml file")
    return chips[name]
