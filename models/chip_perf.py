"""Cycle model of the chip (``hdl/chip.py``): a blocked GEMM, step by step, as the RTL
runs it, and the counters the RTL reports.

The chip runs a descriptor as *steps* (product group, M-block, N-block, K-block; K
innermost). The model follows the controller exactly:

* ``CHECK`` (1 cycle), ``SETUP`` (one cycle per core), then the *prologue*: the DMA loads
  step 0's operands while nothing else runs;
* each step: in its ``ISSUE`` cycle every working core gets its sub-GEMM and the DMA a
  job (write back the output block finished by the previous step, if this step starts a
  new one; load the next step's operands); a barrier ends the step once every core is done
  and the DMA is idle; the next ``ISSUE`` follows;
* the *epilogue*: the DMA writes back the last block; ``done`` the cycle after.

A core's part of a step takes exactly what the core's cycle model says (``models/perf.py``)
for its sub-GEMM with the slice's port as its memory (latency ``sram_latency_cycles``, one
core beat per cycle): the slice reproduces the memory timing that model was validated on.
The DMA's job takes what its timing contract says (``hdl/dma.py``): a write-back's beats
one after another from the third cycle of the job, the load's commands from the second
cycle after the write-back's last beat, its first beat the DRAM latency later (at least
two cycles: the data side takes a segment the cycle after it was issued), then one beat
every ``ceil(word / bandwidth)`` cycles — the DRAM's bandwidth credit holds one beat and
is shared by reads and writes — and idle two cycles after its last beat.

Every counter the RTL reports (cycles, steps, MACs, per-core busy cycles, DRAM and SRAM
bytes) is computed; ``systolab validate --chip`` compares them with the RTL's. The model
is as exact as the core model on the cores' sub-GEMMs (see ``models/perf.py`` for the
regimes where that one approximates).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

from ..checks import check_int
from ..errors import UserError
from ..hdl.chip import REJECT, Blocking, blocking_status, dram_beats, slice_words
from .perf import MemorySystem, core_counters, core_cycles

NEVER = -(1 << 60)


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

    def counters(self) -> dict[str, int]:
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
    """The DRAM's bandwidth credit (``sim/memory.py``, reads and writes charged): it grows
    by ``bytes_per_cycle`` a cycle up to one beat (or ``bytes_per_cycle`` if larger), and a
    beat needs a whole beat of it, so beats are ``spacing`` cycles apart when back to back
    and the first beat after an idle stretch of that length is not delayed."""

    def __init__(self, word: int, bytes_per_cycle: float):
        self.word = word
        self.spacing = _beat_spacing(word, bytes_per_cycle)
        self.last = NEVER                    # cycle of the last beat

    def first_beat(self, earliest: int) -> int:
        return max(earliest, self.last + self.spacing)

    def beats(self, first: int, n: int) -> int:
        """``n`` beats back to back from ``first``: the cycle of the last one."""
        self.last = first + (n - 1) * self.spacing
        return self.last


@lru_cache(maxsize=64)
def _beat_spacing(word: int, bytes_per_cycle: float) -> int:
    """Cycles between back-to-back beats, from the credit's own float arithmetic."""
    if bytes_per_cycle >= word:
        return 1
    credit, cycles = 0.0, 0
    while credit < word:
        credit = min(credit + bytes_per_cycle, max(word, bytes_per_cycle))
        cycles += 1
    return cycles


def _extent(origin: int, total: int, block: int) -> int:
    return min(block, total - origin)


def _groups(length: int, size: int, groups: int) -> list[int]:
    """Sizes of the ``groups`` consecutive groups of ``size`` over ``length`` (0 past it)."""
    return [max(0, min(size, length - g * size)) for g in range(groups)]


