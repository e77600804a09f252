"""Any decoder-only model from its Hugging Face ``config.json``: ``--model path/to/config.json``.

Reads the fields Llama, Mistral, Qwen2, Qwen2-MoE, Mixtral and DeepSeek-V2/V3 configs
use (transformers' names):

=====================================  ================================================
``hidden_size``, ``num_hidden_layers``  hidden width and layers (required)
``num_attention_heads``                 query heads (required)
``num_key_value_heads``                 KV heads (default: the query heads, as MHA)
``intermediate_size``                   the dense SwiGLU FFN width (required)
``vocab_size``                          vocabulary (required)
``max_position_embeddings``             the longest context (required)
``head_dim``                            head width where not hidden / heads (optional)
``tie_word_embeddings``                 LM head shares the embedding (default false)
``num_local_experts`` / ``n_routed_experts`` / ``num_experts``   routed experts
``num_experts_per_tok``                 experts per token (required with experts)
``moe_intermediate_size``               each expert's FFN width (default intermediate_size)
``n_shared_experts``                    shared experts (DeepSeek); Qwen2-MoE's
                                        ``shared_expert_intermediate_size`` counts as that
                                        width over ``moe_intermediate_size`` experts
``first_k_dense_replace``               leading dense layers (DeepSeek)
``kv_lora_rank``, ``q_lora_rank``, ``qk_rope_head_dim``, ``qk_nope_head_dim``, ``v_head_dim``
                                        multi-head latent attention (DeepSeek)
=====================================  ================================================

Left out (stated): sliding-window attention (Mistral 7B v0.1), DeepSeek's group-limited
routing (modelled as uniform top-k) and its multi-token-prediction layer, Qwen2-MoE's
``mlp_only_layers``. A missing file or invalid JSON is a :class:`UserError` naming
``model``; a bad field one naming ``model`` whose message names the field.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ...checks import is_int
from ...errors import UserError
from ...files import is_user_file, read_text
from .shapes import DecoderShape

#: Fields every config must carry.
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
            "max_position_embeddings")
#: The spellings of the routed-expert count, by family.
EXPERT_FIELDS = ("num_local_experts", "n_routed_experts", "num_experts")
MLA_FIELDS = ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


def is_config_path(name: Any) -> bool:
    """Whether ``name`` (a ``--model`` value) names a config file rather than a built-in:
    it ends in ``.json`` or is an existing file."""
    return isinstance(name, str) and (name.lower().endswith(".json") or is_user_file(name, parameter="model"))


class _Fields:
    """The config's fields, read with errors that name the file and the field."""

    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data

    def error(self, message: str) -> UserError:
        return UserError(f"model: {self.path}: config.json {message}", parameter="model")

    def int(self, key: str, default: int | None = None, *, lo: int = 1) -> int:
        v = self.data.get(key)
        if v is None:
            if default is None:
                raise self.error(f"field {key} is missing")
            return default
        if isinstance(v, bool) or not is_int(v) or not lo <= int(v) <= 1 << 40:
            raise self.error(f"field {key} must be an integer >= {lo}, not {v!r}")
        return int(v)

    def first(self, keys: tuple[str, ...]) -> str | None:
        return next((k for k in keys if self.data.get(k) is not None), None)


def load_hf_config(path: str | Path) -> DecoderShape:
    """The :class:`DecoderShape` of a Hugging Face ``config.json`` (see the module's table)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path to a config.json, not {type(path).__name__}")
    path = Path(path)
    text = read_text(path, parameter="model")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"model: {path} is not valid JSON (line {exc.lineno}: {exc.msg})", parameter="model") from None
    if not isinstance(data, dict):
        raise UserError(f"model: {path} holds a JSON {type(data).__name__}, not a config object", parameter="model")
    f = _Fields(path, data)
    for key in REQUIRED:
        f.int(key)
    h, heads = f.int("hidden_size"), f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", heads)
    if heads % kv_heads:
        raise f.error(f"num_key_value_heads ({kv_heads}) must divide num_attention_heads ({heads})")
    head_dim = f.int("head_dim", 0, lo=0)
    if not head_dim and h % heads:
        raise f.error(f"num_attention_heads ({heads}) must divide hidden_size ({h}) when head_dim is not given")
    tied = data.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise f.error(f"field tie_word_embeddings must be true or false, not {tied!r}")
    kw: dict[str, Any] = {"head_size": 0 if head_dim == h // heads else head_dim, "tied_embeddings": tied}
    kw.update(_moe_fields(f))
    kw.update(_mla_fields(f))
    if kw.get("dense_layers", 0) >= f.int("num_hidden_layers"):
        raise f.error(f"first_k_dense_replace ({kw['dense_layers']}) must be below num_hidden_layers "
                      f"({f.int('num_hidden_layers')})")
    return DecoderShape(name=_model_name(path, data), hidden=h, layers=f.int("num_hidden_layers"), heads=heads,
                        kv_heads=kv_heads, ffn=f.int("intermediate_size"), vocab=f.int("vocab_size"),
                        source=f"{path} (Hugging Face config.json)", max_context=f.int("max_position_embeddings"),
                        **kw)


def _moe_fields(f: _Fields) -> dict[str, int]:
    key = f.first(EXPERT_FIELDS)
    if key is None or f.int(key) == 1:
        return {}
    experts, k = f.int(key), f.int("num_experts_per_tok")
    if k > experts:
        raise f.error(f"num_experts_per_tok ({k}) exceeds {key} ({experts})")
    moe_ffn = f.int("moe_intermediate_size", 0, lo=0)
    shared = f.int("n_shared_experts", 0, lo=0)
    width = f.int("shared_expert_intermediate_size", 0, lo=0)        # Qwen2-MoE: one wide shared expert
    if width:
        if not moe_ffn or width % moe_ffn:
            raise f.error(f"shared_expert_intermediate_size ({width}) must be a multiple of moe_intermediate_size "
                          f"({moe_ffn or 'missing'})")
        shared = width // moe_ffn
    return {"experts": experts, "experts_per_token": k, "moe_ffn": moe_ffn, "shared_experts": shared,
            "dense_layers": f.int("first_k_dense_replace", 0, lo=0)}


def _mla_fields(f: _Fields) -> dict[str, int]:
    rank = f.int("kv_lora_rank", 0, lo=0)
    if not rank:
        return {}
    dims = {k: f.int(k) for k in MLA_FIELDS}                        # each required under MLA
    return {"kv_lora_rank": rank, "q_lora_rank": f.int("q_lora_rank", 0, lo=0), **dims}


def _model_name(path: Path, data: dict) -> str:
    named = data.get("_name_or_path")
    if isinstance(named, str) and named.strip():
        return named.strip().rstrip("/").rsplit("/", 1)[-1]
    if path.name == "config.json" and path.resolve().parent.name:
        return path.resolve().parent.name
    return path.stem
