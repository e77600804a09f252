"""The chip's exact cycle model, vectorised over the blockings of one GEMM.

:func:`chip_gemm_cycles_batch` returns, for many blockings at once, the cycles
:func:`~systolab.models.chip_perf.chip_gemm_cycles` returns for each: the same numbers
(``tests/test_chip_batch.py`` compares them on every blocking of the mapper's spaces, on
every built-in chip), from numpy arrays instead of a Python walk per blocking. It follows
that model (each output block's K-steps; a step lasts until its slowest core sub-GEMM and
its DMA job are done) and vectorises its three costly parts:

* **The blocks and their neighbours.** Blocks run in the controller's order (product
  groups, then M and N in the blocking's loop order), and a block's steps depend on its
  own sizes and its neighbours' (the previous block's write-back, the next block's first
  load, which leaves out an operand block the two share when there is one K-block). In
  each dimension every block but the last is full-sized, so of a dimension of n blocks
  the indices 0, 1 (standing for 1 ... n-3), n-2 and n-1 are all the cases there are:
  their product over the three dimensions, weighted by how many positions each stands
  for, is every (previous, block, next) triple of the schedule, and whether the next
  block shares the outer operand (not the inner dimension's last block) or the inner one
  (the inner dimension is one block) follows from the same indices.
* **The DMA channels.** A job lasts as long as its busiest channel's beats take. A load
  sends A row ``i`` of product ``q``'s K-part ``kk`` to channel ``((kk gp + q) gm + i) mod
  C``, B column ``j`` to ``((j gk + kk) gp + q) mod C``, a write-back's row group to
  ``(j gk gp + q) mod C`` (``hdl/dma.py``). The group counts ``gp``, ``gm``, ``gk`` and
  the channels ``C`` are powers of two (the controller and the chip configuration insist),
  so a group index is a mixed-radix number whose residue mod C keeps its low digits: a
  channel is a tuple of digits, and its beats are a product over the digits of the
  weights (rows or columns, beats per K-part) of the groups with that digit. Every group
  weighs the same but the last of a dimension, which weighs no more, so digit 0 weighs
  the most in every dimension: **channel 0 is the busiest**, in every load and write-back
  (``tests/test_chip_batch.py`` checks it on the scalar model), and each job's length is
  computed in closed form from channel 0's beats.
* **The cores.** A step's slowest core sub-GEMM is the largest of at most eight exact core
  model results (full and edge rows, columns and K-parts), looked up in a table filled once
  per distinct shape (:class:`CoreTable`, kept between processes in the build cache): the
  core model itself (``models/perf.py``) is not vectorised, and it dominates a cold
  evaluation (about 0.16 ms a new shape; most mappings bring one).

The exact model applies while a channel's DRAM credit cannot delay a job's first beat
(:func:`~systolab.models.chip_perf.block_model_applies`); otherwise
:func:`chip_gemm_cycles_batch` times each blocking with the scalar model, and
:func:`block_model_cycles_batch` is a lower bound the mapper prunes by.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import zipfile
from functools import lru_cache
from operator import attrgetter
from pathlib import Path

import numpy as np

from .chip_perf import _dma_shape, beat_spacing, block_model_applies, chip_gemm_cycles
from .perf import MemorySystem, core_cycles_many

_BITS = 21                                  # per dimension in a packed core-shape key
#: A kept core table is written every this many new shapes (and at exit).
SAVE_EVERY = 2000
#: What a core sub-GEMM's cycles depend on besides the core and the port.
_CORE_MODEL_SOURCES = tuple(Path(__file__).with_name(f) for f in ("perf.py", "core_kernel.py", "chip_perf.py"))
_FIELDS = ("mb", "nb", "kb", "mc", "nc", "kc", "gp", "gm", "gn", "gk", "order")


class CoreTable:
    """Exact core sub-GEMM cycles (``models/perf.py: core_cycles``, the cycles of
    ``chip_perf._core_step``) by shape, for vectorised lookups:
    packed (rows, cols, K) keys kept sorted with their cycles, extended by the shapes a
    lookup misses. A shape with a zero dimension costs 0.

    With ``path`` the table is kept between processes (:func:`core_table` puts it in the
    build cache): read when the table is made, written (merged with what another process
    wrote, atomically) every :data:`SAVE_EVERY` new shapes and at exit. A file that cannot
    be read or written is ignored: the table is then this process's alone."""

    def __init__(self, cfg, port: MemorySystem, path: Path | None = None):
        self.cfg, self.port, self.path = cfg, port, path
        self.keys = np.zeros(0, dtype=np.int64)
        self.cycles = np.zeros(0, dtype=np.int64)
        self.unsaved = 0
        if path is not None:
            self._merge(*self._read())
            atexit.register(self.save)

    def __call__(self, rows, cols, ks) -> np.ndarray:
        """Cycles of each rows x cols x ks shape (arrays that broadcast together)."""
        rows, cols, ks = (np.asarray(v, dtype=np.int64) for v in (rows, cols, ks))
        present = (rows > 0) & (cols > 0) & (ks > 0)
        if max(rows.max(initial=0), cols.max(initial=0), ks.max(initial=0)) >= 1 << _BITS:
            rows, cols, ks, present = np.broadcast_arrays(rows, cols, ks, present)
            out = np.zeros(rows.shape, dtype=np.int64)
            out[present] = core_cycles_many(self.cfg, rows[present], cols[present], ks[present], self.port)
            return out
        key = (rows << 2 * _BITS) | (cols << _BITS) | ks
        present = np.broadcast_to(present, key.shape)
        out = np.zeros(key.shape, dtype=np.int64)
        key = key[present]
        idx = self._find(key)
        miss = self.keys[idx] != key if len(self.keys) else np.ones(len(key), bool)
        if miss.any():
            new = np.unique(key[miss])
            mask = (1 << _BITS) - 1
            self._merge(new, core_cycles_many(self.cfg, new >> 2 * _BITS, (new >> _BITS) & mask, new & mask, self.port))
            self.unsaved += len(new)
            if self.path is not None and self.unsaved >= SAVE_EVERY:
                self.save()
            idx = self._find(key)
        out[present] = self.cycles[idx]
        return out

    def _find(self, key: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))

    def _merge(self, keys: np.ndarray, cycles: np.ndarray) -> None:
        keys, first = np.unique(np.concatenate([self.keys, keys]), return_index=True)
        self.keys, self.cycles = keys, np.concatenate([self.cycles, cycles])[first]

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        try:
            with np.load(self.path, allow_pickle=False) as f:
                keys, cycles = f["keys"].astype(np.int64), f["cycles"].astype(np.int64)
            if keys.shape == cycles.shape and keys.ndim == 1:
                return keys, cycles
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    def save(self) -> None:
        """Write the table to ``path``, merged with what is there (atomically: a killed
        process leaves the old file or the new one)."""
        if self.path is None or not self.unsaved:
            return
        from ..files import atomic_write_bytes

        self._merge(*self._read())
        data = io.BytesIO()
        np.savez(data, keys=self.keys, cycles=self.cycles)
        try:
            atomic_write_bytes(self.path, data.getvalue())
        except OSError:
            return
        self.unsaved = 0


