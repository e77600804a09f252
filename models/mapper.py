"""The chip's mapper: how a GEMM (``count`` independent products of M x N x K) is blocked
and spread over the cores, chosen by a search, and reported with the traffic bound.

**The mapping space** is :func:`~systolab.models.blocking.candidates`: the block held in
the global SRAM (``mb x nb x kb``, levels DRAM -> global SRAM), the split over cores
(``gp`` products x ``gm`` rows x ``gn`` columns x ``gk`` K-groups, split-K paying its
reduction on write-back) and each core's part (``mc x nc x kc``, which the core cuts into
its own buffers' chunks, ``tile_m x cols x k_chunk``: the core buffer level is fixed by
the core's configuration). The loop order is the controller's: product groups, M-blocks,
N-blocks, K-blocks innermost (``hdl/chip.py``). With K innermost the partial sums stay in
the slices; the other orders would only matter if the controller kept an operand block
across steps, which it does not (each step loads its A and B blocks), so the order is
reported, not searched.

**Searches.**

* ``exhaustive``: every candidate timed by the exact cycle model
  (:func:`~systolab.models.chip_perf.chip_gemm_cycles`, equal to the RTL's counters);
  the reference.
* ``fast``: every candidate ranked by a screening model (:func:`screen_cycles`,
  vectorised over the candidates: every distinct output block's K-steps, each as long as
  the slower of its core's exact sub-GEMM and its busiest DMA channel's bytes at the
  channel's rate), then the best-screened 15 % (at least :data:`FAST_SHORTLIST`) timed by
  the exact model, then every mapping with the winner's grid (the screen misjudges block
  sizes more than grids). Its ranking error against the exact model and its gap to the
  fewest cycles in the space are measured by ``benchmarks/mapper.py``: within 1.74 % on
  200 GEMMs x 4 chips.

**Choice.** Of the mappings a search timed, those within :data:`TRAFFIC_TOLERANCE` (1 %)
of the fewest cycles count as equally fast, and the one of them whose DMA reads the fewest
DRAM bytes (:func:`~systolab.models.chip_perf.chip_dram_bytes_read`: whole beats, as the
RTL counts them; the writes are the same for every mapping) wins: DRAM energy (tens of pJ
a byte) outweighs a run 1 % longer, and a memory-bound GEMM then moves less (BERT's
1,024 x 3,072 x 768 on ``sl-n4-os32``: 12 % fewer bytes for 5 more cycles of 7,177).

Whatever the search, the numbers reported come from the exact model: the cycles from
:func:`~systolab.models.chip_perf.chip_gemm_cycles`, the other counters from
:func:`~systolab.models.chip_perf.chip_gemm_counters` (each step's counters summed over
the distinct steps), both equal to the step-by-step model (``tests/test_chip.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..checks import check_choice, check_int
from ..errors import UserError
from .blocking import blocking_traffic, candidates, dma_traffic_lower_bound, dram_traffic_lower_bound
from .chip_perf import ChipGemmPerf, _core_step, chip_dram_bytes_read, chip_gemm_counters, chip_gemm_cycles
from .perf import MemorySystem

SEARCHES = ("fast", "exhaustive")
#: The fast search times the best-screened ``FAST_FRACTION`` of the space, and at least
#: ``FAST_SHORTLIST`` candidates, with the exact model (smaller spaces: all of them).
FAST_SHORTLIST = 48
FAST_FRACTION = 0.15
#: Mappings within this fraction of the fewest cycles are equally fast; the least traffic wins.
TRAFFIC_TOLERANCE = 0.01
#: The controller's loop order, outermost first.
LOOP_ORDER = "product groups > M-blocks > N-blocks > K-blocks (K innermost; partial sums stay in the slices)"


@lru_cache(maxsize=64)
def _core_table(cfg, port) -> dict:
    """Exact core sub-GEMM cycles by (rows, cols, K), filled as the screen asks."""
    return {}


def _core_lookup(cfg, port, rows: np.ndarray, cols: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """The exact cycles of each core sub-GEMM (rows x cols x ks), one model call per
    distinct shape."""
    table = _core_table(cfg, port)
    rows, cols, ks = (np.asarray(v, dtype=np.int64) for v in (rows, cols, ks))
    if max(rows.max(initial=0), cols.max(initial=0), ks.max(initial=0)) < 1 << 21:
        # one int64 key per shape: a 1-D unique is far cheaper than unique(axis=0)
        keys, inverse = np.unique((rows << 42) | (cols << 21) | ks, return_inverse=True)
        uniq = np.stack([keys >> 42, (keys >> 21) & ((1 << 21) - 1), keys & ((1 << 21) - 1)], axis=1)
    else:
        uniq, inverse = np.unique(np.stack([rows, cols, ks], axis=1), axis=0, return_inverse=True)
    cycles = np.empty(len(uniq))
    for x, (r, c, k) in enumerate(uniq.tolist()):
        if (r, c, k) not in table:
            table[r, c, k] = _core_step(cfg, port, r, c, k)[0] if r and c and k else 0
        cycles[x] = table[r, c, k]
    return cycles[inverse.reshape(-1)]


def _pieces(length: int, block: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """A dimension of ``length`` cut into blocks: (size, how many) of the full blocks and
    of the edge block."""
    full, rest = np.divmod(length, block)
    return [(block, full), (rest, (rest > 0).astype(np.int64))]


def screen_cycles(chip, M: int, N: int, K: int, count: int, blockings) -> np.ndarray:
    """Screening estimate of each blocking's cycles (an array), vectorised over the
    blockings: every distinct output block (full and edge sizes in each dimension) costs
    its K-steps, each ``2 + max(core, load)``, where the core's sub-GEMM is timed by the
    exact core model and a load or write-back by its busiest channel's bytes at the
    channel's rate plus the DRAM latency; a block's first step also carries the previous
    block's write-back. It ignores the DRAM credit's phase and the neighbours' sizes."""
    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    C = chip.dma_channels
    bpc = chip.channel_bytes_per_cycle
    L = chip.dram_latency_cycles + 4
    port = MemorySystem(chip.sram_latency_cycles, float(cfg.beat_bytes))
    f = np.array([[b.mb, b.nb, b.kb, b.mc, b.nc, b.kc, b.gp, b.gm, b.gn, b.gk] for b in blockings],
                 dtype=np.int64).reshape(-1, 10)
    mb, nb, kb, mc, nc, kc, gp, gm, gn, gk = f.T
    nk = -(-K // kb)
    k_edge = K - (nk - 1) * kb

    def load(live, rows, cols, klen):
        part = np.minimum(kc, klen)
        a = np.ceil(live * -(-rows // mc) * gk / C) * np.minimum(mc, rows)
        b = np.ceil(live * -(-cols // nc) * gk / C) * np.minimum(nc, cols)
        return np.ceil((a + b) * part * eb / cfg.beat_bytes) * cfg.beat_bytes / bpc + L

    total, last_wb = np.zeros(len(f)), np.zeros(len(f))
    first_load = None
    for live, n_p in _pieces(count, gp):
        for rows, n_m in _pieces(M, mb):
            for cols, n_n in _pieces(N, nb):
                n = n_p * n_m * n_n
                if not n.any():
                    continue
                r, c = np.minimum(mc, rows), np.minimum(nc, cols)
                core_full = _core_lookup(cfg, port, r, c, np.minimum(kc, kb))
                core_edge = _core_lookup(cfg, port, r, c, np.minimum(kc, k_edge))
                ld_full, ld_edge = load(live, rows, cols, kb), load(live, rows, cols, k_edge)
                wb = np.ceil(live * -(-cols // nc) / np.maximum(1, C // gk)) * rows * c * ab / bpc + L
                steps = np.where(nk > 1, 2 + np.maximum(core_full, wb + ld_full), 0) + \
                    np.maximum(nk - 2, 0) * (2 + np.maximum(core_full, ld_full)) + \
                    2 + np.maximum(core_edge, np.where(nk > 1, ld_edge, wb + ld_edge))
                total += n * steps
                last_wb = np.where(n > 0, wb, last_wb)      # the epilogue: the last block's write-back
                if first_load is None:
                    first_load = np.where(nk > 1, ld_full, ld_edge)
    return total + last_wb + (first_load if first_load is not None else 0)


@dataclass(frozen=True)
class Mapping:
    """A GEMM's mapping on a chip and what the exact cycle model says of it."""

    chip: str
    M: int
    N: int
    K: int
    count: int
    search: str
    blocking: object            # hdl.chip.Blocking
    perf: ChipGemmPerf
    bound: str
    candidates: int             # mappings in the space
    evaluated: int              # mappings the exact model timed
    dram_bytes_lower_bound: int
    dram_bytes_lower_bound_dma: int     # the same bound with operand rows in whole DMA beats
    blocking_traffic_bytes: int
    clock_hz: float

    @property
    def cycles(self) -> int:
        return self.perf.cycles

    @property
    def seconds(self) -> float:
        return self.perf.cycles / self.clock_hz

    @property
    def dram_bytes(self) -> int:
        return self.perf.dram_bytes_read + self.perf.dram_bytes_written

    def to_frame(self):
        """One row (pandas): the mapping's fields and the exact model's numbers, units in
        the column names."""
        import pandas as pd

        d = self.to_dict()
        mapping = d.pop("mapping")
        d["M"], d["N"], d["K"] = d.pop("gemm")
        d = {("seconds_s" if k == "seconds" else k): v for k, v in d.items()}
        return pd.DataFrame([{**{f"map_{k}": v for k, v in mapping.items()}, **d}])

    def _repr_html_(self) -> str:
        return (f"<b>{self.M}x{self.N}x{self.K}</b> x{self.count} on <b>{self.chip}</b> ({self.search} search): "
                f"{self.blocking}, {self.cycles:,} cycles, {self.bound}-bound" + self.to_frame().to_html())

    def to_dict(self) -> dict:
        p = self.perf
        return {"gemm": [self.M, self.N, self.K], "count": self.count, "search": self.search,
                "mapping": {**self.blocking.to_dict(), "text": str(self.blocking), "loop_order": LOOP_ORDER},
                "cycles": p.cycles, "seconds": self.seconds, "utilization": p.utilization,
                "dram_bytes": self.dram_bytes, "dram_bytes_read": p.dram_bytes_read,
                "dram_bytes_written": p.dram_bytes_written, "dram_bytes_lower_bound": self.dram_bytes_lower_bound,
                "dram_bytes_lower_bound_dma": self.dram_bytes_lower_bound_dma,
                "blocking_traffic_bytes": self.blocking_traffic_bytes,
                "dram_bandwidth_utilization": p.dram_bandwidth_utilization, "bound": self.bound,
                "candidates": self.candidates, "evaluated": self.evaluated}


def chip_bound(chip, perf: ChipGemmPerf) -> str:
    """What limits a descriptor at chip level, when it accounts for at least half of the
    cycles: ``compute`` (the busiest core's array), ``memory`` (the DRAM's bytes at the
    rate the DMA can move them) or ``sram`` (the cores' reads from their slices, one core
    beat a cycle per port, averaged over the cores in use); else ``latency`` (fill,
    drain, DRAM latency and step barriers). Ties go to compute, then memory."""
    active = sum(1 for b in perf.busy if b) or 1
    parts = {"compute": max(perf.busy),
             "memory": (perf.dram_bytes_read + perf.dram_bytes_written) / chip.dram_effective_bytes_per_cycle,
             "sram": perf.core_bytes_read / (active * chip.core.beat_bytes)}
    name = max(parts, key=lambda k: (parts[k], -list(parts).index(k)))
    return name if parts[name] >= 0.5 * perf.cycles else "latency"


def _no_mapping(chip, M: int, N: int, K: int) -> UserError:
    from ..hdl.chip import Blocking, blocking_status

    one = Blocking(1, 1, 1, 1, 1)
    why = {4: "operand", 5: "accumulator"}.get(blocking_status(chip, M, N, K, 1, one), "operand")
    return UserError(f"chip: {chip.name}'s slices ({chip.slice_bytes} bytes per core) cannot hold the {why} "
                     f"buffers of any mapping of {M}x{N}x{K}", parameter="chip")


@lru_cache(maxsize=4096)
def map_gemm(chip, M: int, N: int, K: int, count: int = 1, search: str = "fast") -> Mapping:
    """The mapping the ``search`` picks for ``count`` M x N x K products as one
    descriptor on ``chip`` (a :class:`~systolab.models.chip.ChipConfig`), with the exact
    model's counters (cycles of the chip's clock, bytes); of the mappings within
    :data:`TRAFFIC_TOLERANCE` of the fewest cycles the one whose DMA reads the fewest DRAM
    bytes wins, then the fewer cycles, then the space's order. A space with no valid
    mapping is a :class:`UserError` saying which capacity rules it out."""
    from .chip import ChipConfig

    if not isinstance(chip, ChipConfig):
        raise TypeError(f"chip must be a ChipConfig (systolab.get_chip), not {type(chip).__name__}")
    M, N, K, count = check_int("M", M), check_int("N", N), check_int("K", K), check_int("count", count)
    check_choice("search", search, SEARCHES)
    cands = candidates(chip, M, N, K, count)
    if not cands:
        raise _no_mapping(chip, M, N, K)
    keep = max(FAST_SHORTLIST, math.ceil(FAST_FRACTION * len(cands)))
    if search == "fast" and len(cands) > keep:
        order = np.argsort(screen_cycles(chip, M, N, K, count, cands), kind="stable")[:keep]
        timed = [cands[i] for i in sorted(order)]
    else:
        timed = cands

    position = {b: x for x, b in enumerate(cands)}

    def exact(blockings):
        return [(chip_gemm_cycles(chip, M, N, K, b, count), position[b], b) for b in blockings]

    def choose(rows):
        fastest = min(r[0] for r in rows)
        near = [(chip_dram_bytes_read(chip, M, N, K, r[2], count), *r) for r in rows
                if r[0] <= fastest * (1 + TRAFFIC_TOLERANCE)]
        return min(near)

    rows = exact(timed)
    if len(timed) < len(cands):
        # refine: the screen misjudges block sizes more than grids, so time every mapping
        # with the incumbent's grid as well
        b = choose(rows)[3]
        grid = (b.gp, b.gm, b.gn, b.gk)
        seen = set(timed)
        more = [c for c in cands if (c.gp, c.gm, c.gn, c.gk) == grid and c not in seen]
        rows += exact(more)
    _, cycles, _, b = choose(rows)
    perf = chip_gemm_counters(chip, M, N, K, b, count, cycles=cycles)
    return Mapping(chip.name, M, N, K, count, search, b, perf, chip_bound(chip, perf), len(cands), len(rows),
                   dram_traffic_lower_bound(chip, M, N, K, count), dma_traffic_lower_bound(chip, M, N, K, count),
                   blocking_traffic(chip, M, N, K, b, count), chip.clock_hz)


__all__ = ["FAST_FRACTION", "FAST_SHORTLIST", "LOOP_ORDER", "SEARCHES", "TRAFFIC_TOLERANCE", "Mapping", "chip_bound",
           "map_gemm", "screen_cycles"]
