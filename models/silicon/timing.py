"""Attainable clock (fmax) of a generated design: an estimate from synthesis depth.

Not a sign-off timing analysis. Each register-to-register path's depth in generic two-input
gates (Yosys ``ltp -noff`` after ``abc -g``, :mod:`.synthesis`) is turned into a delay with
sourced per-node figures (``data/timing.yaml``): FO4 delay of the node, FO4 per generic gate,
flip-flop overhead and a margin for wires and corners. The core's two paths are timed:

* ``pe_mac``: inside the processing element, the multiply and the accumulation into the
  accumulator register: one stage at ``mac_stages`` = 1 (every integer format, and the
  floating-point default); with a pipelined floating-point MAC (``mac_stages`` = S > 1,
  :mod:`systolab.hdl.float_mac`) the deepest of its S stages, the accumulator's loop
  included (each stage pays the register overhead once: the period is that of one stage);
* ``array_top``: the array's top level (operand skew registers, handshake and the global
  enable), plus a buffer tree of log4(fan-out) FO4 for the enable that drives every PE's
  flip-flops.

A chip (:func:`chip_timing`) adds its write-back reduction:

* ``writeback_sum``: the deepest register stage of one lane of
  :class:`~systolab.hdl.chip_parts.WriteBackSum` (the per-core select and the sum of the
  K-groups' partial sums a DMA write-back beat carries: a carry-save tree of the cores'
  32-bit words then their add for integers, the fixed pairwise fp32 tree for floats, in the
  chip's :func:`~systolab.blocking.writeback_stages` stages), registered in and out, for the
  chip's core count and accumulator format, plus log4(lanes) FO4 for the select signals
  that drive every lane of the channel's beat. Up to ``writeback_stand_in_max_cores``
  (``data/timing.yaml``) the stand-in is the chip's own; beyond it, the stand-in of that
  size, whose stages are as deep as the larger design's (:func:`writeback_depth_gates`).

The slowest path is the critical path. The chip's SRAM access, DMA and controller are not
timed (see docs/timing.md).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...blocking import writeback_stages
from ...checks import check_chip, check_int
from ...config import AcceleratorConfig
from ...errors import UserError
from ...hdl.chip_parts import WriteBackSum
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .nodes import Node, Sourced, get_node
from .synthesis import SynthesisResult, synthesize, synthesize_part

if TYPE_CHECKING:                    # models.chip imports this layer: the type only
    from ..chip.config import ChipConfig

TIMING_FILE = DATA_DIR / "timing.yaml"
METHOD = ("estimate: longest register-to-register depth in generic two-input gates (Yosys ltp) x FO4 per gate "
          "x the node's FO4 delay, plus flip-flop overhead and a margin for wires and corners (data/timing.yaml); "
          "not a sign-off timing analysis")


#: What each timed path is, in words (for notes and reports).
PATH_NAMES = {"pe_mac": "the processing element's MAC", "array_top": "the array's control and enable",
              "writeback_sum": "the write-back's sum of the K-groups' partial sums"}


class TimingWarning(UserWarning):
    """A chip's ``clock_mhz`` is above the attainable clock its design's critical path allows."""


@dataclass(frozen=True)
class DelayModel:
    """The figures of ``data/timing.yaml``: FO4 delay per node (ps) and the path's terms in FO4."""

    fo4_ps: dict[str, Sourced]
    fo4_per_gate: Sourced
    register_overhead_fo4: Sourced
    margin_fraction: Sourced
    chip_stand_in_max_side: int
    writeback_stand_in_max_cores: dict[str, int]      # "int" and "float": the largest write-back stand-in

    def period_ps(self, depth_gates: float, node: str, *, extra_fo4: float = 0.0, end: str = "value") -> float:
        """Clock period (ps) a path of ``depth_gates`` generic gates needs at ``node``; ``end``
        picks the figures: ``value``, ``slow`` (every figure at its slow end) or ``fast``."""
        if node not in self.fo4_ps:
            raise UserError(f"node: no FO4 delay for {node!r} in {TIMING_FILE.name}; known: {', '.join(self.fo4_ps)}",
                            parameter="node")
        pick = {"value": lambda s: s.value, "slow": lambda s: s.bounds[1], "fast": lambda s: s.bounds[0]}[end]
        fo4 = depth_gates * pick(self.fo4_per_gate) + pick(self.register_overhead_fo4) + extra_fo4
        return fo4 * pick(self.fo4_ps[node]) * (1 + pick(self.margin_fraction))


