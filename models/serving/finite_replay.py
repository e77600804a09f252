"""A finite benchmark run costed step by step: the plan the serving fit and
:func:`finite_throughput` time.

:mod:`.finite_run` steps ``N`` requests through a runtime's scheduler and returns its
engine steps; this module turns them into forward passes (:func:`finite_plan`: the format
of :func:`~systolab.models.serving.model.serving_plan`, ``steps`` as (weight, operators)),
each timed by the same per-step model as every other scenario, at the step's *own* batch
and context. Steps of the same kind whose token counts are within :data:`BIN_RATIO` of
each other are timed as one (their mean), so a run of thousands of steps is a few hundred
forward passes. A step runs its GEMMs over all its tokens; attention per request, its
FLOPs and bytes exactly the sum over the step's requests (the per-step model's attention
is linear in them: :func:`attention_coefficients`).

The runtime's scheduler limits come from ``runtimes.yaml`` (``scheduling``, for a runtime
that records them: SGLang) and the device's memory (:func:`runtime_scheduler`); the runs
that are replayed this way, with their request count and length distribution, from
``serving.yaml: finite_runs`` (:func:`finite_runs`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from ...checks import check_int
from ...errors import UserError
from ..gpu.runtime import RUNTIMES_FILE
from ..gpu.specs import get_gpu
from ..specs import load_yaml, need
from ..workloads.catalog import get_llm
from ..workloads.shapes import DecoderShape
from .batching import with_heads
from .finite_run import DECODE, PREFILL, FiniteSchedule, SchedulerConfig, bench_serving_lengths, draw_lengths, simulate
from .model import SERVING_FILE, GpuServing, Op, Precision, combine, memory_plan, step_ops
from .moe import MoeRun

__all__ = ["BIN_RATIO", "FiniteRun", "FiniteThroughput", "attention_coefficients", "finite_plan", "finite_runs",
           "finite_throughput", "run_lengths", "runtime_scheduler", "time_schedule"]

#: Steps of one kind whose GEMM token counts differ by less than this ratio are timed as
#: their mean (below 8 tokens every count is its own; 1.1 moves the SGLang rows by under 0.2 %).
BIN_RATIO = 1.1
EXACT_TOKENS = 8

OpsOf = Callable[[int, int, int], list]


@dataclass(frozen=True)
class FiniteRun:
    """How a measured run drew its requests (``serving.yaml: finite_runs``): ``prompts``
    requests, lengths uniform from ``range_ratio`` x the nominal to ``input_len`` and
    ``output_len``, drawn by ``sampler`` (``bench_serving``: the harness's own generator,
    which reproduces the run's lengths; ``default_rng``: numpy's) from ``seed``; ``reported``: the
    duration and latencies the run reported, in seconds (to compare with, never fitted)."""

    id: str
    prompts: int
    input_len: int
    output_len: int
    range_ratio: float
    sampler: str
    seed: int
    source: str
    reported: tuple[tuple[str, float], ...] = ()    # the run's own duration and latencies (s), never fitted

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        return run_lengths(self)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "prompts": self.prompts, "input_len": self.input_len, "output_len": self.output_len,
                "range_ratio": self.range_ratio, "sampler": self.sampler, "seed": self.seed, "source": self.source,
                "reported": dict(self.reported)}


def run_lengths(run: FiniteRun) -> tuple[np.ndarray, np.ndarray]:
    """The prompt and output lengths of ``run``'s requests."""
    draw = {"bench_serving": bench_serving_lengths, "default_rng": draw_lengths}.get(run.sampler)
    if draw is None:
        raise UserError(f"sampler: bench_serving or default_rng, not {run.sampler!r}", parameter="sampler")
    return draw(run.prompts, run.input_len, run.output_len, range_ratio=run.range_ratio, seed=run.seed)


