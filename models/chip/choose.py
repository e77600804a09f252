"""One descriptor on a chip as the user gives it: its blocking (``--block``, ``--grid``,
``--order``, checked as the chip's controller checks them, or the mapper's choice) and
the exact cycle model's numbers for it."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ...blocking import REJECT, Blocking, blocking_status
from ...checks import MAX_DIM
from ...errors import UserError
from .blocking import blocking_traffic, candidates, dram_traffic_lower_bound
from .mapper import Mapping, chip_bound, map_gemm
from .perf import ChipGemmPerf, check_chip_gemm, chip_gemm_counters, chip_gemm_cycles

#: ``order``'s values, by a blocking's ``order``: N-blocks inside (0), M-blocks inside (1).
ORDER_FLAGS = ("mn", "nm")


def parse_dims(text: str, parameter: str, n: tuple[int, ...]) -> list[int]:
    """``text`` as positive integers joined by x (``16x36x64``), as many as one of ``n``;
    anything else is a :class:`UserError` naming ``parameter``."""
    m = re.fullmatch(r"\s*(\d{1,9}(?:\s*[xX]\s*\d{1,9})*)\s*", text or "")
    parts = [int(v) for v in re.split(r"\s*[xX]\s*", m.group(1))] if m else []
    if len(parts) not in n or not all(1 <= v <= MAX_DIM for v in parts):
        want = " or ".join(f"{k} positive integers joined by x" for k in n)
        raise UserError(f"{parameter}: expected {want}, not {text!r}", parameter=parameter)
    return parts


def choose_blocking(chip, M: int, N: int, K: int, count: int, *, block: str | None = None, grid: str | None = None,
                    order: str | None = None, search: str = "fast") -> tuple[Blocking, Mapping | None]:
    """(blocking, the search's mapping or None) of ``count`` M x N x K products on
    ``chip``: ``block`` (``MBxNBxKB``) and ``grid`` (``GPxGMxGN[xGK]``) as given, checked
    as the chip's controller checks them; ``block`` alone with the fastest grid for it;
    neither: the mapper's ``search``. ``order`` (``mn`` or ``nm``, with ``block``) fixes
    the loop order. A blocking the chip refuses is a :class:`UserError` naming ``block``
    or ``grid``."""
    if block is None:
        for flag, given, why in (("grid", grid, "a grid splits a block"), ("order", order, "an order runs the blocks")):
            if given is not None:
                raise UserError(f"{flag}: give --block with it ({why})", parameter=flag)
        found = map_gemm(chip, M, N, K, count, search)
        return found.blocking, found
    mb, nb, kb = parse_dims(block, "block", (3,))
    if grid is None:
        same = [b for b in candidates(chip, M, N, K, count) if (b.mb, b.nb, b.kb) == (min(mb, M), min(nb, N), min(kb, K))
                and (order is None or b.order == ORDER_FLAGS.index(order))]
        if same:
            return min(same, key=lambda b: chip_gemm_cycles(chip, M, N, K, b, count)), None
        gp, gm, gn, gk = 1, 1, chip.cores, 1
    else:
        gp, gm, gn, *rest = parse_dims(grid, "grid", (3, 4))
        gk = rest[0] if rest else 1
    b = Blocking(mb, nb, kb, math.ceil(mb / gm), math.ceil(nb / gn), gp, gm, gn, gk, math.ceil(kb / gk),
                 order=ORDER_FLAGS.index(order or "mn"))
    status = blocking_status(chip, M, N, K, count, b)
    if status:
        grid_fault = status in (2, 7) or status == 6 and chip.core.is_float and gk > chip.float_split_k
        flag = "grid" if grid_fault and grid is not None else "block"
        raise UserError(f"{flag}: {b} on {chip.name} ({chip.slice_bytes:,} bytes of SRAM per core): "
                        f"{REJECT[status]}", parameter=flag)
    return b, None


@dataclass(frozen=True)
class DescriptorPerf:
    """``count`` M x N x K products as one descriptor on a chip under ``blocking``, timed
    and counted by the chip's cycle model (equal to the chip RTL's counters)."""

    M: int
    N: int
    K: int
    count: int
    blocking: Blocking
    mapping: Mapping | None     # the search's result, when the mapper chose the blocking
    perf: ChipGemmPerf
    clock_hz: float             # the chip's clock, Hz
    bound: str                  # compute, memory, sram or latency (models.chip.mapper.chip_bound)
    blocking_traffic_bytes: int     # DRAM bytes the blocks must move
    dram_bytes_lower_bound: int     # DRAM bytes any schedule moves at least

    @property
    def seconds(self) -> float:
        """Time of the descriptor, s."""
        return self.perf.cycles / self.clock_hz

    def to_dict(self) -> dict[str, Any]:
        """The fields of ``systolab perf --chip --gemm --json`` (the chip's aside)."""
        counters: dict[str, Any] = self.perf.counters()
        counters.pop("busy")
        return {"gemm": [self.M, self.N, self.K], "count": self.count, "blocking": self.blocking.to_dict(),
                "blocking_text": str(self.blocking), "searched": self.mapping is not None,
                "candidates": self.mapping.candidates if self.mapping else None, **counters,
                "per_core_busy": list(self.perf.busy), "seconds": self.seconds, "utilization": self.perf.utilization,
                "dram_bandwidth_utilization": self.perf.dram_bandwidth_utilization, "bound": self.bound,
                "blocking_traffic_bytes": self.blocking_traffic_bytes,
                "dram_bytes_lower_bound": self.dram_bytes_lower_bound}


def descriptor_perf(chip, M: int, N: int, K: int, count: int = 1, *, block: str | None = None,
                    grid: str | None = None, order: str | None = None, search: str = "fast") -> DescriptorPerf:
    """The descriptor under :func:`choose_blocking`'s blocking, with the exact model's
    counters, its bound and its DRAM traffic against the blocks' and any schedule's."""
    M, N, K, count = check_chip_gemm(chip, M, N, K, count)
    blocking, found = choose_blocking(chip, M, N, K, count, block=block, grid=grid, order=order, search=search)
    # the blocking is valid: the counters in closed form (equal to the step-by-step model's)
    p = found.perf if found is not None else chip_gemm_counters(chip, M, N, K, blocking, count)
    return DescriptorPerf(M, N, K, count, blocking, found, p, chip.clock_hz, chip_bound(chip, p),
                          blocking_traffic(chip, M, N, K, blocking, count), dram_traffic_lower_bound(chip, M, N, K, count))


__all__ = ["ORDER_FLAGS", "DescriptorPerf", "choose_blocking", "descriptor_perf", "parse_dims"]
