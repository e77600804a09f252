"""The dimensions of a decoder-only transformer, as the workloads and the serving model read them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecoderShape:
    """Dimensions of a decoder-only transformer (from the model's published config).

    Beyond a Llama-like model's ``hidden``, ``layers``, ``heads``, ``kv_heads``, ``ffn``
    (the dense SwiGLU width) and ``vocab``:

    * ``head_size``: the attention head width where it is not ``hidden // heads`` (0: that);
    * mixture of experts: ``experts`` routed experts, ``experts_per_token`` of them per
      token, each ``moe_ffn`` wide (0: ``ffn``, as Mixtral), ``shared_experts`` that every
      token passes through, and ``dense_layers`` leading layers with a dense FFN of
      ``ffn`` instead (DeepSeek-V3's first_k_dense_replace);
    * multi-head latent attention (MLA, DeepSeek-V2/V3) where ``kv_lora_rank`` > 0: the
      KV cache holds a latent of ``kv_lora_rank`` plus a shared RoPE key of
      ``qk_rope_head_dim`` per token and layer; queries go through a ``q_lora_rank``
      latent (0: a full projection); query/key heads are ``qk_nope_head_dim +
      qk_rope_head_dim`` wide, value heads ``v_head_dim``;
    * ``tied_embeddings``: the LM head shares the embedding matrix.
    """

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    source: str
    experts: int = 1
    experts_per_token: int = 1
    max_context: int = 0      # longest context the model supports, tokens (0: not stated)
    head_size: int = 0
    moe_ffn: int = 0
    shared_experts: int = 0
    dense_layers: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    tied_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden // self.heads

    @property
    def mla(self) -> bool:
        """Whether attention is multi-head latent attention (DeepSeek-V2/V3)."""
        return self.kv_lora_rank > 0

    @property
    def expert_ffn(self) -> int:
        """Each routed (and shared) expert's FFN width."""
        return self.moe_ffn or self.ffn

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is a mixture of experts (0 for a dense model)."""
        return self.layers - self.dense_layers if self.experts > 1 else 0

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements one token holds per layer, all heads: the latent and its RoPE
        key under MLA, K and V of every KV head otherwise."""
        if self.mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_heads * self.head_dim

    @property
    def attention_params(self) -> int:
        """One layer's attention projection weights."""
        h = self.hidden
        if self.mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = h * self.q_lora_rank + self.q_lora_rank * self.heads * qk if self.q_lora_rank else h * self.heads * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv += self.kv_lora_rank * self.heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + self.heads * self.v_head_dim * h
        q = self.heads * self.head_dim
        return 2 * h * q + 2 * h * self.kv_heads * self.head_dim

    @property
    def params(self) -> int:
        """Parameters: every layer's projections (all experts), router, embedding and LM head."""
        h = self.hidden
        dense = self.layers - self.moe_layers
        moe = 3 * h * self.expert_ffn * (self.experts + self.shared_experts) + h * self.experts
        return (self.layers * self.attention_params + dense * 3 * h * self.ffn + self.moe_layers * moe
                + (1 if self.tied_embeddings else 2) * self.vocab * h)

    def to_dict(self) -> dict:
        d = {"name": self.name, "hidden": self.hidden, "layers": self.layers, "heads": self.heads,
             "kv_heads": self.kv_heads, "head_dim": self.head_dim, "ffn": self.ffn, "vocab": self.vocab,
             "experts": self.experts, "experts_per_token": self.experts_per_token,
             "max_context": self.max_context, "params": self.params, "source": self.source}
        extra = ("moe_ffn", "shared_experts", "dense_layers", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
                 "qk_nope_head_dim", "v_head_dim", "tied_embeddings")
        return d | {k: getattr(self, k) for k in extra if getattr(self, k)}
