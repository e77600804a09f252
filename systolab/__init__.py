"""systolab: design, verify and price custom matmul accelerators against Nvidia GPUs.

The public API for scripts and notebooks (the command line is ``systolab``)::

    import systolab as sl

    chip = sl.get_chip()                                   # the default chip of models/data/chips.yaml
    wl = sl.get_workload("llama3-8b-decode", dtype="int8", batch=8)
    chip.evaluate(wl).to_frame()                           # per-GEMM table (pandas)
    sl.evaluate_gpu("h20", wl).throughput                  # tokens/s on the same workload and dtype
    chip.derive(rows=32, cols=32, cores=400)               # a validated variant
"""
from .config import AcceleratorConfig
from .errors import ConfigError, SimulationError, UserError
from .files import default_out
from .models import (
    ChipConfig,
    DramConfig,
    Evaluation,
    ExportClass,
    Gemm,
    GpuSpec,
    MemorySystem,
    ReticleWarning,
    Workload,
    classify,
    classify_custom,
    classify_gpu,
    compare,
    core_perf,
    evaluate_chip,
    evaluate_gpu,
    fit_cores,
    get_chip,
    get_gpu,
    get_workload,
    largest_outside,
    list_chips,
    list_gpus,
    list_workloads,
    match_gpu,
    parse_gemm,
    write_report,
)

__version__ = "0.1.0"
__all__ = [
    "AcceleratorConfig", "ChipConfig", "ConfigError", "DramConfig", "Evaluation", "ExportClass", "Gemm", "GpuSpec",
    "MemorySystem", "ReticleWarning", "SimulationError", "UserError", "Workload", "__version__", "classify",
    "classify_custom", "classify_gpu", "compare", "core_perf", "default_out", "evaluate_chip", "evaluate_gpu",
    "fit_cores", "get_chip", "get_gpu", "get_workload", "largest_outside", "list_chips", "list_gpus",
    "list_workloads", "match_gpu", "parse_gemm", "write_report",
]