@lru_cache(maxsize=64)
def core_table(cfg, port: MemorySystem) -> CoreTable:
    """The :class:`CoreTable` of a core configuration behind a slice port (shared by every
    chip with that core and port), kept in the build cache (``$SYSTOLAB_CACHE``) under a
    hash of the core, the port and the core model's source, so that a change of the model
    starts a new table."""
    from ..errors import UserError
    from ..files import cache_root

    try:
        root = cache_root()
    except UserError:
        return CoreTable(cfg, port)
    h = hashlib.sha256(json.dumps([cfg.canonical_json(), port.latency_cycles, port.bytes_per_cycle]).encode())
    for source in _CORE_MODEL_SOURCES:
        h.update(source.read_bytes())
    return CoreTable(cfg, port, root / "core-cycles" / f"{cfg.name}-{h.hexdigest()[:16]}.npz")


def blocking_fields(blockings) -> np.ndarray:
    """The blockings' fields as an (n, 11) int64 array, columns in :data:`_FIELDS` order."""
    get = attrgetter(*_FIELDS)
    return np.array([get(b) for b in blockings], dtype=np.int64).reshape(-1, len(_FIELDS))


def chip_gemm_cycles_batch(chip, M: int, N: int, K: int, blockings, count: int = 1) -> np.ndarray:
    """:func:`~systolab.models.chip_perf.chip_gemm_cycles` of every blocking (an int64
    array of chip clock cycles, in the blockings' order) for ``count`` M x N x K products
    as one descriptor. No parameter checks: the caller (the mapper) passes the controller's
    valid blockings."""
    blockings = list(blockings)
    if not block_model_applies(chip):
        return np.array([chip_gemm_cycles(chip, M, N, K, b, count) for b in blockings], dtype=np.int64)
    return block_model_cycles_batch(chip, M, N, K, blockings, count)


