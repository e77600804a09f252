"""The paged KV cache: its capacity in blocks, and how many requests it holds.

A serving runtime keeps the KV cache in fixed-size blocks (vLLM's PagedAttention: 16
tokens a block by default; TensorRT-LLM and LMDeploy: 64) and hands a request whole blocks
as its context grows. The cache gets what is left of the device's usable memory
(``serving.yaml: usable_memory_fraction``, the part a runtime's ``gpu_memory_utilization``
plays) after the weights and the activations of one engine step of ``step_tokens`` tokens
(the runtime's token budget: vLLM's ``max_num_batched_tokens``, TensorRT-LLM's
``max_num_tokens``). Static and continuous batching share this one definition
(:class:`KvCache`); they differ only in what a request holds:

* **static** (:meth:`KvCache.max_batch`): every request reaches ``isl + osl`` tokens at
  the same time, at the end of the batch (which is also what a runtime that pre-allocates
  a request's full length reserves from the start);
* **continuous** (:meth:`KvCache.max_concurrency`): in steady state the requests in flight
  are at uniformly spread progress, so a request holds on average the blocks of
  ``isl + j`` tokens over its decode steps ``j = 1 .. osl`` (about ``isl + osl / 2``
  tokens, plus half a block of rounding). The sum over ``C`` requests fluctuates about
  this mean (by about ``sqrt(C) x osl / sqrt(12)`` tokens); a runtime absorbs the excess by
  pre-empting a request, which this steady-state figure does not time.

Every size is per device of a ``tp x pp`` group, in bytes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

from ...checks import check_int
from ...errors import UserError
from ..specs import DATA_DIR, load_yaml, need

SERVING_FILE = DATA_DIR / "serving.yaml"

#: A token budget or block size beyond this is a typo, not a runtime setting.
MAX_SETTING = 1 << 24


@cache
def batching_data(path: str = str(SERVING_FILE)) -> dict:
    """``serving.yaml: batching``, validated: block tokens per runtime family and the
    default step token budget."""
    d = need(path, "", load_yaml(path), "batching", dict)
    blocks = need(path, "batching", d, "kv_block_tokens", dict)
    return {"kv_block_tokens": {k: need(path, "batching.kv_block_tokens", blocks, k, int, positive=True)
                                for k in blocks},
            "max_step_tokens": need(path, "batching", d, "max_step_tokens", int, positive=True)}


def published_max_batches(path: str = str(SERVING_FILE)) -> tuple[str, tuple[tuple[str, int, int, int, int], ...]]:
    """(source, runs): published maximum static batch sizes the capacity check must accept,
    each run as (GPU id, tp, isl, osl, batch) (``serving.yaml: batching.published_max_batches``)."""
    d = need(path, "batching", load_yaml(path)["batching"], "published_max_batches", dict)
    runs = need(path, "batching.published_max_batches", d, "runs", list)
    return (need(path, "batching.published_max_batches", d, "source", str),
            tuple((str(g), int(tp), int(i), int(o), int(b)) for g, tp, i, o, b in runs))


def kv_block_tokens(runtime: str | None = None) -> int:
    """Tokens per KV-cache block of ``runtime`` (a name such as ``vllm``, ``trtllm-0.5``
    or ``lmdeploy-0.1``: its family's default; None or an unlisted one: vLLM's)."""
    blocks = batching_data()["kv_block_tokens"]
    family = (runtime or "").split("-")[0]
    return int(blocks.get(family, blocks["default"]))


def max_step_tokens() -> int:
    """The default token budget of one engine step (``serving.yaml``)."""
    return int(batching_data()["max_step_tokens"])


def check_block_tokens(value) -> int:
    """A KV-cache block size in tokens, checked (``kv-block``)."""
    return check_int("kv-block", value, hi=MAX_SETTING)


def check_step_tokens(value) -> int:
    """An engine step's token budget, checked (``chunk-tokens``)."""
    return check_int("chunk-tokens", value, hi=MAX_SETTING)


