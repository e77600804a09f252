"""Continuous batching with batched, chunked prefill, in steady state.

A continuously batching runtime (vLLM, SGLang, TensorRT-LLM's in-flight batching) runs
one forward pass per engine step over every token scheduled in it: one decode token of
each running request, plus prefill tokens of new requests up to the step's token budget
(vLLM's ``max_num_batched_tokens``, TensorRT-LLM's ``max_num_tokens``; a prompt longer
than what is left of the budget is prefilled in chunks over several steps). The GEMMs run
once over all the step's tokens (the weights are read once per step, not once per
prefill); attention runs per request, over its own context.

Steady state at concurrency ``C`` (a finished request replaced at once): over a *cycle*,
the time in which ``C`` requests finish and ``C`` new ones start, the engine runs

* ``C x isl`` prefill tokens, packed into *mixed* steps of ``d`` decode tokens and up to
  ``budget - d`` prefill tokens (all of them in one step when they fit);
* ``C x (osl - 1)`` decode tokens, ``d`` a step, in the mixed steps and in *decode* steps
  that carry decode tokens only.

With ``N`` steps a cycle, ``d = C (osl - 1) / N`` and ``N = max(osl - 1, mixed steps)``:
decode paces the cycle unless prompts are long against outputs and the budget (then every
step is mixed and each request is scheduled on fewer of them). Per cycle: time =
sum(steps x step time), output = ``C x osl`` tokens. A new request waits half a step,
then its prefill spans ``ceil(isl / prefill tokens per step)`` mixed steps (TTFT);
by Little's law it lives one cycle, so TPOT = (cycle - TTFT) / (osl - 1).

Assumptions (stated with every continuous result, :data:`ASSUMPTION`): decode attention
of every running request is at the mean context ``isl + osl / 2``; a prefill chunk's
attention is that of an average chunk of its prompt (the causal work of a whole prompt
spread over its chunks); a step's last-position work (LM head, sampling) is for its decode
tokens and the prompts it completes. Static batches (``--batch``) keep the plan of
:func:`~systolab.models.serving.model.serving_plan`: the published static-batch rows the
GPU model is fitted on are timed as before.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

ASSUMPTION = ("continuous batching (--concurrency): steady state; each engine step runs the decode tokens of the "
              "running requests and up to the step token budget (--chunk-tokens) of prefill tokens of new ones "
              "in one forward pass (GEMMs over all its tokens, attention per request), chunked when a prompt does "
              "not fit; decode attention at the mean context isl + osl/2 (models/serving/batching.py)")

#: The operators that work on the last position of each sequence only.
HEAD_OPS = ("final_rmsnorm", "lm_head", "allgather_logits", "sampling")


@dataclass(frozen=True)
class Schedule:
    """One steady-state cycle of continuous batching at ``concurrency`` (per pipeline
    micro-batch): ``mixed_steps`` steps of ``decode_tokens`` decode and ``prefill_tokens``
    prefill tokens, then ``decode_steps`` steps of ``decode_tokens`` decode tokens only
    (counts may be fractional: they are a cycle's average); ``budget`` tokens a step at
    most (raised to fit the decode tokens plus one token of prefill when it is smaller:
    a runtime needs its token budget above its running requests);
    ``ttft_mixed_steps`` mixed steps a new request's prefill spans."""

    concurrency: int
    isl: int
    osl: int
    budget: int
    decode_tokens: float
    prefill_tokens: float
    mixed_steps: float
    decode_steps: float
    ttft_mixed_steps: int

    @property
    def steps(self) -> float:
        return self.mixed_steps + self.decode_steps

    def to_dict(self) -> dict:
        return {**asdict(self), "steps": self.steps}


def schedule(*, isl: int, osl: int, concurrency: int, budget: int) -> Schedule:
    """The steady-state cycle of ``concurrency`` requests of ``isl`` prompt and ``osl``
    output tokens under a step token ``budget`` (see the module's description)."""
    C, prefill_total = concurrency, concurrency * isl
    if osl <= 1:          # every request ends with its prefill: mixed steps only
        first = min(budget, prefill_total)
        return Schedule(C, isl, osl, budget, 0.0, float(first), prefill_total / first, 0.0, -(-isl // first))
    budget = max(budget, C + 1)
    d, n = float(C), float(osl - 1)
    for _ in range(8):    # d and the mixed steps depend on each other; a few rounds settle them
        q = min(float(prefill_total), budget - d)
        n = max(float(osl - 1), prefill_total / q)
        d = C * (osl - 1) / n
    q = min(float(prefill_total), budget - d)
    mixed = prefill_total / q
    return Schedule(C, isl, osl, budget, d, q, mixed, max(0.0, n - mixed), max(1, math.ceil(isl / q)))


OpsOf = Callable[[int, int, int], list]


def mixed_step_ops(ops_of: OpsOf, *, decode_seqs: int, decode_ctx: int, prefill_tokens: int, isl: int) -> list:
    """The operators of one mixed step: ``decode_seqs`` decode tokens at context
    ``decode_ctx`` and ``prefill_tokens`` prefill tokens of prompts of ``isl`` tokens.
    ``ops_of(seqs, q_len, ctx)`` gives a uniform step's operators
    (:func:`~systolab.models.serving.model.step_ops` with the scenario's model,
    parallelism and precision). The GEMMs and element-wise work run over all the step's
    tokens at once; attention is the decode part's plus the prefill part's (whole prompts
    when the chunk holds some, else an average chunk of ``prefill_tokens`` of a prompt:
    context ``(isl + chunk - 1) / 2``, which gives a whole prompt's causal work over its
    chunks); the last-position operators run for the decode tokens and the prompts the
    step completes."""
    tokens = decode_seqs + prefill_tokens
    body = ops_of(1, tokens, tokens)
    attention: list = []
    if decode_seqs:
        attention += [replace(op, name="attention_decode") for op in ops_of(decode_seqs, 1, decode_ctx)
                      if op.kind == "attention"]
    if prefill_tokens:
        prompts, chunk = (max(1, round(prefill_tokens / isl)), isl) if prefill_tokens >= isl else (1, prefill_tokens)
        ctx = isl if chunk == isl else (isl + chunk - 1) // 2 + 1
        attention += [replace(op, name="attention_prefill") for op in ops_of(prompts, chunk, max(ctx, chunk))
                      if op.kind == "attention"]
    finishing = decode_seqs + (max(1, round(prefill_tokens / isl)) if prefill_tokens else 0)
    head = {op.name: op for op in ops_of(max(1, finishing), 1, 1) if op.name in HEAD_OPS}
    out: list = []
    for op in body:
        if op.kind == "attention":
            out += attention
        elif op.name in HEAD_OPS:
            out.append(head[op.name])
        else:
            out.append(op)
    return out


def continuous_plan(ops_of: OpsOf, *, isl: int, osl: int, seqs: int, budget: int) -> dict[str, Any]:
    """The forward steps that time a steady-state cycle of continuous batching (the format
    of :func:`~systolab.models.serving.model.serving_plan`: ``steps`` as (weight,
    operators), ``ttft`` the weights of the first token's time) and its :class:`Schedule`
    (``schedule``)."""
    s = schedule(isl=isl, osl=osl, concurrency=seqs, budget=budget)
    ctx = isl + osl // 2
    d = max(1, round(s.decode_tokens)) if s.decode_tokens > 0 else 0
    q = max(1, round(s.prefill_tokens))
    mixed = mixed_step_ops(ops_of, decode_seqs=d, decode_ctx=ctx, prefill_tokens=q, isl=isl)
    steps: list[tuple[float, list]] = [(s.mixed_steps, mixed)]
    ttft = [float(s.ttft_mixed_steps)]
    # TPOT: a request's decode span, the cycle less its own prefill (Little's law), per token
    per = 1.0 / max(osl - 1, 1)
    tpot = [max(0.0, s.mixed_steps - s.ttft_mixed_steps) * per if osl > 1 else 1.0]
    if s.decode_steps > 0:
        steps.append((s.decode_steps, ops_of(d, 1, ctx)))
        ttft.append(0.5)                   # a new request waits on average half a running step
        tpot.append(s.decode_steps * per)
    else:
        ttft[0] += 0.5
    return {"steps": steps, "ttft": ttft, "tpot": tpot, "schedule": s}


__all__ = ["ASSUMPTION", "continuous_plan", "HEAD_OPS", "mixed_step_ops", "schedule", "Schedule"]
