"""Cycle model of the chip (``hdl/chip.py``): a blocked GEMM, step by step, as the RTL
runs it, and the counters the RTL reports.

The chip runs a descriptor as *steps* (product group, M-block, N-block, K-block; K
innermost; with the blocking's ``order`` 1, N-blocks outside M-blocks). The model follows
the controller exactly:

* ``CHECK`` (1 cycle), ``SETUP`` (one cycle per core), then the *prologue*: the DMA loads
  step 0's operands while nothing else runs;
* each step: in its ``ISSUE`` cycle every working core gets its sub-GEMM and the DMA a
  job (write back the output block finished by the previous step, if this step starts a
  new one; load the next step's operands, but not an A or B block the next step shares
  with this one: it stays on chip); a barrier ends the step once every core is done and
  the DMA is idle; the next ``ISSUE`` follows;
* the *epilogue*: the DMA writes back the last block; ``done`` the cycle after.

A core's part of a step takes exactly what the core's cycle model says (``models/core/perf.py``)
for its sub-GEMM with the slice's port as its memory (latency ``sram_latency_cycles``, one
core beat per cycle): the slice reproduces the memory timing that model was validated on.
The DMA's job takes what its timing contract says (``hdl/dma.py``): a write-back's beats
one after another from the third cycle of the job plus the write-back sum's register
stages (``ChipConfig.writeback_stages``: its beats leave that many cycles after their
accumulator reads), the load's commands from the second
cycle after the write-back's last beat, its first beat the DRAM latency later (at least
two cycles: the data side takes a segment the cycle after it was issued), then one beat
every ``ceil(word / bandwidth)`` cycles — the DRAM's bandwidth credit holds one beat and
is shared by reads and writes — and idle two cycles after its last beat.

Every counter the RTL reports (cycles, steps, MACs, per-core busy cycles, DRAM and SRAM
bytes) is computed; ``systolab validate --chip`` compares them with the RTL's. The model
is as exact as the core model on the cores' sub-GEMMs (see ``models/core/perf.py`` for the
regimes where that one approximates).
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ...blocking import REJECT, Blocking, beat_spacing, blocking_status, dram_beats, slice_words
from ...checks import check_chip, check_int
from ...errors import UserError
from ..core.perf import MemorySystem, core_counters, core_cycles
from ..workloads.catalog import check_fits

NEVER = -(1 << 60)
#: The chip model's range: a descriptor of more MACs (count x M x N x K) than this, about
#: 10**15 (a day of a 10-TOPS chip), is refused; below it every count fits an int64.
MAX_CHIP_MACS = 2**50
#: The step-by-step model (:func:`chip_gemm_perf`, and the cycles where the block model
#: does not apply) walks every step: at most this many (seconds, not hours).
MAX_STEPPED_STEPS = 1 << 18


def check_chip_gemm(chip, M: int, N: int, K: int, count: int = 1, *, parameter: str = "gemm"
                    ) -> tuple[int, int, int, int]:
    """(M, N, K, count) checked: within the chip model's range (:data:`MAX_CHIP_MACS`), and
    their operands and result within the chip's DRAM (the one capacity check,
    :func:`~systolab.models.workloads.catalog.check_fits`); else a :class:`UserError`
    naming ``parameter``. Every entry point that maps or times a descriptor on a chip
    calls it (the mapper, :func:`chip_gemm_perf`, ``descriptor_perf``)."""
    M, N, K, count = check_int("M", M), check_int("N", N), check_int("K", K), check_int("count", count)
    shown = f"{M}x{N}x{K}" + (f" x{count}" if count > 1 else "")
    if M * N * K * count > MAX_CHIP_MACS:
        raise UserError(f"{parameter}: {shown} is {M * N * K * count:.3g} MACs, beyond the chip model's range "
                        f"(at most 2**50 = {MAX_CHIP_MACS:.3g} MACs a descriptor); split it into smaller GEMMs",
                        parameter=parameter)
    # its operands and result sit in the chip's DRAM: the one capacity check
    operands = count * ((M * K + K * N) * chip.core.input_bytes + M * N * chip.core.acc_bytes)
    check_fits(operands, chip.dram.GB, chip.name, what=f"{shown} (its operands and result)", parameter=parameter)
    return M, N, K, count


def stepped_steps(M: int, N: int, K: int, b: Blocking, count: int = 1) -> int:
    """Steps of a descriptor under ``b`` (closed form)."""
    return -(-count // b.gp) * -(-M // b.mb) * -(-N // b.nb) * -(-K // b.kb)


@dataclass(frozen=True)
class ChipGemmPerf:
    """One descriptor on the chip: the RTL's counters, modelled."""

    cycles: int
    steps: int
    macs: int
    busy: tuple[int, ...]          # per core
    dram_bytes_read: int
    dram_bytes_written: int
    sram_bytes_read: int
    sram_bytes_written: int
    core_bytes_read: int           # the cores' reads from their slices (part of sram_bytes_read)
    cores: int
    pes_per_core: int
    dram_bytes_per_cycle: float

    @property
    def utilization(self) -> float:
        """MACs over what every PE of every core could have done in ``cycles``."""
        return self.macs / (self.cores * self.pes_per_core * self.cycles)

    @property
    def dram_bandwidth_utilization(self) -> float:
        """DRAM bytes moved (read and written) over what the DRAM could move in ``cycles``."""
        return (self.dram_bytes_read + self.dram_bytes_written) / (self.dram_bytes_per_cycle * self.cycles)

    def counters(self) -> dict[str, int | list[int]]:
        """The counters under the RTL's names (``busy`` as a list)."""
        return {"cycles": self.cycles, "steps": self.steps, "macs": self.macs,
                "dram_bytes_read": self.dram_bytes_read, "dram_bytes_written": self.dram_bytes_written,
                "sram_bytes_read": self.sram_bytes_read, "sram_bytes_written": self.sram_bytes_written,
                "busy": list(self.busy)}

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(busy=list(self.busy), utilization=self.utilization,
                 dram_bandwidth_utilization=self.dram_bandwidth_utilization)
        return d


