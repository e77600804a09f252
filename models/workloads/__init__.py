"""Workloads: GEMMs and the catalogue of models (LLM layers, DLRM, BERT, ResNet, CSV lists), in the order they run."""
from .catalog import DecoderShape, Workload, check_fits, get_llm, get_workload, list_workloads, llm_models
from .gemm import MAX_WORKLOAD_ROWS, Gemm, load_gemm_list, parse_gemm
from .hf_config import load_hf_config

__all__ = ["load_hf_config",
           "DecoderShape", "Gemm", "get_llm", "get_workload", "list_workloads", "llm_models", "load_gemm_list", "parse_gemm", "Workload",
           "check_fits", "MAX_WORKLOAD_ROWS"]