def chip_gemm_perf(chip, M: int, N: int, K: int, blocking: Blocking, *, count: int = 1,
                   trace: list | None = None) -> ChipGemmPerf:
    """The chip's counters for ``count`` independent M x N x K products run as one
    descriptor with ``blocking``; a blocking the controller would reject is a
    :class:`UserError` saying why. With ``trace``, each step's (ISSUE cycle, last core
    done, DMA idle) is appended to it (cycles counted from the one after the descriptor
    was accepted)."""
    M, N, K, count = check_int("M", M), check_int("N", N), check_int("K", K), check_int("count", count)
    if not isinstance(blocking, Blocking):
        raise TypeError(f"blocking must be a Blocking, not {type(blocking).__name__}")
    status = blocking_status(chip, M, N, K, count, blocking)
    if status:
        raise UserError(f"block: {blocking} is rejected by the chip's controller: {REJECT[status]}",
                        parameter="block")
    cfg, b = chip.core, blocking
    n_cores, Wd, W = chip.cores, chip.dma_beat_bytes, cfg.beat_bytes
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    L = chip.dram_latency_cycles
    dram = _Dram(Wd, chip.dram_bytes_per_cycle)
    port = MemorySystem(chip.sram_latency_cycles, float(W))

    def load(t0: int, p0: int, mlen: int, nlen: int, klen: int, after_wb: int | None) -> int:
        """Read phase of a job; returns the cycle the DMA is idle again."""
        issue = t0 + 1 if after_wb is None else after_wb + 2
        live = min(b.gp, count - p0)
        beats = live * (mlen + nlen) * dram_beats(chip, klen * eb)
        first = dram.first_beat(issue + max(L, 2))
        return dram.beats(first, beats) + 2

    def write_back(t0: int, p0: int, mlen: int, nlen: int) -> int:
        """Write phase of a job; returns the cycle of its last beat."""
        live = min(b.gp, count - p0)
        beats = live * mlen * sum(dram_beats(chip, c * ab) for c in _groups(nlen, b.nc, b.gn) if c)
        first = dram.first_beat(t0 + 3)
        return dram.beats(first, beats)

    # totals that follow from the blocking alone
    sram_read = sram_written = 0
    busy = [0] * n_cores
    steps = 0

    # the controller: CHECK at t = 0, SETUP t = 1..N, PROLOGUE at N + 1
    t = n_cores + 1
    first_origin = (0, 0, 0, 0)
    mlen0, nlen0, klen0 = _extent(0, M, b.mb), _extent(0, N, b.nb), _extent(0, K, b.kb)
    t_free = load(t, 0, mlen0, nlen0, klen0, None)
    issue = t_free + 1                       # WAIT_LOAD sees the DMA idle, then ISSUE
    origins = [(p0, m0, n0, k0) for p0 in range(0, count, b.gp) for m0 in range(0, M, b.mb)
               for n0 in range(0, N, b.nb) for k0 in range(0, K, b.kb)]
    assert origins[0] == first_origin
    prev_block = None
    sram_written += _dma_sram_writes(chip, b, count, 0, mlen0, nlen0, klen0)
    for s, (p0, m0, n0, k0) in enumerate(origins):
        steps += 1
        mlen, nlen, klen = _extent(m0, M, b.mb), _extent(n0, N, b.nb), _extent(k0, K, b.kb)
        # the cores' sub-GEMMs
        last_done = NEVER
        rows_g, cols_g = _groups(mlen, b.mc, b.gm), _groups(nlen, b.nc, b.gn)
        for q in range(b.gp):
            if p0 + q >= count:
                continue
            for gi, rows in enumerate(rows_g):
                for gj, cols in enumerate(cols_g):
                    if not rows or not cols:
                        continue
                    c = q * b.gm * b.gn + gi * b.gn + gj
                    cyc, busy_c, reads, writes = _core_step(cfg, port, rows, cols, klen)
                    last_done = max(last_done, issue + cyc)
                    busy[c] += busy_c
                    sram_read += reads + (writes if k0 else 0)
                    sram_written += writes
        # the DMA's job
        wb = s > 0 and k0 == 0
        nxt = origins[s + 1] if s + 1 < len(origins) else None
        t_lw = write_back(issue, *prev_block) if wb else None
        if wb:
            sram_read += _dma_sram_reads(chip, b, count, *prev_block)
        if nxt is not None:
            np0, nm0, nn0, nk0 = nxt
            nml, nnl, nkl = _extent(nm0, M, b.mb), _extent(nn0, N, b.nb), _extent(nk0, K, b.kb)
            t_free = load(issue, np0, nml, nnl, nkl, t_lw)
            sram_written += _dma_sram_writes(chip, b, count, np0, nml, nnl, nkl)
        elif wb:
            t_free = t_lw + 2
        else:
            t_free = issue                    # nothing to move: the DMA never leaves idle
        barrier = max(issue + 1, last_done + 1, t_free)
        if trace is not None:
            trace.append((issue, last_done, t_free))
        if k0 + b.kb >= K:                    # this step completes its output block
            prev_block = (p0, mlen, nlen)
        issue = barrier + 1
    # the epilogue: EPILOGUE at barrier + 1 (= issue), the last block's write-back
    t_lw = write_back(issue, *prev_block)
    sram_read += _dma_sram_reads(chip, b, count, *prev_block)
    finish = t_lw + 2 + 1
    dram_read = sum(count_p * (ml + nl) * dram_beats(chip, kl * eb) * Wd
                    for count_p, ml, nl, kl in _loads(M, N, K, count, b))
    return ChipGemmPerf(cycles=finish + 1, steps=steps, macs=M * N * K * count, busy=tuple(busy),
                        dram_bytes_read=dram_read, dram_bytes_written=M * N * ab * count,
                        sram_bytes_read=sram_read, sram_bytes_written=sram_written, cores=n_cores,
                        pes_per_core=cfg.rows * cfg.cols, dram_bytes_per_cycle=chip.dram_bytes_per_cycle)


