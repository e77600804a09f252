"""Nvidia GPUs: specifications, the GEMM model calibrated on public measurements, its fits, and board power by phase."""
from .model import GpuGemmEstimate, GpuWorkloadEstimate, estimate_gemm, estimate_workload
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
from .specs import GpuSpec, get_gpu, list_gpus, load_gpus

__all__ = ["estimate_gemm", "estimate_workload", "get_gpu", "GpuGemmEstimate", "GpuSpec", "GpuWorkloadEstimate",
           "gpu_idle_W", "gpu_power_W", "list_gpus", "load_gpus", "load_measurements", "power_params",
           "PowerFitReport", "PowerMeasurement", "PowerParams", "step_activity"]