def _figure(p: Path, where: str, f: Any) -> Sourced:
    num = (int, float)
    value = need(p, where, f, "value", num, positive=True)
    low, high = need(p, where, f, "low", num, positive=True), need(p, where, f, "high", num, positive=True)
    if not low <= value <= high:
        raise SpecError(p, where, f"needs low <= value <= high, not {low}, {value}, {high}")
    return Sourced(float(value), need(p, where, f, "source", str), need(p, where, f, "confidence", str),
                   float(low), float(high))


@cache
def load_delay_model(path: str = str(TIMING_FILE)) -> DelayModel:
    """The delay model of ``path`` (default ``data/timing.yaml``), validated."""
    p = Path(path)
    d = load_yaml(p)
    fo4 = need(p, "", d, "fo4_ps", dict)
    return DelayModel({name: _figure(p, f"fo4_ps.{name}", f) for name, f in fo4.items()},
                      _figure(p, "fo4_per_gate", need(p, "", d, "fo4_per_gate", dict)),
                      _figure(p, "register_overhead_fo4", need(p, "", d, "register_overhead_fo4", dict)),
                      _figure(p, "margin_fraction", need(p, "", d, "margin_fraction", dict)),
                      need(p, "", d, "chip_stand_in_max_side", int, positive=True),
                      _stand_in_caps(p, need(p, "", d, "writeback_stand_in_max_cores", dict)))


def _stand_in_caps(p: Path, d: dict) -> dict[str, int]:
    caps = {kind: need(p, "writeback_stand_in_max_cores", d, kind, int, positive=True) for kind in ("int", "float")}
    for kind, cap in caps.items():
        if cap < 2 or cap & (cap - 1):
            raise SpecError(p, f"writeback_stand_in_max_cores.{kind}", f"needs a power of two >= 2, not {cap}")
    return caps


@dataclass(frozen=True)
class CriticalPath:
    """One register-to-register path: where it lies, its depth in generic gates, the FO4 a
    buffer tree adds, and its delay at the node (ps, the model's value, margin included)."""

    location: str               # "pe_mac", "array_top" or (a chip's) "writeback_sum"
    depth_gates: int
    fanout_fo4: float
    delay_ps: float

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "depth_gates": self.depth_gates, "fanout_fo4": self.fanout_fo4,
                "delay_ps": self.delay_ps}


@dataclass(frozen=True)
class TimingEstimate:
    """The attainable clock of ``config``'s array (or a chip of such cores) at ``node``: ``fmax_mhz`` with its range
    (``fmax_low_mhz`` with every figure at its slow end, ``fmax_high_mhz`` at its fast end),
    the ``critical_path`` and every path timed."""

    config: AcceleratorConfig
    node: str
    fmax_mhz: float
    fmax_low_mhz: float
    fmax_high_mhz: float
    critical_path: CriticalPath
    paths: tuple[CriticalPath, ...]
    fo4_ps: Sourced
    writeback_stages: int | None = None          # a chip's (:func:`chip_timing`): its write-back's register stages

    def meets(self, clock_mhz: float) -> bool:
        """Whether a clock of ``clock_mhz`` MHz is at or below the estimated fmax."""
        return clock_mhz <= self.fmax_mhz

    def to_dict(self) -> dict[str, Any]:
        """``fmax_mhz`` {value, low, high}, ``critical_path``, ``paths``, the node's FO4 and the
        method; a chip's also ``writeback_stages``."""
        d: dict[str, Any] = {"node": self.node, "fmax_mhz": {"value": self.fmax_mhz, "low": self.fmax_low_mhz,
                                             "high": self.fmax_high_mhz},
             "critical_path": self.critical_path.to_dict(), "paths": [p.to_dict() for p in self.paths],
             "fo4_ps": self.fo4_ps.to_dict(), "method": METHOD}
        if self.writeback_stages is not None:
            d["writeback_stages"] = self.writeback_stages
        return d