class _Dram:
    """A DMA channel's bandwidth credit (``sim/memory.py``, reads and writes charged): it
    grows by ``bytes_per_cycle`` a cycle up to one beat (or ``bytes_per_cycle`` if larger),
    and a beat needs a whole beat of it, so beats are ``spacing`` cycles apart when back to
    back and the first beat after an idle stretch of that length is not delayed."""

    def __init__(self, word: int, bytes_per_cycle: float):
        self.word = word
        self.spacing = beat_spacing(word, bytes_per_cycle)
        self.last = NEVER                    # cycle of the last beat

    def first_beat(self, earliest: int) -> int:
        return max(earliest, self.last + self.spacing)

    def beats(self, first: int, n: int) -> int:
        """``n`` beats back to back from ``first``: the cycle of the last one."""
        self.last = first + (n - 1) * self.spacing
        return self.last


def _extent(origin: int, total: int, block: int) -> int:
    return min(block, total - origin)


def _groups(length: int, size: int, groups: int) -> list[int]:
    """Sizes of the ``groups`` consecutive groups of ``size`` over ``length`` (0 past it)."""
    return [max(0, min(size, length - g * size)) for g in range(groups)]


def _kparts(b: Blocking, klen: int) -> list[int]:
    """The K-groups' parts of a K-block of ``klen`` (empty parts left out)."""
    return _kparts_of(b.kc, b.gk, klen)


def _kparts_of(kc: int, gk: int, klen: int) -> list[int]:
    return [min(kc, klen - kk * kc) for kk in range(gk) if kk * kc < klen]


@lru_cache(maxsize=256)
def dma_shape(chip) -> tuple[int, int, int, int]:
    """What a block's DMA beats depend on: (channels, DMA beat bytes, operand bytes,
    accumulator bytes). The caches below are keyed by it rather than by the chip, so
    that chips differing only in cores, clock or DRAM (an exploration's points) share them."""
    return chip.dma_channels, chip.dma_beat_bytes, chip.core.input_bytes, chip.core.acc_bytes


