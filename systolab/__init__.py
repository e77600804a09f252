"""systolab: design, verify and price custom matmul accelerators against Nvidia GPUs.

The public API for scripts and notebooks (the command line is ``systolab``)::

    import systolab as sl

    chip = sl.get_chip()                                   # the default chip of models/data/chips.yaml
    wl = sl.get_workload("llama3-8b-decode", dtype="int8", batch=8)
    chip.evaluate(wl).to_frame()                           # per-GEMM table (pandas)
    sl.evaluate_gpu("h20", wl).throughput                  # tokens/s on the same workload and dtype
    chip.derive(rows=32, cols=32, cores=400)               # a validated variant
    sl.map_gemm(chip, 2048, 4096, 4096).to_frame()         # the mapper's blocking and the exact model's numbers
    sl.explore("h20-beater", db="out/h20.sqlite", search="lhs", trials=64)   # a design space, resumable
    sl.serve("h200-sxm", "llama3-70b", isl=2048, osl=256, concurrency=64, tp=2).to_dict()   # LLM serving
    sl.fleet(["h100-sxm", chip], "llama3-70b", isl=2048, osl=256, concurrency=64)   # what $7B buys
"""
from pathlib import Path as _Path

# Imported from the repository itself (the working directory is the clone), hdl/, models/
# and sim/ sit beside this folder rather than inside it as in an installed package: map
# them in as systolab.hdl, systolab.models and systolab.sim.
_here = _Path(__file__).parent
if not (_here / "models").is_dir() and (_here.parent / "models" / "__init__.py").is_file():
    __path__.append(str(_here.parent))

from .config import AcceleratorConfig  # noqa: E402
from .errors import ConfigError, SimulationError, UserError  # noqa: E402
from .files import default_out  # noqa: E402
from .models import (  # noqa: E402
    ChipConfig,
    DecoderShape,
    DramConfig,
    Evaluation,
    ExportClass,
    Gemm,
    GpuSpec,
    Mapping,
    MemorySystem,
    ReticleWarning,
    ServingResult,
    Workload,
    classify,
    classify_custom,
    classify_gpu,
    compare,
    core_perf,
    evaluate_chip,
    evaluate_gpu,
    fit_cores,
    fleet,
    get_chip,
    get_gpu,
    get_llm,
    get_workload,
    largest_outside,
    list_chips,
    list_gpus,
    list_workloads,
    llm_models,
    map_gemm,
    map_gemms,
    mapping_space,
    match_gpu,
    parse_gemm,
    plot_mapping_space,
    serve,
    write_report,
)
from .models.explore import explore, gpu_reference, load_space  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "AcceleratorConfig", "ChipConfig", "ConfigError", "DecoderShape", "DramConfig", "ServingResult", "fleet", "get_llm",
    "llm_models", "serve", "Evaluation", "ExportClass", "Gemm", "GpuSpec",
    "Mapping", "MemorySystem", "ReticleWarning", "SimulationError", "UserError", "Workload", "__version__", "classify",
    "classify_custom", "classify_gpu", "compare", "core_perf", "default_out", "evaluate_chip", "evaluate_gpu", "explore",
    "fit_cores", "get_chip", "get_gpu", "get_workload", "gpu_reference", "load_space", "largest_outside", "list_chips", "list_gpus",
    "list_workloads", "map_gemm", "map_gemms", "mapping_space", "match_gpu", "parse_gemm", "plot_mapping_space",
    "write_report",
]
