"""The core cycle model's recurrence (:func:`systolab.models.core.perf.core_cycles`), compiled.

:mod:`systolab.models.core.perf` describes the model: each chunk's stage ends are a max-plus
recurrence over the state below, and runs of identical chunks, tiles and M-blocks jump
whole periods once two consecutive periods agree. This module is that recurrence written
for Numba: the state is a float64 array, the three levels of runs share one period test,
and :func:`cycles_many` evaluates many shapes of one core in one call (a mapper's search
asks for tens of thousands). Compiled code and the same code run by Python
(``NUMBA_DISABLE_JIT=1``) agree exactly: every time is an integer below 2**53 (or, with
fractional beat spacing, the same IEEE operations in the same order), and the "never"
times are only compared, never relied on for their exact value.
"""
from __future__ import annotations

import numpy as np
from numba import njit

NEG = -float(1 << 60)      # "never" for pipeline stages that have not run yet
NEVER_RAN = NEG / 2        # a time at or below this has not happened
MAX_PERIOD = 8             # longest period (in steps) a run is tested for
_HIST = 4 * MAX_PERIOD + 2  # rows of a run's history: over 4 periods + 1 states, it keeps the last 2 periods + 1

# Controller latencies, in cycles (from the RTL's FIFOs and state machines; the names say
# where each one sits, the validation pins their values).
RX_GAP = 4                # receiver: last beat of a chunk -> first beat of the next (done, start, refill)
RX_SWITCH_GAP = 2         # receiver: last A beat -> first B beat of a chunk
FIRST_BEAT_MIN = 2        # descriptor accepted -> receiver ready for the first beat
_LD_QUEUE_GAP = 1         # receiver takes chunk i-4 -> loader may take chunk i
_LD_CHUNK_GAP = 2         # loader: A->B switch and the idle cycle after a chunk's commands
_OS_FEED_GAP = 1          # filled chunk -> first k-slice
_WS_WEIGHT_GAP = 1        # filled chunk -> first weight row
_WS_BANK_GAP = -1         # array weight bank release, relative to R + C - 2
_WS_ROW_GAP = 2           # weights loaded -> first A row
_WS_WRITE_GAP = 3         # a final row entering the array -> its first write beat, less R + C
_OS_TAIL = 4              # router, row/command queues, write command -> last data beat
_OS_TILE_QUEUE = 3
_OS_WRITE_GAP = 3          # a tile's first row routed (ready - 1) -> its first write beat, less 1
_WS_TAIL = 4
_WS_WRITE_TAIL = 1        # last row written (writer end) -> done

# state: fill end L; weights end Wt (OS: last tile's end); feed ends F_{i-2}, F_{i-1}; loader take
# time T; fill starts S_{i-1..i-4}; writer end Wr; write-queue freeze [Z0, Z); router bubble Zb;
# OS: the first cycle the frozen array steps, ZA (then every row written, to Z), the previous
# tile's freeze [Y0, Y] stepping at YA, YA + nb_y, ... (it may outlast the next tile's feed), and
# the writer's first beat of the last two final tiles W1, W2; and, not times, the rows of the
# previous chunk, the beats per row of the last final chunk (OS: of the freeze [Z0, Z]) and of
# the freeze [Y0, Y], the rows and the beats per row of the last two final tiles (OS)
(L, WT, F2, F1, T, S1, S2, S3, S4, WR, Z0, Z, ZB, ZA, Y0, YA, Y, W1, W2,
 PREV_ROWS, NB_PREV, NB_Y, R1, R2, N1, N2) = range(26)
_TIMES = 19
_STATE = 26

# geometry vector: rows, cols, beat bytes, input bytes, tile_m, k_chunk, accumulator bytes,
# output-stationary (1/0), memory latency, MAC pipeline stages S (OS: S row groups a tile,
# S beats a k; WS: a partial sum takes S cycles a row of PEs)
GR, GC, GW, GEB, GTM, GKC, GACC, GOS, GLAT, GS = range(10)


