"""Nvidia GPUs: specifications, the GEMM model calibrated on public measurements (a kernel layer and a
runtime layer per serving runtime; grouped MoE GEMMs in DeepGEMM's layouts), its fits, board power by phase and under a power cap."""
from .formats import check_gpu_dtype, fp4_gpus
from .grouped import GroupedGemm
from .libraries import LAYOUTS, deepgemm_block
from .model import (
    LIBRARIES,
    GpuGemmEstimate,
    GpuWorkloadEstimate,
    GroupedGemmEstimate,
    estimate_gemm,
    estimate_grouped_gemm,
    estimate_workload,
)
from .power import (
    PowerFitReport,
    PowerMeasurement,
    PowerParams,
    gpu_idle_W,
    gpu_power_W,
    load_measurements,
    power_params,
    step_activity,
)
from .power_cap import check_power_cap, clock_fraction
from .runtime import LAYERS, Runtime, get_runtime, load_runtimes
from .specs import GpuSpec, get_gpu, is_gpu, list_gpus, load_gpus

__all__ = ["check_gpu_dtype", "fp4_gpus",
           "LAYERS", "LIBRARIES", "Runtime", "check_power_cap", "clock_fraction", "get_runtime", "load_runtimes",
           "estimate_gemm", "estimate_workload", "get_gpu", "GpuGemmEstimate", "GpuSpec", "GpuWorkloadEstimate",
           "gpu_idle_W", "gpu_power_W", "is_gpu", "list_gpus", "load_gpus", "load_measurements", "power_params",
           "PowerFitReport", "PowerMeasurement", "PowerParams", "step_activity"]

# grouped (MoE) GEMMs in DeepGEMM's layouts, and the tile its published rule picks
__all__ += ["estimate_grouped_gemm", "GroupedGemm", "GroupedGemmEstimate", "LAYOUTS", "deepgemm_block"]
