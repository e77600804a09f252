"""The chip: its configuration, its cycle model (equal to the chip RTL's counters), the blocking traffic bounds and the mapper."""
from .config import ChipConfig, DramConfig, ReticleWarning, get_chip, list_chips, load_chips
from .mapper import Mapping, map_gemm, map_gemms, mapping_space, plot_mapping_space
from .perf import MAX_CHIP_MACS, ChipGemmPerf, check_chip_gemm, chip_gemm_counters, chip_gemm_cycles, chip_gemm_perf
from .workload import chip_workload_perf

__all__ = [
    "chip_gemm_counters", "chip_gemm_cycles", "chip_gemm_perf", "chip_workload_perf", "ChipConfig",
    "ChipGemmPerf", "DramConfig", "get_chip", "list_chips", "load_chips", "map_gemm", "map_gemms", "Mapping",
    "mapping_space", "plot_mapping_space", "ReticleWarning",
    "MAX_CHIP_MACS", "check_chip_gemm",
]