def fmax_mhz(depth_gates: float, node: str | Node, *, extra_fo4: float = 0.0) -> tuple[float, float, float]:
    """Attainable clock (MHz) of a path ``depth_gates`` generic gates deep at ``node``, plus
    ``extra_fo4`` FO4 (a buffer tree): (value, low, high)."""
    n = get_node(node).name
    if isinstance(depth_gates, bool) or not isinstance(depth_gates, (int, float)) or depth_gates < 0:
        raise UserError(f"depth_gates: must be a number >= 0, not {depth_gates!r}", parameter="depth_gates")
    m = load_delay_model()
    return tuple(1e6 / m.period_ps(depth_gates, n, extra_fo4=extra_fo4, end=e)  # type: ignore[return-value]
                 for e in ("value", "slow", "fast"))


def timing_from_synthesis(synth: SynthesisResult, config: AcceleratorConfig, node: str | Node) -> TimingEstimate:
    """The :class:`TimingEstimate` of a synthesised array (generic-gate flow) at ``node``."""
    n = get_node(node).name
    if synth.pe.logic_depth is None or synth.top.logic_depth is None:
        raise UserError("liberty: timing needs the generic-gate synthesis (its logic depth), not a Liberty mapping",
                        parameter="liberty")
    fanout = max(1, synth.pe_count * synth.pe.flip_flops)
    terms = (("pe_mac", synth.pe.logic_depth, 0.0), ("array_top", synth.top.logic_depth, round(math.log(fanout, 4), 2)))
    return _estimate(config, n, terms)


def _estimate(config: AcceleratorConfig, n: str, terms) -> TimingEstimate:
    """The estimate from (location, depth in gates, extra FO4) terms: the slowest is critical."""
    m = load_delay_model()
    paths = tuple(CriticalPath(loc, depth, extra, m.period_ps(depth, n, extra_fo4=extra))
                  for loc, depth, extra in terms)
    worst = max(paths, key=lambda p: p.delay_ps)
    value, low, high = fmax_mhz(worst.depth_gates, n, extra_fo4=worst.fanout_fo4)
    return TimingEstimate(config, n, value, low, high, worst, paths, m.fo4_ps[n])


def timing_estimate(config: AcceleratorConfig, node: str | Node = "n7") -> TimingEstimate:
    """Synthesise ``config``'s array (cached) and estimate its attainable clock at ``node``."""
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    n = get_node(node)
    load_delay_model().period_ps(1, n.name)           # an unknown node is named before synthesis
    return timing_from_synthesis(synthesize(config), config, n)


def _writeback_stand_in(cores: int, acc_bytes: int, float_subnormals: str | None, leaves: int | None = None) -> int:
    """Depth (gates) of the deepest stage of one lane of ``WriteBackSum`` for ``cores``
    cores (a float tree of ``leaves``, None: as many as the cores), synthesised (cached)."""
    key: dict[str, Any] = {"cores": cores, "lanes": 1, "acc_bytes": acc_bytes, "float_subnormals": float_subnormals,
                           "stages": writeback_stages(cores, is_float=float_subnormals is not None, split_k=leaves)}
    if leaves is not None:
        key["split_k"] = leaves
    stats = synthesize_part("writeback_sum", key, lambda: WriteBackSum(cores=cores, lanes=1, acc_bytes=acc_bytes,
                                                                       float_subnormals=float_subnormals,
                                                                       split_k=leaves))
    assert stats.logic_depth is not None             # the generic-gate flow reports it
    return stats.logic_depth


def writeback_depth_gates(cores: int, *, acc_bytes: int = 4, float_subnormals: str | None = None,
                          split_k: int | None = None) -> int:
    """Depth in generic gates of the deepest register stage of one lane of a chip's
    write-back reduction (:class:`~systolab.hdl.chip_parts.WriteBackSum`, registered in and
    out, in its :func:`~systolab.blocking.writeback_stages` stages) for ``cores`` cores:
    integer accumulators of ``acc_bytes`` bytes, or fp32 ones (``float_subnormals``
    ``"keep"`` or ``"flush"``) added in a tree of ``split_k`` leaves (the chip's
    ``float_split_k``; None: the largest power of two <= ``cores``; at most that).

    Synthesised up to ``writeback_stand_in_max_cores`` (``data/timing.yaml``). Beyond it the
    stand-in of that many cores holds a stage as deep as each of the larger design's: for
    integers its first stage has the core select and the whole
    :data:`~systolab.blocking.CSA_LEVELS_PER_STAGE` carry-save levels a stage holds (later
    stages have no select and at most as many levels) and the same final 32-bit add; for
    floats every stage is at most half an fp32 adder (or the select of the leaves). Left out: the
    select's compare of one more core-index bit per doubling of the cores (one gate or
    so, against the 60 of the final add or the ~196 of an adder)."""
    cores = check_int("cores", cores)
    acc_bytes = check_int("acc_bytes", acc_bytes)
    top_leaves = 1 << (cores.bit_length() - 1)
    if split_k is not None:
        split_k = check_int("split_k", split_k)
        if split_k & (split_k - 1):
            raise UserError(f"split_k: must be a power of two, not {split_k}", parameter="split_k")
    leaves = top_leaves if split_k is None or float_subnormals is None else min(split_k, top_leaves)
    cap = load_delay_model().writeback_stand_in_max_cores["int" if float_subnormals is None else "float"]
    n = min(cores, cap)
    given = None if float_subnormals is None else min(leaves, 1 << (n.bit_length() - 1))
    return _writeback_stand_in(n, acc_bytes, float_subnormals, given)


