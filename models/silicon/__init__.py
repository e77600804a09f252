"""Silicon: process nodes, Yosys synthesis, the area model fitted to it, and energy and power."""
from .area import AreaEstimate, model_area, synth_area_mm2
from .energy import EnergyEstimate, chip_power_W, gemm_energy, workload_energy
from .nodes import Node, get_node, load_nodes, reticle_limit_mm2
from .synthesis import SynthesisResult, synthesize

__all__ = [
    "AreaEstimate", "chip_power_W", "EnergyEstimate", "gemm_energy", "get_node", "load_nodes", "model_area",
    "Node", "reticle_limit_mm2", "synth_area_mm2", "SynthesisResult", "synthesize", "workload_energy",
]
