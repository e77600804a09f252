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
    sl.fleet(["h100-sxm", chip], "llama3-70b", isl=2048, osl=256, concurrency=64).to_frame()   # what $7B buys
    sl.goodput("h200-sxm", "llama3-70b", isl=2048, osl=256, tpot_s=0.1).output_tokens_per_s   # within a target
    d = sl.decide(buyer="allied", date="2026-12-01", overrides={"memory.HBM.usd_per_GB": (12, 15, 25)})
    d.verdict, d.p_build_beats_buy, d.to_frame()           # build or buy, and how sure
"""
import importlib
from pathlib import Path as _Path
from typing import TYPE_CHECKING

# Imported from the repository itself (the working directory is the clone), hdl/, models/
# and sim/ sit beside this folder rather than inside it as in an installed package: map
# them in as systolab.hdl, systolab.models and systolab.sim.
_here = _Path(__file__).parent
if not (_here / "models").is_dir() and (_here.parent / "models" / "__init__.py").is_file():
    __path__.append(str(_here.parent))

# The names below are imported when first used (PEP 562): a process that needs one corner
# of systolab (a cocotb testbench inside the simulator, an executor's worker) does not
# pay for importing all of it (the models, Amaranth, numba: about 3 s in a simulator).
_SOURCES = {
    "config": ("AcceleratorConfig",),
    "errors": ("ConfigError", "SimulationError", "UserError"),
    "files": ("default_out",),
    "models": ("Chip", "ChipConfig", "Comparison", "DecoderShape", "DramConfig", "Evaluation", "ExportClass", "Fleet",
               "Gemm", "GpuSpec", "Mapping", "MemorySystem", "ReticleWarning", "ServingResult", "Workload", "classify", "classify_custom",
               "classify_gpu", "compare", "core_perf", "evaluate_chip", "evaluate_gpu", "fit_cores", "fleet", "get_chip",
               "get_gpu", "get_llm", "get_workload", "largest_outside", "list_chips", "list_gpus", "list_workloads",
               "llm_models", "map_gemm", "map_gemms", "mapping_space", "match_gpu", "parse_gemm", "plot_mapping_space",
               "serve", "write_report"),
    "models.legal": ("Buildability", "Purchasability", "Scenario", "legal", "purchasability", "scenario"),
    "models.decision": ("Decision", "decide", "write_decision_report"),
    "models.serving": ("Goodput", "goodput"),
    "flows.explore": ("explore",),
    "models.explore": ("gpu_reference", "load_space"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}
# (the imports below and the literal __all__ repeat these names for mypy and ruff, which
# read them statically: ruff fails an import left out of __all__, and
# tests/test_packaging.py fails when __all__ and this table differ)

if TYPE_CHECKING:
    from .config import AcceleratorConfig
    from .errors import ConfigError, SimulationError, UserError
    from .files import default_out
    from .flows.explore import explore
    from .models import (
        Chip,
        ChipConfig,
        Comparison,
        DecoderShape,
        DramConfig,
        Evaluation,
        ExportClass,
        Fleet,
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
    from .models.decision import Decision, decide, write_decision_report
    from .models.explore import gpu_reference, load_space
    from .models.legal import Buildability, Purchasability, Scenario, legal, purchasability, scenario
    from .models.serving import Goodput, goodput


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'systolab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__version__ = "0.1.0"
__all__ = [
    "AcceleratorConfig", "Chip", "ChipConfig", "Comparison", "Fleet", "ConfigError", "DecoderShape", "DramConfig",
    "ServingResult", "fleet", "get_llm", "llm_models", "serve", "Evaluation", "ExportClass", "Gemm", "GpuSpec",
    "Mapping", "MemorySystem", "ReticleWarning", "SimulationError", "UserError", "Workload", "__version__",
    "classify", "classify_custom", "classify_gpu", "compare", "core_perf", "default_out", "evaluate_chip",
    "evaluate_gpu", "explore", "fit_cores", "get_chip", "get_gpu", "get_workload", "gpu_reference", "load_space",
    "largest_outside", "list_chips", "list_gpus", "list_workloads", "map_gemm", "map_gemms", "mapping_space",
    "match_gpu", "parse_gemm", "plot_mapping_space", "write_report", "Purchasability", "Scenario", "purchasability",
    "scenario", "Buildability", "legal", "Decision", "decide", "write_decision_report", "Goodput", "goodput",
]
