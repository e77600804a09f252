"""A workload on the chip: every GEMM with the blocking the exhaustive search picks
(``models/blocking.py``), timed and counted by the chip's cycle model
(``models/chip_perf.py``, equal to the chip RTL's counters).

A GEMM of ``count`` products runs as ``count / parallel`` descriptors of ``parallel``
products each (the attention heads of a layer in one descriptor, the layers one after
another), back to back: the model does not overlap one descriptor's epilogue with the
next one's prologue (the RTL runs one descriptor at a time).
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import UserError
from .blocking import SearchResult, search_blocking
from .chip_perf import ChipGemmPerf, chip_gemm_perf
from .perf import WorkloadPerf, classify_bound


@lru_cache(maxsize=4096)
def best_blocking(chip, M: int, N: int, K: int, count: int = 1) -> tuple[SearchResult, ChipGemmPerf]:
    """The search's blocking for ``count`` M x N x K products as one descriptor, and the
    chip's counters with it (cached per chip and shape)."""
    found = search_blocking(chip, M, N, K, count)
    return found, chip_gemm_perf(chip, M, N, K, found.blocking, count=count)


def gemm_bound(chip, perf: ChipGemmPerf) -> str:
    """``compute`` (the busiest core's array), ``memory`` (the DRAM's bytes at the rate
    the DMA can move them) or ``latency`` (neither accounts for half the cycles)."""
    dram = (perf.dram_bytes_read + perf.dram_bytes_written) / chip.dram_effective_bytes_per_cycle
    return classify_bound(perf.cycles, max(perf.busy), dram)


def chip_workload_perf(chip, gemms) -> WorkloadPerf:
    """``gemms`` (objects with M, N, K, count, parallel, name) on ``chip``, one descriptor
    after another. Per GEMM row: the blocking, cycles and seconds of all its copies,
    utilisation, bound, DRAM and SRAM bytes, and the DRAM traffic's lower bound."""
    rows, cycles, macs, issued, moved, read = [], 0, 0, 0, 0, 0
    by_bound = {"compute": 0, "memory": 0, "latency": 0}
    pes = chip.core.rows * chip.core.cols
    for g in gemms:
        parallel = getattr(g, "parallel", 1)
        found, p = best_blocking(chip, g.M, g.N, g.K, parallel)
        rounds = g.count // parallel
        bound = gemm_bound(chip, p)
        cycles += p.cycles * rounds
        macs += p.macs * rounds
        issued += sum(p.busy) * pes * rounds
        moved += (p.dram_bytes_read + p.dram_bytes_written) * rounds
        read += p.dram_bytes_read * rounds
        by_bound[bound] += p.cycles * rounds
        rows.append({"name": g.name, "M": g.M, "N": g.N, "K": g.K, "count": g.count, "parallel": parallel,
                     "blocking": str(found.blocking), "cycles": p.cycles * rounds,
                     "seconds": p.cycles * rounds / chip.clock_hz, "utilization": p.utilization,
                     "dram_bandwidth_utilization": p.dram_bandwidth_utilization, "bound": bound,
                     "bytes_read": p.dram_bytes_read * rounds, "bytes_written": p.dram_bytes_written * rounds,
                     "sram_bytes": (p.sram_bytes_read + p.sram_bytes_written) * rounds,
                     "core_bytes_read": p.core_bytes_read * rounds,
                     "dram_bytes_lower_bound": found.dram_bytes_lower_bound * rounds,
                     "macs_issued": sum(p.busy) * pes * rounds})
    if not rows:
        raise UserError("workload: holds no GEMMs", parameter="workload")
    return WorkloadPerf(seconds=cycles / chip.clock_hz, cycles=cycles, macs=macs, macs_issued=issued,
                        bytes_moved=moved, bytes_read=read, utilization=macs / (chip.cores * pes * cycles),
                        bound=max(by_bound, key=lambda b: by_bound[b]), gemms=tuple(rows))
