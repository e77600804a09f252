"""Silicon: process nodes, Yosys synthesis, the area model fitted to it, attainable clocks, energy and power,
transistor counts, off-chip memory kinds and the chip's physical feasibility."""
from .area import (
    AreaEstimate,
    ChipArea,
    DieData,
    DieFigure,
    chip_area,
    die_data,
    model_area,
    scalar_core_mm2,
    sram_die_mm2,
    synth_area_mm2,
)
from .energy import (
    ChipPower,
    EnergyEstimate,
    chip_power,
    chip_power_W,
    design_sram_W,
    gemm_energy,
    scalar_core_W,
    vector_pJ_per_op,
    workload_energy,
)
from .feasibility import Feasibility, FeasibilityWarning, check_feasible, chip_feasibility
from .memory import MemoryKind, get_memory_kind, list_memory_kinds, memory_class
from .nodes import Node, foundries, get_node, load_nodes, node_at_foundry, reticle_limit_mm2
from .synthesis import SynthesisResult, synthesize
from .timing import (
    PATH_NAMES,
    CriticalPath,
    DelayModel,
    TimingEstimate,
    TimingWarning,
    attainable_clock_mhz,
    check_timing,
    chip_timing,
    fmax_mhz,
    load_delay_model,
    timing_estimate,
    timing_from_synthesis,
    writeback_depth_gates,
)
from .transistors import TransistorCheck, TransistorEstimate, chip_transistors, transistor_validation

__all__ = [
    "AreaEstimate", "check_feasible", "chip_area", "chip_feasibility", "chip_power", "chip_power_W",
    "chip_transistors", "ChipArea", "ChipPower", "EnergyEstimate", "Feasibility", "FeasibilityWarning", "foundries",
    "gemm_energy", "get_memory_kind", "get_node", "list_memory_kinds", "load_nodes", "memory_class", "MemoryKind",
    "model_area", "Node", "node_at_foundry", "reticle_limit_mm2", "synth_area_mm2", "SynthesisResult", "synthesize",
    "transistor_validation", "TransistorCheck", "TransistorEstimate", "vector_pJ_per_op", "workload_energy",
    "attainable_clock_mhz", "check_timing", "chip_timing", "CriticalPath", "DelayModel", "fmax_mhz", "load_delay_model",
    "timing_estimate", "timing_from_synthesis", "TimingEstimate", "TimingWarning", "writeback_depth_gates", "PATH_NAMES",
    "design_sram_W", "die_data", "DieData", "DieFigure", "scalar_core_mm2", "scalar_core_W", "sram_die_mm2",
]
