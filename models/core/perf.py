"""Cycle model of the accelerator core (``hdl/accelerator.py``), derived from its schedule.

The core cuts a GEMM into chunks (``tile_m`` rows x ``cols`` columns x ``k_chunk`` of K,
in M-block, N-tile, K-chunk order, see :mod:`systolab.hdl.accelerator`) and moves each
chunk through a pipeline of stages that overlap across chunks (double buffering). For a
chunk with ``rows`` valid rows, ``cols`` valid columns and ``klen`` K elements:

* **fill** ``L``: its A rows and B columns arrive over the memory port:
  ``(rows + cols) * ceil(klen * in_bytes / W)`` beats, one every ``ceil(W / bytes_per_cycle)``
  cycles, plus the receiver's idle cycles at the chunk boundary and the A->B switch that
  the memory's credit refill does not already cover. A fill starts when the previous one
  is done and a buffer bank is free (the array side has finished the chunk two before).
  The loader issues the reads ahead, at most 4 chunks ahead of the receiver, so memory
  latency shows before the first chunk and again only when chunks are short.
* **OS feed** ``F``: ``klen`` k-slices into the array, one per cycle, back to back with
  the previous chunk, one cycle after its fill ends; a tile's last slice at least
  max(R, C) cycles after the previous tile's; with C < 3 the array freezes 3 - C cycles
  while a finished tile's first result row waits for its entry in the tile queue.
* **WS weights** ``Wt`` and **rows** ``F``: the B tile into the array's idle weight bank
  (R cycles; the bank is free R + C - 2 cycles after the rows of the chunk two before it),
  then the chunk's ``rows`` A rows, one per cycle. A non-first K-chunk also waits until
  the first row of the previous chunk has left the array (R + C cycles after it entered),
  since it reads that row's partial sum. Rows of a tile's final chunk go to the writer
  (``nb`` beats per row): when it falls behind, the write queue fills and the array
  freezes, moving one step per row written until the queue drains (writer stage ``Wr``).
* **OS writer** ``Wr``: one writer sends every final tile's rows, ``nb`` beats each, in
  order: a tile's first row is routed max(C + S - 1, 3) cycles after its last slice, and
  its rows are written after the previous tile's (a tile whose write-back is longer than
  the next tile's feed delays it: rows of several beats, small K).
* **router bubble**: the writer's router takes a tile one cycle after routing the previous
  tile's last row, so a tile whose rows follow the previous tile's back to back freezes
  the array one cycle (OS: tiles bound by the array's guard, last slices S R array steps
  apart, then every such tile; WS: tiles of one K-chunk fed right after the previous
  tile's rows; the freeze holds the weight load too).
* **drain**: after the last operand, the array's latency and the write-back of the last
  tile's rows.
* **pipelined MAC** (``mac_stages`` S > 1, the array's timing contract in
  :mod:`systolab.hdl.array`): OS feeds S beats a k-slice (``S klen`` a chunk) into tiles
  of S R rows, a tile's last beat at least (S - 1) R + max(R, C) after the previous tile's,
  its first result row C + S - 1 cycles after it; WS keeps one A row a cycle, with the
  array's latency S R + C - 1 in place of R + C - 1 and the weight bank free S (R - 1) +
  C - 2 cycles after its last row. At S = 1 every term is the one above.

Each stage end is a max of its predecessors plus its duration (a max-plus recurrence); the
integer constants (in :mod:`~systolab.models.core.kernel`) are the controller's FIFO and
state-machine latencies. Runs of identical chunks, tiles and M-blocks become periodic
within a few steps; the evaluation steps until two consecutive periods (of up to 8 steps)
agree and then jumps. The recurrence is compiled with Numba (``kernel.py``): about
1.5 us a shape where the same code in Python took 0.5 ms (benchmarks/README.md), so a
mapper's search of tens of thousands of core sub-GEMMs costs tens of milliseconds. It is
compiled on first use and kept in Numba's cache (about 8 s once per machine and source).

Measured against the RTL (``systolab validate``, 6 configurations x 50 shapes on
Verilator; ``--mac-stages 2`` and ``3``, 5 float configurations x 20 shapes, on Verilator and
at S = 2 on Amaranth's simulator): every cycle count exact. Closed since (2026-12-08, RTL-measured counts in
``tests/test_cycle_gaps.py``): the output-stationary row queue (2 tile_m rows) full behind a
writer of multi-beat rows freezes the array, which then steps once per row written (the
frozen steps hold the feed, the tile guard and the bank release back; two tiles' freezes
are kept, since one outlasts the next tile's feed; the router's bubble is counted in steps
and is absorbed when the queue holds the row back anyway): 5x40x1 and 9x40x2 on a 4x4 core
of 4-byte beats, before 7 and 10 cycles short; and weight-stationary, a chunk's last A row
enters the array RC - 1 frozen steps (nb cycles each) before its last result row is
queued: 64^3 at 4-byte beats, before 15 cycles over. Residuals that remain: (1) memory
latency of 100 with chunks so short that the loader's 4-chunk run-ahead cannot hide it
(53 cycles over on a 1x17x40 GEMV on a 4x4 weight-stationary core of 4-byte beats at
2 B/cycle); (2) not the core: the test memory's bandwidth credit starts empty at reset, so
the first GEMM of a run with beats far apart waits for it (max(0, beat - 3 - max(latency,
2)) cycles: 11 on 1x1x1 at 16-byte beats, 1 B/cycle, latency 1); every later GEMM is
exact (the model assumes an idle memory, its credit full).

Assumptions: the memory model of ``sim/memory.py`` without random stalls, whose bandwidth
credit holds at most one beat, so a beat takes ``ceil(W / bytes_per_cycle)`` cycles (a
port of W bytes moves at most one beat per cycle, and fractional rates round down to
whole beats per cycle count); one GEMM at a time on an idle core. Counters that follow
from the tiling alone (busy cycles, MACs, bytes read and written) are exact by
construction.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ...checks import MAX_DIM, check_core, check_int, check_real
from ...config import AcceleratorConfig
from ...errors import UserError


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class MemorySystem:
    """External memory as the core sees it: read latency (cycles) and sustained bandwidth
    (bytes per cycle).

    The cycle model covers bandwidths of at least one byte per cycle. Below that, the
    first beats wait on the memory's bandwidth credit rather than on its latency, a regime
    the model's recurrence does not describe (it came out below the bandwidth bound), so
    it is refused. A chip's cores sharing a slower memory go through :func:`chip_perf`,
    which models the average rate and never returns less than the bandwidth bound."""

    latency_cycles: int = 10
    bytes_per_cycle: float = 16.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency_cycles", check_int("latency_cycles", self.latency_cycles, hi=100_000))
        object.__setattr__(self, "bytes_per_cycle", check_real("bytes_per_cycle", self.bytes_per_cycle, lo=1.0,
                                                               hi=1024.0))


@dataclass(frozen=True)
class CorePerf:
    """Modelled counters of one GEMM on one core (names as the RTL's counters)."""

    cycles: int
    busy_cycles: int
    macs: int
    bytes_read: int
    bytes_written: int
    roofline_cycles: float
    bound: str              # "compute" or "memory"
    pes: int

    @property
    def utilization(self) -> float:
        return self.macs / (self.pes * self.cycles)

    def to_dict(self) -> dict:
        return {**asdict(self), "utilization": self.utilization}


def _check_dims(M: int, N: int, K: int) -> tuple[int, int, int]:
    return check_int("M", M), check_int("N", N), check_int("K", K)


#: The core model's range: a GEMM whose cycles may exceed this is refused. The recurrence
#: keeps its times in float64, exact integers below 2**53; beyond that its period test
#: fails and it would step through every chunk (hours). 2**52 cycles is 52 days at 1 GHz.
MAX_CORE_CYCLES = 2**52


def core_cycles_upper_bound(config: AcceleratorConfig, M: int, N: int, K: int,
                            memory: MemorySystem = MemorySystem()) -> int:
    """An upper bound on :func:`core_cycles` (closed form, no recurrence): every chunk's
    stages run one after another with nothing overlapped, each beat at the memory's
    whole-beat spacing, each chunk waiting the full latency and every hand-off, four times over
    (a margin: the sum alone came within a factor of two of the model on random shapes)."""
    M, N, K = _check_dims(M, N, K)
    R, C, W = config.rows, config.cols, config.beat_bytes
    counts = core_counters(config, M, N, K)
    n_tiles, m_blocks, nk = _ceil_div(N, C), _ceil_div(M, config.tile_m), _ceil_div(K, config.k_chunk)
    chunks = m_blocks * n_tiles * nk
    beat_t = math.ceil(_beat_cycles(memory, W, True))
    write_beats = M * n_tiles * _ceil_div(C * config.acc_bytes, W)
    S = config.mac_stages
    feed = m_blocks * n_tiles * K * S + M * n_tiles * nk + chunks * R * S
    per_chunk = memory.latency_cycles + config.tile_m + 2 * C + 2 * R * S + 64
    return 4 * (counts["bytes_read"] // W * beat_t + write_beats * beat_t + feed + chunks * per_chunk) + 1024


def check_core_gemm(config: AcceleratorConfig, M: int, N: int, K: int, memory: MemorySystem = MemorySystem(), *,
                    parameter: str = "gemm") -> tuple[int, int, int]:
    """(M, N, K) checked, and within the core model's range (:data:`MAX_CORE_CYCLES`); a
    GEMM beyond it is a :class:`UserError` naming ``parameter``."""
    M, N, K = _check_dims(M, N, K)
    if core_cycles_upper_bound(config, M, N, K, memory) > MAX_CORE_CYCLES:
        raise UserError(f"{parameter}: {M}x{N}x{K} is beyond the core model's range (it may take more than 2**52 "
                        f"cycles, where the model's times stop being exact); split it into smaller GEMMs",
                        parameter=parameter)
    return M, N, K


def _k_runs(K: int, KC: int) -> list[tuple[int, bool, bool, int]]:
    """The K-chunks of a tile as runs (klen, first, last, count)."""
    nk = _ceil_div(K, KC)
    if nk == 1:
        return [(K, True, True, 1)]
    runs = [(KC, True, False, 1)]
    if nk > 2:
        runs.append((KC, False, False, nk - 2))
    return runs + [(K - (nk - 1) * KC, False, True, 1)]


@lru_cache(maxsize=256)
def _geometry(config: AcceleratorConfig, latency_cycles: int) -> np.ndarray:
    """The compiled model's geometry vector (``kernel.G*``) of a configuration behind
    a memory of this latency, computed once (the search asks tens of thousands of times)."""
    return np.array([config.rows, config.cols, config.beat_bytes, config.input_bytes, config.tile_m, config.k_chunk,
                     config.acc_bytes, config.dataflow == "os", latency_cycles, config.mac_stages], dtype=np.int64)


def core_counters(config: AcceleratorConfig, M: int, N: int, K: int) -> dict:
    """Counters that follow from the tiling alone (exact): busy cycles, MACs, bytes."""
    M, N, K = _check_dims(M, N, K)
    R, C, W, eb = config.rows, config.cols, config.beat_bytes, config.input_bytes
    TM, KC = config.tile_m, config.k_chunk
    beats_k = sum(_ceil_div(klen * eb, W) * cnt for klen, _, _, cnt in _k_runs(K, KC))
    n_tiles, m_blocks = _ceil_div(N, C), _ceil_div(M, TM)
    # OS: a beat per k per row group (S of them with a pipelined MAC); WS: an A row per K-chunk
    busy = m_blocks * n_tiles * K * config.mac_stages if config.dataflow == "os" else M * n_tiles * _ceil_div(K, R)
    return {"busy_cycles": busy, "macs": M * N * K,
            "bytes_read": (M * n_tiles + N * m_blocks) * beats_k * W,
            "bytes_written": M * N * config.acc_bytes}


def _compiled():
    """The compiled recurrence (:func:`~systolab.models.core.kernel.cycles_many`)."""
    from .kernel import cycles_many  # noqa: PLC0415  lazy: numba loads the compiled kernel (about 1 s; 15 s to compile on a new machine)

    return cycles_many


def core_cycles(config: AcceleratorConfig, M: int, N: int, K: int, memory: MemorySystem = MemorySystem(), *,
                whole_beats: bool = True) -> int:
    """Cycles from accepting the descriptor to ``done`` (the RTL's ``cycles`` counter).

    ``whole_beats=False`` spaces beats by the average ``W / bytes_per_cycle`` instead of
    the test memory's whole cycles: a chip's memory system shared by many cores delivers
    fractional rates on average (used by :func:`chip_perf`; not what the RTL is validated
    against)."""
    if not isinstance(memory, MemorySystem):
        raise TypeError(f"memory must be a MemorySystem, not {type(memory).__name__}")
    M, N, K = check_core_gemm(config, M, N, K, memory)
    return int(_compiled()(_geometry(config, memory.latency_cycles), _beat_cycles(memory, config.beat_bytes, whole_beats),
                           *(np.array([v], dtype=np.int64) for v in (M, N, K)))[0])


def core_cycles_many(config: AcceleratorConfig, M, N, K, memory: MemorySystem = MemorySystem(), *,
                     whole_beats: bool = True):
    """:func:`core_cycles` of many shapes at once (integer arrays of M, N and K that
    broadcast together, each entry in 1..2**31-1): an int64 array of cycles. One compiled
    loop, about a microsecond a shape; the mapper's search asks for tens of thousands."""
    if not isinstance(memory, MemorySystem):
        raise TypeError(f"memory must be a MemorySystem, not {type(memory).__name__}")
    dims = {"M": np.asarray(M), "N": np.asarray(N), "K": np.asarray(K)}
    for name, v in dims.items():
        if v.dtype.kind not in "iu":
            raise UserError(f"{name}: must be integers, not {v.dtype}", parameter=name)
        if v.size and not (v.min() >= 1 and v.max() <= MAX_DIM):
            bad = int(v.min()) if v.min() < 1 else int(v.max())
            raise UserError(f"{name}: every entry must be in 1..{MAX_DIM}, got {bad}", parameter=name)
    try:
        M, N, K = np.broadcast_arrays(*(v.astype(np.int64) for v in dims.values()))
    except ValueError:
        raise UserError(f"M, N, K: shapes {', '.join(str(v.shape) for v in dims.values())} do not broadcast together",
                        parameter="M") from None
    if M.size:      # the bound grows with each dimension: the largest of each bounds them all
        check_core_gemm(config, int(M.max()), int(N.max()), int(K.max()), memory, parameter="M")
    out = _compiled()(_geometry(config, memory.latency_cycles), _beat_cycles(memory, config.beat_bytes, whole_beats),
                      *(np.ascontiguousarray(v).ravel() for v in (M, N, K)))
    return out.reshape(M.shape)


def _beat_cycles(memory: MemorySystem, beat_bytes: int, whole_beats: bool) -> float:
    """Cycles between beats: the memory's credit is capped at one beat, so a beat takes a
    whole number of cycles (``whole_beats``), or else the average spacing, at most one
    beat a cycle."""
    if whole_beats:
        return float(max(1, math.ceil(beat_bytes / memory.bytes_per_cycle - 1e-9)))
    return max(1.0, beat_bytes / memory.bytes_per_cycle)


def classify_bound(cycles: float, compute_cycles: float, memory_cycles: float) -> str:
    """What limits a run: ``compute`` (the array's busy cycles) or ``memory`` (the beats at
    the memory's rate), whichever is larger, when it accounts for at least half of the
    run; else ``latency`` (pipeline fill and drain, memory latency, hand-offs dominate)."""
    longest = max(compute_cycles, memory_cycles)
    if longest < 0.5 * cycles:
        return "latency"
    return "memory" if memory_cycles > compute_cycles else "compute"


def core_perf(config: AcceleratorConfig, M: int, N: int, K: int, memory: MemorySystem = MemorySystem(), *,
              whole_beats: bool = True) -> CorePerf:
    """Cycles and counters of one GEMM on one core, the roofline bound beside them. The
    cycles are never below the roofline (every MAC at one per PE per cycle, every byte
    read at the memory's rate and at most one beat per cycle)."""
    counts = core_counters(config, M, N, K)
    if not isinstance(memory, MemorySystem):
        raise TypeError(f"memory must be a MemorySystem, not {type(memory).__name__}")
    cycles = core_cycles(config, M, N, K, memory, whole_beats=whole_beats)
    pes = config.rows * config.cols
    # roofline: the port's raw bandwidth (a lower bound); bound: whole beats as the port moves them
    roofline = max(counts["macs"] / pes, counts["bytes_read"] / min(memory.bytes_per_cycle, config.beat_bytes))
    cycles = max(cycles, math.ceil(roofline - 1e-9))
    beats = counts["bytes_read"] // config.beat_bytes
    bound = classify_bound(cycles, counts["busy_cycles"], beats * _beat_cycles(memory, config.beat_bytes, whole_beats))
    return CorePerf(cycles=cycles, roofline_cycles=roofline, bound=bound, pes=pes, **counts)


# -- chip level ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChipPerf:
    """One GEMM on a chip of identical cores sharing the off-chip bandwidth."""

    seconds: float
    cycles: int              # of the busiest core
    macs: int
    macs_issued: int         # MACs the PEs perform, edge padding included (all cores)
    bytes_read: int
    bytes_written: int
    utilization: float       # MACs / (all PEs x cycles)
    bound: str
    split: str               # how the GEMM was divided: "N/8" = N across 8 cores, ...

    def to_dict(self) -> dict:
        return asdict(self)


def split_gemm(config: AcceleratorConfig, cores: int, M: int, N: int) -> tuple[str, int, int, int]:
    """How a GEMM is divided over ``cores``: (dimension, parts, largest M, largest N).

    N is split into contiguous column blocks, whole N-tiles each, when it has at least one
    tile per core (every core then reads all of A and its own slice of B: weights stream
    once, as in decode); otherwise M is split into row blocks of whole M-tiles; a GEMM too
    small for either runs on as many cores as it has tiles. ``parts`` counts the cores that
    get work (equal blocks of the busiest core's size; the last part takes the rest).
    """
    n_tiles, m_tiles = _ceil_div(N, config.cols), _ceil_div(M, config.tile_m)
    if n_tiles >= cores or n_tiles >= m_tiles:
        per = _ceil_div(n_tiles, min(cores, n_tiles))          # tiles of the busiest core
        return "N", _ceil_div(n_tiles, per), M, min(N, per * config.cols)
    per = _ceil_div(m_tiles, min(cores, m_tiles))
    return "M", _ceil_div(m_tiles, per), min(M, per * config.tile_m), N


def chip_perf(config: AcceleratorConfig, M: int, N: int, K: int, *, cores: int, clock_hz: float,
              dram_bytes_per_s: float, dram_latency_ns: float = 100.0) -> ChipPerf:
    """One GEMM split over ``cores`` cores at ``clock_hz``; each core sees latency
    ``dram_latency_ns`` and an equal share of ``dram_bytes_per_s`` at its average rate
    (``whole_beats=False``: beats spaced by W / share, at most one per cycle). The busiest
    core sets the time (the others finish with it or earlier)."""
    M, N, K = _check_dims(M, N, K)
    cores = check_int("cores", cores, hi=1 << 24)
    clock_hz = check_real("clock_hz", clock_hz, lo=0.0, lo_open=True)
    dram_bytes_per_s = check_real("dram_bytes_per_s", dram_bytes_per_s, lo=0.0, lo_open=True)
    check_real("dram_latency_ns", dram_latency_ns, lo=0.0)
    dim, parts, m, n = split_gemm(config, cores, M, N)
    share = dram_bytes_per_s / clock_hz / parts          # bytes per cycle of each working core
    latency = max(1, min(100_000, round(dram_latency_ns * 1e-9 * clock_hz)))
    p = core_perf(config, m, n, K, MemorySystem(latency, min(1024.0, max(1.0, share))), whole_beats=False)
    # below one byte per cycle per core the recurrence is not valid (see MemorySystem): the
    # busiest core's reads at its share of the bandwidth bound its time instead
    cycles = max(p.cycles, math.ceil(p.bytes_read / share - 1e-9))
    # parts - 1 busiest parts and the remainder
    rest = (M, N - (parts - 1) * n) if dim == "N" else (M - (parts - 1) * m, N)
    read = p.bytes_read * (parts - 1) + core_counters(config, *rest, K)["bytes_read"]
    issued = core_counters(config, M, N, K)["busy_cycles"] * config.rows * config.cols  # splits add no padding
    bound = p.bound if cycles == p.cycles else "memory"
    return ChipPerf(seconds=cycles / clock_hz, cycles=cycles, macs=M * N * K, macs_issued=issued, bytes_read=read,
                    bytes_written=M * N * config.acc_bytes,
                    utilization=M * N * K / (cores * config.rows * config.cols * cycles),
                    bound=bound, split=f"{dim}/{parts}")


@dataclass(frozen=True)
class WorkloadPerf:
    """A list of GEMMs (each ``count`` times) run one after another on a chip."""

    seconds: float
    cycles: int
    macs: int
    macs_issued: int
    bytes_moved: int         # read and written
    bytes_read: int
    utilization: float
    bound: str               # the bound of the GEMMs that take most of the time
    gemms: tuple[dict, ...]

    def units_per_second(self, units_per_run: int) -> float:
        """Units of work per second of a workload that delivers ``units_per_run`` a run."""
        return units_per_run / self.seconds

    def dram_bandwidth_utilization(self, dram_bytes_per_cycle: float) -> float:
        """Bytes moved (read and written) over what ``dram_bytes_per_cycle`` moves in
        ``cycles``, 0..1."""
        return self.bytes_moved / (dram_bytes_per_cycle * self.cycles)

    def to_dict(self) -> dict:
        return asdict(self)


def workload_perf(config: AcceleratorConfig, gemms, *, cores: int = 1, clock_hz: float = 1e9,
                  dram_bytes_per_s: float = 16e9, dram_latency_ns: float = 10.0) -> WorkloadPerf:
    """Time of ``gemms`` (objects with M, N, K, count, name) on ``cores`` cores, one GEMM
    after another, each split over the cores as :func:`split_gemm` says. Input data are
    taken in the core's own integer format (an int8 core runs a quantised model)."""
    check_core("config", config)
    cache: dict[tuple[int, int, int], ChipPerf] = {}
    rows, seconds, cycles, macs, issued, moved, read = [], 0.0, 0, 0, 0, 0, 0
    by_bound = {"compute": 0.0, "memory": 0.0, "latency": 0.0}
    for g in gemms:
        key = (g.M, g.N, g.K)
        if key not in cache:
            cache[key] = chip_perf(config, *key, cores=cores, clock_hz=clock_hz, dram_bytes_per_s=dram_bytes_per_s,
                                   dram_latency_ns=dram_latency_ns)
        p = cache[key]
        seconds += p.seconds * g.count
        cycles += p.cycles * g.count
        macs += p.macs * g.count
        issued += p.macs_issued * g.count
        moved += (p.bytes_read + p.bytes_written) * g.count
        read += p.bytes_read * g.count
        by_bound[p.bound] += p.seconds * g.count
        rows.append({"name": g.name, "M": g.M, "N": g.N, "K": g.K, "count": g.count, **p.to_dict()})
    if not rows:
        raise UserError("workload: holds no GEMMs")
    util = macs / (cores * config.rows * config.cols * cycles)
    return WorkloadPerf(seconds=seconds, cycles=cycles, macs=macs, macs_issued=issued, bytes_moved=moved, bytes_read=read, utilization=util,
                        bound=max(by_bound, key=lambda b: by_bound[b]), gemms=tuple(rows))


def perf_table(configs, shapes, memory: MemorySystem = MemorySystem()) -> dict:
    """Every configuration on every shape in one call: arrays of shape (configs, shapes)
    for ``cycles``, ``busy_cycles``, ``macs``, ``bytes_read``, ``bytes_written``,
    ``utilization`` and ``memory_bound``. Each distinct (configuration, shape) pair is
    evaluated once (repeated shapes in a workload cost nothing), each by :func:`core_perf`
    (the compiled recurrence: microseconds a pair, the counters in Python around it)."""
    configs, shapes = list(configs), [tuple(s) for s in shapes]
    if not configs or not shapes:
        raise UserError("perf_table: give at least one configuration and one shape")
    keys = ("cycles", "busy_cycles", "macs", "bytes_read", "bytes_written")
    out: dict[str, np.ndarray] = {k: np.zeros((len(configs), len(shapes)), dtype=np.int64) for k in keys}
    bound = np.zeros((len(configs), len(shapes)), dtype=bool)
    for i, cfg in enumerate(configs):
        if not isinstance(cfg, AcceleratorConfig):
            raise UserError(f"configs[{i}]: must be an AcceleratorConfig, not {type(cfg).__name__}")
        seen: dict[tuple, CorePerf] = {}
        for j, shape in enumerate(shapes):
            if shape not in seen:
                if len(shape) != 3:
                    raise UserError(f"shapes[{j}]: must be (M, N, K), not {shape!r}")
                seen[shape] = core_perf(cfg, shape[0], shape[1], shape[2], memory)
            p = seen[shape]
            for k in keys:
                out[k][i, j] = getattr(p, k)
            bound[i, j] = p.bound == "memory"
    pes = np.array([c.rows * c.cols for c in configs])[:, None]
    out["utilization"] = out["macs"] / (pes * out["cycles"])
    out["memory_bound"] = bound
    return out
