"""The chip's mapper: how a GEMM (``count`` independent products of M x N x K) is blocked
and spread over the cores, chosen by a search, and reported with the traffic bound.

**The mapping space** is :func:`~systolab.models.chip.blocking.candidates`: the block held in
the global SRAM (``mb x nb x kb``, levels DRAM -> global SRAM), the split over cores
(``gp`` products x ``gm`` rows x ``gn`` columns x ``gk`` K-groups, split-K paying its
reduction on write-back) and each core's part (``mc x nc x kc``, which the core cuts into
its own buffers' chunks, ``tile_m x cols x k_chunk``: the core buffer level is fixed by
the core's configuration) and the loop order: product groups, then M- and N-blocks in
either order, K-blocks innermost (``hdl/chip.py``). With K innermost the partial sums stay
in the slices; with one K-block the controller keeps an operand block on chip while the
steps share it, A along a row of N-blocks (N inside, order 0) or B along a column of
M-blocks (M inside, order 1), so both orders are searched where there are several M- and
N-blocks (elsewhere they run alike).

**Searches.**

* ``exhaustive``: every candidate timed one by one by the exact cycle model
  (:func:`~systolab.models.chip.perf.chip_gemm_cycles`, equal to the RTL's counters);
  the reference.
* ``fast``: every candidate timed by the same exact model vectorised over the candidates
  (:func:`~systolab.models.chip.batch.chip_gemm_cycles_batch`, equal to it on every
  mapping: ``tests/test_chip_batch.py``), so it finds the exhaustive search's choice, at
  a quarter of a million mappings a second, cold or warm (compiled, ``benchmarks/mapper.py``).
  Where the exact model must step through the schedule (a DRAM channel so slow that its
  credit delays a job's first beat: :func:`~systolab.models.chip.perf.block_model_applies`),
  the block model (:func:`screen_cycles`) is a lower bound on each mapping's cycles; the
  mappings are timed exactly in its order until the next bound is more than
  :data:`TRAFFIC_TOLERANCE` over the fewest cycles found, and no mapping left can change
  the choice: again the exhaustive search's, found from a fraction of the space.

**Choice.** Of the mappings a search timed, those within :data:`TRAFFIC_TOLERANCE` (1 %)
of the fewest cycles count as equally fast, and the one of them whose DMA reads the fewest
DRAM bytes (:func:`~systolab.models.chip.perf.chip_dram_bytes_read`: whole beats, as the
RTL counts them; the writes are the same for every mapping) wins: DRAM energy (tens of pJ
a byte) outweighs a run 1 % longer, and a memory-bound GEMM then moves less (BERT's
1,024 x 3,072 x 768 on ``sl-n4-os32``: 12 % fewer bytes for 5 more cycles of 7,177).

Whatever the search, the numbers reported come from the exact model: the cycles from
:func:`~systolab.models.chip.perf.chip_gemm_cycles`, the other counters from
:func:`~systolab.models.chip.perf.chip_gemm_counters` (each step's counters summed over
the distinct steps), both equal to the step-by-step model (``tests/test_chip.py``).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ...blocking import Blocking, blocking_status
from ...checks import check_chip, check_choice
from ...errors import UserError
from ..frames import data_frame
from ..plotting import new_axes
from .batch import block_model_cycles_batch, block_model_cycles_many, chip_gemm_cycles_batch
from .blocking import blocking_traffic, candidates, dma_traffic_lower_bound, dram_traffic_lower_bound
from .config import ChipConfig
from .perf import ChipGemmPerf, block_model_applies, check_chip_gemm, chip_dram_bytes_read, chip_gemm_counters, chip_gemm_cycles

SEARCHES = ("fast", "exhaustive")
#: Mappings within this fraction of the fewest cycles are equally fast; the least traffic wins.
TRAFFIC_TOLERANCE = 0.01
#: The controller's loop orders (a blocking's ``order``), outermost first.
LOOP_ORDERS = ("product groups > M-blocks > N-blocks > K-blocks (K innermost; A stays on chip along N)",
               "product groups > N-blocks > M-blocks > K-blocks (K innermost; B stays on chip along M)")


def screen_cycles(chip, M: int, N: int, K: int, count: int, blockings) -> np.ndarray:
    """The block model's cycles of each blocking (an array), vectorised over the blockings
    (:func:`~systolab.models.chip.batch.block_model_cycles_batch`): exact where it applies,
    elsewhere a lower bound on the exact cycles (it leaves out the delays of a DRAM credit
    so slow that a channel's beats are more than 6 cycles apart)."""
    return block_model_cycles_batch(chip, M, N, K, blockings, count).astype(float)


@dataclass(frozen=True)
class Mapping:
    """A GEMM's mapping on a chip and what the exact cycle model says of it."""

    chip: str
    M: int
    N: int
    K: int
    count: int
    search: str
    blocking: Blocking
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
        d = self.to_dict()
        mapping = d.pop("mapping")
        d["M"], d["N"], d["K"] = d.pop("gemm")
        d = {("seconds_s" if k == "seconds" else k): v for k, v in d.items()}
        return data_frame([{**{f"map_{k}": v for k, v in mapping.items()}, **d}])

    def _repr_html_(self) -> str:
        return (f"<b>{self.M}x{self.N}x{self.K}</b> x{self.count} on <b>{self.chip}</b> ({self.search} search): "
                f"{self.blocking}, {self.cycles:,} cycles, {self.bound}-bound" + self.to_frame().to_html())

    def to_dict(self) -> dict:
        p = self.perf
        return {"gemm": [self.M, self.N, self.K], "count": self.count, "search": self.search,
                "mapping": {**self.blocking.to_dict(), "text": str(self.blocking), "loop_order": LOOP_ORDERS[self.blocking.order]},
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
    one = Blocking(1, 1, 1, 1, 1)
    why = {4: "operand", 5: "accumulator"}.get(blocking_status(chip, M, N, K, 1, one), "operand")
    return UserError(f"chip: {chip.name}'s slices ({chip.slice_bytes} bytes per core) cannot hold the {why} "
                     f"buffers of any mapping of {M}x{N}x{K}", parameter="chip")


def _choose(chip, M: int, N: int, K: int, count: int, cands, rows) -> tuple[int, int, int]:
    """(DRAM bytes read, cycles, position) of the choice among (cycles, position) ``rows``:
    of those within :data:`TRAFFIC_TOLERANCE` of the fewest cycles, the fewest bytes."""
    rows = list(rows)
    fastest = min(c for c, _ in rows)
    return min((chip_dram_bytes_read(chip, M, N, K, cands[x], count), c, x) for c, x in rows
               if c <= fastest * (1 + TRAFFIC_TOLERANCE))


def _pruned(chip, M: int, N: int, K: int, count: int, cands) -> tuple[list[int], list[int]]:
    """(positions, exact cycles) of the mappings timed where the exact model steps: in the
    order of the block model's cycles, a lower bound there (the DRAM credit only delays
    jobs), until the next bound exceeds the fewest cycles found by more than
    :data:`TRAFFIC_TOLERANCE`. No mapping left can be within it, so the choice is the
    exhaustive search's."""
    bound = screen_cycles(chip, M, N, K, count, cands)
    timed, cycles, fastest = [], [], math.inf
    for x in np.argsort(bound, kind="stable").tolist():
        if bound[x] > fastest * (1 + TRAFFIC_TOLERANCE):
            break
        timed.append(x)
        cycles.append(chip_gemm_cycles(chip, M, N, K, cands[x], count))
        fastest = min(fastest, cycles[-1])
    return timed, cycles


#: Mappings found, by (chip, M, N, K, count, search); the oldest go past this many.
CACHE_SIZE = 4096
_found: OrderedDict = OrderedDict()


def map_gemm(chip, M: int, N: int, K: int, count: int = 1, search: str = "fast") -> Mapping:
    """The mapping the ``search`` picks for ``count`` M x N x K products as one
    descriptor on ``chip`` (a :class:`~systolab.models.chip.config.ChipConfig`), with the exact
    model's counters (cycles of the chip's clock, bytes); of the mappings within
    :data:`TRAFFIC_TOLERANCE` of the fewest cycles the one whose DMA reads the fewest DRAM
    bytes wins, then the fewer cycles, then the space's order. A space with no valid
    mapping is a :class:`UserError` saying which capacity rules it out."""
    check_chip("chip", chip)
    return map_gemms(chip, [(M, N, K, count)], search)[0]


def map_gemms(chip, gemms, search: str = "fast") -> list[Mapping]:
    """:func:`map_gemm` of each (M, N, K, count) of ``gemms`` (a workload's GEMMs): the
    same mappings, the fast search's spaces timed in one pass where the block model is
    exact (the per-call costs paid once, not once a GEMM). Results are kept
    (:data:`CACHE_SIZE`); :func:`clear_cache` forgets them."""
    if not isinstance(chip, ChipConfig):
        raise TypeError(f"chip must be a ChipConfig (systolab.get_chip), not {type(chip).__name__}")
    check_choice("search", search, SEARCHES)
    keys = []
    for i, gemm in enumerate(gemms):
        if not isinstance(gemm, (tuple, list)) or len(gemm) != 4:
            raise UserError(f"gemms[{i}]: must be (M, N, K, count), not {gemm!r}", parameter="gemms")
        keys.append((chip, *check_chip_gemm(chip, *gemm), search))
    todo = [k for k in dict.fromkeys(keys) if k not in _found]
    spaces = []
    for _, M, N, K, count, _ in todo:
        spaces.append(candidates(chip, M, N, K, count))
        if not spaces[-1]:
            raise _no_mapping(chip, M, N, K)
    batched = search == "fast" and block_model_applies(chip)
    timed = block_model_cycles_many(chip, [(*k[1:5], c) for k, c in zip(todo, spaces)]) if batched else [None] * len(todo)
    for key, cands, cycles in zip(todo, spaces, timed):
        _found[key] = _finish(chip, *key[1:], cands, cycles)
        while len(_found) > CACHE_SIZE:
            _found.popitem(last=False)
    return [_found[k] for k in keys]


def mapping_space(chip, M: int, N: int, K: int, count: int = 1):
    """Every mapping of the space (:func:`~systolab.models.chip.blocking.candidates`) with the
    exact model's cycles and DRAM bytes: the trade-offs the search weighs, as a pandas
    DataFrame, one row a mapping: the blocking's fields, ``text``, ``loop_order`` (0: A
    stays on chip along the N-blocks, 1: B along the M-blocks), ``cycles``, ``seconds_s``,
    ``dram_bytes`` (read in whole DMA beats, plus written), ``utilization`` (MACs over the
    chip's peak) and ``chosen`` (the mapper's choice, whatever its search: the same)."""
    check_chip("chip", chip)
    chosen = map_gemm(chip, M, N, K, count)            # checks the parameters
    cands = candidates(chip, M, N, K, count)
    cycles = chip_gemm_cycles_batch(chip, M, N, K, cands, count)
    written = M * N * chip.core.acc_bytes * count
    frame = data_frame([b.to_dict() for b in cands]).rename(columns={"order": "loop_order"})
    frame["text"] = [str(b) for b in cands]
    frame["cycles"] = cycles
    frame["seconds_s"] = cycles / chip.clock_hz
    frame["dram_bytes"] = [chip_dram_bytes_read(chip, M, N, K, b, count) + written for b in cands]
    frame["utilization"] = M * N * K * count / (chip.cores * chip.core.rows * chip.core.cols * cycles)
    frame["chosen"] = [b == chosen.blocking for b in cands]
    return frame


def plot_mapping_space(chip, M: int, N: int, K: int, count: int = 1, ax=None):
    """Each mapping's cycles against its DRAM bytes (:func:`mapping_space`), by loop order,
    with the two traffic lower bounds and the mapper's choice. Returns the matplotlib
    ``Figure`` (drawn into ``ax`` when given)."""
    frame = mapping_space(chip, M, N, K, count)
    fig, ax = new_axes(ax, (7, 4.5))
    for order, rows in frame.groupby("loop_order"):
        ax.scatter(rows["dram_bytes"], rows["cycles"], s=12, alpha=0.6,
                   label=("N-blocks inside (A stays)", "M-blocks inside (B stays)")[int(order)])
    best = frame[frame["chosen"]]
    ax.scatter(best["dram_bytes"], best["cycles"], s=90, facecolors="none", edgecolors="k", label="the mapper's choice")
    for bound, style, name in ((dram_traffic_lower_bound, ":", "lower bound"),
                               (dma_traffic_lower_bound, "--", "lower bound in DMA beats")):
        ax.axvline(bound(chip, M, N, K, count), color="grey", ls=style, lw=1, label=name)
    ax.set(xscale="log", yscale="log", xlabel="DRAM bytes (read + written)", ylabel="cycles",
           title=f"{M}x{N}x{K} x{count} on {chip.name}: {len(frame)} mappings")
    ax.legend(fontsize=8)
    return fig


def clear_cache() -> None:
    """Forget the mappings found (benchmarks time a cold search)."""
    _found.clear()


def _finish(chip, M: int, N: int, K: int, count: int, search: str, cands, cycles_all) -> Mapping:
    """The search's choice among ``cands`` (``cycles_all``: every one's cycles, when the
    fast search has them) with the exact model's counters."""
    if cycles_all is not None:
        timed, cycles = list(range(len(cands))), cycles_all.tolist()
    elif search == "exhaustive":
        timed = list(range(len(cands)))
        cycles = [chip_gemm_cycles(chip, M, N, K, b, count) for b in cands]
    else:
        timed, cycles = _pruned(chip, M, N, K, count, cands)
    _, cycles, x = _choose(chip, M, N, K, count, cands, zip(cycles, timed))
    b = cands[x]
    perf = chip_gemm_counters(chip, M, N, K, b, count, cycles=cycles)
    return Mapping(chip.name, M, N, K, count, search, b, perf, chip_bound(chip, perf), len(cands), len(timed),
                   dram_traffic_lower_bound(chip, M, N, K, count), dma_traffic_lower_bound(chip, M, N, K, count),
                   blocking_traffic(chip, M, N, K, b, count), chip.clock_hz)


def workload_rows(gemms, mappings: list[Mapping]) -> list[dict]:
    """Each GEMM of a workload (objects with name, count, parallel) with its mapping
    (:meth:`Mapping.to_dict`, one descriptor of ``parallel`` products): ``count``,
    ``parallel``, ``rounds`` (descriptors run) and the cycles, seconds and bytes of all of
    them."""
    rows = []
    for g, m in zip(gemms, mappings):
        rounds = g.count // g.parallel
        d = m.to_dict()
        rows.append({"name": g.name, **d, "count": g.count, "parallel": g.parallel, "rounds": rounds,
                     **{k: d[k] * rounds for k in ("cycles", "seconds", "dram_bytes", "dram_bytes_read",
                                                   "dram_bytes_written", "dram_bytes_lower_bound",
                                                   "dram_bytes_lower_bound_dma", "blocking_traffic_bytes")}})
    return rows


def mapping_totals(chip, rows: list[dict]) -> dict:
    """The totals of mapping rows (:meth:`Mapping.to_dict` or :func:`workload_rows`) run
    one after another on ``chip``: cycles, seconds, MAC utilisation, DRAM bytes and their
    lower bounds, the DRAM bandwidth used (0..1) and the bound of most cycles."""
    cycles = sum(r["cycles"] for r in rows)
    macs = sum(r["gemm"][0] * r["gemm"][1] * r["gemm"][2] * r["count"] for r in rows)
    moved = sum(r["dram_bytes"] for r in rows)
    by: dict[str, int] = {}
    for r in rows:
        by[r["bound"]] = by.get(r["bound"], 0) + r["cycles"]
    return {"cycles": cycles, "seconds": cycles / chip.clock_hz,
            "utilization": macs / (chip.cores * chip.core.rows * chip.core.cols * cycles),
            "dram_bytes": moved, "dram_bytes_lower_bound": sum(r["dram_bytes_lower_bound"] for r in rows),
            "dram_bytes_lower_bound_dma": sum(r["dram_bytes_lower_bound_dma"] for r in rows),
            "dram_bandwidth_utilization": moved / (chip.dram_bytes_per_cycle * cycles),
            "bound": max(sorted(by), key=lambda b: by[b])}


__all__ = ["CACHE_SIZE", "LOOP_ORDERS", "SEARCHES", "TRAFFIC_TOLERANCE", "Mapping", "chip_bound",
           "clear_cache", "map_gemm", "map_gemms", "mapping_space", "mapping_totals", "plot_mapping_space", "screen_cycles",
           "workload_rows"]
