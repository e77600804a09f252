"""Silicon: process nodes, Yosys synthesis, the area model fitted to it, energy and power, and transistor counts."""
from .area import AreaEstimate, ChipArea, chip_area, model_area, synth_area_mm2
from .energy import ChipPower, EnergyEstimate, chip_power, chip_power_W, gemm_energy, vector_pJ_per_op, workload_energy
from .nodes import Node, get_node, load_nodes, reticle_limit_mm2
from .synthesis import SynthesisResult, synthesize
from .transistors import TransistorCheck, TransistorEstimate, chip_transistors, transistor_validation

__all__ = [
    "AreaEstimate", "chip_area", "ChipArea", "chip_power", "chip_power_W", "ChipPower", "EnergyEstimate",
    "gemm_energy", "get_node", "load_nodes", "model_area", "Node", "reticle_limit_mm2", "synth_area_mm2",
    "SynthesisResult", "synthesize", "vector_pJ_per_op", "workload_energy",
    "chip_transistors", "TransistorCheck", "TransistorEstimate", "transistor_validation",
]
