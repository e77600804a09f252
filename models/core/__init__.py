"""The accelerator core's cycle model (equal to the core RTL's counters) and its roll-ups to workloads."""
from .perf import (
    MAX_CORE_CYCLES,
    ChipPerf,
    CorePerf,
    MemorySystem,
    WorkloadPerf,
    check_core_gemm,
    chip_perf,
    core_counters,
    core_cycles,
    core_cycles_many,
    core_cycles_upper_bound,
    core_perf,
    perf_table,
    workload_perf,
)

__all__ = [
    "chip_perf", "ChipPerf", "core_counters", "core_cycles", "core_cycles_many", "core_perf", "CorePerf",
    "MemorySystem", "perf_table", "workload_perf", "WorkloadPerf",
    "MAX_CORE_CYCLES", "check_core_gemm", "core_cycles_upper_bound",
]
