"""A workload on the chip: every GEMM with the mapping the mapper picks
(``models/chip/mapper.py``), timed and counted by the chip's cycle model
(``models/chip/perf.py``, equal to the chip RTL's counters).

A GEMM of ``count`` products runs as ``count / parallel`` descriptors of ``parallel``
products each (the attention heads of a layer in one descriptor, the layers one after
another), back to back: the model does not overlap one descriptor's epilogue with the
next one's prologue (the RTL runs one descriptor at a time).
"""
from __future__ import annotations

from typing import Any

from ...checks import check_chip, check_choice
from ...errors import UserError
from ..core.perf import WorkloadPerf
from ..workloads.catalog import Workload
from .config import ChipConfig
from .mapper import SEARCHES, map_gemms


def chip_workload_perf(chip: ChipConfig, gemms: Any, search: str = "fast") -> WorkloadPerf:
    """``gemms`` (objects with M, N, K, count, parallel, name, or a
    :class:`~systolab.models.workloads.catalog.Workload`, whose resident data must then fit
    the chip's DRAM) on ``chip``, one descriptor after another, each mapped by the mapper's
    ``search`` (``models/chip/mapper.py``; each descriptor's operands must fit too). Per GEMM
    row: the mapping, cycles and seconds of all its copies, utilisation, bound, DRAM and
    SRAM bytes, and the DRAM traffic's lower bound."""
    check_chip("chip", chip)
    check_choice("search", search, SEARCHES)
    if isinstance(gemms, Workload):
        gemms.check_fits(chip.dram.GB, chip.name)
        gemms = gemms.gemms
    rows, cycles, macs, issued, moved, read = [], 0, 0, 0, 0, 0
    by_bound = {"compute": 0, "memory": 0, "sram": 0, "latency": 0}
    pes = chip.core.rows * chip.core.cols
    gemms = list(gemms)
    mappings = map_gemms(chip, [(g.M, g.N, g.K, getattr(g, "parallel", 1)) for g in gemms], search)
    for g, mapping in zip(gemms, mappings):
        parallel = getattr(g, "parallel", 1)
        p, bound = mapping.perf, mapping.bound
        rounds = g.count // parallel
        cycles += p.cycles * rounds
        macs += p.macs * rounds
        issued += sum(p.busy) * pes * rounds
        moved += (p.dram_bytes_read + p.dram_bytes_written) * rounds
        read += p.dram_bytes_read * rounds
        by_bound[bound] += p.cycles * rounds
        rows.append({"name": g.name, "M": g.M, "N": g.N, "K": g.K, "count": g.count, "parallel": parallel,
                     "blocking": str(mapping.blocking), "cycles": p.cycles * rounds,
                     "seconds": p.cycles * rounds / chip.clock_hz, "utilization": p.utilization,
                     "dram_bandwidth_utilization": p.dram_bandwidth_utilization, "bound": bound,
                     "bytes_read": p.dram_bytes_read * rounds, "bytes_written": p.dram_bytes_written * rounds,
                     "sram_bytes": (p.sram_bytes_read + p.sram_bytes_written) * rounds,
                     "core_bytes_read": p.core_bytes_read * rounds,
                     "dram_bytes_lower_bound": mapping.dram_bytes_lower_bound * rounds,
                     "macs_issued": sum(p.busy) * pes * rounds})
    if not rows:
        raise UserError("workload: holds no GEMMs", parameter="workload")
    return WorkloadPerf(seconds=cycles / chip.clock_hz, cycles=cycles, macs=macs, macs_issued=issued,
                        bytes_moved=moved, bytes_read=read, utilization=macs / (chip.cores * pes * cycles),
                        bound=max(by_bound, key=lambda b: by_bound[b]), gemms=tuple(rows))