def block_model_cycles_batch(chip, M: int, N: int, K: int, blockings, count: int = 1) -> np.ndarray:
    """The block model's cycles of every blocking, whether or not it applies to the chip:
    exact where :func:`~systolab.models.chip_perf.block_model_applies`, elsewhere a lower
    bound on the exact cycles (it leaves out the DRAM credit's delays), by which the
    mapper prunes."""
    blockings = list(blockings)
    if not blockings:
        return np.zeros(0, dtype=np.int64)
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    sp = beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle)
    return _cycles(core_table(chip.core, port), _dma_shape(chip), chip.dram_latency_cycles, sp,
                   M, N, K, count, blocking_fields(blockings))


def block_model_cycles_many(chip, problems) -> list[np.ndarray]:
    """:func:`block_model_cycles_batch` of several GEMMs in one vectorised pass: for each
    (M, N, K, count, blockings) of ``problems``, an int64 array of cycles. One pass costs
    numpy's per-call overhead once instead of once a GEMM (a workload's GEMMs)."""
    problems = [(M, N, K, count, list(bs)) for M, N, K, count, bs in problems]
    sizes = [len(bs) for *_, bs in problems]
    if not sum(sizes):
        return [np.zeros(0, dtype=np.int64) for _ in problems]
    per_row = [np.repeat(np.array([p[i] for p in problems], dtype=np.int64), sizes) for i in range(4)]
    port = MemorySystem(chip.sram_latency_cycles, float(chip.core.beat_bytes))
    sp = beat_spacing(chip.dma_beat_bytes, chip.channel_bytes_per_cycle)
    out = _cycles(core_table(chip.core, port), _dma_shape(chip), chip.dram_latency_cycles, sp, *per_row,
                  blocking_fields([b for *_, bs in problems for b in bs]))
    return np.split(out, np.cumsum(sizes)[:-1])