def _loads(M, N, K, count, b):
    for p0 in range(0, count, b.gp):
        live = min(b.gp, count - p0)
        for m0 in range(0, M, b.mb):
            for n0 in range(0, N, b.nb):
                for k0 in range(0, K, b.kb):
                    yield live, _extent(m0, M, b.mb), _extent(n0, N, b.nb), _extent(k0, K, b.kb)


def _dma_sram_writes(chip, b, count, p0, mlen, nlen, klen) -> int:
    """Slice bytes a load writes: an A row into its row group's gn slices, a B column into
    its column group's gm slices."""
    live = min(b.gp, count - p0)
    return live * (mlen * b.gn + nlen * b.gm) * slice_words(chip, klen * chip.core.input_bytes) * chip.core.beat_bytes


def _dma_sram_reads(chip, b, count, p0, mlen, nlen) -> int:
    live = min(b.gp, count - p0)
    ab = chip.core.acc_bytes
    words = sum(slice_words(chip, c * ab) for c in _groups(nlen, b.nc, b.gn) if c)
    return live * mlen * words * chip.core.beat_bytes


@lru_cache(maxsize=65536)
def _core_step(cfg, port, rows: int, cols: int, klen: int) -> tuple[int, int, int, int]:
    """(cycles, busy cycles, SRAM bytes read, SRAM bytes written) of one core's sub-GEMM."""
    c = core_counters(cfg, rows, cols, klen)
    tiles = [t for t in _groups(cols, cfg.cols, math.ceil(cols / cfg.cols))]
    beats = rows * sum(-(-t * cfg.acc_bytes // cfg.beat_bytes) for t in tiles)
    return core_cycles(cfg, rows, cols, klen, port), c["busy_cycles"], c["bytes_read"], beats * cfg.beat_bytes


# -- fast evaluation for the search ---------------------------------------------------------------
def _job_cycles(Bw: int, Br: int, L: int, sp: int) -> int:
    """Cycles from a job's start to the DMA idle again, when the DRAM's credit cannot bind
    across phases (see :func:`chip_gemm_cycles`)."""
    if not Bw and not Br:
        return 0
    t = 0
    if Bw:
        t = 3 + (Bw - 1) * sp                  # last write beat
        if not Br:
            return t + 2
        first = t + 2 + max(L, 2)
    else:
        first = 1 + max(L, 2)
    return first + (Br - 1) * sp + 2


def chip_gemm_cycles(chip, M: int, N: int, K: int, b: Blocking, count: int = 1) -> int:
    """The cycles :func:`chip_gemm_perf` returns, in time proportional to the number of
    output blocks rather than steps: the K-steps inside a block repeat exactly, and the
    DRAM's credit (a beat every ``spacing`` cycles) cannot delay a job's first beat when
    ``spacing`` is at most 6 and at most 2 + max(latency, 2) (a job starts no earlier than
    three cycles after the last one's final beat; a load follows its write-back by two
    cycles plus the latency), so each step's length depends on its own sizes alone.
    Otherwise it falls back to the step-by-step model. No parameter checks: the caller
    (the search) passes valid blockings."""
    L = chip.dram_latency_cycles
    sp = _beat_spacing(chip.dma_beat_bytes, chip.dram_bytes_per_cycle)
    if sp > min(6, 2 + max(L, 2)):
        return chip_gemm_perf(chip, M, N, K, b, count=count).cycles
    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    port = MemorySystem(chip.sram_latency_cycles, float(cfg.beat_bytes))
    nk = -(-K // b.kb)
    k_edge = K - (nk - 1) * b.kb

    def words_k(klen):
        return dram_beats(chip, klen * eb)

    def core_max(mlen, nlen, klen, live):
        worst = 0
        for rows in {r for r in _groups(mlen, b.mc, b.gm) if r}:
            for cols in {c for c in _groups(nlen, b.nc, b.gn) if c}:
                worst = max(worst, _core_step(cfg, port, rows, cols, klen)[0])
        return worst if live else 0

    def wb_beats(mlen, nlen, live):
        return live * mlen * sum(dram_beats(chip, c * ab) for c in _groups(nlen, b.nc, b.gn) if c)

    def step(core, Bw, Br):
        return 1 + max(1, core + 1, _job_cycles(Bw, Br, L, sp))

    blocks = [(min(b.gp, count - p0), _extent(m0, M, b.mb), _extent(n0, N, b.nb))
              for p0 in range(0, count, b.gp) for m0 in range(0, M, b.mb) for n0 in range(0, N, b.nb)]
    live0, ml0, nl0 = blocks[0]
    total = chip.cores + 1 + _job_cycles(0, live0 * (ml0 + nl0) * words_k(min(b.kb, K)), L, sp) + 1
    klens = [b.kb] * (nk - 1) + [k_edge]
    for x, (live, ml, nl) in enumerate(blocks):
        per_k = (ml + nl) * live
        core_full = core_max(ml, nl, b.kb, live) if nk > 1 else 0
        core_edge = core_max(ml, nl, k_edge, live)
        Bw_first = wb_beats(blocks[x - 1][1], blocks[x - 1][2], blocks[x - 1][0]) if x else 0
        nxt = blocks[x + 1] if x + 1 < len(blocks) else None
        Br_next_block = nxt[0] * (nxt[1] + nxt[2]) * words_k(min(b.kb, K)) if nxt else 0
        for j in range(nk):
            if 1 <= j < nk - 2:                # the interior K-steps: all alike
                if j == 1:
                    total += (nk - 3) * step(core_full, 0, per_k * words_k(b.kb))
                continue
            core = core_full if j < nk - 1 else core_edge
            Bw = Bw_first if j == 0 else 0
            Br = per_k * words_k(klens[j + 1]) if j + 1 < nk else Br_next_block
            if nxt is None and j == nk - 1:    # the last step: barrier, then the epilogue
                total += max(1, core + 1, _job_cycles(Bw, Br, L, sp)) + 1
                total += _job_cycles(wb_beats(ml, nl, live), 0, L, sp) + 2
            else:
                total += step(core, Bw, Br)
    return total
