"""Block sizes and core grids for a GEMM on the chip: the space the mapper searches and
the traffic bounds reported beside every choice.

**The space.** A blocking (``hdl/chip.py``'s :class:`Blocking`) fixes the block
``mb x nb x kb`` and the grid ``gp x gm x gn x gk`` of cores (``mc = ceil(mb / gm)`` rows,
``nc = ceil(nb / gn)`` columns and ``kc = ceil(kb / gk)`` of K each). :func:`candidates`
enumerates, for every product group size ``gp`` in {1, 2, 4, ..., min(count, cores)},
every row-group count ``gm`` in {1, 2, 4, ...} and, when the output tiles
(ceil(M / tile_m) x ceil(N / cols) x count) are fewer than the cores, every K-group count
``gk`` in {1, 2, 4, ...} (split-K, up to ``float_split_k`` on a floating-point chip;
otherwise gk = 1), with ``gn`` the cores left: per-core
rows ``mc`` in {rows * 2^i} (for a WS core, whose M-block is ``tile_m`` >= rows, also
below it) and the even split ceil(M / gm); per-core columns ``nc`` in
{cols * 2^i} and ceil(N / gn); per-core K-ranges ``kc`` of ceil(K / gk) and (split-K)
that rounded up to whole DMA beats, of the largest multiple of a core beat that fits the
slice and its halves down to a quarter, of the largest multiple of a DMA beat that fits,
and of every power-of-two number of core beats (from eight) that fits
(``kb = min(K, gk * kc)``). K-ranges in whole DMA beats matter because the DMA reads each
K-part of a row in whole beats: 1,203 bytes of K in four parts of 301 take 12 beats of 128
bytes, in parts of 384 (the last 51) 10; the longer K-range that fits in core beats stays,
as fewer K-steps can outweigh the partial beats (``sl-n4-os64``: 640-byte K-blocks on
256-byte beats, 6 % faster on Llama-3-8B prefill than 512). Blockings
the controller would reject are dropped. The mapper (``models/chip/mapper.py``) searches it.

**Traffic.** A blocking reads every A element once per N-block and every B element once
per M-block (the DMA multicasts within a block), except where the controller keeps a block
on chip between steps (one K-block: A along the N-blocks in loop order 0, B along the
M-blocks in order 1; both orders are in the space where there are several of each), and
writes C once: :func:`blocking_traffic`. Whatever the blocking, a chip whose on-chip memory holds S
operand elements moves at least

    Q >= 2 M N K / sqrt(S) - 2 S   elements           (per product)

between DRAM and chip for the classical M x N x K product (Hong and Kung, 1981; the
constant from Smith, Lowery, Langou and van de Geijn, "A tight I/O lower bound for matrix
multiplication", 2019), and never less than reading A and B and writing C once. In bytes,
each element moved costs at least ``input_bytes`` and S = on-chip bytes / ``input_bytes``
(accumulators are wider, so this under-counts, as a lower bound may):
:func:`dram_traffic_lower_bound`.

**In the DMA's beats.** The chip's DMA reads an operand row (of A) or column (of B)
segment by segment, each a whole number of DRAM beats (``hdl/dma.py``), and the sum of
the segments' beats is at least the beats of the whole row: so on this chip every A row
and B column costs at least ``ceil(K * input_bytes / beat)`` beats, and the compulsory
traffic is counted that way in :func:`dma_traffic_lower_bound` (the Hong–Kung term as
above). The gap between the two bounds is what the DMA's granularity costs (short rows:
attention's K = 64 on 256-byte beats reads 4x its bytes); the gap between the second and
a mapping's traffic is what the blocking costs.
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from typing import Any, NamedTuple

from ...blocking import Blocking, blocking_status
from .perf import load_counts


def on_chip_bytes(chip) -> int:
    """Every byte of on-chip storage that can hold operands: the global SRAM and the cores'
    own buffers."""
    return int(chip.global_sram_mib * 2**20) + chip.cores * int(chip.core.buffer_kib * 1024)


def dram_traffic_lower_bound(chip, M: int, N: int, K: int, count: int = 1) -> int:
    """The least DRAM traffic (bytes) any schedule of ``count`` M x N x K products needs on
    this chip (module docstring)."""
    return _lower_bound(chip, M, N, K, count, K * chip.core.input_bytes)


def dma_traffic_lower_bound(chip, M: int, N: int, K: int, count: int = 1) -> int:
    """The least DRAM traffic (bytes) any schedule of ``count`` M x N x K products needs on
    this chip with its DMA, which reads operand rows in whole beats (module docstring)."""
    beat = chip.dma_beat_bytes
    return _lower_bound(chip, M, N, K, count, -(-K * chip.core.input_bytes // beat) * beat)


def _lower_bound(chip, M: int, N: int, K: int, count: int, row_bytes: int) -> int:
    """max(compulsory, Hong–Kung) with every A row and B column costing ``row_bytes``."""
    cfg = chip.core
    eb, ab = cfg.input_bytes, cfg.acc_bytes
    S = on_chip_bytes(chip) / eb
    compulsory = (M + N) * row_bytes + M * N * ab
    hong_kung = eb * (2 * M * N * K / math.sqrt(S) - 2 * S)
    return int(count * max(compulsory, math.ceil(hong_kung)))


def blocking_traffic(chip, M: int, N: int, K: int, b: Blocking, count: int = 1) -> int:
    """DRAM bytes a blocking must move (no padding): A once per N-block and B once per
    M-block unless the block stays on chip between steps
    (:func:`~systolab.models.chip.perf.load_counts`), C once."""
    cfg = chip.core
    loads_a, loads_b = load_counts(M, N, K, b)
    return count * ((M * loads_a + N * loads_b) * K * cfg.input_bytes + M * N * cfg.acc_bytes)


def _powers(unit: int, limit: int) -> list[int]:
    out, v = [], unit
    while v < limit:
        out.append(v)
        v *= 2
    return out + [limit]


class _Capacity(NamedTuple):
    """What the space depends on (as the chip's controller judges a blocking): the core,
    their number and the slices' words; not the clock or the DRAM, so that the chips of
    an exploration that differ only in those share one enumeration."""

    core: Any
    cores: int
    operand_words: int
    acc_words: int
    dma_beat_bytes: int
    float_split_k: int


def candidates(chip, M: int, N: int, K: int, count: int = 1) -> list[Blocking]:
    """The search space of the module docstring, valid blockings only, in a fixed order."""
    return list(_candidates(_Capacity(chip.core, chip.cores, chip.operand_words, chip.acc_words, chip.dma_beat_bytes,
                                      chip.float_split_k), M, N, K, count))


@lru_cache(maxsize=1024)
def _candidates(chip: _Capacity, M: int, N: int, K: int, count: int) -> tuple[Blocking, ...]:
    cfg, n = chip.core, chip.cores
    out: list[Blocking] = []
    seen: set[tuple] = set()         # fields already tried (a tuple hashes far faster than a Blocking)
    k_unit = cfg.elements_per_beat
    k_dma = chip.dma_beat_bytes // cfg.input_bytes           # a DMA beat's elements
    # split-K only where the output tiles cannot occupy every core (decode's GEMVs)
    tiles = math.ceil(M / cfg.tile_m) * math.ceil(N / cfg.cols) * count
    gk_max = chip.float_split_k if cfg.is_float else n        # a float write-back adds at most float_split_k
    for gp in sorted(set(_powers(1, min(count, n)))):
        for gm in sorted(set(_powers(1, n // gp))):
            for gk in sorted(set(_powers(1, min(gk_max, n // (gp * gm))))) if tiles < n else [1]:
                gn = n // (gp * gm * gk)
                if gn < 1 or (gk > 1 and 2 * k_unit * gk > K):
                    continue
                for mc in sorted(set(_powers(min(cfg.rows, cfg.tile_m), math.ceil(M / gm)))):
                    for nc in sorted(set(_powers(cfg.cols, math.ceil(N / gn)))):
                        mb, nb = min(M, mc * gm), min(N, nc * gn)
                        mc_, nc_ = math.ceil(mb / gm), math.ceil(nb / gn)
                        # the largest K-range per core that fits the operand buffer
                        words = chip.operand_words // 2 // (mc_ + nc_)
                        fit = words * cfg.beat_bytes // cfg.input_bytes
                        kc_fit = fit // k_unit * k_unit
                        kcs = {math.ceil(K / gk)} | {max(k_unit, min(K, kc_fit // d)) for d in (1, 2, 4)} | {
                            k for k in _powers(k_unit * 8, K) if k <= kc_fit}
                        if fit >= k_dma:
                            kcs.add(min(K, fit // k_dma * k_dma))
                        aligned = -(-K // (gk * k_dma)) * k_dma if gk > 1 else 0
                        for kc in sorted(kcs | ({aligned} if aligned else set()), reverse=True):
                            kb = min(K, kc * gk)
                            kc_ = kc if kc == aligned else math.ceil(kb / gk)
                            key = (mb, nb, kb, mc_, nc_, gp, gm, gn, gk, kc_)
                            if key in seen:
                                continue
                            seen.add(key)
                            b = Blocking(*key)
                            if blocking_status(chip, M, N, K, count, b) == 0:
                                out.append(b)
                                if kb == K and mb < M and nb < N:    # the order decides which operand stays
                                    out.append(replace(b, order=1))
    return tuple(out)