def blocks_for(tokens: int, block_tokens: int) -> int:
    """Blocks a request of ``tokens`` tokens holds (whole blocks)."""
    return -(-int(tokens) // int(block_tokens))


def steady_blocks_per_request(isl: int, osl: int, block_tokens: int) -> float:
    """Mean blocks a request holds over its life in a continuously batched server: its
    blocks after each of its ``osl`` steps (the prefill, which writes ``isl + 1`` tokens'
    worth of context by the first token, then one token per decode step), averaged. A
    request's progress is uniform over the requests in flight, so this is also the mean
    occupancy per request of the whole cache."""
    tokens = isl + np.arange(1, osl + 1, dtype=np.int64)
    return float(np.mean(-(-tokens // block_tokens)))


@dataclass(frozen=True)
class KvCache:
    """A paged KV cache on one device: ``blocks`` of ``block_tokens`` tokens, each token
    ``bytes_per_token`` bytes (K and V of every layer the device holds), in ``free_bytes``
    left after ``weights_bytes`` and the activations of a step of ``step_tokens`` tokens
    (``activation_bytes``) out of ``usable_bytes``."""

    block_tokens: int
    bytes_per_token: float
    usable_bytes: float
    weights_bytes: float
    activation_bytes: float
    step_tokens: int

    @property
    def free_bytes(self) -> float:
        return max(0.0, self.usable_bytes - self.weights_bytes - self.activation_bytes)

    @property
    def bytes_per_block(self) -> float:
        return self.bytes_per_token * self.block_tokens

    @property
    def blocks(self) -> int:
        return int(self.free_bytes // self.bytes_per_block)

    def max_batch(self, isl: int, osl: int) -> int:
        """Largest static batch: every request at ``isl + osl`` tokens at once."""
        return self.blocks // blocks_for(isl + osl, self.block_tokens)

    def max_concurrency(self, isl: int, osl: int, shared: int = 0) -> int:
        """Most requests in flight in steady state (mean occupancy, :func:`steady_blocks_per_request`);
        never below :meth:`max_batch`, and 0 when one request at full length does not fit.
        ``shared``: prompt tokens (whole blocks) every request shares from the prefix cache,
        held once for all."""
        if self.max_batch(isl, osl) < 1:
            return 0
        own = self.blocks - blocks_for(shared, self.block_tokens)
        return max(self.max_batch(isl, osl), int(own / steady_blocks_per_request(isl - shared, osl, self.block_tokens)))

    def blocks_per_request(self, isl: int, osl: int, static: bool, shared: int = 0) -> float:
        return (blocks_for(isl + osl, self.block_tokens) if static
                else steady_blocks_per_request(isl - shared, osl, self.block_tokens))

    def summary(self, isl: int, osl: int, shared: int = 0) -> dict:
        """The cache and both capacities for a request of ``isl + osl`` tokens (JSON-ready)."""
        return {**asdict(self), "free_bytes": self.free_bytes, "bytes_per_block": self.bytes_per_block,
                "blocks": self.blocks, "blocks_per_request_static": blocks_for(isl + osl, self.block_tokens),
                "blocks_per_request_steady": steady_blocks_per_request(isl - shared, osl, self.block_tokens),
                "shared_prefix_tokens": shared,
                "max_batch_static": self.max_batch(isl, osl), "max_concurrency": self.max_concurrency(isl, osl, shared)}

    def to_dict(self) -> dict:
        return {**asdict(self), "free_bytes": self.free_bytes, "bytes_per_block": self.bytes_per_block,
                "blocks": self.blocks}


def check_capacity(cache_: KvCache, *, isl: int, osl: int, seqs: int, static: bool, device: str,
                   shared: int = 0) -> int:
    """The most requests ``cache_`` holds for this scenario (static: :meth:`KvCache.max_batch`,
    continuous: :meth:`KvCache.max_concurrency`); raises :class:`UserError` naming ``isl``
    when one request does not fit, ``batch`` or ``concurrency`` when ``seqs`` requests do not."""
    gb = 1e9
    one = blocks_for(isl + osl, cache_.block_tokens) * cache_.bytes_per_block
    limit = cache_.max_batch(isl, osl) if static else cache_.max_concurrency(isl, osl, shared)
    if limit < 1:
        raise UserError(f"isl: one request of {isl + osl:,} tokens needs {one / gb:,.2f} GB of KV cache per "
                        f"device; {cache_.free_bytes / gb:,.2f} GB is left on {device} after weights and "
                        f"activations", parameter="isl")
    if seqs > limit:
        name = "batch" if static else "concurrency"
        per = cache_.blocks_per_request(isl, osl, static, shared) * cache_.bytes_per_block
        held = "at full length" if static else "at steady-state occupancy"
        raise UserError(f"{name}: {seqs:,} requests of {isl + osl:,} tokens need {seqs * per / gb:,.1f} GB of "
                        f"KV cache per device {held} ({cache_.block_tokens}-token blocks); {device} holds "
                        f"{limit:,} ({cache_.free_bytes / gb:,.1f} GB free)", parameter=name)
    return limit


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, kv_dtype_bytes: int) -> float:
    """K and V of one token over ``layers`` layers and ``kv_heads`` KV heads (one device's)."""
    return 2.0 * layers * kv_heads * head_dim * kv_dtype_bytes


def fluctuation_tokens(concurrency: int, osl: int) -> float:
    """Standard deviation of the tokens ``concurrency`` requests at independent uniform
    progress hold in all (each ``osl`` tokens of spread: ``osl / sqrt(12)``)."""
    return math.sqrt(concurrency) * osl / math.sqrt(12)


__all__ = ["batching_data", "blocks_for", "check_block_tokens", "check_capacity", "check_step_tokens",
           "fluctuation_tokens", "KvCache", "kv_block_tokens", "kv_bytes_per_token", "max_step_tokens",
           "published_max_batches", "steady_blocks_per_request"]