def chip_timing(chip: ChipConfig) -> TimingEstimate:
    """The attainable clock of ``chip`` at its node: its cores' paths (:func:`timing_estimate`)
    and its write-back reduction (``writeback_sum``: the deepest of its
    ``chip.writeback_stages`` register stages, :func:`writeback_depth_gates` for its core
    count and accumulators, a float chip's tree of ``float_split_k`` leaves, plus log4 of the
    lanes of a DMA beat in FO4 for the select signals' fan-out, charged to that stage
    whichever it is: conservative where it is the final add). The PE is the same module at every array size; the array's top level
    is synthesised on a stand-in of at most ``chip_stand_in_max_side`` rows and columns
    (``data/timing.yaml``) to keep this fast."""
    check_chip("chip", chip)
    side = load_delay_model().chip_stand_in_max_side
    core = chip.core
    stand_in = core if max(core.rows, core.cols) <= side else core.replace(rows=min(core.rows, side),
                                                                          cols=min(core.cols, side))
    cores_t = timing_estimate(stand_in, chip.node)
    subnormals = core.subnormals if core.is_float else None
    lanes = max(1, chip.dma_beat // core.acc_bytes)           # accumulator words in a DMA beat
    wb = writeback_depth_gates(chip.cores, acc_bytes=core.acc_bytes, float_subnormals=subnormals,
                               split_k=chip.float_split_k if core.is_float else None)
    terms = [(p.location, p.depth_gates, p.fanout_fo4) for p in cores_t.paths]
    terms.append(("writeback_sum", wb, round(math.log(lanes, 4), 2)))
    return replace(_estimate(stand_in, cores_t.node, terms), writeback_stages=chip.writeback_stages)


def check_timing(chip: ChipConfig, *, warn: bool = True) -> TimingEstimate:
    """``chip``'s :func:`chip_timing`; when its ``clock_mhz`` is above the estimated fmax,
    warn with :class:`TimingWarning` (``warn=True``) or raise a :class:`UserError` naming ``clock_mhz``."""
    check_chip("chip", chip)
    t = chip_timing(chip)
    if not t.meets(chip.clock_mhz):
        msg = (f"clock_mhz: {chip.name} runs at {chip.clock_mhz:g} MHz, above the attainable clock of its "
               f"{chip.core.dtype} design at {t.node}: fmax {t.fmax_mhz:.0f} MHz (range {t.fmax_low_mhz:.0f}-"
               f"{t.fmax_high_mhz:.0f}; critical path {t.critical_path.location}, "
               f"{t.critical_path.depth_gates} gates; an estimate, docs/timing.md)")
        if not warn:
            raise UserError(msg, parameter="clock_mhz")
        warnings.warn(msg, TimingWarning, stacklevel=2)
    return t


def attainable_clock_mhz(chip: ChipConfig) -> float:
    """The clock ``chip`` can run at: the lower of its ``clock_mhz`` and its estimated fmax, MHz."""
    check_chip("chip", chip)
    return min(chip.clock_mhz, chip_timing(chip).fmax_mhz)


__all__ = ["PATH_NAMES", "attainable_clock_mhz", "check_timing", "chip_timing", "CriticalPath", "DelayModel", "fmax_mhz",
           "load_delay_model", "METHOD", "timing_estimate", "timing_from_synthesis", "TimingEstimate", "TimingWarning",
           "writeback_depth_gates"]
