"""Multi-head latent attention (MLA, DeepSeek-V2/V3) in serving: its KV cache, and the
GEMMs and attention work of one forward step on one device of a tensor-parallel group.

MLA caches, per token and layer, one latent ``c_kv`` of ``kv_lora_rank`` elements and
one RoPE key of ``qk_rope_head_dim`` shared by all heads (576 for DeepSeek-V3, against
2 x 128 heads x 128 = 32,768 for MHA of the same heads). Runtimes (vLLM, SGLang,
FlashMLA) run it in two forms:

* **prefill** (more than one new token): expanded. The latent of the context is
  up-projected to per-head keys (``qk_nope`` + the shared RoPE part) and values
  (``kv_b_proj``), then attention runs as MHA;
* **decode** (one new token): absorbed. The key up-projection is folded into the query
  (``q_nope`` x W_UK per head gives a query in the latent space) and the value
  up-projection into the output (W_UV per head), so attention reads only the cached
  latents: scores over ``kv_lora_rank + qk_rope_head_dim`` and context over
  ``kv_lora_rank`` per head, the latent read once for all heads (as MQA).

Tensor parallelism splits the heads; the latent cache is the same for every head, so
every device of the group holds all of it (a stated assumption: runtimes that run MLA
data-parallel avoid that copy). The down-projections (``q_a``, ``kv_a``) are replicated
on every device, as vLLM's ``ReplicatedLinear``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...checks import check_kind
from ..workloads.shapes import DecoderShape

#: What a decoder shape offers (checked by attribute, as the shared checks do).
SHAPE_FIELDS = ("mla", "heads", "hidden", "kv_heads", "head_dim")

ASSUMPTION = (
    "MLA attention (models/serving/mla.py): prefill expanded (latent up-projected to per-head K and V, then MHA), "
    "decode absorbed (W_UK folded into the query, W_UV into the output; the cached latent and RoPE key read once "
    "for all heads); the latent cache replicated on every tensor-parallel device; q_a and kv_a projections "
    "replicated"
)


@dataclass(frozen=True)
class MlaStep:
    """One layer's MLA work on one device for a step of ``seqs`` sequences adding ``q_len``
    tokens to a context of ``ctx``: ``before`` and ``after`` the attention kernel, GEMMs as
    (name, M, N, K, parallel); the attention kernel's FLOPs, bytes (at ``act_bytes``
    activations and ``kv_bytes`` cache elements) and element-wise work, and its shape
    (sequences, q_len, ctx, heads, KV heads, head width) as a chip would run it; the
    element-wise work of the latents' RMSNorm and RoPE (elements, bytes)."""

    before: tuple[tuple[str, int, int, int, int], ...]
    after: tuple[tuple[str, int, int, int, int], ...]
    flops: float
    bytes: float
    elements: float
    shape: tuple[int, int, int, int, int, int]
    vector_elements: float
    vector_bytes: float

    def to_dict(self) -> dict:
        return {"before": [list(g) for g in self.before], "after": [list(g) for g in self.after],
                "flops": self.flops, "bytes": self.bytes, "elements": self.elements, "shape": list(self.shape)}


def kv_elements_per_token(m: DecoderShape, tp: int) -> int:
    """KV-cache elements one token holds per layer on one device of a ``tp`` group: MLA's
    latent and RoPE key (all of it on every device); K and V of the device's KV heads
    otherwise (replicated when ``tp`` exceeds them)."""
    check_kind("m", m, SHAPE_FIELDS, "a DecoderShape")
    if m.mla:
        return m.kv_lora_rank + m.qk_rope_head_dim
    return 2 * max(1, m.kv_heads // tp) * m.head_dim


def mla_step(m: DecoderShape, *, seqs: int, q_len: int, ctx: int, tp: int, act_bytes: float,
             kv_bytes: float) -> MlaStep:
    """One layer's MLA work on one device (see :class:`MlaStep` and the module)."""
    check_kind("m", m, SHAPE_FIELDS, "a DecoderShape")
    if not m.mla:
        raise ValueError(f"{m.name} has no MLA attention")
    T, h, heads = seqs * q_len, m.hidden, m.heads // tp
    rope, nope, v, lat = m.qk_rope_head_dim, m.qk_nope_head_dim, m.v_head_dim, m.kv_lora_rank
    qk = nope + rope
    down = [("q_a", T, m.q_lora_rank, h, 1), ("q_b", T, heads * qk, m.q_lora_rank, 1)] if m.q_lora_rank else \
        [("q_proj", T, heads * qk, h, 1)]
    down.append(("kv_a", T, lat + rope, h, 1))
    pairs = seqs * heads * (q_len * ctx - q_len * (q_len - 1) / 2)
    write = T * (lat + rope) * kv_bytes                                   # the new tokens' latents
    if q_len > 1:                  # expanded: up-project the context's latent, then MHA
        before = down + [("kv_b", seqs * ctx, heads * (nope + v), lat, 1)]
        after = [("o_proj", T, h, heads * v, 1)]
        flops = 2 * (qk + v) * pairs
        nbytes = (T * heads * (qk + v) * act_bytes + seqs * ctx * heads * (qk + v) * act_bytes
                  + seqs * ctx * (lat + rope) * kv_bytes + write)
        shape = (seqs, q_len, ctx, heads, heads, qk)
    else:                          # absorbed: attention in the latent space
        before = down + [("w_uk", T, lat, nope, heads)]
        after = [("w_uv", T, v, lat, heads), ("o_proj", T, h, heads * v, 1)]
        flops = 2 * (lat + rope + lat) * pairs
        nbytes = T * heads * (lat + rope + lat) * act_bytes + seqs * ctx * (lat + rope) * kv_bytes + write
        shape = (seqs, q_len, ctx, heads, 1, lat + rope)
    vec = T * (m.q_lora_rank + lat + heads * rope + rope)                # latents' RMSNorm, RoPE on q and k
    return MlaStep(tuple(before), tuple(after), flops, nbytes, 5 * pairs, shape, 6 * vec, 2 * vec * act_bytes)
