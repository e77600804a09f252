"""A finite offline benchmark run, stepped through a runtime's scheduler.

An offline throughput benchmark (``sglang.bench_serving`` at request rate infinity,
``trtllm-bench``, vLLM's ``benchmark_throughput``) queues ``N`` requests at once and reports
total output tokens over the makespan. That is not a steady state: the run starts with
nothing running (a ramp of prefills), ends with a drain (the last requests decode in ever
smaller batches), and when the lengths are drawn at random a long request's context grows
while short ones come and go. :func:`simulate` replays such a run step by step as the
runtime's scheduler would (:class:`SchedulerConfig`: SGLang's, as its v0.4 source says, by
default), and returns the engine steps it ran (:class:`FiniteSchedule`). It times nothing:
with every request queued at the start, the scheduler's choices depend on its token pool
and queues only, never on how long a step takes, so one schedule serves every set of
device parameters (:mod:`.finite_replay` costs the steps).

The scheduler (SGLang ``python/sglang/srt/managers/scheduler.py`` and ``schedule_policy.py``,
v0.4.0, read for this model; the values are in ``runtimes.yaml: sglang.scheduling``):

* each engine step is either a **prefill batch** or a **decode batch**, never both, unless
  ``mixed`` (``--enable-mixed-chunk``); a prefill batch is tried first whenever requests
  wait and the last attempt did not find the pool full;
* a prefill batch takes waiting requests first come, first served (the prefix-matching
  policy falls back to it when the radix cache is off) up to ``chunk_tokens`` prompt tokens;
  a prompt that does not fit what is left is cut there and finished in the next prefill
  batch (chunked prefill);
* admission is bounded by ``max_running`` requests and by the KV token pool:
  ``admission="peak"`` (SGLang's rule when every request ignores end-of-sequence and the
  radix cache is off, as in its benchmark) sorts the running and new requests by the tokens
  they have left and admits a request only if, at each of their finishing points, the free
  pool plus what the finished ones release covers what the rest still write;
  ``admission="ratio"`` (its rule otherwise) reserves ``ratio`` x the tokens each running
  request has left and a new request's whole budget, the ratio decaying each decode step;
* once a request is refused for lack of tokens, no prefill is tried until a running
  request finishes (SGLang's ``batch_is_full``);
* a decode step that finds fewer free tokens than running requests retracts requests
  (fewest outputs first) until ``retract_steps`` steps' worth is free; a retracted request
  waits again and recomputes its prompt and outputs so far.

Decode steps between two events (a request finishing, the pool running short) are taken
as one block, so a run costs a few operations per request, not per step.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...checks import check_int, check_real
from ...errors import UserError
from ..frames import data_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ADMISSIONS", "FiniteSchedule", "SchedulerConfig", "bench_serving_lengths", "draw_lengths", "simulate"]

#: Admission rules of :class:`SchedulerConfig` (see the module's description).
ADMISSIONS = ("peak", "ratio")
#: Step kinds of :class:`FiniteSchedule`.
PREFILL, DECODE, MIXED = 0, 1, 2


@dataclass(frozen=True)
class SchedulerConfig:
    """A runtime's scheduler limits, in tokens and requests.

    ``pool_tokens``: the KV token pool; ``max_running``: running requests at most;
    ``chunk_tokens``: prompt tokens a prefill batch carries at most (SGLang's
    ``chunked_prefill_size``); ``max_prefill_tokens``: the ratio rule's cap on a batch's
    whole prompts; ``mixed``: a prefill batch also runs one decode token of every running
    request (its tokens count against ``chunk_tokens``); ``admission``: :data:`ADMISSIONS`;
    ``clip_new_tokens``: the largest output budget a reservation counts; ``retract_steps``:
    decode steps of room a retraction frees; ``init_ratio``, ``min_ratio``,
    ``ratio_decay_steps``: the ratio rule's reserved fraction of the tokens left, at the
    start, at least, and the decode steps in which it falls from one to the other."""

    pool_tokens: int
    max_running: int
    chunk_tokens: int
    max_prefill_tokens: int = 16384
    mixed: bool = False
    admission: str = "peak"
    clip_new_tokens: int = 4096
    retract_steps: int = 20
    init_ratio: float = 0.7
    min_ratio: float = 0.098
    ratio_decay_steps: int = 600

    def checked(self) -> SchedulerConfig:
        check_int("pool_tokens", self.pool_tokens, hi=1 << 40)
        check_int("max_running", self.max_running, hi=1 << 30)
        check_int("chunk_tokens", self.chunk_tokens, hi=1 << 30)
        check_int("max_prefill_tokens", self.max_prefill_tokens, hi=1 << 30)
        check_int("clip_new_tokens", self.clip_new_tokens, hi=1 << 30)
        check_int("retract_steps", self.retract_steps, hi=1 << 20)
        check_real("init_ratio", self.init_ratio, lo=0.0, hi=1.0)
        check_real("min_ratio", self.min_ratio, lo=0.0, hi=self.init_ratio)
        check_int("ratio_decay_steps", self.ratio_decay_steps, hi=1 << 30)
        if self.admission not in ADMISSIONS:
            raise UserError(f"admission: one of {', '.join(ADMISSIONS)}, not {self.admission!r}",
                            parameter="admission")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class FiniteSchedule:
    """The engine steps of a finite run, as blocks of identical steps (one array entry a block).

    Per block: ``kind`` (0 prefill, 1 decode, 2 mixed), ``count`` steps; per step of it:
    ``decode_seqs`` decoding requests and ``decode_ctx`` the sum of their contexts (tokens
    attended, the new one included; a block's mean), ``prefill_tokens`` prompt tokens
    computed, ``prefill_seqs`` prompts (or chunks) in it, ``prefill_pairs`` causal
    (query, key) pairs of their attention per head, ``prefill_ctx`` the sum of their
    contexts at the chunk's end, ``heads`` the positions that sample a token (decoding
    requests and prompts completed). Run totals: ``output_tokens`` (the lengths asked
    for, as the benchmark counts them), ``input_tokens``, ``requests``, ``retracted``
    (retractions), ``peak_running`` and ``peak_pool_tokens``; per request, the blocks in which
    it sampled its first token (``first_block``) and finished (``last_block``)."""

    kind: np.ndarray
    count: np.ndarray
    decode_seqs: np.ndarray
    decode_ctx: np.ndarray
    prefill_tokens: np.ndarray
    prefill_seqs: np.ndarray
    prefill_pairs: np.ndarray
    prefill_ctx: np.ndarray
    heads: np.ndarray
    output_tokens: int
    input_tokens: int
    requests: int
    retracted: int
    peak_running: int
    peak_pool_tokens: int
    first_block: np.ndarray     # per request: the block that sampled its first token
    last_block: np.ndarray      # per request: the block in which it finished

    @property
    def steps(self) -> int:
        return int(self.count.sum())

    @property
    def decode_steps(self) -> int:
        return int(self.count[self.kind == DECODE].sum())

    @property
    def prefill_steps(self) -> int:
        return int(self.count[self.kind != DECODE].sum())

    @property
    def mean_decode_batch(self) -> float:
        """Decoding requests per decode step, averaged over decode steps."""
        sel = self.kind == DECODE
        return float((self.count[sel] * self.decode_seqs[sel]).sum() / max(1, self.count[sel].sum()))

    def to_frame(self) -> pd.DataFrame:
        """One row per block of identical steps: its kind, steps and per-step figures."""
        kinds = {PREFILL: "prefill", DECODE: "decode", MIXED: "mixed"}
        return data_frame({"kind": kinds[int(k)], "steps": int(c), "decode_seqs": float(d), "decode_ctx": float(x),
                           "prefill_tokens": float(t), "prefill_seqs": float(q), "prefill_pairs": float(p),
                           "prefill_ctx": float(y), "heads": float(h)}
                          for k, c, d, x, t, q, p, y, h in zip(self.kind, self.count, self.decode_seqs, self.decode_ctx,
                                                               self.prefill_tokens, self.prefill_seqs,
                                                               self.prefill_pairs, self.prefill_ctx, self.heads))

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "steps": self.steps, "prefill_steps": self.prefill_steps, "decode_steps": self.decode_steps,
                "mean_decode_batch": self.mean_decode_batch, "retracted": self.retracted,
                "peak_running": self.peak_running, "peak_pool_tokens": self.peak_pool_tokens}


def draw_lengths(n: int, input_len: int, output_len: int, *, range_ratio: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` prompt and output lengths, each uniform on whole numbers from ``range_ratio`` x the
    nominal (prompts at least 1) to the nominal, drawn by ``numpy.random.default_rng(seed)``."""
    n, lo_in, lo_out = _check_draw(n, input_len, output_len, range_ratio)
    rng = np.random.default_rng(check_int("seed", seed, lo=0, hi=2**63 - 1))
    return rng.integers(lo_in, input_len + 1, size=n), rng.integers(lo_out, output_len + 1, size=n)


