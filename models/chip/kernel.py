"""The chip's block model (:mod:`systolab.models.chip.batch`), compiled: one loop over the
mappings instead of numpy arrays over them.

:mod:`~systolab.models.chip.batch` derives the model; this is the same arithmetic for one
blocking at a time, written for Numba: channel 0's beats of every load and write-back in
closed form, and the blocks of the schedule as the product of each dimension's
representative indices (0, 1, n-2, n-1), weighted by the positions each stands for. Every
quantity is an integer, so the result is exact. The cores' sub-GEMM cycles come in
already looked up (:class:`~systolab.models.chip.batch.CoreTable`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

# the columns of a blocking's fields (chip_batch._FIELDS)
_MB, _NB, _KB, _MC, _NC, _KC, _GP, _GM, _GN, _GK, _ORDER = range(11)
_NONE = 8                 # a block type index for "no block" (no previous, no next)


@njit(cache=True)
def _ceil(a, b):
    return -(-a // b)


@njit(cache=True)
def _radix(C, below, r):
    """How much of a digit of radix ``r`` (0: unbounded) survives ``mod C`` above digits
    worth ``below``: the whole digit, what is left of C, or nothing (1)."""
    room = max(1, C // below)
    return room if r == 0 else min(r, room)


@njit(cache=True)
def _channel0(count, c, w_full, w_last):
    """Channel 0's weight of one digit: the sum over t < ``count`` (``w_full`` each,
    ``w_last`` for the last) with t a multiple of ``c``."""
    return w_full * ((count - 1 + c - 1) // c) + w_last * (1 if (count - 1) % c == 0 else 0)


@njit(cache=True)
def _job(bw, br, sp, Lm, lag):
    """Cycles from a DMA job's start to the channel idle again, for ``bw`` write-back
    beats (the first ``lag`` cycles later: the write-back sum's stages) and then ``br``
    load beats (``chip_perf._job_cycles``)."""
    w, r = 1 if bw > 0 else 0, 1 if br > 0 else 0
    return sp * (bw + br) + w * (5 - sp + lag) + r * (3 + Lm - sp) - w * r


@njit(cache=True)
def _code(inner_m, tp, to, ti):
    """A block's type index: last product group (4), last M-block (2), last N-block (1)."""
    return tp * 4 + (ti if inner_m else to) * 2 + (to if inner_m else ti)


@njit(cache=True)
def _worst_cores(core, cyc, i, mlen, nlen, klen, mc, nc, kc):
    """``core[tm, tn, tk]``: the slowest core sub-GEMM of a block by (M-type, N-type,
    K-type), of the full part (where the block holds one) and the rest, in each dimension."""
    for tm in range(2):
        for tn in range(2):
            for tk in range(2):
                worst = 0
                for a in (0, 1 + tm):
                    if a == 0 and mlen[tm] < mc:
                        continue
                    for b in (0, 1 + tn):
                        if b == 0 and nlen[tn] < nc:
                            continue
                        for c in (0, 1 + tk):
                            if c == 0 and klen[tk] < kc:
                                continue
                            worst = max(worst, cyc[i, a, b, c])
                core[tm, tn, tk] = worst


@njit(cache=True)
def _channel0_beats(loads, wbs, live, mlen, nlen, klen, mc, nc, kc, gp, gm, gk, C, beat, eb, ab):
    """The DMA: channel 0's beats (the busiest channel) of every load (``loads``: both
    operands by type 0..15, A alone 17.., B alone 34..) and write-back (``wbs`` by type)."""
    beats_full = _ceil(kc * eb, beat)
    r_i = _radix(C, 1, gm)                       # A rows: i + gm (q + gp kk)
    r_qa = _radix(C, r_i, gp)
    r_ka = _radix(C, r_i * r_qa, gk)
    r_qb = _radix(C, 1, gp)                      # B columns: q + gp (kk + gk j)
    r_kb = _radix(C, r_qb, gk)
    r_j = _radix(C, r_qb * r_kb, 0)
    nc_beats = _ceil(nc * ab, beat)
    for tp in range(2):
        per_qa = _channel0(live[tp], r_qa, 1, 1)
        per_qb = _channel0(live[tp], r_qb, 1, 1)
        for tm in range(2):
            row_groups = _ceil(mlen[tm], mc)
            a_rows = _channel0(row_groups, r_i, mc, mlen[tm] - (row_groups - 1) * mc)
            for tn in range(2):
                col_groups = _ceil(nlen[tn], nc)
                cols_last = nlen[tn] - (col_groups - 1) * nc
                b_cols = _channel0(col_groups, r_j, nc, cols_last)
                wbs[tp * 4 + tm * 2 + tn] = _channel0(col_groups, r_j, nc_beats, _ceil(cols_last * ab, beat)) * \
                    per_qb * mlen[tm]
                for tk in range(2):
                    parts = _ceil(klen[tk], kc)
                    beats_last = _ceil((klen[tk] - (parts - 1) * kc) * eb, beat)
                    a = _channel0(parts, r_ka, beats_full, beats_last) * per_qa * a_rows
                    b = b_cols * _channel0(parts, r_kb, beats_full, beats_last) * per_qb
                    t = tp * 8 + tm * 4 + tn * 2 + tk
                    loads[t], loads[17 + t], loads[34 + t] = a + b, a, b


@njit(cache=True)
def _block_cycles(core, loads, wbs, load_alone, wb_alone, inner_m, ip, io, ii, NP, NO, NI, nk, sp, Lm, lag):
    """Cycles of the block at indices (``ip``, ``io``, ``ii``) of the loop order (products,
    outer, inner of M and N), with its DMA jobs and its neighbours' types."""
    k_second = 0 if nk > 2 else 1
    tp, to, ti = ip == NP - 1, io == NO - 1, ii == NI - 1
    cur = _code(inner_m, tp, to, ti)
    prev = _NONE
    if ip > 0 or io > 0 or ii > 0:
        prev = _code(inner_m, tp if (ii > 0 or io > 0) else False, to if ii > 0 else io == 0, ii == 0)
    in_i, in_o = ii < NI - 1, io < NO - 1
    has_next = in_i or in_o or ip < NP - 1
    nxt = _NONE
    if has_next:
        nxt = _code(inner_m, tp if (in_i or in_o) else ip + 1 == NP - 1,
                    to if in_i else (io + 1 == NO - 1 if in_o else NO == 1),
                    ii + 1 == NI - 1 if in_i else NI == 1)
    # with one K-block, what the next block shares stays on chip: the outer dimension's
    # operand along the inner blocks, the inner one's where the inner dimension is one
    # block (hdl/chip.py)
    keep_outer, keep_inner = in_i, NI == 1 and in_o
    keep_a = keep_inner if inner_m else keep_outer
    keep_b = keep_outer if inner_m else keep_inner
    variant = 34 if keep_a else (17 if keep_b else 0)      # B alone, A alone, both
    # the one DMA job per block that overlaps a write-back with a load
    if nk > 1:
        pair_load = cur * 2 + k_second
    else:
        pair_load = variant + nxt * 2 if has_next else 16
    pair = _job(wbs[prev], loads[pair_load], sp, Lm, lag)
    c_full, c_edge = core[(cur >> 1) & 1, cur & 1, 0], core[(cur >> 1) & 1, cur & 1, 1]
    if nk > 1:
        blk = 1 + max(c_full + 1, pair) + max(nk - 3, 0) * (1 + max(c_full + 1, load_alone[cur * 2]))
        if nk > 2:
            blk += 1 + max(c_full + 1, load_alone[cur * 2 + 1])
        if has_next:
            blk += 1 + max(c_edge + 1, load_alone[nxt * 2])
        else:
            blk += c_edge + 1 + 3 + wb_alone[cur]
    elif has_next:
        blk = 1 + max(c_edge + 1, pair)
    else:
        blk = max(c_edge + 1, pair) + 3 + wb_alone[cur]
    return blk


@njit(cache=True)
def block_cycles(cyc, f, Ms, Ns, Ks, counts, C, beat, eb, ab, L, sp, lag):
    """Cycles of each blocking (row of ``f``, int64, columns as ``chip_batch._FIELDS``) of
    ``counts[i]`` products of ``Ms[i] x Ns[i] x Ks[i]``, on a chip of ``C`` DMA channels of
    ``beat``-byte beats ``sp`` cycles apart, DRAM latency ``L``, ``eb``-byte operands,
    ``ab``-byte accumulators and ``lag`` write-back stages. ``cyc[i, a, b, c]``: the core cycles of the sub-GEMM of rows
    ``[mc, full M-block % mc, last M-block % mc][a]`` by the same of columns (``b``) and of
    K (``c``), 0 where a size is 0."""
    n = f.shape[0]
    out = np.empty(n, np.int64)
    Lm = max(L, 2)
    core = np.empty((2, 2, 2), np.int64)
    loads = np.zeros(51, np.int64)      # both operands 0..15 by type (tp, tm, tn, tk), A alone 17.., B alone 34..
    wbs = np.zeros(9, np.int64)         # write-backs by type (tp, tm, tn); 8: none
    load_alone = np.empty(17, np.int64)
    wb_alone = np.empty(9, np.int64)
    idx = np.empty((3, 4), np.int64)
    wt = np.empty((3, 4), np.int64)
    for i in range(n):
        mb, nb, kb, mc, nc, kc = f[i, _MB], f[i, _NB], f[i, _KB], f[i, _MC], f[i, _NC], f[i, _KC]
        gp, gm, gk, order = f[i, _GP], f[i, _GM], f[i, _GK], f[i, _ORDER]
        count, M, N, K = counts[i], Ms[i], Ns[i], Ks[i]
        n_p, n_m, n_n, nk = _ceil(count, gp), _ceil(M, mb), _ceil(N, nb), _ceil(K, kb)
        # per dimension, the sizes of a full block (type 0) and of the last (type 1)
        live = (min(gp, count), count - (n_p - 1) * gp)
        mlen = (min(mb, M), M - (n_m - 1) * mb)
        nlen = (min(nb, N), N - (n_n - 1) * nb)
        klen = (min(kb, K), K - (nk - 1) * kb)
        _worst_cores(core, cyc, i, mlen, nlen, klen, mc, nc, kc)
        _channel0_beats(loads, wbs, live, mlen, nlen, klen, mc, nc, kc, gp, gm, gk, C, beat, eb, ab)
        for t in range(17):
            load_alone[t] = _job(0, loads[t], sp, Lm, lag)
        for t in range(9):
            wb_alone[t] = _job(wbs[t], 0, sp, Lm, lag)

        # the blocks in loop order (products, the outer and the inner of M and N: N inner
        # for order 0), by representative indices 0, 1, n-2, n-1 standing for 1, n-3, 1, 1
        # positions (none where they coincide)
        inner_m = order == 1
        NP, NO, NI = n_p, (n_n if inner_m else n_m), (n_m if inner_m else n_n)
        for d, P in enumerate((NP, NO, NI)):
            idx[d, 0], idx[d, 1], idx[d, 2], idx[d, 3] = 0, 1, P - 2, P - 1
            wt[d, 0], wt[d, 1], wt[d, 2], wt[d, 3] = 1, max(P - 3, 0), 1 if P >= 3 else 0, 1 if P >= 2 else 0
        total = 0
        for xp in range(4):
            for xo in range(4):
                for xi in range(4):
                    w = wt[0, xp] * wt[1, xo] * wt[2, xi]
                    if w:
                        total += w * _block_cycles(core, loads, wbs, load_alone, wb_alone, inner_m,
                                                   idx[0, xp], idx[1, xo], idx[2, xi], NP, NO, NI, nk, sp, Lm, lag)
        first = (4 if n_p == 1 else 0) + (2 if n_m == 1 else 0) + (1 if n_n == 1 else 0)
        out[i] = 3 + load_alone[first * 2] + total
    return out