#: Which operands a load moves (bits): A, B or both (:func:`load_ops`).
LOAD_A, LOAD_B, LOAD_AB = 1, 2, 3


def load_ops(b: Blocking, cur: tuple, nxt: tuple) -> int:
    """What the step at origin ``nxt`` (p0, m0, n0, k0) loads after the step at ``cur``:
    not an operand block the two share (same products and K-block, and same M-block for
    A or same N-block for B), which stays on chip."""
    same_pk = cur[0] == nxt[0] and cur[3] == nxt[3]
    return (0 if same_pk and cur[1] == nxt[1] else LOAD_A) | (0 if same_pk and cur[2] == nxt[2] else LOAD_B)


def step_origins(M: int, N: int, K: int, b: Blocking, count: int = 1) -> list[tuple[int, int, int, int]]:
    """Every step's origin (p0, m0, n0, k0) in the controller's order: products, then M-
    and N-blocks (N inside for ``order`` 0, M inside for 1), then K-blocks."""
    ps, ms, ns, ks = range(0, count, b.gp), range(0, M, b.mb), range(0, N, b.nb), range(0, K, b.kb)
    if b.order:
        return [(p, m, n, k) for p in ps for n in ns for m in ms for k in ks]
    return [(p, m, n, k) for p in ps for m in ms for n in ns for k in ks]