@njit(cache=True)
def _ceil_div(a, b):
    return -(-a // b)


@njit(cache=True)
def _steps(t0, n, z0, z, nb_prev):
    """Time after n array steps from t0: while the write queue is full ([z0, z)), the
    array moves one step per row written (nb_prev cycles)."""
    if n == 0 or t0 >= z or t0 + n <= z0:
        return t0 + n
    free = min(n, max(0, int(z0 - t0)))
    t1, n1 = max(t0, z0), n - free
    k = min(n1, _ceil_div(int(z - t1), nb_prev))
    return t1 + k * nb_prev if k == n1 else max(t1 + k * nb_prev, z) + (n1 - k)


@njit(cache=True)
def _steps_at(t0, n, zf, za, z, nb):
    """(time, steps left) after up to n array steps, the first in cycle t0, through a
    freeze: the array is frozen from cycle zf to z except in the cycles za, za + nb, ...,
    z (OS: a full row queue takes a row, and the array steps, each time the writer
    finishes one); steps left over (past z) are returned, not taken."""
    if n == 0 or t0 > z:
        return t0, n
    if t0 + n <= zf:
        return t0 + n, 0
    free = max(0, int(zf - t0))
    t1, n1 = max(t0, zf), n - free
    m0 = max(0, _ceil_div(int(np.ceil(t1 - za)), nb))
    avail = int((z - za) // nb) - m0 + 1
    if n1 <= avail:
        return za + (m0 + n1 - 1) * nb + 1, 0
    return max(z + 1, t1), n1 - max(avail, 0)


@njit(cache=True)
def _os_steps(s, t0, n):
    """Time after n array steps of an output-stationary core, the first in cycle t0,
    through the freezes of the last two tiles' write-back (the earlier one first)."""
    t, left = _steps_at(t0, n, s[Y0], s[YA], s[Y], s[NB_Y])
    t, left = _steps_at(t, left, s[Z0], s[ZA], s[Z], s[NB_PREV])
    return t + left


@njit(cache=True)
def _os_queue_room(s, r, queue):
    """The first cycle the row queue (``queue`` rows) can take row r of the next
    output-stationary tile: the row ``queue`` rows before it is written (see
    :func:`_os_row_queue`); NEG when that row is further back than the tile two before."""
    i = s[R1] + s[R2] - queue + r
    if s[W2] <= NEVER_RAN or i < 0:
        return NEG
    return s[W2] + (i + 1) * s[N2]


@njit(cache=True)
def _os_row_queue(s, o0, rows, queue):
    """An output-stationary tile's rows into the writer's row queue (``queue`` rows: it
    frees an entry the cycle after a row's last beat), the first offered in cycle ``o0``
    and the rest one a step: row r waits for the row ``queue`` rows before it, of the
    tile two before (R2 rows, its first beat in cycle W2, N2 beats a row; rows further
    back are taken as written). The array freezes from the first row that must wait, and
    then steps each time that tile's writer finishes a row: the freeze [Z0, Z], stepping
    at ZA, ZA + N2, ...; the one it replaces moves to [Y0, Y]."""
    i0 = s[R1] + s[R2] - queue            # row r waits for row r + i0 of the tile two before
    rmin = max(0, int(-i0))
    if s[W2] <= NEVER_RAN or rmin >= rows:
        return
    nb = s[N2]
    # row r is taken at a_r = W2 + (r + i0 + 1) nb, and offered (unfrozen) at o0 + r
    d = o0 - s[W2] - (i0 + 1) * nb
    if d < 0:
        j = rmin
    elif nb > 1:
        j = max(rmin, int(d // (nb - 1)) + 1)
    else:
        j = rows
    if j < rows:
        s[Y0], s[YA], s[Y], s[NB_Y] = s[Z0], s[ZA], s[Z], s[NB_PREV]
        s[Z0], s[ZA], s[Z], s[NB_PREV] = o0 + j, s[W2] + (j + i0 + 1) * nb, s[W2] + (rows + i0) * nb, nb


@njit(cache=True)
def _chunk(s, g, beat_t, rx, rows, cols, klen, first, last):
    """One chunk of ``rows`` x ``cols`` x ``klen`` through the pipeline: ``s`` updated."""
    R, C, W, S = g[GR], g[GC], g[GW], g[GS]
    lat = g[GLAT]
    fill = (rows + cols) * _ceil_div(klen * g[GEB], W) * beat_t + rx
    # the loader takes a chunk when its queue (4 chunks) has room, i.e. after the
    # receiver started the chunk 4 before; its reads return `lat` cycles later
    t = max(s[T], s[S4] + _LD_QUEUE_GAP)
    start_fill = max(s[L], s[F2])
    begin = max(start_fill, t + lat)
    # the memory idled since the last fill: its credit is full and the first beat does
    # not wait for it (what the receiver's own gap does not already hide)
    fill_end = begin + fill - max(0.0, min(beat_t - RX_GAP, begin - s[L]))
    # a loader further ahead than the latency never binds again (S grows faster than the
    # loader's own pace): pinning it to S - lat keeps runs periodic without changing L
    t_next = max(t, start_fill - lat) + rows + cols + _LD_CHUNK_GAP
    wt, wr, z0, z, zb, nb_prev, za = s[WT], s[WR], s[Z0], s[Z], s[ZB], s[NB_PREV], s[ZA]
    if g[GOS]:
        # a tile's first result row leaves E cycles after its final beat; tiles' final
        # beats are at least P apart (hdl/array.py: C + S - 1 and (S - 1) R + max(R, C))
        E, P = C + S - 1, (S - 1) * R + max(R, C)
        start = max(s[F1], fill_end + _OS_FEED_GAP)
        # the previous tile's first result row waits (array frozen) until its tile has
        # come through the tile queue: cycles [Wt - 1 + E, Wt - 1 + 3) when E < 3
        lo, hi = wt - 1 + E, wt - 1 + _OS_TILE_QUEUE
        if lo < hi and wt > NEVER_RAN:
            if lo <= start < hi:
                start = hi
            elif start < lo < start + klen:
                start += hi - lo
        f = _os_steps(s, start, S * klen)         # S beats a k-slice, one a step
        if zb > NEVER_RAN and start <= zb < f:    # the router's bubble froze the array mid-feed
            f = _os_steps(s, start, S * klen + 1)
        if last:   # the array takes a tile's last slice >= P steps after the previous one
            frozen = 1 if zb > NEVER_RAN and wt <= zb < _os_steps(s, wt, P) else 0
            f = max(f, _os_steps(s, wt, P + frozen))
            # the router takes the next tile one cycle after routing a tile's last row: a
            # tile whose rows (S R of them) follow the previous tile's without a gap (last
            # slices exactly S R array steps apart, R >= C) finds it busy, and the array
            # freezes that cycle. A bubble between the two last slices froze the previous
            # tile's rows too: the steps between them exclude it, and the new bubble is a
            # cycle later (so guard-bound tiles pay it every tile, not every other one)
            # (array steps, not cycles: a full row queue may freeze the array between them;
            # and no bubble when the queue holds the first row back longer anyway)
            held = 1 if zb > NEVER_RAN and wt <= zb < f else 0
            o0 = _os_steps(s, f, E - 1)          # the first result row is offered
            if R >= C and wt > NEVER_RAN and f - held == _os_steps(s, wt, S * R) \
                    and _os_queue_room(s, 0, 2 * g[GTM]) <= o0:
                zb = o0
            wt = f
            # the writer sends the tile's rows (nb beats each) after the previous tile's:
            # its first row is routed max(E, 3) cycles after the last slice (a cycle later
            # behind the router's bubble), and the rows follow one another without a gap
            ready = max(o0 + 1, f + _OS_TILE_QUEUE) + (1 if zb >= f else 0)
            nb = _ceil_div(cols * g[GACC], W)
            ws = max(wr, ready) + _OS_WRITE_GAP   # the first beat, row r's last at ws + (r + 1) nb - 1
            wr = max(wr, ready) + rows * nb
            _os_row_queue(s, ready - 1, rows, 2 * g[GTM])
            s[W2], s[R2], s[N2], s[W1], s[R1], s[N1] = s[W1], s[R1], s[N1], ws, rows, nb
            z0, za, z, nb_prev = s[Z0], s[ZA], s[Z], s[NB_PREV]
    else:
        # the array's latency is S R + C - 1 (hdl/array.py); RC = that + 1, R + C when S = 1
        RC = S * R + C
        w0 = max(wt, fill_end + _WS_WEIGHT_GAP, s[F2] + S * (R - 1) + C - 1 + _WS_BANK_GAP)
        wt = _steps(w0, R, z0, z, nb_prev)
        if zb > NEVER_RAN and w0 <= zb < wt:      # the router's bubble froze the weight load too
            wt += 1
        start = max(s[F1], wt + _WS_ROW_GAP)
        if not first:
            start = max(start, s[F1] - s[PREV_ROWS] + RC)
        f = _steps(start, rows, z0, z, nb_prev)
        if zb > NEVER_RAN and start <= zb < f:    # the router's bubble froze the array mid-feed
            f += 1
        # the router takes a tile one cycle after routing the previous tile's last row: a
        # tile of one K-chunk whose rows follow the previous tile's back to back finds it
        # busy, and the array freezes the cycle its first result row is offered
        bubble = 1 if first and last and s[F1] > NEVER_RAN and start == s[F1] else 0
        if bubble:
            zb = start + RC - 1
            if zb < f:
                f += 1
        if last:
            # the writer sends nb beats per row, starting R + C + 3 cycles after the first
            # row entered; when it falls behind, the queue (Q rows) fills and the array
            # freezes [Z0, Z), moving one step per row written, until its last row is out
            queue = 2 * max(R, C)
            nb = _ceil_div(cols * g[GACC], W)
            first_out, ws = start + RC - 1 + bubble, max(wr, start + RC + _WS_WRITE_GAP + bubble)
            wr = ws + rows * nb
            if queue < ws - first_out:
                j = queue
            elif nb > 1:
                j = _ceil_div(int(queue * nb + first_out - ws - 1), nb - 1)
            else:
                j = rows
            if j < rows:
                z0, z = first_out + j, wr - queue * nb
                # the last result row is queued at Z, one step each nb cycles before it:
                # the last A row entered the array RC - 1 of those steps earlier (when the
                # freeze began before it did)
                if j <= rows - RC:
                    f = max(f, z - (RC - 1) * nb + 1)
            else:
                z0, z = NEG, NEG
            nb_prev = nb
    s[S4], s[S3], s[S2], s[S1] = s[S3], s[S2], s[S1], start_fill
    s[F2], s[F1] = s[F1], f
    s[L], s[WT], s[T], s[WR], s[Z0], s[Z], s[ZB] = fill_end, wt, t_next, wr, z0, z, zb
    if g[GOS]:
        s[ZA] = za
    s[PREV_ROWS], s[NB_PREV] = rows, nb_prev


@njit(cache=True)
def _shift(a, b, moving):
    """How state a moved to b, when every time that moved did so by one amount (and none
    that has run in b had not in a): (True, amount) with ``moving`` marked, else (False, 0)."""
    for i in range(_TIMES, _STATE):
        if a[i] != b[i]:
            return False, 0.0
    d, found = 0.0, False
    for i in range(_TIMES):
        moving[i] = False
        if b[i] <= NEVER_RAN:
            continue
        if a[i] <= NEVER_RAN:
            return False, 0.0
        if b[i] != a[i]:
            if not found:
                d, found = b[i] - a[i], True
            elif b[i] - a[i] != d:
                return False, 0.0
            moving[i] = True
    return found, d


@njit(cache=True)
def _keep(hist, row, s):
    """hist[row] = s (a loop: numpy's slice assignment costs seconds to compile)."""
    for i in range(s.shape[0]):
        hist[row, i] = s[i]


@njit(cache=True)
def _after_step(hist, n, s, done, count, m1, m2):
    """Record the state after a step of a run (``n`` states kept in ``hist``) and, once the
    last two stretches of p steps (p up to MAX_PERIOD) each advanced the same times by the
    same amount (the others, stale for this run, unchanged), jump whole periods: the rest
    is stepped. A run of 4 steps or fewer is only stepped (too short for a period to pay
    off). Returns (states kept, steps done)."""
    if count <= 4:
        return n, done
    _keep(hist, n, s)
    n += 1
    for p in range(1, MAX_PERIOD + 1):
        if n < 2 * p + 1 or count - done < p or (p > 1 and n % p):
            continue
        ok, d = _shift(hist[n - 1 - p], hist[n - 1], m1)
        if not ok:
            continue
        ok2, d2 = _shift(hist[n - 1 - 2 * p], hist[n - 1 - p], m2)
        if not ok2 or d2 != d:
            continue
        same = True
        for i in range(_TIMES):
            same = same and m1[i] == m2[i]
        if not same:
            continue
        periods = (count - done) // p
        for i in range(_TIMES):
            if m1[i]:
                s[i] += periods * d
        _keep(hist, 0, s)
        return 1, done + periods * p
    if n > 4 * MAX_PERIOD + 1:
        keep = 2 * MAX_PERIOD + 1
        for r in range(keep):
            _keep(hist, r, hist[n - keep + r])
        n = keep
    return n, done


@njit(cache=True)
def cycles_many(g, beat_t, Ms, Ns, Ks):
    """Cycles of each ``Ms[i] x Ns[i] x Ks[i]`` GEMM (int64 arrays, every entry >= 1) on the
    core of geometry ``g`` (int64: see the G* indices) whose beats are ``beat_t`` cycles
    apart (float), each from the descriptor to ``done``.

    The three levels of runs (M-blocks, N-tiles of a block, K-chunks of a tile), each the
    full ones then the edge, are written out here rather than in functions of their own:
    LLVM inlines every callee, and optimises it again with each caller (about a second of
    compile time per level)."""
    R, C, W, TM, KC, S = g[GR], g[GC], g[GW], g[GTM], g[GKC], g[GS]
    # idle receiver cycles at a chunk boundary and at the A->B lane switch, less what the
    # memory's credit refill would have cost anyway
    rx = max(0.0, RX_GAP - beat_t) + max(0.0, RX_SWITCH_GAP - beat_t)
    # the first beat: memory latency, but not before the receiver has started
    # (the memory's credit is full when the first data is ready: the first beat does not
    # wait for it, which the receiver's own start-up hides for beats up to RX_GAP cycles)
    head = max(0.0, beat_t - RX_GAP)
    out = np.empty(len(Ms), np.int64)
    s = np.empty(_STATE)
    hm, hn, hk = np.empty((_HIST, _STATE)), np.empty((_HIST, _STATE)), np.empty((_HIST, _STATE))
    m1, m2 = np.zeros(_TIMES, np.bool_), np.zeros(_TIMES, np.bool_)
    for i in range(len(Ms)):
        M, N, K = Ms[i], Ns[i], Ks[i]
        for j in range(_TIMES):
            s[j] = NEG
        s[L] = max(g[GLAT], FIRST_BEAT_MIN) - head
        s[T] = -head
        s[PREV_ROWS], s[NB_PREV], s[NB_Y], s[R1], s[R2], s[N1], s[N2] = 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0
        nk = _ceil_div(K, KC)
        for m_run in range(2):
            rows, m_count = (TM, M // TM) if m_run == 0 else (M % TM, 1 if M % TM else 0)
            _keep(hm, 0, s)
            m_n, m_done = 1, 0
            while m_done < m_count:
                for n_run in range(2):
                    cols, n_count = (C, N // C) if n_run == 0 else (N % C, 1 if N % C else 0)
                    _keep(hn, 0, s)
                    n_n, n_done = 1, 0
                    while n_done < n_count:
                        for k_run in range(3):       # the first K-chunk, the middle ones, the last
                            klen, k_count, first, last = KC, 1, k_run == 0, k_run == 2
                            if k_run == 0 and nk == 1:
                                klen, last = K, True
                            elif k_run == 1:
                                k_count = max(0, nk - 2)
                            elif k_run == 2:
                                klen, k_count = K - (nk - 1) * KC, 1 if nk > 1 else 0
                            _keep(hk, 0, s)
                            k_n, k_done = 1, 0
                            while k_done < k_count:
                                _chunk(s, g, beat_t, rx, rows, cols, klen, first, last)
                                k_n, k_done = _after_step(hk, k_n, s, k_done + 1, k_count, m1, m2)
                        n_n, n_done = _after_step(hn, n_n, s, n_done + 1, n_count, m1, m2)
                m_n, m_done = _after_step(hm, m_n, s, m_done + 1, m_count, m1, m2)
        f = s[F1]
        last_rows = M - (_ceil_div(M, TM) - 1) * TM
        nb = _ceil_div((N - (_ceil_div(N, C) - 1) * C) * g[GACC], W)
        if g[GOS]:
            # row 0 leaves the array C - 1 cycles after the last slice, but is routed no
            # earlier than the tile's entry through the tile queue (3 cycles)
            tail = max(C + S - 1, _OS_TILE_QUEUE) + last_rows * nb + _OS_TAIL + (1 if s[ZB] >= f else 0)
            out[i] = int(np.ceil(max(f + tail, s[WR] + _OS_TAIL)))
        else:
            out[i] = int(np.ceil(max(f + S * R + C + _WS_TAIL, s[WR] + _WS_WRITE_TAIL)))
    return out
