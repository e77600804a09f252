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
by Little's law it lives one cycle, so TPOT = (cycle - its prefill steps) / (osl - 1).
The budget packs a cycle's prompts into as few steps as it can, which sets the throughput;
but a steady load's requests arrive spread over the cycle, so when a prompt fits one step
the step that computes it holds the prompts that arrive during one step (``C / N`` a
step), at least its own: the first token is timed on that step (and the cycle's other
prefill work counts in the decode span, so TTFT + (osl - 1) x TPOT stays the cycle).

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

from ...checks import check_int, check_real
from ...errors import UserError

ASSUMPTION = ("continuous batching (--concurrency): steady state; each engine step runs the decode tokens of the "
              "running requests and up to the step token budget (--chunk-tokens) of prefill tokens of new ones "
              "in one forward pass (GEMMs over all its tokens, attention per request), chunked when a prompt does "
              "not fit; the first token's step holds the prompts that arrive during one step (at least its own); "
              "decode attention at the mean context isl + osl/2 (models/serving/batching.py)")

#: The operators that work on the last position of each sequence only.
HEAD_OPS = ("final_rmsnorm", "lm_head", "allgather_logits", "sampling")


@dataclass(frozen=True)
class BatchingOptions:
    """Options of continuous batching, each with its stated assumption (:data:`OPTION_ASSUMPTIONS`).

    * ``prefix_hit``: the fraction of every prompt found in the prefix cache (a shared
      system prompt or conversation history; vLLM's automatic prefix caching, SGLang's radix
      cache). Only whole KV blocks are shared, so the cached tokens are the prompt's
      ``prefix_hit`` rounded down to whole blocks; they are neither recomputed (fewer
      prefill tokens, which still attend to the whole prompt) nor held once per request
      (one copy of the shared blocks for all).
    * ``draft_tokens``, ``acceptance``, ``draft_cost``: speculative decoding. Each decode
      round a draft proposes ``draft_tokens`` tokens, each accepted with probability
      ``acceptance`` independently until the first rejection, and the target model checks
      them in one step (``draft_tokens + 1`` tokens per request); a round yields
      ``(1 - a^(k+1)) / (1 - a)`` tokens on average (Leviathan, Kalman and Matias 2023,
      arXiv:2211.17192, eq. 1). A draft step costs ``draft_cost`` times a plain decode step of
      the target at the same batch (a small draft model: a few per cent; 0 for a draft
      that rides on the target's own heads)."""

    prefix_hit: float = 0.0
    draft_tokens: int = 0
    acceptance: float = 0.0
    draft_cost: float = 0.0

    def checked(self) -> BatchingOptions:
        """The options, validated (a :class:`UserError` names the parameter as the CLI spells it)."""
        return BatchingOptions(check_real("prefix-hit", self.prefix_hit, lo=0.0, hi=1.0, hi_open=True),
                               check_int("spec-tokens", self.draft_tokens, lo=0, hi=MAX_DRAFT_TOKENS),
                               check_real("spec-acceptance", self.acceptance, lo=0.0, hi=1.0),
                               check_real("spec-draft-cost", self.draft_cost, lo=0.0, hi=10.0))

    @property
    def active(self) -> bool:
        return self.prefix_hit > 0 or self.draft_tokens > 0

    @property
    def tokens_per_round(self) -> float:
        """Tokens a request gains per decode round: 1 without speculation."""
        k, a = self.draft_tokens, self.acceptance
        if k == 0:
            return 1.0
        return float(k + 1) if a >= 1.0 else (1 - a ** (k + 1)) / (1 - a)

    def cached_tokens(self, isl: int, block_tokens: int) -> int:
        """Prompt tokens served from the prefix cache: whole blocks, and never the last
        prompt token (its logits give the first output token)."""
        cached = int(isl * self.prefix_hit) // block_tokens * block_tokens
        return min(cached, isl - 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens_per_round": self.tokens_per_round}


#: Largest draft length accepted (beyond it speculation is not a serving setting).
MAX_DRAFT_TOKENS = 64

OPTION_ASSUMPTIONS = (
    "prefix caching (--prefix-hit): that fraction of every prompt, rounded down to whole KV blocks, is in the cache: "
    "not recomputed, its blocks held once for all requests; the new prompt tokens still attend to the whole prompt",
    "speculative decoding (--spec-tokens, --spec-acceptance, --spec-draft-cost): i.i.d. acceptance, "
    "(1 - a^(k+1))/(1 - a) tokens per target step of k + 1 tokens a request (Leviathan et al. 2023); a draft step "
    "costs --spec-draft-cost x a plain decode step of the target",
)


@dataclass(frozen=True)
class Schedule:
    """One steady-state cycle of continuous batching at ``concurrency`` (per pipeline
    micro-batch): ``mixed_steps`` steps of ``decode_tokens`` decoding requests and
    ``prefill_tokens`` prefill tokens, then ``decode_steps`` steps of ``decode_tokens``
    decoding requests only (counts may be fractional: they are a cycle's average); each
    decoding request runs ``verify_tokens`` tokens a step (1, or the draft plus one under
    speculative decoding) over ``rounds`` steps in its life; ``new_tokens`` of each prompt
    are computed (the rest come from the prefix cache); ``budget`` tokens a step at most
    (raised to fit the decode tokens plus one token of prefill when it is smaller: a
    runtime needs its token budget above its running requests' tokens);
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
    new_tokens: int = 0
    verify_tokens: int = 1
    rounds: float = 0.0

    @property
    def steps(self) -> float:
        return self.mixed_steps + self.decode_steps

    def to_dict(self) -> dict:
        return {**asdict(self), "steps": self.steps}


def schedule(*, isl: int, osl: int, concurrency: int, budget: int, new_tokens: int | None = None,
             verify_tokens: int = 1, tokens_per_round: float = 1.0) -> Schedule:
    """The steady-state cycle of ``concurrency`` requests of ``isl`` prompt and ``osl``
    output tokens under a step token ``budget`` (see the module's description): of each
    prompt ``new_tokens`` are computed (default all), each decoding request runs
    ``verify_tokens`` tokens a step and gains ``tokens_per_round`` tokens from it
    (speculative decoding; 1 and 1 without)."""
    C, new = concurrency, isl if new_tokens is None else new_tokens
    prefill_total, v = C * new, verify_tokens
    if osl <= 1:          # every request ends with its prefill: mixed steps only
        first = min(budget, prefill_total)
        return Schedule(C, isl, osl, budget, 0.0, float(first), prefill_total / first, 0.0, -(-new // first),
                        new, v, 0.0)
    rounds = (osl - 1) / tokens_per_round
    budget = max(budget, C * v + 1)
    d, n = float(C), rounds
    for _ in range(8):    # d and the mixed steps depend on each other; a few rounds settle them
        q = min(float(prefill_total), budget - d * v)
        n = max(rounds, prefill_total / q)
        d = C * rounds / n
    q = min(float(prefill_total), budget - d * v)
    mixed = prefill_total / q
    return Schedule(C, isl, osl, budget, d, q, mixed, max(0.0, n - mixed), max(1, math.ceil(new / q)), new, v,
                    rounds)


def check_options(options: BatchingOptions | None, static: bool) -> BatchingOptions:
    """Batching options, checked: they apply to continuous batching only."""
    opt = BatchingOptions() if options is None else options
    if not isinstance(opt, BatchingOptions):
        raise TypeError(f"options must be a BatchingOptions, not {type(opt).__name__}")
    opt = opt.checked()
    if static and opt.active:
        name = "prefix-hit" if opt.prefix_hit else "spec-tokens"
        raise UserError(f"{name}: prefix caching and speculative decoding are modelled for continuous batching "
                        f"(--concurrency), not for a static --batch", parameter=name)
    return opt


OpsOf = Callable[[int, int, int], list]


def with_heads(ops_of: OpsOf, ops: list, rows: int) -> list:
    """``ops`` with their last-position operators (LM head, sampling) for ``rows`` positions."""
    head = {op.name: op for op in ops_of(max(1, rows), 1, 1) if op.name in HEAD_OPS}
    return [head[op.name] if op.name in HEAD_OPS else op for op in ops]


def mixed_step_ops(ops_of: OpsOf, *, decode_seqs: int, decode_ctx: int, prefill_tokens: int, isl: int,
                   new_tokens: int | None = None, verify_tokens: int = 1) -> list:
    """The operators of one mixed step: ``decode_seqs`` decoding requests at context
    ``decode_ctx`` (``verify_tokens`` tokens each) and ``prefill_tokens`` prefill tokens of
    prompts of ``isl`` tokens, ``new_tokens`` of each computed (default all; the rest are
    cached). ``ops_of(seqs, q_len, ctx)`` gives a uniform step's operators
    (:func:`~systolab.models.serving.model.step_ops` with the scenario's model,
    parallelism and precision). The GEMMs and element-wise work run over all the step's
    tokens at once; attention is the decode part's plus the prefill part's (whole prompts
    when the chunk holds some, else an average chunk of ``prefill_tokens`` of a prompt:
    context ``(isl + chunk - 1) / 2``, which gives a whole prompt's causal work over its
    chunks); the last-position operators run for the decode tokens and the prompts the
    step completes."""
    new = isl if new_tokens is None else new_tokens
    tokens = decode_seqs * verify_tokens + prefill_tokens
    body = ops_of(1, tokens, tokens)
    attention: list = []
    if decode_seqs:
        attention += [replace(op, name="attention_decode") for op in ops_of(decode_seqs, verify_tokens, decode_ctx)
                      if op.kind == "attention"]
    prompts = max(1, round(prefill_tokens / new)) if prefill_tokens else 0
    if prefill_tokens:
        chunk = new if prefill_tokens >= new else prefill_tokens
        ctx = isl if chunk == new else isl - new + (new + chunk - 1) // 2 + 1
        attention += [replace(op, name="attention_prefill")
                      for op in ops_of(prompts if chunk == new else 1, chunk, max(ctx, chunk))
                      if op.kind == "attention"]
    out: list = []
    for op in body:
        out += attention if op.kind == "attention" else [op]
    return with_heads(ops_of, out, decode_seqs * verify_tokens + prompts)


def continuous_plan(ops_of: OpsOf, *, isl: int, osl: int, seqs: int, budget: int,
                    options: BatchingOptions | None = None, block_tokens: int = 16) -> dict[str, Any]:
    """The forward steps that time a steady-state cycle of continuous batching (the format
    of :func:`~systolab.models.serving.model.serving_plan`: ``steps`` as (weight,
    operators), ``ttft`` and ``tpot`` the weights of the first token's and of the time per
    output token) and its :class:`Schedule` (``schedule``), under ``options`` (prefix
    caching at ``block_tokens``-token blocks, speculative decoding)."""
    opt = options or BatchingOptions()
    k = opt.draft_tokens
    s = schedule(isl=isl, osl=osl, concurrency=seqs, budget=budget, new_tokens=isl - opt.cached_tokens(isl, block_tokens),
                 verify_tokens=k + 1, tokens_per_round=opt.tokens_per_round)
    ctx = isl + osl // 2
    d = max(1, round(s.decode_tokens)) if s.decode_tokens > 0 else 0
    q = max(1, round(s.prefill_tokens))
    mixed = mixed_step_ops(ops_of, decode_seqs=d, decode_ctx=ctx, prefill_tokens=q, isl=isl,
                           new_tokens=s.new_tokens, verify_tokens=k + 1)
    steps: list[tuple[float, list]] = [(s.mixed_steps, mixed)]
    ttft = [float(s.ttft_mixed_steps)]
    # TPOT: a request's decode span, the cycle less its own prefill (Little's law), per token
    per = 1.0 / max(osl - 1, 1)
    tpot = [max(0.0, s.mixed_steps - s.ttft_mixed_steps) * per if osl > 1 else 1.0]
    if k and opt.draft_cost and d:       # the draft's k steps before every target step that decodes
        draft = s.steps * k * opt.draft_cost
        steps.append((draft, ops_of(d, 1, ctx)))
        ttft.append(0.0)
        tpot.append(draft * per)
    if s.decode_steps > 0:
        steps.append((s.decode_steps, with_heads(ops_of, ops_of(d, k + 1, ctx), d * (k + 1))))
        ttft.append(0.5)                   # a new request waits on average half a running step
        tpot.append(s.decode_steps * per)
    else:
        ttft[0] += 0.5
    # A new request's first token: the budget packs a cycle's prefills into as few steps as it
    # can (that sets the throughput), but a steady load's requests arrive spread over the
    # cycle, so the step that computes a request's prompt holds the prompts that arrived during
    # one step (seqs per cycle of s.steps steps), at least its own, not every prompt of the
    # cycle. Its time moves from the first token to the decode span (TTFT + (osl - 1) x TPOT
    # stays the cycle).
    own = min(q, max(s.new_tokens, math.ceil(seqs * s.new_tokens / max(s.steps, 1.0))))
    if own < q and s.ttft_mixed_steps == 1:
        first = mixed_step_ops(ops_of, decode_seqs=d, decode_ctx=ctx, prefill_tokens=own, isl=isl,
                               new_tokens=s.new_tokens, verify_tokens=k + 1)
        tpot[0] += ttft[0] * per
        steps.append((0.0, first))          # times the first token only, not the cycle
        ttft.append(ttft[0])
        tpot.append(-ttft[0] * per)
        ttft[0] = 0.0
    return {"steps": steps, "ttft": ttft, "tpot": tpot, "schedule": s}


__all__ = ["ASSUMPTION", "BatchingOptions", "check_options", "continuous_plan", "HEAD_OPS", "MAX_DRAFT_TOKENS", "mixed_step_ops",
           "OPTION_ASSUMPTIONS", "schedule", "Schedule", "with_heads"]
