"""Nvidia GPUs: specifications, the GEMM model calibrated on public measurements, and its fits."""
from .model import GpuGemmEstimate, GpuWorkloadEstimate, estimate_gemm, estimate_workload
from .specs import GpuSpec, get_gpu, list_gpus, load_gpus

__all__ = ["estimate_gemm", "estimate_workload", "get_gpu", "GpuGemmEstimate", "GpuSpec", "GpuWorkloadEstimate", "list_gpus", "load_gpus"]
