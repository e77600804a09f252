"""Workloads: named lists of GEMMs, built-in models and SCALE-Sim topology import.

Built-ins are parameterised by batch and sequence length; each states the source of its
dimensions and what it leaves out (element-wise work, softmax, normalisation, embedding
look-ups: everything that is not a GEMM). Attention is counted as dense GEMMs (no causal
masking savings, no FlashAttention fusion); grouped-query attention batches the query
heads that share a KV head into one GEMM per KV head.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

from ...checks import check_int
from ...dtypes import get_dtype
from ...errors import UserError
from ...files import is_user_file, read_text
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .gemm import Gemm, check_rows, load_gemm_list
from .hf_config import is_config_path, load_hf_config
from .shapes import DecoderShape


@dataclass(frozen=True)
class Workload:
    """A named list of GEMMs and the unit of work one run of it delivers.

    ``resident_bytes`` is what must sit in the device's memory while it runs (weights,
    KV cache, activations), checked against every device's capacity; when not given, the
    largest single GEMM's operands and result (a lower bound)."""

    name: str
    gemms: tuple[Gemm, ...]
    unit: str = "run"                 # "token", "sample" or "run"
    units_per_run: int = 1
    source: str = ""
    assumptions: tuple[str, ...] = field(default=())
    resident_bytes: int = 0
    resident_breakdown: tuple[tuple[str, int], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.gemms:
            raise UserError(f"workload: {self.name!r} holds no GEMMs")
        if not self.resident_bytes:
            largest = max(g.min_bytes // g.count for g in self.gemms)
            object.__setattr__(self, "resident_bytes", largest)
            object.__setattr__(self, "resident_breakdown", (("largest GEMM's operands and result", largest),))

    @property
    def dtype(self) -> str:
        """The GEMMs' dtype ("mixed" when they differ)."""
        kinds = {g.dtype for g in self.gemms}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def check_fits(self, capacity_GB: float, device: str) -> None:
        """Raise :class:`UserError` when the workload's resident data exceed ``capacity_GB``
        (:func:`check_fits`)."""
        check_fits(self.resident_bytes, capacity_GB, device, what=self.name, breakdown=self.resident_breakdown)

    @property
    def flops(self) -> int:
        return sum(g.flops for g in self.gemms)

    @property
    def min_bytes(self) -> int:
        """Compulsory traffic: every GEMM reads its operands and writes its result once."""
        return sum(g.min_bytes for g in self.gemms)

    def to_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "units_per_run": self.units_per_run, "flops": self.flops,
                "bytes": self.min_bytes, "gemms": len(self.gemms), "dtype": self.dtype, "source": self.source,
                "resident_bytes": self.resident_bytes, "assumptions": list(self.assumptions)}


def check_fits(resident_bytes: float, capacity_GB: float, device: str, *, what: str,
               breakdown: tuple[tuple[str, int], ...] = (), parameter: str = "workload", of: str = "memory",
               plural: bool = False, hint: str = "") -> None:
    """The one capacity check: ``what`` needs ``resident_bytes`` in ``device``'s memory of
    ``capacity_GB`` (decimal GB, ``of`` says of what); more is a :class:`UserError` naming
    ``parameter`` (``plural``: ``what`` is plural; ``hint``: what to do about it). Every
    device and entry point goes through it: a workload on a GPU or a chip
    (:meth:`Workload.check_fits`), a chip descriptor's operands and result
    (:func:`~systolab.models.chip.perf.check_chip_gemm`)."""
    if resident_bytes > capacity_GB * 1e9:
        parts = ", ".join(f"{name} {b / 1e9:,.3g} GB" for name, b in breakdown)
        raise UserError(f"{parameter}: {what} need{'' if plural else 's'} {resident_bytes / 1e9:,.4g} GB resident"
                        f"{f' ({parts})' if parts else ''}, more than {device}'s {capacity_GB:g} GB of {of}"
                        f"{f'; {hint}' if hint else ''}", parameter=parameter)


def _pos(name: str, v: object) -> int:
    return check_int(name, v)


LLM_FILE = DATA_DIR / "llm_models.yaml"
#: Optional integer fields of an llm_models.yaml entry (DecoderShape's, 0 when absent).
OPTIONAL_FIELDS = ("head_size", "moe_ffn", "shared_experts", "dense_layers", "kv_lora_rank", "q_lora_rank",
                   "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


@cache
def llm_models(path: str = str(LLM_FILE)) -> dict[str, DecoderShape]:
    """The built-in LLMs of ``data/llm_models.yaml`` by name (aliases included)."""
    data = load_yaml(path)
    out: dict[str, DecoderShape] = {}
    for name, d in need(path, "", data, "models", dict).items():
        ints = {k: need(path, name, d, k, int, positive=True)
                for k in ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab", "max_context")}
        ints.update({k: need(path, name, d, k, int, positive=True, optional=True) or 1
                     for k in ("experts", "experts_per_token")})
        # the newer models' fields (DecoderShape; 0 where absent)
        ints.update({k: need(path, name, d, k, int, positive=True, optional=True) or 0 for k in OPTIONAL_FIELDS})
        if (ints["hidden"] % ints["heads"] and not ints["head_size"]) or ints["heads"] % ints["kv_heads"]:
            raise SpecError(path, name, "heads must divide hidden (or head_size be given) and kv_heads must divide heads")
        shape = DecoderShape(name=name, source=need(path, name, d, "source", str), **ints)
        for alias in [name, *d.get("aliases", [])]:
            out[alias] = shape
    return out


def get_llm(name: str) -> DecoderShape:
    """A built-in LLM by name or alias, or any model from its Hugging Face ``config.json``
    path (:mod:`.hf_config`); a :class:`UserError` naming ``model`` otherwise."""
    models = llm_models()
    if isinstance(name, str) and name in models:
        return models[name]
    if is_config_path(name):
        return load_hf_config(name)
    raise UserError(f"model: {name!r} is not a built-in model; choose one of {', '.join(models)} (or give a "
                    "config.json path)", parameter="model")


LLAMA3_8B = get_llm("llama3-8b")
LLAMA3_70B = get_llm("llama3-70b")
MIXTRAL_8X7B = get_llm("mixtral-8x7b")


def attention_gemms(s: DecoderShape, *, T: int, batch: int, q_len: int, seq_len: int, dtype: str) -> list[Gemm]:
    """The attention GEMMs of every layer: projections, scores Q K^T and context P V per
    sequence and KV head (the group's query heads stacked). MLA (DeepSeek) in its expanded
    form: the query and KV latents' down and up projections, then attention as MHA over
    heads of ``qk_nope + qk_rope`` (keys) and ``v_head_dim`` (values)."""
    L, h = s.layers, s.hidden
    if s.mla:
        qk, v, heads = s.qk_nope_head_dim + s.qk_rope_head_dim, s.v_head_dim, s.heads
        q = ([Gemm(T, s.q_lora_rank, h, dtype, L, "attn_q_a"), Gemm(T, heads * qk, s.q_lora_rank, dtype, L, "attn_q_b")]
             if s.q_lora_rank else [Gemm(T, heads * qk, h, dtype, L, "attn_q")])
        return q + [Gemm(T, s.kv_lora_rank + s.qk_rope_head_dim, h, dtype, L, "attn_kv_a"),
                    Gemm(T, heads * (s.qk_nope_head_dim + v), s.kv_lora_rank, dtype, L, "attn_kv_b"),
                    Gemm(q_len, seq_len, qk, dtype, L * batch * heads, "attn_scores", batch * heads),
                    Gemm(q_len, v, seq_len, dtype, L * batch * heads, "attn_context", batch * heads),
                    Gemm(T, h, heads * v, dtype, L, "attn_out")]
    kv, hd = s.kv_heads * s.head_dim, s.head_dim
    group = s.heads // s.kv_heads
    return [Gemm(T, s.heads * hd, h, dtype, L, "attn_q"),
            Gemm(T, kv, h, dtype, L, "attn_k"),
            Gemm(T, kv, h, dtype, L, "attn_v"),
            Gemm(group * q_len, seq_len, hd, dtype, L * batch * s.kv_heads, "attn_scores", batch * s.kv_heads),
            Gemm(group * q_len, hd, seq_len, dtype, L * batch * s.kv_heads, "attn_context", batch * s.kv_heads),
            Gemm(T, h, s.heads * hd, dtype, L, "attn_out")]


def ffn_gemms(s: DecoderShape, *, T: int, dtype: str) -> tuple[list[Gemm], list[str]]:
    """The FFN GEMMs of every layer and what they assume: dense SwiGLU in the dense
    layers; in the mixture-of-experts layers the router, the routed experts (balanced over
    the experts that receive any token) and the shared experts."""
    h, g, notes = s.hidden, [], []
    dense = s.layers - s.moe_layers
    if dense:
        g += [Gemm(T, s.ffn, h, dtype, dense, "mlp_gate"), Gemm(T, s.ffn, h, dtype, dense, "mlp_up"),
              Gemm(T, h, s.ffn, dtype, dense, "mlp_down")]
    if s.moe_layers:
        L, f = s.moe_layers, s.expert_ffn
        active = min(s.experts, T * s.experts_per_token)
        routed = -(-T * s.experts_per_token // active)
        g += [Gemm(T, s.experts, h, dtype, L, "moe_router"),
              Gemm(routed, f, h, dtype, L * active, "moe_gate", active),
              Gemm(routed, f, h, dtype, L * active, "moe_up", active),
              Gemm(routed, h, f, dtype, L * active, "moe_down", active)]
        if s.shared_experts:
            n = s.shared_experts * f
            g += [Gemm(T, 2 * n, h, dtype, L, "moe_shared_gate_up"), Gemm(T, h, n, dtype, L, "moe_shared_down")]
        notes.append(f"tokens spread evenly over the {s.experts} experts ({s.experts_per_token} per token)")
    return g, notes


def decoder(shape: DecoderShape, *, phase: str, dtype: str, batch: int = 1, seq_len: int = 2048) -> Workload:
    """One forward step of a decoder-only LLM: ``prefill`` of ``seq_len`` tokens per
    sequence, or ``decode`` of one new token per sequence against a KV cache of ``seq_len``."""
    _pos("batch", batch)
    _pos("seq-len", seq_len)
    get_dtype(dtype)
    if phase not in ("prefill", "decode"):
        raise UserError(f"phase: must be prefill or decode, not {phase!r}")
    s, L = shape, shape.layers
    q_len = seq_len if phase == "prefill" else 1
    T = batch * q_len                      # tokens through the projections
    g = attention_gemms(s, T=T, batch=batch, q_len=q_len, seq_len=seq_len, dtype=dtype)
    assumptions = ["element-wise ops, softmax, RMSNorm, RoPE and embedding look-up are not GEMMs: left out",
                   "attention computed densely (no causal-mask savings)"]
    if s.mla:
        assumptions.append("MLA in its expanded form; the KV latent is up-projected for the new tokens only")
    ffn, notes = ffn_gemms(s, T=T, dtype=dtype)
    g += ffn
    assumptions += notes
    # next-token logits: the last position of each sequence
    g.append(Gemm(batch, s.vocab, s.hidden, dtype, 1, "lm_head"))
    tokens = batch * q_len
    # resident: every weight (all experts), the embedding table, the KV cache of every
    # sequence, and a few activation tensors of the widest layer
    elem = get_dtype(dtype).storage_bytes          # block scales included (NVFP4 0.5625 bytes)
    weights = int(s.params * elem)
    kv = int(L * batch * seq_len * s.kv_elements_per_token * elem)
    acts = int(4 * T * max(s.hidden, s.ffn) * elem)
    return Workload(f"{s.name}-{phase}", tuple(g), "token", tokens, s.source, tuple(assumptions),
                    weights + kv + acts, (("weights", weights), ("KV cache", kv), ("activations", acts)))


def bert_base(*, dtype: str, batch: int = 1, seq_len: int = 128) -> Workload:
    """BERT-base encoder forward (Devlin et al., 2019: hidden 768, 12 layers, 12 heads, FFN 3072)."""
    _pos("batch", batch)
    _pos("seq-len", seq_len)
    T, H, L, heads = batch * seq_len, 768, 12, 12
    d = H // heads
    g = (Gemm(T, 3 * H, H, dtype, L, "qkv"),
         Gemm(seq_len, seq_len, d, dtype, L * batch * heads, "attn_scores", batch * heads),
         Gemm(seq_len, d, seq_len, dtype, L * batch * heads, "attn_context", batch * heads),
         Gemm(T, H, H, dtype, L, "attn_out"),
         Gemm(T, 3072, H, dtype, L, "ffn1"),
         Gemm(T, H, 3072, dtype, L, "ffn2"))
    return Workload("bert-base", g, "sample", batch, "Devlin et al., NAACL 2019 (BERT-base)",
                    ("embeddings, LayerNorm, GELU, softmax and the pooler are left out",))


def dlrm(*, dtype: str, batch: int = 2048) -> Workload:
    """DLRM MLP stack as in the MLPerf DLRM reference on Criteo Terabyte: bottom MLP
    13-512-256-128, top MLP 479-1024-1024-512-256-1 (479 = 128 + 27*26/2 interactions)."""
    _pos("batch", batch)
    bottom = [13, 512, 256, 128]
    top = [479, 1024, 1024, 512, 256, 1]
    g = [Gemm(batch, o, i, dtype, 1, f"bottom_{n}") for n, (i, o) in enumerate(zip(bottom, bottom[1:]))]
    g += [Gemm(batch, o, i, dtype, 1, f"top_{n}") for n, (i, o) in enumerate(zip(top, top[1:]))]
    return Workload("dlrm", tuple(g), "sample", batch,
                    "MLPerf Training DLRM reference (arch-mlp-bot 13-512-256-128, arch-mlp-top 1024-1024-512-256-1)",
                    ("embedding-table look-ups (memory-bound gathers) and the feature interaction are left out",))


def _conv(name: str, batch: int, h_out: int, c_in: int, c_out: int, k: int, dtype: str) -> Gemm:
    """im2col: (batch x H_out x W_out) x (C_in x k x k) times (C_in x k x k) x C_out."""
    return Gemm(batch * h_out * h_out, c_out, c_in * k * k, dtype, 1, name)


def resnet50(*, dtype: str, batch: int = 1) -> Workload:
    """ResNet-50 v1 at 224x224 (He et al., CVPR 2016), convolutions lowered by im2col."""
    _pos("batch", batch)
    g = [_conv("conv1", batch, 112, 3, 64, 7, dtype)]
    c_in = 64
    for stage, (blocks, width, h) in enumerate([(3, 64, 56), (4, 128, 28), (6, 256, 14), (3, 512, 7)], start=2):
        for b in range(blocks):
            p = f"s{stage}b{b}"
            g += [_conv(f"{p}_1x1a", batch, h, c_in, width, 1, dtype),
                  _conv(f"{p}_3x3", batch, h, width, width, 3, dtype),
                  _conv(f"{p}_1x1b", batch, h, width, 4 * width, 1, dtype)]
            if b == 0:
                g.append(_conv(f"{p}_proj", batch, h, c_in, 4 * width, 1, dtype))
            c_in = 4 * width
    g.append(Gemm(batch, 1000, 2048, dtype, 1, "fc"))
    return Workload("resnet50", tuple(g), "sample", batch, "He et al., CVPR 2016 (ResNet-50, 224x224)",
                    ("pooling, batch-norm and ReLU are left out; the stride-2 3x3 sits in the first block of "
                     "stages 3-5 (v1.5) and is counted at the output size",))


BUILTINS: dict[str, Callable[..., Workload]] = {
    f"{m}-{phase}": partial(decoder, shape, phase=phase)
    for m, shape in llm_models().items() if m == shape.name for phase in ("prefill", "decode")
} | {
    "bert-base": bert_base,
    "dlrm": dlrm,
    "resnet50": resnet50,
}
#: Built-ins without a sequence length.
NO_SEQ_LEN = ("dlrm", "resnet50")


def load_scalesim_topology(path: str | Path, *, dtype: str) -> Workload:
    """A SCALE-Sim topology CSV, either form: convolution (``Layer name, IFMAP Height, IFMAP
    Width, Filter Height, Filter Width, Channels, Num Filter, Strides``; lowered by im2col
    without padding, as SCALE-Sim does) or GEMM (``Layer, M, N, K``: A is M x K, B is K x N)."""
    path = Path(path)
    text = read_text(path, parameter="workload")
    check_rows(path, text)
    rows = [[c.strip() for c in r if c.strip() != ""] for r in csv.reader(text.splitlines())]
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise UserError(f"workload: {path} holds no layers")
    header = [h.lower() for h in rows[0]]
    gemms = []
    for line, r in enumerate(rows[1:], start=2):
        try:
            if header[1:4] == ["m", "n", "k"]:
                if len(r) < 4:
                    raise ValueError(f"expected 'Layer, M, N, K', got {len(r)} columns")
                m, n, k = (int(v) for v in r[1:4])
            elif len(r) >= 8:
                ih, iw, fh_, fw, ch, nf, st = (int(v) for v in r[1:8])
                stride_w = int(r[8]) if len(r) > 8 else st
                for name, v in (("IFMAP Height", ih), ("IFMAP Width", iw), ("Filter Height", fh_),
                                ("Filter Width", fw), ("Channels", ch), ("Num Filter", nf), ("Strides", st),
                                ("Strides (width)", stride_w)):
                    if v < 1:
                        raise ValueError(f"{name} must be a positive integer, not {v}")
                oh, ow = (ih - fh_) // st + 1, (iw - fw) // stride_w + 1
                if ih < fh_ or iw < fw:
                    raise ValueError("filter larger than the input")
                m, n, k = oh * ow, nf, fh_ * fw * ch
            else:
                raise ValueError(f"expected 'Layer, M, N, K' or the 8-column convolution form, got {len(r)} columns")
            gemms.append(Gemm(m, n, k, dtype, 1, r[0]))
        except (ValueError, UserError) as exc:
            raise UserError(f"workload: {path} line {line}: {exc}") from None
    return Workload(path.stem, tuple(gemms), "run", 1, f"SCALE-Sim topology {path.name}")


def config_workload(spec: str, *, dtype: str, batch: int | None = None, seq_len: int | None = None) -> Workload:
    """One forward step of the model of a Hugging Face ``config.json`` (:mod:`.hf_config`):
    ``PATH`` or ``PATH:decode`` a decode step, ``PATH:prefill`` a prefill."""
    path, _, phase = spec.rpartition(":") if spec.lower().endswith((":decode", ":prefill")) else (spec, "", "decode")
    kwargs = {k: v for k, v in (("batch", batch), ("seq_len", seq_len)) if v is not None}
    try:
        shape = load_hf_config(path)
    except UserError as exc:
        raise UserError(f"workload: {str(exc).split(': ', 1)[-1]}", parameter="workload") from None
    return decoder(shape, phase=phase, dtype=dtype, **kwargs)


def list_workloads() -> list[str]:
    """Names of the built-in workloads (LLM prefill and decode, BERT-base, DLRM, ResNet-50),
    as :func:`get_workload` and ``--workload`` take them."""
    return list(BUILTINS)


def get_workload(name_or_file: str, *, dtype: str, batch: int | None = None, seq_len: int | None = None) -> Workload:
    """A built-in by name (with batch and sequence length), a Hugging Face ``config.json``
    (:func:`config_workload`: ``PATH[:decode|:prefill]``), a SCALE-Sim topology CSV, or a
    GEMM list CSV (``name,M,N,K[,count][,dtype]``), in ``dtype`` (required: the same
    workload in int8 and in bf16 is a different question; a GEMM list's own dtype column
    wins over it)."""
    get_dtype(dtype)
    if not isinstance(name_or_file, str) or not name_or_file:
        raise UserError(f"workload: give a built-in name ({', '.join(BUILTINS)}) or a CSV file, not {name_or_file!r}")
    if name_or_file.lower().endswith((".json", ".json:decode", ".json:prefill")):
        return config_workload(name_or_file, dtype=dtype, batch=batch, seq_len=seq_len)
    if name_or_file in BUILTINS:
        kwargs: dict = {"dtype": dtype}
        if batch is not None:
            kwargs["batch"] = batch
        if seq_len is not None:
            if name_or_file in NO_SEQ_LEN:
                raise UserError(f"seq-len: {name_or_file} has no sequence length")
            kwargs["seq_len"] = seq_len
        return BUILTINS[name_or_file](**kwargs)
    path = Path(name_or_file)
    if not is_user_file(name_or_file, parameter="workload"):
        raise UserError(f"workload: {name_or_file!r} is neither a built-in ({', '.join(BUILTINS)}) nor a file")
    for flag, v in (("batch", batch), ("seq-len", seq_len)):
        if v is not None:
            raise UserError(f"{flag}: applies to built-in workloads, not to a CSV file ({path.name})")
    header = read_text(path, parameter="workload").partition("\n")[0].lower().replace(" ", "")
    if header.startswith("layer,m,n,k") or "ifmap" in header:
        return load_scalesim_topology(path, dtype=dtype)
    return Workload(path.stem, tuple(load_gemm_list(path, dtype=dtype)), "run", 1, f"GEMM list {path.name}")
