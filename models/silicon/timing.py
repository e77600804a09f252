"""Attainable clock (fmax) of a generated design: an estimate from synthesis depth.

Not a sign-off timing analysis. Each register-to-register path's depth in generic two-input
gates (Yosys ``ltp -noff`` after ``abc -g``, :mod:`.synthesis`) is turned into a delay with
sourced per-node figures (``data/timing.yaml``): FO4 delay of the node, FO4 per generic gate,
flip-flop overhead and a margin for wires and corners. Two paths are timed:

* ``pe_mac``: inside the processing element, the multiply and the accumulation into the
  accumulator register: one stage at ``mac_stages`` = 1 (every integer format, and the
  floating-point default); with a pipelined floating-point MAC (``mac_stages`` = S > 1,
  :mod:`systolab.hdl.float_mac`) the deepest of its S stages, the accumulator's loop
  included (each stage pays the register overhead once: the period is that of one stage);
* ``array_top``: the array's top level (operand skew registers, handshake and the global
  enable), plus a buffer tree of log4(fan-out) FO4 for the enable that drives every PE's
  flip-flops.

The slower of the two is the critical path. The chip's SRAM access, DMA and controller are
not timed (see docs/timing.md).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...checks import check_chip
from ...config import AcceleratorConfig
from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .nodes import Node, Sourced, get_node
from .synthesis import SynthesisResult, synthesize

if TYPE_CHECKING:                    # models.chip imports this layer: the type only
    from ..chip.config import ChipConfig

TIMING_FILE = DATA_DIR / "timing.yaml"
METHOD = ("estimate: longest register-to-register depth in generic two-input gates (Yosys ltp) x FO4 per gate "
          "x the node's FO4 delay, plus flip-flop overhead and a margin for wires and corners (data/timing.yaml); "
          "not a sign-off timing analysis")


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
                      need(p, "", d, "chip_stand_in_max_side", int, positive=True))


@dataclass(frozen=True)
class CriticalPath:
    """One register-to-register path: where it lies, its depth in generic gates, the FO4 a
    buffer tree adds, and its delay at the node (ps, the model's value, margin included)."""

    location: str               # "pe_mac" or "array_top"
    depth_gates: int
    fanout_fo4: float
    delay_ps: float

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "depth_gates": self.depth_gates, "fanout_fo4": self.fanout_fo4,
                "delay_ps": self.delay_ps}


@dataclass(frozen=True)
class TimingEstimate:
    """The attainable clock of ``config``'s array at ``node``: ``fmax_mhz`` with its range
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

    def meets(self, clock_mhz: float) -> bool:
        """Whether a clock of ``clock_mhz`` MHz is at or below the estimated fmax."""
        return clock_mhz <= self.fmax_mhz

    def to_dict(self) -> dict[str, Any]:
        """``fmax_mhz`` {value, low, high}, ``critical_path``, ``paths``, the node's FO4 and the method."""
        return {"node": self.node, "fmax_mhz": {"value": self.fmax_mhz, "low": self.fmax_low_mhz,
                                                "high": self.fmax_high_mhz},
                "critical_path": self.critical_path.to_dict(), "paths": [p.to_dict() for p in self.paths],
                "fo4_ps": self.fo4_ps.to_dict(), "method": METHOD}


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
    m = load_delay_model()
    fanout = max(1, synth.pe_count * synth.pe.flip_flops)
    terms = (("pe_mac", synth.pe.logic_depth, 0.0), ("array_top", synth.top.logic_depth, round(math.log(fanout, 4), 2)))
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


def chip_timing(chip: ChipConfig) -> TimingEstimate:
    """The attainable clock of ``chip``'s cores at its node. The PE is the same module at
    every array size; the array's top level is synthesised on a stand-in of at most
    ``chip_stand_in_max_side`` rows and columns (``data/timing.yaml``) to keep this fast."""
    check_chip("chip", chip)
    side = load_delay_model().chip_stand_in_max_side
    core = chip.core
    stand_in = core if max(core.rows, core.cols) <= side else core.replace(rows=min(core.rows, side),
                                                                          cols=min(core.cols, side))
    return timing_estimate(stand_in, chip.node)


def check_timing(chip: ChipConfig, *, warn: bool = True) -> TimingEstimate:
    """``chip``'s :func:`chip_timing`; when its ``clock_mhz`` is above the estimated fmax,
    warn with :class:`TimingWarning` (``warn=True``) or raise a :class:`UserError` naming ``clock_mhz``."""
    check_chip("chip", chip)
    t = chip_timing(chip)
    if not t.meets(chip.clock_mhz):
        msg = (f"clock_mhz: {chip.name} runs at {chip.clock_mhz:g} MHz, above the attainable clock of its "
               f"{chip.core.dtype} cores at {t.node}: fmax {t.fmax_mhz:.0f} MHz (range {t.fmax_low_mhz:.0f}-"
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


__all__ = ["attainable_clock_mhz", "check_timing", "chip_timing", "CriticalPath", "DelayModel", "fmax_mhz",
           "load_delay_model", "METHOD", "timing_estimate", "timing_from_synthesis", "TimingEstimate", "TimingWarning"]