def load_counts(M: int, N: int, K: int, b: Blocking) -> tuple[int, int]:
    """How many times a descriptor loads each A block and each B block: A once per
    N-block and B once per M-block, but once in all where it stays on chip from step to
    step (one K-block; A along the N-blocks of order 0 or with one M-block, B along the
    M-blocks of order 1 or with one N-block)."""
    n_m, n_n = -(-M // b.mb), -(-N // b.nb)
    if b.kb < K:
        return n_n, n_m
    return (1 if b.order == 0 or n_m == 1 else n_n), (1 if b.order == 1 or n_n == 1 else n_m)


@lru_cache(maxsize=1 << 16)
def _channel_beats(shape: tuple, b: Blocking, live: int, mlen: int, nlen: int, klen: int | None,
                   ops: int = LOAD_AB) -> tuple[int, ...]:
    """DRAM beats each channel moves for a block (``hdl/dma.py``) on a chip of
    :func:`dma_shape` ``shape``: its load (``klen`` given) of the A rows (``ops`` has
    :data:`LOAD_A`) and B columns (:data:`LOAD_B`) of its groups, or its write-back
    (``klen`` None) of the rows of its K-group-0 B groups.
    Channel ``ch`` has the A groups ``a = (kk * gp + q) * gm + i`` and the B groups
    ``b = (j * gk + kk) * gp + q`` with index ``% channels == ch`` (what
    :func:`~systolab.hdl.dma.shares` enumerates); a segment of n bytes is
    ``ceil(n / beat)`` beats (:func:`~systolab.blocking.dram_beats`)."""
    C, beat, eb, ab = shape
    n_i, n_j = -(-mlen // b.mc), -(-nlen // b.nc)
    out = [0] * C
    cols = [min(b.nc, nlen - j * b.nc) for j in range(n_j)]
    if klen is None:
        for j, c in enumerate(cols):
            for q in range(live):
                out[(j * b.gk * b.gp + q) % C] += mlen * -(-c * ab // beat)
        return tuple(out)
    rows = [min(b.mc, mlen - i * b.mc) for i in range(n_i)]
    for kk, part in enumerate(_kparts(b, klen)):
        beats = -(-part * eb // beat)
        for q in range(live):
            for i, r in enumerate(rows if ops & LOAD_A else ()):
                out[((kk * b.gp + q) * b.gm + i) % C] += beats * r
            for j, c in enumerate(cols if ops & LOAD_B else ()):
                out[((j * b.gk + kk) * b.gp + q) % C] += c * beats
    return tuple(out)


def chip_gemm_perf(chip, M: int, N: int, K: int, blocking: Blocking, *, count: int = 1,
                   trace: list | None = None) -> ChipGemmPerf:
    """The chip's counters for ``count`` independent M x N x K products run as one
    descriptor with ``blocking``; a blocking the controller would reject is a
    :class:`UserError` saying why. With ``trace``, each step's (ISSUE cycle, last core
    done, DMA idle) is appended to it (cycles counted from the one after the descriptor
    was accepted)."""
    M, N, K, count = check_chip_gemm(chip, M, N, K, count)
    if not isinstance(blocking, Blocking):
        raise TypeError(f"blocking must be a Blocking, not {type(blocking).__name__}")
    if blocking.order not in (0, 1):
        raise UserError(f"block: loop order {blocking.order!r} is not 0 (N-blocks inside) or 1 (M-blocks inside)",
                        parameter="block")
    status = blocking_status(chip, M, N, K, count, blocking)
    if status:
        raise UserError(f"block: {blocking} is rejected by the chip's controller: {REJECT[status]}",
                        parameter="block")
    if stepped_steps(M, N, K, blocking, count) > MAX_STEPPED_STEPS:
        raise UserError(f"block: {blocking} runs {stepped_steps(M, N, K, blocking, count):,} steps, more than the "
                        f"step-by-step model walks ({MAX_STEPPED_STEPS:,}); use larger blocks or a smaller GEMM",
                        parameter="block")
    cfg, b = chip.core, blocking
    L = chip.dram_latency_cycles
    drams = [_Dram(chip.dma_beat_bytes, chip.channel_bytes_per_cycle) for _ in range(chip.dma_channels)]
    port = MemorySystem(chip.sram_latency_cycles, float(cfg.beat_bytes))
    shape = dma_shape(chip)
    lag = chip.writeback_stages                # the write-back sum's register stages

    def job(t0: int, wb: tuple | None, ld: tuple | None) -> tuple[int, int | None]:
        """A job started at ``t0`` on every channel: (cycle the DMA is idle again, cycle of
        the write-back's last beat on any channel)."""
        w_beats = _channel_beats(shape, b, *wb, None) if wb else (0,) * len(drams)
        r_beats = _channel_beats(shape, b, *ld) if ld else (0,) * len(drams)
        free, last_w = t0, None
        for dram, bw, br in zip(drams, w_beats, r_beats):
            issue = t0 + 1
            if bw:
                t_lw = dram.beats(dram.first_beat(t0 + 3 + lag), bw)
                last_w = t_lw if last_w is None else max(last_w, t_lw)
                issue, end = t_lw + 2, t_lw + 2
            if br:
                end = dram.beats(dram.first_beat(issue + max(L, 2)), br) + 2
            if bw or br:
                free = max(free, end)
        return free, last_w

    def ld_of(origin, ops=LOAD_AB):
        p0, m0, n0, k0 = origin
        return min(b.gp, count - p0), _extent(m0, M, b.mb), _extent(n0, N, b.nb), _extent(k0, K, b.kb), ops

    # the controller: CHECK at t = 0, SETUP at 1, PROLOGUE at 2
    origins = step_origins(M, N, K, b, count)
    t_free, _ = job(2, None, ld_of(origins[0]))
    issue = t_free + 1                       # WAIT_LOAD sees the DMA idle, then ISSUE
    prev_block = None
    for s, (p0, m0, n0, k0) in enumerate(origins):
        live, mlen, nlen, klen, _ = ld_of((p0, m0, n0, k0))
        # the cores' sub-GEMMs: the slowest ends the step
        last_done = issue + _core_max(cfg, port, b.mc, b.nc, b.kc, b.gk, mlen, nlen, klen)
        # the DMA's job
        wb = prev_block if s > 0 and k0 == 0 else None
        nxt = ld_of(origins[s + 1], load_ops(b, origins[s], origins[s + 1])) if s + 1 < len(origins) else None
        t_free, _ = job(issue, wb, nxt)
        barrier = max(issue + 1, last_done + 1, t_free)
        if trace is not None:
            trace.append((issue, last_done, t_free))
        if k0 + b.kb >= K:                    # this step completes its output block
            prev_block = (live, mlen, nlen)
        issue = barrier + 1
    # the epilogue: EPILOGUE at barrier + 1 (= issue), the last block's write-back
    _, t_lw = job(issue, prev_block, None)
    assert t_lw is not None                   # the last block always writes back
    finish = t_lw + 2 + 1
    # every other counter follows from the steps' sizes alone: one accounting for both models
    return chip_gemm_counters(chip, M, N, K, b, count, cycles=finish + 1)


def _step_cores(chip, port, b: Blocking, live: int, mlen: int, nlen: int, klen: int) -> tuple:
    """A step's sub-GEMMs: (busy cycles per core, SRAM bytes the cores read and write),
    the same for every step of these sizes. The core of product q, row group i, column
    group j and K-group kk is ``((j gk + kk) gp + q) gm + i`` (the controller's order,
    ``hdl/dma.py``'s groups)."""
    rows, i_rows = np.unique(_groups(mlen, b.mc, b.gm), return_inverse=True)
    cols, i_cols = np.unique(_groups(nlen, b.nc, b.gn), return_inverse=True)
    ks, i_ks = np.unique(_kparts(b, klen), return_inverse=True)
    # (busy, reads, writes) of each distinct sub-GEMM (at most two sizes a dimension)
    table = np.array([[[_core_step(chip.core, port, r, c, k)[1:] if r and c else (0, 0, 0) for k in ks.tolist()]
                       for c in cols.tolist()] for r in rows.tolist()], dtype=np.int64)
    grid = table[i_rows[:, None, None], i_cols[None, :, None], i_ks[None, None, :]]      # (gm, gn, parts, 3)
    add = np.zeros(chip.cores, dtype=np.int64)
    add[:b.cores].reshape(b.gn, b.gk, b.gp, b.gm)[:, :len(i_ks), :live, :] = \
        grid[..., 0].transpose(1, 2, 0)[:, :, None, :]
    return add, live * int(grid[..., 1].sum()), live * int(grid[..., 2].sum())


def chip_gemm_counters(chip, M: int, N: int, K: int, b: Blocking, count: int = 1, *, cycles: int | None = None
                       ) -> ChipGemmPerf:
    """What :func:`chip_gemm_perf` returns, without stepping through the schedule: every
    counter but the cycles is a sum over the steps of what each step's sizes alone decide
    (its sub-GEMMs, its load, its block's write-back), so equal steps are counted once
    (:func:`chip_gemm_perf` takes them from here too; the RTL tests check them); the
    cycles come from :func:`chip_gemm_cycles` (or ``cycles``, when the caller has them).
    No parameter checks: the caller (the search) passes valid blockings."""
    check_chip("chip", chip)
    cfg = chip.core
    port = MemorySystem(chip.sram_latency_cycles, float(cfg.beat_bytes))
    blocks: Counter = Counter()
    for (live, n_p), (mlen, n_m), (nlen, n_n) in itertools.product(_extent_runs(count, b.gp), _extent_runs(M, b.mb),
                                                                    _extent_runs(N, b.nb)):
        blocks[live, mlen, nlen] += n_p * n_m * n_n
    kinfo: Counter = Counter()
    for i, (klen, n_k) in enumerate(_extent_runs(K, b.kb)):     # the first K-block starts the partial sums
        kinfo[klen, i == 0] += 1
        if n_k > 1:
            kinfo[klen, False] += n_k - 1
    busy = np.zeros(chip.cores, dtype=np.int64)
    sram_read = sram_written = core_read = 0
    dram_read = chip_dram_bytes_read(chip, M, N, K, b, count)
    for (live, mlen, nlen), n_blocks in blocks.items():
        sram_read += n_blocks * _dma_sram_reads(chip, b, live, mlen, nlen)      # its write-back
        for (klen, first), n_k in kinfo.items():
            n = n_blocks * n_k
            add, reads, writes = _step_cores(chip, port, b, live, mlen, nlen, klen)
            busy += n * add
            sram_read += n * (reads + (0 if first else writes))     # later K-blocks add to the partial sums
            core_read += n * reads
            sram_written += n * writes
    sram_written += _dma_sram_writes(chip, M, N, K, b, count)
    return ChipGemmPerf(cycles=chip_gemm_cycles(chip, M, N, K, b, count) if cycles is None else cycles,
                        steps=sum(blocks.values()) * sum(kinfo.values()), macs=M * N * K * count,
                        busy=tuple(int(v) for v in busy), dram_bytes_read=dram_read,
                        dram_bytes_written=M * N * cfg.acc_bytes * count, sram_bytes_read=sram_read,
                        sram_bytes_written=sram_written, core_bytes_read=core_read, cores=chip.cores,
                        pes_per_core=cfg.rows * cfg.cols, dram_bytes_per_cycle=chip.dram_bytes_per_cycle)


def chip_dram_bytes_read(chip, M: int, N: int, K: int, b: Blocking, count: int = 1) -> int:
    """DRAM bytes the DMA reads for a descriptor (the RTL's ``dram_bytes_read``): each
    A and B block as many times as it is loaded (:func:`load_counts`), each K-part of a
    row in whole beats (:func:`~systolab.blocking.dram_beats`). Cheap: no cycle model."""
    loads_a, loads_b = load_counts(M, N, K, b)
    beats = _over_k_parts(b, K, lambda k: dram_beats(chip, k * chip.core.input_bytes))
    return count * (loads_a * M + loads_b * N) * beats * chip.dma_beat_bytes


def _over_k_parts(b: Blocking, K: int, per_part) -> int:
    """The sum of ``per_part(length)`` over every K-part of every K-block of a row of K:
    the K-blocks are alike but the last, and a K-block's parts are ``kc`` long but its last."""
    def block(klen: int) -> int:
        full, rest = divmod(klen, b.kc)
        return full * per_part(b.kc) + (per_part(rest) if rest else 0)

    nk = -(-K // b.kb)
    return (nk - 1) * block(b.kb) + block(K - (nk - 1) * b.kb)


def _dma_sram_writes(chip, M: int, N: int, K: int, b: Blocking, count: int) -> int:
    """Slice bytes the loads write: each K-part of an A row into its row group's gn
    slices, of a B column into its column group's gm slices, as often as it is loaded."""
    loads_a, loads_b = load_counts(M, N, K, b)
    words = _over_k_parts(b, K, lambda k: slice_words(chip, k * chip.core.input_bytes))
    return count * (loads_a * M * b.gn + loads_b * N * b.gm) * words * chip.core.beat_bytes


def _dma_sram_reads(chip, b, live, mlen, nlen) -> int:
    ab = chip.core.acc_bytes
    words = sum(slice_words(chip, c * ab) for c in _groups(nlen, b.nc, b.gn) if c)
    return live * mlen * words * chip.core.beat_bytes * b.gk      # every K-group's partial sums


@lru_cache(maxsize=65536)
def _core_step(cfg, port, rows: int, cols: int, klen: int) -> tuple[int, int, int, int]:
    """(cycles, busy cycles, SRAM bytes read, SRAM bytes written) of one core's sub-GEMM."""
    c = core_counters(cfg, rows, cols, klen)
    tiles = [t for t in _groups(cols, cfg.cols, math.ceil(cols / cfg.cols))]
    beats = rows * sum(-(-t * cfg.acc_bytes // cfg.beat_bytes) for t in tiles)
    return core_cycles(cfg, rows, cols, klen, port), c["busy_cycles"], c["bytes_read"], beats * cfg.beat_bytes


# -- fast evaluation for the search ---------------------------------------------------------------
def _job_cycles(Bw: int, Br: int, L: int, sp: int, lag: int = 0) -> int:
    """Cycles from a job's start to the DMA idle again, when the DRAM's credit cannot bind
    across phases (see :func:`chip_gemm_cycles`); ``lag``: the write-back sum's stages."""
    if not Bw and not Br:
        return 0
    t = 0
    if Bw:
        t = 3 + lag + (Bw - 1) * sp            # last write beat
        if not Br:
            return t + 2
        first = t + 2 + max(L, 2)
    else:
        first = 1 + max(L, 2)
    return first + (Br - 1) * sp + 2


@lru_cache(maxsize=1 << 16)
def _step_dma(shape: tuple, b: Blocking, wb: tuple | None, ld: tuple | None, L: int, sp: int, lag: int = 0) -> int:
    """Cycles from a job's start until every channel is idle again (credit not binding)."""
    C = shape[0]
    w = _channel_beats(shape, b, *wb, None) if wb else (0,) * C
    r = _channel_beats(shape, b, *ld) if ld else (0,) * C
    return max(_job_cycles(bw, br, L, sp, lag) for bw, br in zip(w, r))


@lru_cache(maxsize=1 << 16)
def _core_max(cfg, port, mc: int, nc: int, kc: int, gk: int, mlen: int, nlen: int, klen: int) -> int:
    """The slowest core sub-GEMM of a K-step over an ``mlen`` x ``nlen`` x ``klen`` block
    cut into ``mc`` x ``nc`` parts and ``gk`` K-groups of ``kc``."""
    return max(_core_step(cfg, port, rows, cols, ks)[0] for rows in _sizes(mlen, mc) for cols in _sizes(nlen, nc)
               for ks in set(_kparts_of(kc, gk, klen)))


def _sizes(length: int, size: int) -> set[int]:
    """The distinct non-zero sizes of consecutive groups of ``size`` over ``length``."""
    full, rest = divmod(length, size)
    return ({size} if full else set()) | ({rest} if rest else set())


def chip_gemm_cycles(chip, M: int, N: int, K: int, b: Blocking, count: int = 1) -> int:
    """The cycles :func:`chip_gemm_perf` returns, in time proportional to the number of
    output blocks rather than steps, each distinct block (with its neighbours) evaluated
    once: the K-steps inside a block repeat exactly, and a channel's DRAM credit (a beat
    every ``spacing`` cycles) cannot delay a job's first beat when ``spacing`` is at most
    6 and at most 2 + max(latency, 2) (a job starts no earlier than three cycles after the
    last one's final beat; a load follows its write-back by two cycles plus the latency),
    so each step's length depends on its own sizes alone. Otherwise it falls back to the
    step-by-step model. No parameter checks: the caller (the search) passes valid
    blockings.

    The result depends on the chip only through its core, slice latency, DMA shape, DRAM
    latency, beat spacing and write-back stages, and is cached by those: chips that differ
    in cores, clock or DRAM bandwidth but agree on them (an exploration's points) share it."""
    check_chip("chip", chip)
    if not block_model_applies(chip):
        return _stepped_cycles(chip, M, N, K, b, count)
    sp = beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle)
    return _block_model_cycles(chip.core, chip.sram_latency_cycles, dma_shape(chip), chip.dram_latency_cycles, sp,
                               M, N, K, b, count, chip.writeback_stages)


@lru_cache(maxsize=1 << 14)
def _stepped_cycles(chip, M: int, N: int, K: int, b: Blocking, count: int) -> int:
    """The step-by-step model's cycles (slow: a search asks for the same ones again)."""
    return chip_gemm_perf(chip, M, N, K, b, count=count).cycles


def block_model_applies(chip) -> bool:
    """Whether a step's length depends on its own sizes alone (:func:`chip_gemm_cycles`):
    the DRAM credit cannot delay a job's first beat (beat spacing at most 6 and at most
    2 + max(latency, 2))."""
    sp = beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle)
    return sp <= min(6, 2 + max(chip.dram_latency_cycles, 2))


@lru_cache(maxsize=1 << 16)
def _block_model_cycles(cfg, sram_latency: int, shape: tuple, L: int, sp: int, M: int, N: int, K: int, b: Blocking,
                        count: int, lag: int = 0) -> int:
    port = MemorySystem(sram_latency, float(cfg.beat_bytes))
    nk = -(-K // b.kb)
    k_edge = K - (nk - 1) * b.kb
    mc, nc, kc, gk, kb0 = b.mc, b.nc, b.kc, b.gk, min(b.kb, K)

    def step(core, wb, ld):
        return 1 + max(1, core + 1, _step_dma(shape, b, wb, ld, L, sp, lag))

    def block_cycles(prev, blk, nxt, ops) -> int:
        """A block's K-steps, the previous block's write-back in its first, the next
        block's first load (of ``ops``) in its last (and the epilogue after the last
        block); the interior K-steps are all alike."""
        core_edge = _core_max(cfg, port, mc, nc, kc, gk, blk[1], blk[2], k_edge)
        wb = prev
        total = 0
        if nk > 1:
            core_full = _core_max(cfg, port, mc, nc, kc, gk, blk[1], blk[2], b.kb)
            total += step(core_full, prev, (*blk, b.kb if nk > 2 else k_edge, LOAD_AB))
            if nk > 3:
                total += (nk - 3) * step(core_full, None, (*blk, b.kb, LOAD_AB))
            if nk > 2:
                total += step(core_full, None, (*blk, k_edge, LOAD_AB))
            wb = None
        if nxt is None:                        # the last step: barrier, then the epilogue
            return total + max(1, core_edge + 1, _step_dma(shape, b, wb, None, L, sp, lag)) + 1 + \
                _step_dma(shape, b, blk, None, L, sp, lag) + 2
        return total + step(core_edge, wb, (*nxt, kb0, ops))

    # the blocks in the controller's order (products, then M and N), each with its
    # neighbours and what the next one loads; equal keys counted, each evaluated once.
    # Only the blocks of :func:`_reduced_origins` are walked, each weighed by the
    # positions it stands for: the same keys, counted in closed form
    origins, weights = _reduced_origins(M, N, b, count)
    sizes = [(min(b.gp, count - p), _extent(m, M, b.mb), _extent(n, N, b.nb)) for p, m, n, _ in origins]
    ops = [LOAD_AB if nk > 1 else load_ops(b, o, o2) for o, o2 in zip(origins, origins[1:])] + [LOAD_AB]
    total = 2 + _step_dma(shape, b, None, (*sizes[0], min(b.kb, K), LOAD_AB), L, sp) + 1
    keys: Counter = Counter()
    for key, w in zip(zip([None, *sizes[:-1]], sizes, [*sizes[1:], None], ops), weights):
        keys[key] += w
    return total + sum(n * block_cycles(*key) for key, n in keys.items())


def _reduced_indices(n: int) -> list[tuple[int, int]]:
    """(index, weight) of the blocks of a dimension of ``n`` blocks that stand for all of
    them: every block but the last is full-sized, so the blocks 2 ... n-3 have the same
    sizes and the same kind of neighbours; block 2 stands for them (weight n - 4)."""
    if n <= 5:
        return [(i, 1) for i in range(n)]
    return [(0, 1), (1, 1), (2, n - 4), (n - 2, 1), (n - 1, 1)]


def _reduced_origins(M: int, N: int, b: Blocking, count: int) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """The blocks' origins (one K-step a block) in the controller's order, each dimension
    reduced to :func:`_reduced_indices`, and each origin's weight (positions it stands
    for): at most 125 origins, whatever the GEMM's size (:func:`step_origins` lists them all)."""
    ps, ms, ns = (_reduced_indices(-(-n // blk)) for n, blk in ((count, b.gp), (M, b.mb), (N, b.nb)))
    origins, weights = [], []
    for p, wp in ps:
        outer, inner = (ns, ms) if b.order else (ms, ns)
        for o, wo in outer:
            for i, wi in inner:
                m, n = (i, o) if b.order else (o, i)
                origins.append((p * b.gp, m * b.mb, n * b.nb, 0))
                weights.append(wp * wo * wi)
    return origins, weights


def _extent_runs(length: int, block: int) -> list[tuple[int, int]]:
    """The sizes of consecutive blocks of ``block`` over ``length`` as (size, how many)."""
    full, rest = divmod(length, block)
    return ([(block, full)] if full else []) + ([(rest, 1)] if rest else [])
