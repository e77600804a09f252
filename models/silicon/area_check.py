"""An array's area two ways, side by side: synthesised (Yosys, generic gates, optionally
mapped to a Liberty library) and from the analytic model fitted to synthesis, at a
process node: what ``systolab area`` reports; and a chip's die area with its attainable
clock (``systolab area --chip``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import AcceleratorConfig
from .area import AreaEstimate, ChipArea, chip_area, model_area, synth_area_mm2
from .nodes import Node, get_node
from .synthesis import SynthesisResult, synthesize
from .timing import TimingEstimate, chip_timing, timing_from_synthesis

if TYPE_CHECKING:                    # models.chip imports this layer: the type only
    from ..chip.config import ChipConfig


@dataclass(frozen=True)
class AreaCheck:
    """The synthesised area of ``config``'s array against the model's, at ``node``."""

    config: AcceleratorConfig
    node: Node
    synth: SynthesisResult              # the generic-gate flow
    model: AreaEstimate                 # at the node
    synth_area_mm2: float               # the synthesised transistors at the node, mm²
    liberty: str | None = None          # a Liberty library the array was also mapped to
    liberty_area_um2: float | None = None   # its area there, µm² (at the library's own process)
    timing: TimingEstimate | None = None    # attainable clock at the node (an estimate from the synthesis depth)

    @property
    def model_error_pct(self) -> float:
        """The model's area over synthesis's, minus one, in percent."""
        return 100 * (self.model_mm2 - self.synth_area_mm2) / self.synth_area_mm2

    @property
    def model_mm2(self) -> float:
        """The model's area at the node, mm²."""
        assert self.model.mm2 is not None                # model_area was given the node
        return self.model.mm2

    @property
    def flip_flops(self) -> int:
        """Flip-flops of the whole array (every PE and the top level)."""
        return self.synth.pe_count * self.synth.pe.flip_flops + self.synth.top.flip_flops

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``systolab area --json`` (``energy`` aside)."""
        s = self.synth
        return {
            "design": self.config.to_dict(), "node": self.node.name,
            "synth_area_mm2": self.synth_area_mm2, "model_area_mm2": self.model_mm2,
            "model_error_pct": self.model_error_pct,
            "synth_transistors": s.transistors, "model_transistors": self.model.transistors,
            "nand2_equivalent": s.nand2_equivalent,
            "breakdown": s.breakdown(),
            "cells_by_type": {"pe": s.pe.cells_by_type, "top_level": s.top.cells_by_type},
            "flip_flops": self.flip_flops,
            "logic_depth_gates": {"pe": s.pe.logic_depth, "top_level": s.top.logic_depth},
            "assumed_clock_MHz": self.node.default_clock_MHz.value,
            **self._timing_fields(),
            "clock_source": self.node.default_clock_MHz.source,
            "assumptions": list(self.model.assumptions),
            "liberty": None if self.liberty is None else {
                "file": self.liberty, "area_um2": self.liberty_area_um2,
                "area_mm2": None if self.liberty_area_um2 is None else self.liberty_area_um2 / 1e6,
                "note": "at the library's own process, not scaled to --node"},
        }

    def _timing_fields(self) -> dict[str, Any]:
        """``fmax_mhz`` {value, low, high}, ``critical_path`` and ``timing`` (every path, the method)."""
        if self.timing is None:
            return {"fmax_mhz": None, "critical_path": None, "timing": None}
        t = self.timing.to_dict()
        return {"fmax_mhz": t["fmax_mhz"], "critical_path": t["critical_path"], "timing": t}


def area_check(config: AcceleratorConfig, node: str = "n7", *, liberty: str | Path | None = None) -> AreaCheck:
    """``config``'s array synthesised (generic gates; also mapped to ``liberty`` when
    given) and modelled at ``node``, with its attainable clock there (:mod:`.timing`)."""
    n = get_node(node)
    synth = synthesize(config)
    model = model_area(config, node=n.name)
    transistors = synth.transistors
    assert transistors is not None                   # the generic-gate flow counts them
    synth_mm2 = synth_area_mm2(transistors, n.name)
    lib_um2 = synthesize(config, liberty=liberty).area_um2 if liberty else None
    return AreaCheck(config, n, synth, model, synth_mm2, str(liberty) if liberty else None, lib_um2,
                     timing_from_synthesis(synth, config, n))


@dataclass(frozen=True)
class ChipAreaCheck:
    """A chip's die area (the model's breakdown) and its attainable clock at its node
    (:func:`~systolab.models.silicon.timing.chip_timing`: the cores' paths and the write-back)."""

    chip: ChipConfig
    area: ChipArea
    timing: TimingEstimate

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``systolab area --chip NAME --json``: ``chip``, ``node``, ``clock_mhz``,
        ``die_mm2``, ``area`` (mm², by part), ``fmax_mhz`` {value, low, high}, ``critical_path``,
        ``meets_clock`` and ``timing`` (every path, the method)."""
        t = self.timing.to_dict()
        return {"chip": self.chip.name, "node": self.chip.node, "clock_mhz": self.chip.clock_mhz,
                "die_mm2": self.area.die_mm2, "area": self.area.to_dict(), "fmax_mhz": t["fmax_mhz"],
                "critical_path": t["critical_path"], "meets_clock": self.timing.meets(self.chip.clock_mhz),
                "timing": t}


def chip_area_check(chip: ChipConfig) -> ChipAreaCheck:
    """``chip``'s die area (:func:`~systolab.models.silicon.area.chip_area`) and attainable clock."""
    return ChipAreaCheck(chip, chip_area(chip), chip_timing(chip))


__all__ = ["AreaCheck", "area_check", "ChipAreaCheck", "chip_area_check"]