def _ceil(a, b):
    return -(-a // b)


def _radices(C: int, *radices) -> list[np.ndarray]:
    """How much of each digit of a group index ``t0 + r0 (t1 + r1 (t2 + ...))`` (radices
    ``r0, r1, ...`` per blocking, powers of two; the last ``None``: unbounded) survives
    ``mod C`` (C a power of two): the low digits whole, the one that crosses C modulo what
    is left of C, the ones above not at all (radix 1)."""
    out, below = [], np.ones_like(radices[0])
    for r in radices:
        room = np.maximum(1, C // below)
        c = room if r is None else np.minimum(r, room)
        out.append(c)
        below = below * c
    return out


def _channel0(count: np.ndarray, radix: np.ndarray, w_full, w_last) -> np.ndarray:
    """The weight on channel 0 of one digit: the sum over t < ``count`` (``w_full`` each,
    ``w_last`` for the last) with t a multiple of ``radix``. Arrays (n, types)."""
    c = radix[:, None]
    return w_full * ((count - 1 + c - 1) // c) + w_last * ((count - 1) % c == 0)


def _cycles(table: CoreTable, shape: tuple, L: int, sp: int, M, N, K, count, f: np.ndarray) -> np.ndarray:
    """The block model's cycles of the blockings ``f`` (rows of :func:`blocking_fields`);
    ``M``, ``N``, ``K`` and ``count`` are numbers or arrays, one value per row."""
    C, beat, eb, ab = shape
    mb, nb, kb, mc, nc, kc, gp, gm, gn, gk, order = f.T
    n = len(f)
    Lm = max(L, 2)
    # per dimension (products, M, N, K): how many blocks, and the sizes by type (axis 2:
    # 0 a full block, 1 the dimension's last block)
    lengths = np.stack([np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v in (count, M, N, K)])
    block = np.stack([gp, mb, nb, kb])
    n_p, n_m, n_n, nk = blocks = _ceil(lengths, block)
    # (a full block never exceeds its dimension: the first load of a single-K-block GEMM
    # takes min(kb, K))
    live, mlen, nlen, klen = np.stack([np.minimum(block, lengths), lengths - (blocks - 1) * block], axis=2)

    # the cores: the slowest sub-GEMM of a step, by (M-type, N-type, K-type): of the full
    # part and the rest in each dimension. Sizes: the full part, a full block's rest, the
    # last block's rest (a rest of 0 costs 0); a last block may be smaller than a part.
    length, part = np.stack([mlen, nlen, klen]), np.stack([mc, nc, kc])
    sizes = np.concatenate([part[:, :, None], length % part[:, :, None]], axis=2)      # (3, n, 3)
    whole = length >= part[:, :, None]                                                  # (3, n, 2)
    cyc = table(sizes[0][:, :, None, None], sizes[1][:, None, :, None], sizes[2][:, None, None, :])
    for axis, w in enumerate(whole, start=1):     # each dimension's two types, one axis at a time
        full, rest0, rest1 = (np.take(cyc, i, axis=axis) for i in range(3))
        w = w.reshape((-1, 2) + (1,) * (full.ndim - 1))
        cyc = np.stack([np.maximum(full * w[:, 0], rest0), np.maximum(full * w[:, 1], rest1)], axis=axis)
    core = cyc                                                                          # (n, tm, tn, tk)

    # the DMA: the busiest channel's beats of every load (tp, tm, tn, tk) and write-back
    # (tp, tm, tn), which is channel 0 (module docstring)
    ones = np.ones((n, 2), dtype=np.int64)
    parts = _ceil(klen, kc[:, None])
    beats_full = _ceil(kc * eb, beat)[:, None] * ones
    beats_last = _ceil((klen - (parts - 1) * kc[:, None]) * eb, beat)
    row_groups, col_groups = _ceil(mlen, mc[:, None]), _ceil(nlen, nc[:, None])
    rows_last = mlen - (row_groups - 1) * mc[:, None]
    cols_last = nlen - (col_groups - 1) * nc[:, None]
    # A rows: group index i + gm (q + gp kk); B columns: q + gp (kk + gk j); write-backs: q + gp gk j
    r_i, r_q, r_k = _radices(C, gm, gp, gk)
    a = _channel0(parts, r_k, beats_full, beats_last)[:, None, None, None, :] * \
        _channel0(live, r_q, ones, ones)[:, :, None, None, None] * \
        _channel0(row_groups, r_i, mc[:, None] * ones, rows_last)[:, None, :, None, None]
    r_q, r_k, r_j = _radices(C, gp, gk, None)
    per_q = _channel0(live, r_q, ones, ones)
    b = _channel0(col_groups, r_j, nc[:, None] * ones, cols_last)[:, None, None, :, None] * \
        _channel0(parts, r_k, beats_full, beats_last)[:, None, None, None, :] * per_q[:, :, None, None, None]
    wb_cols = _channel0(col_groups, r_j, _ceil(nc[:, None] * ab, beat) * ones, _ceil(cols_last * ab, beat))
    # loads of both operands (0 ... 15 by type), of A alone (17 ...), of B alone (34 ...); 16
    # and 8 (write-backs): nothing
    loads = np.zeros((n, 3 * 17), dtype=np.int64)
    np.add(a, b, out=loads[:, :16].reshape(n, 2, 2, 2, 2))
    loads[:, 17:33] = np.broadcast_to(a, (n, 2, 2, 2, 2)).reshape(n, 16)
    loads[:, 34:50] = np.broadcast_to(b, (n, 2, 2, 2, 2)).reshape(n, 16)
    wbs = np.zeros((n, 9), dtype=np.int64)
    np.multiply((wb_cols[:, None, :] * per_q[:, :, None])[:, :, None, :], mlen[:, None, :, None],
                out=wbs[:, :8].reshape(n, 2, 2, 2))
    load_alone, wb_alone = _job(0, loads[:, :17], sp, Lm), _job(wbs, 0, sp, Lm)

    # the blocks: representative indices per dimension (0, 1, n-2, n-1) and how many
    # positions each stands for (1, n-3, 1, 1; none where they coincide), in the loop
    # order: products, the outer and the inner of M and N (N inner for order 0)
    inner_m = order == 1
    poi = np.stack([n_p, np.where(inner_m, n_n, n_m), np.where(inner_m, n_m, n_n)])
    (ip, io, ii) = np.stack([np.zeros_like(poi), np.ones_like(poi), poi - 2, poi - 1], axis=2)
    (wp, wo, wi) = np.stack([np.ones_like(poi), np.maximum(poi - 3, 0), poi >= 3, poi >= 2], axis=2)
    cand, sp_, so_, si_ = np.nonzero((wp > 0)[:, :, None, None] & (wo > 0)[:, None, :, None] & (wi > 0)[:, None, None, :])
    w = wp[cand, sp_] * wo[cand, so_] * wi[cand, si_]
    ip, io, ii = ip[cand, sp_], io[cand, so_], ii[cand, si_]
    NP, NO, NI, nk_, inner_m = poi[0, cand], poi[1, cand], poi[2, cand], nk[cand], inner_m[cand]

    def code(tp, to, ti):                      # a block's type index: (last p, last M, last N)
        return (tp * 4 + np.where(inner_m, ti, to) * 2 + np.where(inner_m, to, ti)).astype(np.int64)

    tp, to, ti = ip == NP - 1, io == NO - 1, ii == NI - 1
    cur = code(tp, to, ti)
    # the previous block (None at the first) and the next (None at the last)
    has_prev = (ip > 0) | (io > 0) | (ii > 0)
    prev = np.where(has_prev, code(np.where((ii > 0) | (io > 0), tp, False), np.where(ii > 0, to, io == 0), ii == 0), 8)
    in_i, in_o = ii < NI - 1, io < NO - 1
    has_next = in_i | in_o | (ip < NP - 1)
    nxt = np.where(has_next, code(np.where(in_i | in_o, tp, ip + 1 == NP - 1),
                                  np.where(in_i, to, np.where(in_o, io + 1 == NO - 1, NO == 1)),
                                  np.where(in_i, ii + 1 == NI - 1, NI == 1)), 8)
    # with one K-block, what the next block shares stays on chip: the outer dimension's
    # operand (A for order 0) along the inner blocks, the inner one's where the inner
    # dimension is one block (hdl/chip.py)
    keep_outer, keep_inner = in_i, (NI == 1) & in_o
    keep_a, keep_b = np.where(inner_m, keep_inner, keep_outer), np.where(inner_m, keep_outer, keep_inner)
    variant = np.where(keep_a, 2, np.where(keep_b, 1, 0)) * 17       # B alone, A alone, both

    # the one DMA job per block that overlaps a write-back with a load: the previous block's
    # write-back with this block's second K-block (several K-blocks) or with the next
    # block's first (one K-block)
    k_second = np.where(nk_ > 2, 0, 1)
    pair_load = np.where(nk_ > 1, cur * 2 + k_second, np.where(has_next, variant + nxt * 2, 16))
    pair = _job(wbs[cand, prev], loads[cand, pair_load], sp, Lm)

    c_full, c_edge = core[cand, (cur >> 1) & 1, cur & 1].T
    step_full_kb = 1 + np.maximum(c_full + 1, load_alone[cand, cur * 2])
    step_full_ke = 1 + np.maximum(c_full + 1, load_alone[cand, cur * 2 + 1])
    epilogue = 3 + wb_alone[cand, cur]
    several = (1 + np.maximum(c_full + 1, pair)) + np.maximum(nk_ - 3, 0) * step_full_kb + \
        (nk_ > 2) * step_full_ke + \
        np.where(has_next, 1 + np.maximum(c_edge + 1, load_alone[cand, nxt * 2]), c_edge + 1 + epilogue)
    one = np.where(has_next, 1 + np.maximum(c_edge + 1, pair), np.maximum(c_edge + 1, pair) + epilogue)
    blocks = np.where(nk_ > 1, several, one)
    first = (n_p == 1) * 4 + (n_m == 1) * 2 + (n_n == 1)
    total = 3 + load_alone[np.arange(n), first * 2]
    return (total + np.bincount(cand, weights=w * blocks, minlength=n)).round().astype(np.int64)


def _job(bw: np.ndarray, br: np.ndarray, sp: int, Lm: int) -> np.ndarray:
    """Cycles from a DMA job's start to the channel idle again, per channel, for ``bw``
    write-back beats and then ``br`` load beats (``chip_perf._job_cycles``): beats ``sp``
    apart, 5 - sp cycles more for a write-back, 3 + latency - sp for a load, one fewer
    for both."""
    w, r = bw > 0, br > 0
    return sp * (bw + br) + w * (5 - sp) + r * (3 + Lm - sp) - (w & r)


__all__ = ["CoreTable", "block_model_cycles_batch", "block_model_cycles_many", "blocking_fields", "chip_gemm_cycles_batch", "core_table"]
