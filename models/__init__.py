"""Analytic models: performance (core and chip, equal to the RTL's counters), area, energy,
Nvidia GPUs, export control, cost and the comparison; each module's docstring states its
assumptions and its measured error."""
from .chip.config import ChipConfig, DramConfig, ReticleWarning, list_chips
from .chip.mapper import Mapping, map_gemm, map_gemms, mapping_space, plot_mapping_space
from .core.perf import MemorySystem, chip_perf, core_perf, workload_perf
from .cost.pricing import UnitCost
from .gpu.model import estimate_gemm, estimate_workload
from .gpu.specs import GpuSpec, get_gpu, list_gpus
from .legal.export_control import ExportClass, classify, classify_chip, classify_custom, classify_gpu
from .report.chip import Chip, get_chip
from .report.compare import Comparison, compare
from .report.evaluate import Evaluation, evaluate_chip, evaluate_gpu
from .report.figures import write_report
from .report.sizing import fit_cores, largest_outside, match_gpu
from .serving.fleet import Fleet, FleetRow, fleet
from .serving.model import ServingResult, serve
from .silicon.area import ChipArea
from .silicon.energy import ChipPower
from .workloads.catalog import DecoderShape, Workload, get_llm, get_workload, list_workloads, llm_models
from .workloads.gemm import Gemm, parse_gemm

__all__ = [
    "Chip", "ChipArea", "ChipConfig", "ChipPower", "Comparison", "DecoderShape", "DramConfig", "Evaluation",
    "ExportClass", "Fleet", "FleetRow", "Gemm", "GpuSpec", "Mapping", "MemorySystem", "ReticleWarning",
    "ServingResult", "UnitCost", "Workload", "chip_perf", "classify", "classify_chip", "classify_custom",
    "classify_gpu", "compare", "core_perf", "estimate_gemm", "estimate_workload", "evaluate_chip", "evaluate_gpu",
    "fit_cores", "fleet", "get_chip", "get_gpu", "get_llm", "get_workload", "largest_outside", "list_chips",
    "list_gpus", "list_workloads", "llm_models", "map_gemm", "map_gemms", "mapping_space", "match_gpu", "parse_gemm",
    "plot_mapping_space", "serve", "workload_perf", "write_report",
]
