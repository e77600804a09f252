"""Mixture-of-experts decode: how the routed tokens fall on the experts in one step.

A step of ``tokens`` tokens, each routed to ``k`` of ``experts`` experts (top-k routing,
``k`` distinct experts per token), runs its experts as one grouped GEMM per projection.
Two statistics of the routing set its cost:

* the **distinct experts touched** (:func:`distinct_experts`): every touched expert's
  weights are read once per step, so at small batches the weights read grow with the
  experts touched, not with the dense fraction ``k / experts``;
* the **busiest expert's tokens** (:func:`expected_max_load`): a grouped GEMM's step
  waits on its longest group, so the expert GEMMs are timed as ``distinct`` GEMMs of the
  busiest expert's rows.

Assumption (stated with every serving result, :data:`ASSUMPTION`): routing is uniform and
independent from token to token. The Mixtral paper's routing analysis (Jiang et al. 2024,
arXiv:2401.04088, section 5) finds no marked preference of experts by topic; real routers
are somewhat skewed, so the imbalance here is a lower bound.

A benchmark engine built without a checkpoint (random weights, as TensorRT-LLM's performance
tables of v0.6-0.9 are: ``trtllm-build --model_config``) routes differently: its random weights
share a common offset, so the router's logits are dominated by a part that does not depend on
the token and every token goes to the same ``k`` experts (``routing="collapsed"``,
:func:`expert_load`). :class:`MoeRun` carries that and what a runtime's grouped GEMM can do
(its dtypes, whether it uses the GPU's newest tensor-core instructions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.stats import binom

from ...checks import check_int, check_seed
from ...errors import UserError

ASSUMPTION = (
    "mixture of experts (models/serving/moe.py): tokens route to their top-k experts uniformly and independently; "
    "a step reads every expert it touches (E (1 - (1 - k/E)^T) expected) and its grouped expert GEMMs wait on the "
    "busiest expert (the expected maximum of the experts' token counts), on a GPU at the grouped kernel's efficiency "
    "(serving.yaml: moe); router, top-k and token-sorting kernels counted; experts split by tensor parallelism; "
    "a runtime whose grouped GEMM lacks the serving dtype runs its experts in 16-bit, and one built for Ampere's "
    "tensor-core instructions runs them below a newer GPU's peak (serving.yaml: moe.runtimes)"
)


def _check(tokens: int, experts: int, k: int) -> tuple[int, int, int]:
    tokens = check_int("tokens", tokens, hi=1 << 40)
    experts = check_int("experts", experts, hi=1 << 20)
    k = check_int("experts_per_token", k, hi=1 << 20)
    if k > experts:
        raise UserError(f"experts_per_token: {k} exceeds the {experts} experts", parameter="experts_per_token")
    return tokens, experts, k


def distinct_experts(tokens: int, experts: int, k: int) -> float:
    """Expected number of distinct experts that ``tokens`` tokens, each routed to ``k``
    distinct of ``experts`` experts uniformly, touch: E (1 - (1 - k/E)^T) (k for one
    token, all E for many)."""
    tokens, experts, k = _check(tokens, experts, k)
    return experts * -math.expm1(tokens * math.log1p(-k / experts)) if k < experts else float(experts)


@cache
def expected_max_load(tokens: int, experts: int, k: int) -> float:
    """Expected token count of the busiest expert in a step of ``tokens`` tokens routed
    top-``k`` over ``experts`` experts. Each expert's count is Binomial(T, k/E); the
    maximum is taken as over independent counts, E[max] = sum_m (1 - F(m-1)^E) (the
    counts are slightly negatively correlated, so this is a close upper bound:
    :func:`simulate_max_load` checks it)."""
    tokens, experts, k = _check(tokens, experts, k)
    if k == experts:
        return float(tokens)
    p = k / experts
    mean, sd = tokens * p, math.sqrt(tokens * p * (1 - p))
    # terms below ``low`` are 1 and above ``top`` 0 (to 1e-30): sum only the band between
    low = max(0, math.floor(mean - 12 * sd - 12))
    top = min(tokens, math.ceil(mean + 12 * sd + 12))
    m = np.arange(low, top)                                 # m - 1 for m = low + 1 .. top
    return float(low + np.sum(1.0 - binom.cdf(m, tokens, p) ** experts))


def simulate_max_load(tokens: int, experts: int, k: int, *, trials: int = 2000, seed: int = 0) -> float:
    """The busiest expert's expected token count by seeded simulation (``trials``
    steps): each token draws ``k`` distinct experts. For checking
    :func:`expected_max_load`."""
    tokens, experts, k = _check(tokens, experts, k)
    trials, seed = check_int("trials", trials, hi=1 << 20), check_seed("seed", seed)
    if trials * tokens * experts > 50_000_000:
        raise UserError(f"trials: {trials:,} steps of {tokens:,} tokens over {experts} experts exceed 50 million "
                        "draws; use expected_max_load", parameter="trials")
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((trials, tokens, experts)), axis=2)[:, :, :k]
    counts = np.zeros((trials, experts))
    for j in range(k):
        np.add.at(counts, (np.arange(trials)[:, None], picks[:, :, j]), 1)
    return float(counts.max(axis=1).mean())


@dataclass(frozen=True)
class ExpertLoad:
    """Routing statistics of one MoE step: ``tokens`` routed top-``k`` over ``experts``;
    ``distinct`` experts touched (expected), ``max_tokens`` the busiest expert's tokens
    (expected), ``mean_tokens`` per touched expert and ``imbalance`` = busiest / mean
    (>= 1, tending to 1 as the tokens grow). ``gemm_experts`` and ``gemm_rows`` are the
    integers the expert GEMMs are timed with (experts touched, rounded; busiest expert's
    rows, rounded up)."""

    tokens: int
    experts: int
    k: int
    distinct: float
    max_tokens: float
    mean_tokens: float
    imbalance: float
    gemm_experts: int
    gemm_rows: int

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


#: How a step's tokens fall on the experts: ``uniform`` (a trained router: each token's k
#: experts drawn uniformly, independently of the other tokens) or ``collapsed`` (every token
#: to the same k experts: a random-weight benchmark engine, see the module's docstring).
ROUTINGS = ("uniform", "collapsed")


def check_routing(routing: str) -> str:
    if routing not in ROUTINGS:
        raise UserError(f"routing: {routing!r} is not one of {', '.join(ROUTINGS)}", parameter="routing")
    return routing


def expert_load(tokens: int, experts: int, k: int, routing: str = "uniform") -> ExpertLoad:
    """The routing statistics of a step of ``tokens`` tokens (see :class:`ExpertLoad`) under
    ``routing`` (:data:`ROUTINGS`; ``collapsed``: ``k`` experts touched, each with every token)."""
    tokens, experts, k = _check(tokens, experts, k)
    if check_routing(routing) == "collapsed":
        return ExpertLoad(tokens, experts, k, float(k), float(tokens), float(tokens), 1.0, k, tokens)
    distinct = distinct_experts(tokens, experts, k)
    mean = tokens * k / distinct
    busiest = max(expected_max_load(tokens, experts, k), mean)
    gemm_experts = min(experts, max(k, round(distinct)))
    return ExpertLoad(tokens, experts, k, distinct, busiest, mean, busiest / mean, gemm_experts,
                      max(1, math.ceil(busiest - 1e-9)))


def expert_parallel_share(load: ExpertLoad, ep: int) -> tuple[float, int]:
    """(experts one device touches in the step, on average; the experts its grouped GEMM
    is timed with) when the ``load``'s experts split evenly over ``ep`` devices (expert
    parallelism): each device holds experts / ep of them and touches distinct / ep. Every
    device waits on the busiest expert anywhere (the combine all-to-all joins them), so
    the rows stay :attr:`ExpertLoad.gemm_rows`. ``ep`` = 1 is the load itself."""
    ep = check_int("ep", ep, hi=1 << 20)
    if load.experts % ep:
        raise UserError(f"ep: {ep} does not divide the {load.experts} experts", parameter="ep")
    if ep == 1:
        return load.distinct, load.gemm_experts
    touched = load.distinct / ep
    return touched, min(load.experts // ep, max(-(-load.k // ep), round(touched)))


@dataclass(frozen=True)
class MoeRun:
    """How a runtime and a benchmark run the mixture-of-experts blocks (``serving.yaml: moe``).

    ``routing``: :data:`ROUTINGS`. ``expert_dtypes``: the dtypes the runtime's grouped expert
    GEMM computes in (empty: any); a model served in another dtype runs its experts in the
    first of them (TensorRT-LLM before 0.10 has no FP8 grouped GEMM: an FP8 build runs its
    experts in FP16). ``legacy_mma``: the grouped GEMM kernels are built for Ampere's
    tensor-core instructions on every GPU, so a newer GPU runs them below its dense peak
    (``serving.yaml: moe.legacy_mma_fraction``). ``expand_rows``: before its grouped GEMM the
    runtime copies each token's row to its experts' groups and counts each group's rows, two
    kernels more than a fused MoE (vLLM's gathers the rows inside its GEMM)."""

    routing: str = "uniform"
    expert_dtypes: tuple[str, ...] = ()
    legacy_mma: bool = False
    expand_rows: bool = False

    def __post_init__(self) -> None:
        check_routing(self.routing)

    def expert_dtype(self, dtype: str) -> str:
        """The dtype the expert GEMMs of a model served in ``dtype`` compute in."""
        return dtype if not self.expert_dtypes or dtype in self.expert_dtypes else self.expert_dtypes[0]

    def to_dict(self) -> dict:
        return {"routing": self.routing, "expert_dtypes": list(self.expert_dtypes), "legacy_mma": self.legacy_mma,
                "expand_rows": self.expand_rows}
