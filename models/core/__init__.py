"""The accelerator core's cycle model (equal to the core RTL's counters) and its roll-ups to workloads."""
from .perf import (
    ChipPerf,
    CorePerf,
    MemorySystem,
    WorkloadPerf,
    chip_perf,
    core_counters,
    core_cycles,
    core_cycles_many,
    core_perf,
    perf_table,
    workload_perf,
)

__all__ = [
    "chip_perf", "ChipPerf", "core_counters", "core_cycles", "core_cycles_many", "core_perf", "CorePerf",
    "MemorySystem", "perf_table", "workload_perf", "WorkloadPerf",
]