def bench_serving_lengths(n: int, input_len: int, output_len: int, *, range_ratio: float = 0.0,
                          seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The lengths ``sglang.bench_serving --dataset-name random`` draws: numpy's legacy
    generator seeded with ``seed`` (its ``--seed``, default 1), prompts uniform from
    max(1, ratio x input) to input, then outputs from ratio x output to output
    (``sample_random_requests`` in SGLang's ``python/sglang/bench_serving.py``, v0.4.0). With
    the run's own seed these are the run's lengths: their sums equal the token totals it
    reports (``tests/test_finite_run.py``)."""
    n, lo_in, lo_out = _check_draw(n, input_len, output_len, range_ratio)
    rs = np.random.RandomState(check_int("seed", seed, lo=0, hi=2**32 - 1))
    return rs.randint(lo_in, input_len + 1, size=n), rs.randint(lo_out, output_len + 1, size=n)


def _check_draw(n: int, input_len: int, output_len: int, range_ratio: float) -> tuple[int, int, int]:
    n = check_int("n", n, hi=1 << 24)
    check_int("input_len", input_len, hi=1 << 24)
    check_int("output_len", output_len, lo=0, hi=1 << 24)
    r = check_real("range_ratio", range_ratio, lo=0.0, hi=1.0)
    return n, max(int(input_len * r), 1), int(output_len * r)


_CONTINUE, _NO_TOKEN, _OTHER = 0, 1, 2


@dataclass
class _Budget:
    """What a prefill batch may still take (SGLang's ``PrefillAdder``): ``cur`` free pool
    tokens, ``input`` and ``chunk`` prompt tokens, ``total`` pool tokens after the reservations."""

    cur: int
    input: int
    chunk: int
    total: float

    def take(self, prompt: int, reserve: int) -> None:
        self.cur -= prompt
        self.input -= prompt
        self.chunk -= prompt
        self.total -= prompt + reserve

    def state(self) -> int:
        if self.total <= 0 or self.cur <= 0:
            return _NO_TOKEN
        return _OTHER if self.input <= 0 or self.chunk <= 0 else _CONTINUE


def _peak_fits(left: np.ndarray, held: np.ndarray, rem: float) -> bool:
    """SGLang's check for requests that ignore end-of-sequence: sorted by tokens left, at each
    one's finishing point the pool (``rem`` free now, plus what those before it release: their
    ``held`` tokens) must exceed the next one's tokens left times the requests still running."""
    keep = left > 0
    left, held = left[keep], held[keep]
    if not len(left):
        return rem > 0
    order = np.argsort(left, kind="stable")
    left, held = left[order], held[order]
    n = len(left)
    steps = np.append(left[1:], left[-1])
    freed = np.concatenate(([0], np.cumsum(held)[:-1]))
    return bool(np.all(rem + freed - steps * (n - np.arange(n)) > 0))


class _Run:
    """The scheduler's state during :func:`simulate`: per request its prompt, output budget,
    tokens generated and tokens held in the pool; the waiting queue and the running set."""

    def __init__(self, cfg: SchedulerConfig, isl: np.ndarray, osl: np.ndarray):
        self.cfg = cfg
        self.inp = isl.astype(np.int64)
        self.budget = np.maximum(osl.astype(np.int64), 0)
        self.done = np.zeros(len(isl), np.int64)     # output tokens sampled so far
        self.filled = np.zeros(len(isl), np.int64)   # tokens of the current fill already in the pool
        self.waiting: deque[int] = deque(range(len(isl)))
        self.running = np.zeros(0, np.int64)
        self.chunked: int | None = None              # the request whose prompt is being chunked
        self.free = cfg.pool_tokens
        self.full = False
        self.ratio = cfg.init_ratio
        self.retracted = 0
        self.peak_running = 0
        self.peak_pool = 0
        self.blocks: list[tuple[float, ...]] = []
        self.first_block = np.full(len(isl), -1, np.int64)   # the block that sampled its first token
        self.last_block = np.full(len(isl), -1, np.int64)    # the block in which it finished

    # -- admission ------------------------------------------------------------------------
    def _left(self, ids: np.ndarray) -> np.ndarray:
        return self.budget[ids] - self.done[ids]

    def _try_prefill(self) -> list[tuple[int, int]]:
        """One prefill batch: (request, prompt tokens computed) of each request in it."""
        cfg = self.cfg
        mixed_decode = len(self.running) if cfg.mixed else 0
        b = _Budget(cur=self.free - mixed_decode, input=cfg.max_prefill_tokens - mixed_decode,
                    chunk=cfg.chunk_tokens - mixed_decode,
                    total=self.free - mixed_decode
                    - float(np.sum(np.minimum(self._left(self.running), cfg.clip_new_tokens))) * self.ratio)
        batch: list[tuple[int, int]] = []
        if self.chunked is not None:       # the chunked prompt goes on first
            r = self.chunked
            ext = self._fill_target(r) - int(self.filled[r])
            take = min(ext, b.chunk)
            batch.append((r, take))
            b.take(take, min(int(self.budget[r]), cfg.clip_new_tokens) if take == ext else 0)
            self.chunked = r if take < ext else None
        while self.waiting:
            r = self.waiting[0]
            if len(self.running) + len(batch) >= cfg.max_running:
                self.full = True
                break
            res = self._add(r, batch, b)
            if res != _CONTINUE:
                self.full = self.full or res == _NO_TOKEN
                break
        return batch

    def _add(self, r: int, batch: list[tuple[int, int]], b: _Budget) -> int:
        """Try to add waiting request ``r`` to the prefill ``batch`` under budget ``b``: the
        admission rule, then the prompt whole or its first chunk."""
        cfg = self.cfg
        ext = self._fill_target(r)
        clip = min(int(self.budget[r]), cfg.clip_new_tokens)
        if cfg.admission == "peak":
            new = np.array([q for q, _ in batch] + [r], np.int64)
            held = np.concatenate((self.inp[self.running] + self.done[self.running], self.inp[new] + self.done[new]))
            left = np.concatenate((self._left(self.running), self._left(new)))
            if not _peak_fits(left, held, b.cur - int(self.inp[r])):
                return _NO_TOKEN
        else:
            if ext + clip >= b.total:
                return _NO_TOKEN
            if ext > b.input and batch:
                return _OTHER
        if ext > b.chunk:
            if b.chunk <= 0:
                return _OTHER
            self.chunked, ext, clip = r, b.chunk, 0
        self.waiting.popleft()
        batch.append((r, ext))
        b.take(ext, clip)
        return b.state()

    # -- steps --------------------------------------------------------------------------
    def _record(self, kind: int, count: int, dec: np.ndarray, dec_ctx: float,
                pre: list[tuple[int, int]], heads: int) -> None:
        tokens = seqs = 0
        pairs = ctx = 0.0
        for r, take in pre:
            end = int(self.filled[r]) + take
            tokens += take
            seqs += 1
            pairs += take * end - take * (take - 1) / 2
            ctx += end
        self.blocks.append((kind, count, len(dec), dec_ctx, tokens, seqs, pairs, ctx, heads))

    def prefill_step(self, batch: list[tuple[int, int]]) -> None:
        dec = self.running if self.cfg.mixed else np.zeros(0, np.int64)
        completes = [r for r, take in batch if self.filled[r] + take >= self._fill_target(r)]
        dec_ctx = float(np.sum(self.inp[dec] + self.done[dec])) if len(dec) else 0.0
        self._record(MIXED if len(dec) else PREFILL, 1, dec, dec_ctx, batch, len(dec) + len(completes))
        for r, take in batch:
            self.filled[r] += take
            self.free -= take
        if len(dec):
            self._advance(dec, 1)
        done_now = []
        for r in completes:
            self.done[r] += 1                        # the fill's last position samples a token
            done_now.append(r)
            if self.first_block[r] < 0:
                self.first_block[r] = len(self.blocks) - 1
        joined = np.array([r for r in done_now if self.done[r] < self.budget[r]], np.int64)
        for r in done_now:
            if self.done[r] >= self.budget[r]:
                self._finish(np.array([r]))
        self.running = np.concatenate((self.running, joined))
        self._peaks()

    def _fill_target(self, r: int) -> int:
        """Tokens request ``r``'s prefill computes: its prompt and any outputs it had when retracted."""
        return int(self.inp[r] + self.done[r])

    def _finish(self, ids: np.ndarray) -> None:
        self.free += int(np.sum(self.filled[ids]))
        self.last_block[ids] = len(self.blocks) - 1
        self.filled[ids] = 0

    def _advance(self, ids: np.ndarray, k: int) -> None:
        """``k`` decode steps of requests ``ids``: each writes one token a step and samples one."""
        self.done[ids] += k
        self.filled[ids] += k
        self.free -= k * len(ids)
        fin = ids[self.done[ids] >= self.budget[ids]]
        if len(fin):
            self._finish(fin)
            self.running = self.running[~np.isin(self.running, fin)]
            self.full = False

    def _retract(self) -> None:
        """Free room for ``retract_steps`` decode steps, fewest outputs (then longest prompt) first."""
        order = np.lexsort((-self.inp[self.running], self.done[self.running]))
        ids = list(self.running[order])
        out: list[int] = []
        while len(ids) > 1 and (not out or self.free < len(ids) * self.cfg.retract_steps):
            r = ids.pop(0)
            out.append(r)
            self._finish(np.array([r]))
        if not out:
            raise UserError("pool_tokens: the KV token pool cannot hold one running request", parameter="pool_tokens")
        self.running = np.array(ids, np.int64)
        self.waiting.extend(out)
        self.retracted += len(out)
        held = self.done[self.running]
        self.ratio = min(1.0, float(held.sum() + self.cfg.retract_steps * len(held)) /
                         max(1.0, float(self.budget[self.running].sum())))
        self.full = False

    def decode_block(self) -> None:
        if self.free < len(self.running):
            self._retract()
        b = len(self.running)
        k = 1
        if (self.full or not self.waiting) and self.chunked is None:
            # nothing can be admitted until a request finishes or the pool runs short
            k = max(1, min(int(np.min(self._left(self.running))), self.free // max(b, 1)))
        ctx0 = float(np.sum(self.inp[self.running] + self.done[self.running]))
        # the context of step j (0-based) is ctx0 + j x b; the block's mean step
        self._record(DECODE, k, self.running, ctx0 + b * (k - 1) / 2, [], b)
        self._advance(self.running.copy(), k)
        step = (self.cfg.init_ratio - self.cfg.min_ratio) / max(self.cfg.ratio_decay_steps, 1)
        self.ratio = max(self.ratio - k * step, self.cfg.min_ratio)
        self._peaks()

    def _peaks(self) -> None:
        self.peak_running = max(self.peak_running, len(self.running))
        self.peak_pool = max(self.peak_pool, self.cfg.pool_tokens - self.free)


def _whole(name: str, v: Any) -> np.ndarray:
    """``v`` as an array of whole numbers (a :class:`UserError` naming ``name`` otherwise)."""
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name}: a sequence of whole numbers of tokens", parameter=name) from None
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        raise UserError(f"{name}: a sequence of whole numbers of tokens", parameter=name)
    return a.astype(np.int64)


def simulate(config: SchedulerConfig, isl: Any, osl: Any) -> FiniteSchedule:
    """Step ``N`` requests (prompt lengths ``isl``, output lengths ``osl``: sequences of
    ``N`` whole numbers, all queued at the start) through the scheduler ``config`` until
    every one has finished; the steps it ran (:class:`FiniteSchedule`). Deterministic."""
    if not isinstance(config, SchedulerConfig):
        raise TypeError(f"config must be a SchedulerConfig, not {type(config).__name__}")
    cfg = config.checked()
    isl_a, osl_a = _whole("isl", isl), _whole("osl", osl)
    if isl_a.ndim != 1 or isl_a.shape != osl_a.shape or not len(isl_a):
        raise UserError("isl: prompt and output lengths must be two equally long, non-empty sequences",
                        parameter="isl")
    if np.any(isl_a < 1) or np.any(osl_a < 0):
        raise UserError("isl: prompts of at least 1 token and outputs of at least 0", parameter="isl")
    if int(isl_a.max()) + 1 > cfg.pool_tokens:
        raise UserError(f"pool_tokens: {cfg.pool_tokens} tokens cannot hold a prompt of {int(isl_a.max())}",
                        parameter="pool_tokens")
    run = _Run(cfg, isl_a, osl_a)
    limit = 4 * (len(isl_a) + int(osl_a.sum()) + int(isl_a.sum()) // max(cfg.chunk_tokens, 1)) + 100
    for _ in range(limit):
        if not run.waiting and run.chunked is None and not len(run.running):
            break
        batch = run._try_prefill() if ((not run.full and run.waiting) or run.chunked is not None) else []
        if batch:
            run.prefill_step(batch)
        elif len(run.running):
            run.decode_block()
        else:
            raise UserError("pool_tokens: the scheduler can admit no waiting request into an empty engine",
                            parameter="pool_tokens")
    else:
        raise UserError("isl: the run did not finish (a scheduler that cannot make progress)", parameter="isl")
    cols = np.array(run.blocks, dtype=float).reshape(-1, 9)
    return FiniteSchedule(cols[:, 0].astype(int), cols[:, 1].astype(int), cols[:, 2], cols[:, 3], cols[:, 4],
                          cols[:, 5], cols[:, 6], cols[:, 7], cols[:, 8], int(osl_a.sum()), int(isl_a.sum()),
                          len(isl_a), run.retracted, run.peak_running, run.peak_pool,
                          run.first_block, run.last_block)