@cache
def finite_runs(path: str = str(SERVING_FILE)) -> dict[str, FiniteRun]:
    """The measurements replayed as finite runs, by measurement id (``serving.yaml: finite_runs``)."""
    doc = load_yaml(path).get("finite_runs") or {}
    out = {}
    for mid, e in doc.items():
        if mid == "basis":
            continue
        where = f"finite_runs.{mid}"
        out[str(mid)] = FiniteRun(str(mid), int(need(path, where, e, "prompts", int, positive=True)),
                                  int(need(path, where, e, "input_len", int, positive=True)),
                                  int(need(path, where, e, "output_len", int, positive=True)),
                                  float(need(path, where, e, "range_ratio", (int, float))),
                                  str(need(path, where, e, "sampler", str)), int(need(path, where, e, "seed", int)),
                                  str(need(path, where, e, "source", str)),
                                  tuple((str(k), float(v)) for k, v in (e.get("reported") or {}).items()))
    return out


def runtime_scheduler(runtime: str, gpu_id: str, shape: DecoderShape, *, tp: int, prec: Precision) -> SchedulerConfig:
    """``runtime``'s scheduler limits for ``shape`` on ``tp`` of ``gpu_id`` (``runtimes.yaml:
    <runtime>.scheduling``): its KV token pool, the memory fraction it keeps for weights and
    cache less the weights, over the KV bytes of a token; its running-request limit; its
    prefill chunk. Raises a :class:`UserError` naming ``runtime`` when it records none."""
    entry = (load_yaml(RUNTIMES_FILE).get("runtimes") or {}).get(runtime) or {}
    sch = entry.get("scheduling") or {}
    if "pool" not in sch:
        raise UserError(f"runtime: {runtime!r} records no scheduler limits (runtimes.yaml: scheduling.pool)",
                        parameter="runtime")
    where = f"runtimes.{runtime}.scheduling"
    path = str(RUNTIMES_FILE)
    pool_doc = need(path, where, sch, "pool", dict)
    fractions = need(path, f"{where}.pool", pool_doc, "mem_fraction_static_by_tp", dict)
    fraction = float(fractions[max(t for t in map(int, fractions) if t <= tp)])
    spec = get_gpu(gpu_id)
    mem = memory_plan(shape, tp=tp, pp=1, prec=prec, tokens_per_seq=1, prefill_tokens=1)
    pool = int((fraction * spec.memory_GB * 2**30 - mem["weights"]) // mem["kv_per_token"])
    if pool <= 0:
        raise UserError(f"tp: {shape.name} leaves no KV pool on {tp} x {gpu_id} under {runtime}", parameter="tp")
    req = need(path, where, sch, "max_running", dict)
    ctx = shape.max_context or 4096
    slots = min(max(int(pool / ctx * req["slots_per_context"]), req["slots_min"]), req["slots_max"])
    small = spec.memory_GB < float(sch.get("small_gpu_GB", 0))
    chunk = int(sch["chunked_prefill_tokens_small_gpu"] if small else sch["chunked_prefill_tokens"])
    ratio = need(path, where, sch, "new_token_ratio", dict)
    init = min(1.0, float(ratio["init"]) * float(sch.get("schedule_conservativeness", 1.0)))
    return SchedulerConfig(pool_tokens=pool, max_running=min(int(pool * req["pool_fraction"]), slots),
                           chunk_tokens=chunk, max_prefill_tokens=int(sch["max_prefill_tokens"]),
                           mixed=bool(sch["mixed_prefill_decode"]), admission=str(sch["admission"]),
                           clip_new_tokens=int(sch["clip_max_new_tokens"]),
                           retract_steps=int(sch["retract_decode_steps"]), init_ratio=init,
                           min_ratio=init * float(ratio["min_factor"]), ratio_decay_steps=int(ratio["decay_steps"]))


@dataclass(frozen=True)
class AttentionCoefficients:
    """Attention's cost per call (per layer) on one device, linear in its requests: FLOPs and
    elements per causal (query, key) pair, bytes per query token and per context token, for
    decode (one query token) and prefill."""

    flops_per_pair: float
    elements_per_pair: float
    decode_bytes_per_token: float
    decode_bytes_per_ctx: float
    prefill_bytes_per_token: float
    prefill_bytes_per_ctx: float
    template: Op


def attention_coefficients(ops_of: OpsOf) -> AttentionCoefficients:
    """The coefficients of the per-step model's attention (``ops_of(seqs, q_len, ctx)``'s
    attention operator), read off it at a few small steps, so that a step of mixed requests
    is costed as the exact sum over them."""
    def att(s: int, q: int, c: int) -> Op:
        return next(op for op in ops_of(s, q, c) if op.kind == "attention")

    d1, d2, p1, p2 = att(1, 1, 1), att(1, 1, 2), att(1, 2, 2), att(1, 2, 3)
    if d1.flops <= 0 or p1.flops != 3 * d1.flops:
        raise UserError("model: its attention is not costed per causal pair (an MLA model?); a finite run is "
                        "replayed for standard attention only", parameter="model")
    dc, pc = d2.bytes - d1.bytes, p2.bytes - p1.bytes
    return AttentionCoefficients(d1.flops, d1.elements, d1.bytes - dc, dc, (p1.bytes - 2 * pc) / 2, pc, d1)


def _bins(sched: FiniteSchedule) -> np.ndarray:
    tokens = sched.decode_seqs + sched.prefill_tokens
    geo = EXACT_TOKENS + np.round(np.log(np.maximum(tokens, 1) / EXACT_TOKENS) / math.log(BIN_RATIO))
    return np.where(tokens <= EXACT_TOKENS, tokens, 1e6 + geo) + 1e8 * sched.kind


def finite_plan(ops_of: OpsOf, sched: FiniteSchedule) -> dict[str, Any]:
    """The forward steps that time the finite run ``sched``: ``steps`` as (weight, operators)
    (a run takes sum(weight x step time)) and ``ttft`` (zeros: a finite run's throughput
    only), and ``block_step``: the entry of ``steps`` that times each block of ``sched``.
    ``ops_of(seqs, q_len, ctx)`` gives a uniform step's operators."""
    coef = attention_coefficients(ops_of)
    keys = _bins(sched)
    steps: list[tuple[float, list]] = []
    uniq, block_step = np.unique(keys, return_inverse=True)
    for key in uniq:
        sel = keys == key
        w = sched.count[sel].astype(float)
        n = float(w.sum())

        def mean(a: np.ndarray, w: np.ndarray = w, sel: np.ndarray = sel, n: float = n) -> float:
            return float((a[sel] * w).sum() / n)

        dec, dctx = mean(sched.decode_seqs), mean(sched.decode_ctx)
        ptok, pctx, pairs = mean(sched.prefill_tokens), mean(sched.prefill_ctx), mean(sched.prefill_pairs)
        tokens = max(1, round(dec + ptok))
        attention = []
        if dec > 0:
            attention.append(replace(coef.template, name="attention_decode", flops=coef.flops_per_pair * dctx,
                                     elements=coef.elements_per_pair * dctx,
                                     bytes=coef.decode_bytes_per_token * dec + coef.decode_bytes_per_ctx * dctx))
        if ptok > 0:
            attention.append(replace(coef.template, name="attention_prefill", flops=coef.flops_per_pair * pairs,
                                     elements=coef.elements_per_pair * pairs,
                                     bytes=coef.prefill_bytes_per_token * ptok + coef.prefill_bytes_per_ctx * pctx))
        ops: list = []
        for op in ops_of(1, tokens, tokens):
            ops += attention if op.kind == "attention" else [op]
        steps.append((n, with_heads(ops_of, ops, max(1, round(mean(sched.heads))))))
    return {"steps": steps, "ttft": [0.0] * len(steps), "block_step": block_step}


def _ops_of(shape: DecoderShape, tp: int, prec: Precision, kv_shared: bool, moe: MoeRun | None = None) -> OpsOf:
    def ops_of(n: int, q_len: int, ctx: int) -> list:
        return step_ops(shape, seqs=n, q_len=q_len, ctx=ctx, tp=tp, prec=prec, kv_shared=kv_shared, moe=moe)
    return ops_of


def measured_run_plan(run: FiniteRun, runtime: str, gpu_id: str, shape: DecoderShape, *, tp: int,
                      prec: Precision, kv_shared: bool = True,
                      moe: MoeRun | None = None) -> tuple[dict[str, Any], FiniteSchedule]:
    """The plan and schedule of the measured finite ``run`` under ``runtime`` on ``tp`` of ``gpu_id``
    (``moe``: how the runtime runs mixture-of-experts blocks)."""
    isl, osl = run.lengths()
    sched = simulate(runtime_scheduler(runtime, gpu_id, shape, tp=tp, prec=prec), isl, osl)
    return finite_plan(_ops_of(shape, tp, prec, kv_shared, moe), sched), sched


@dataclass(frozen=True)
class FiniteThroughput:
    """A finite run timed: ``makespan_s`` (s) for ``output_tokens`` (the lengths asked
    for), ``output_tokens_per_s`` per device, the share of the time in decode-only steps
    (``decode_share``), the latencies a benchmark client reports (median time to first
    token ``median_ttft_s``, median gap between tokens ``median_itl_s``, mean request
    latency ``mean_e2e_s``: every request sent at time 0), and the
    :class:`.finite_run.FiniteSchedule` (``schedule``)."""

    makespan_s: float
    output_tokens: int
    output_tokens_per_s: float
    decode_share: float
    median_ttft_s: float
    median_itl_s: float
    mean_e2e_s: float
    schedule: FiniteSchedule

    def to_dict(self) -> dict[str, Any]:
        return {"makespan_s": self.makespan_s, "output_tokens": self.output_tokens,
                "output_tokens_per_s": self.output_tokens_per_s, "decode_share": self.decode_share,
                "median_ttft_s": self.median_ttft_s, "median_itl_s": self.median_itl_s,
                "mean_e2e_s": self.mean_e2e_s, "schedule": self.schedule.to_dict()}


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def time_schedule(sched: FiniteSchedule, block_step: np.ndarray, step_s: np.ndarray, tp: int) -> FiniteThroughput:
    """``sched`` timed by ``step_s``, the seconds of each plan step (``block_step`` maps each of
    the schedule's blocks to one: :func:`finite_plan`)."""
    per_step = step_s[block_step]
    block_s = per_step * sched.count
    end = np.cumsum(block_s)
    total = float(end[-1])
    dec = sched.kind != PREFILL
    # the gap before a decoding step: its own time, and for a block's first step the prefill
    # steps run since the last decoding step
    dec_idx = np.flatnonzero(dec)
    prev_end = np.concatenate(([0.0], end[dec_idx[:-1]]))
    first_gap = end[dec_idx] - (sched.count[dec_idx] - 1) * per_step[dec_idx] - prev_end
    gaps = np.concatenate((first_gap, per_step[dec_idx]))
    weights = np.concatenate((sched.decode_seqs[dec_idx], sched.decode_seqs[dec_idx] * (sched.count[dec_idx] - 1)))
    return FiniteThroughput(total, sched.output_tokens, sched.output_tokens / tp / total,
                            float(block_s[sched.kind == DECODE].sum() / total),
                            float(np.median(end[sched.first_block])), _weighted_median(gaps, weights),
                            float(np.mean(end[sched.last_block])), sched)


def finite_throughput(gpu_id: str, model: str | DecoderShape, *, isl: Any, osl: Any, tp: int, dtype: str,
                      scheduler: SchedulerConfig, runtime: str | None = None, kv_dtype: str | None = None,
                      theta: np.ndarray | None = None) -> FiniteThroughput:
    """Replay requests of prompt lengths ``isl`` and output lengths ``osl`` (all queued at once)
    through ``scheduler`` on ``tp`` GPUs ``gpu_id`` serving ``model`` (a catalogue name or a
    :class:`~systolab.models.workloads.shapes.DecoderShape`) in ``dtype`` under
    ``runtime``, at the device parameters ``theta`` (:class:`~.model.GpuParams` order; default
    the stored fit's): makespan, output tokens/s per device and the latencies."""
    shape = get_llm(model) if isinstance(model, str) else model
    if not isinstance(shape, DecoderShape):
        raise TypeError(f"model must be a model name or a DecoderShape, not {type(model).__name__}")
    check_int("tp", tp, hi=1024)
    prec = Precision(dtype, kv_dtype or dtype)
    dev = GpuServing(gpu_id, dtype, runtime=runtime)
    sched = simulate(scheduler, isl, osl)
    plan = finite_plan(_ops_of(shape, tp, prec, True), sched)
    th = dev.params.as_array() if theta is None else np.asarray(theta, float)
    step_s = np.array([float(combine(dev.terms(ops, tp), th).sum()) for _, ops in plan["steps"]])
    return time_schedule(sched, plan["block_step"], step_s, tp)
