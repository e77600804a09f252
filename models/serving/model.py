"""LLM serving on one device kind: time to first token, time per output token, tokens/s,
the KV-cache limit, energy and cost per token, over tensor and pipeline parallelism.

Layers of the model:

* **operators** (:func:`step_ops`): one forward step of a decoder-only model on one
  device of a tensor-parallel group: the GEMMs (fused QKV, output projection, fused
  gate/up, down, LM head; experts for mixture-of-experts models), attention, and the
  non-GEMM work with its bytes and operations (embedding look-up, RMSNorm, RoPE, SwiGLU,
  residual adds, sampling) and the collectives tensor parallelism needs (an all-reduce
  after the attention and after the MLP of every layer, an all-gather of the logits).
* **devices** (:class:`GpuServing`, :class:`ChipServing`): the time of each operator.
  A GPU runs every operator as a kernel: GEMMs on the calibrated tile/wave model of
  :mod:`~systolab.models.gpu.model`, attention as one fused (FlashAttention-style) kernel,
  element-wise work as memory-bound kernels, each with a fixed cost per kernel. The
  custom chip runs GEMMs (attention's included: it has no fused attention) through the
  mapper and its cycle model, and the rest on its vector unit.
* **scenario** (:func:`serve`): static batching (``batch``: all requests start together,
  as in TensorRT-LLM's session benchmark) or continuous batching in steady state
  (``concurrency``: as many requests in flight, a finished one replaced at once).

Assumptions are collected in :data:`ASSUMPTIONS` and reported with every result.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np

from ...checks import check_int
from ...dtypes import DTYPES, FP4_DTYPES, get_dtype
from ...errors import UserError
from ..chip.config import ChipConfig, get_chip
from ..chip.workload import chip_workload_perf
from ..core.perf import WorkloadPerf
from ..cost.pricing import chip_unit_cost, cost_inputs, gpu_price, unit_cost
from ..cost.schedule import nre_breakdown
from ..cost.tco import TcoBreakdown, custom_system, per_device_tco, system_for_gpu, usd_per_million_tokens_tco
from ..frames import data_frame
from ..gpu.fit_file import reads_fit
from ..gpu.formats import canonical_name, check_gpu_dtype
from ..gpu.model import assumptions, calibration, gemm_terms, layer_assumptions, resolve_peak
from ..gpu.power import gpu_idle_W, gpu_power_W, step_activity
from ..gpu.power_cap import check_power_cap, clock_fraction
from ..gpu.runtime import get_runtime
from ..gpu.specs import GpuSpec, get_gpu, is_gpu, load_gpus
from ..silicon.area import chip_area
from ..silicon.energy import chip_idle_W, chip_power, chip_step_power_W
from ..specs import DATA_DIR, load_yaml, need
from ..workloads.catalog import DecoderShape, check_fits, get_llm
from ..workloads.gemm import Gemm
from .attention_kernel import attention_kernel_fraction
from .batching import ASSUMPTION as BATCHING_ASSUMPTION
from .batching import OPTION_ASSUMPTIONS, BatchingOptions, check_options, continuous_plan
from .collectives import chip_link, collective_seconds, gpu_link, link_collective_seconds, runtime_all_reduce
from .formats import check_chip_dtype, default_kv_dtype, format_notes
from .kv_cache import KvCache, check_block_tokens, check_capacity, check_step_tokens, kv_block_tokens, max_step_tokens
from .mla import ASSUMPTION as MLA_ASSUMPTION
from .mla import kv_elements_per_token, mla_step
from .moe import ASSUMPTION as MOE_ASSUMPTION
from .moe import MoeRun, expert_load, expert_parallel_share

SERVING_FILE = DATA_DIR / "serving.yaml"
#: Decode steps whose time is evaluated; the rest are interpolated (attention's cost is
#: linear in the context length, the other operators' constant).
DECODE_SAMPLES = 8

ASSUMPTIONS = [
    "one forward step = the operators of step_ops, run one after another on each device (no overlap of "
    "communication with compute)",
    "attention is causal: a prefill of s tokens does half the s x s score work; on a GPU it is one fused "
    "kernel per layer (FlashAttention style) at the GPU's 16-bit tensor rate; the custom chip has no fused "
    "attention and writes the scores to DRAM between its GEMMs and the softmax",
    "activations between operators are 16-bit; GEMM operands are in the weights' dtype",
    "static batching (--batch): every request prefills together, then decodes together",
    BATCHING_ASSUMPTION,
    "paged KV cache (models/serving/kv_cache.py): blocks of --kv-block tokens in the memory left after weights and "
    "one step's activations (--chunk-tokens tokens); a static batch holds every request at isl + osl tokens, a "
    "continuous one at its steady-state mean (about isl + osl/2 tokens, whole blocks)",
    "pipeline parallelism splits the batch into as many micro-batches as stages",
    MOE_ASSUMPTION,
    MLA_ASSUMPTION,
    "energy = power x time on every device of the group, each step at its own power: a GPU's from its tensor-core "
    "and DRAM activity (models/gpu/power.py, fitted to public measurements), the chip's from its activity energy "
    "plus leakage (models/silicon/energy.py); power_W (design power / TDP) stays the provisioning figure",
    "$/M tokens = one device's lifetime cost (models/cost/tco.py: the device, its share of the server, network "
    "and facility, energy at the power it draws while serving and idle otherwise, maintenance, operations) over "
    "the tokens it serves in its lifetime at the cost model's utilisation; a chip's bottom-up NRE "
    "(models/cost/schedule.py) is spread over its volume_units here, over the units bought in fleet and decide; "
    "the range is the device price's",
]


# -- data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServingData:
    """The serving model's stated assumptions (``data/serving.yaml``, each with its basis there)."""

    usable_memory_fraction: float
    link_latency_s: dict[str, float]
    grouped_gemm_efficiency: float    # a grouped expert GEMM's rates over a dense GEMM's of its shape
    # per GPU family: the tensor rate of Ampere-style (mma.sync) kernels over the family's dense peak
    legacy_mma_fraction: dict[str, float] = field(default_factory=dict)
    moe_runtimes: dict[str, MoeRun] = field(default_factory=dict)     # each runtime's grouped GEMM
    random_weight_sources: tuple[str, ...] = ()   # measurement sources benchmarked with random weights


def _moe_data(path: str, moe: dict) -> dict:
    """The runtime-dependent MoE terms of ``serving.yaml: moe``."""
    legacy = need(path, "moe", moe, "legacy_mma_fraction", dict)
    runtimes = need(path, "moe", moe, "runtimes", dict)
    return {
        "legacy_mma_fraction": {fam: float(need(path, f"moe.legacy_mma_fraction.{fam}",
                                                need(path, "moe.legacy_mma_fraction", legacy, fam, dict),
                                                "value", (int, float), positive=True))
                                for fam in legacy},
        "moe_runtimes": {name: MoeRun(expert_dtypes=tuple(need(path, f"moe.runtimes.{name}", e, "expert_dtypes", list)),
                                      legacy_mma=bool(need(path, f"moe.runtimes.{name}", e, "legacy_mma", bool)),
                                      expand_rows=bool(e.get("expand_rows", False)))
                         for name, e in runtimes.items()},
        "random_weight_sources": tuple(need(path, "moe.random_weights", need(path, "moe", moe, "random_weights", dict),
                                            "sources", list))}


@cache
def serving_data(path: str = str(SERVING_FILE)) -> ServingData:
    d = load_yaml(path)
    lat = need(path, "", d, "link_latency_s", dict)
    moe = need(path, "", d, "moe", dict)
    grouped = need(path, "moe", moe, "grouped_gemm_efficiency", dict)
    return ServingData(
        usable_memory_fraction=need(path, "", d, "usable_memory_fraction", float, positive=True),
        link_latency_s={k: float(need(path, "link_latency_s", lat, k, (int, float), positive=True))
                        for k in lat if k != "basis"},
        grouped_gemm_efficiency=float(need(path, "moe.grouped_gemm_efficiency", grouped, "value", (int, float),
                                           positive=True)),
        **_moe_data(path, moe))


def moe_run(runtime: str | None = None, source: str | None = None) -> MoeRun:
    """How ``runtime`` (a ``runtimes.yaml`` or measurement runtime name; None: the default)
    runs mixture-of-experts blocks, and, for a measurement ``source`` benchmarked with random
    weights (``serving.yaml: moe.random_weights``), its collapsed routing (:class:`~.moe.MoeRun`)."""
    data = serving_data()
    run = data.moe_runtimes.get(runtime or "", MoeRun())
    return replace(run, routing="collapsed") if source in data.random_weight_sources else run


# -- operators -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One operator of a forward step on one device, ``calls`` times in a row (the layers).

    ``flops`` and ``bytes`` are per call; ``elements`` is the element-wise work per call
    (for a vector unit); a GEMM carries its :class:`Gemm` (``count = calls x parallel``);
    a collective its ``message_bytes`` per call."""

    name: str
    kind: str                 # "gemm", "attention", "vector", "collective"
    calls: int
    flops: float = 0.0
    bytes: float = 0.0
    elements: float = 0.0
    gemm: Gemm | None = None
    attention: tuple[int, ...] | None = None   # (sequences, q_len, ctx, heads, kv_heads, head_dim) per device
    collective: str = ""
    message_bytes: float = 0.0
    # a grouped (mixture-of-experts) GEMM: the experts a step touches on average (its
    # ``parallel`` is that rounded); on a GPU its terms scale by experts / parallel over
    # the grouped kernel's efficiency. 0: not grouped
    experts_touched: float = 0.0
    # a GEMM whose kernel uses Ampere's tensor-core instructions on every GPU (a newer GPU runs it at
    # serving.yaml: moe.legacy_mma_fraction of its tensor rate)
    legacy_mma: bool = False

    def to_dict(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "calls": self.calls, "flops": self.flops * self.calls,
             "bytes": self.bytes * self.calls}
        if self.gemm is not None:
            d["gemm"] = {"M": self.gemm.M, "N": self.gemm.N, "K": self.gemm.K, "parallel": self.gemm.parallel}
        if self.collective:
            d["collective"], d["message_bytes"] = self.collective, self.message_bytes
        if self.experts_touched:
            d["experts_touched"] = self.experts_touched
        if self.legacy_mma:
            d["legacy_mma"] = True
        return d


@dataclass(frozen=True)
class Precision:
    """Dtypes per tensor: ``weights`` (and GEMM operands), ``kv`` (the KV cache) and
    ``act`` (activations between operators)."""

    weights: str
    kv: str
    act: str = "bf16"

    def bytes(self, which: str) -> float:
        """Bytes an element of ``which`` takes in memory, block scales included (NVFP4 0.5625)."""
        return get_dtype(getattr(self, which)).storage_bytes


def _gemm(name: str, M: int, N: int, K: int, dtype: str, calls: int, parallel: int = 1) -> Op:
    g = Gemm(M, N, K, dtype, calls * parallel, name, parallel)
    return Op(name, "gemm", calls, flops=g.flops / calls, bytes=g.min_bytes / calls, gemm=g)


def _vector(name: str, calls: int, elements: float, read: float, written: float) -> Op:
    return Op(name, "vector", calls, flops=0.0, bytes=read + written, elements=elements)


def step_ops(model: DecoderShape, *, seqs: int, q_len: int, ctx: int, tp: int, prec: Precision,
             kv_shared: bool = True, ep: int = 1, moe: MoeRun | None = None) -> list[Op]:
    """The operators of one forward step on one device of a ``tp``-way tensor-parallel
    group: ``seqs`` sequences each adding ``q_len`` tokens (the prompt in a prefill, one
    token in a decode) to a context that then holds ``ctx`` tokens, through every layer
    (with pipeline stages, the stages' layers one after another). ``kv_shared=False`` stands for a decode-attention kernel that
    reads the KV cache once per query head rather than once per KV head (grouped-query
    attention without reuse, as TensorRT-LLM's before its XQA kernel, v0.8). MLA models'
    attention is :mod:`.mla`'s; ``ep`` splits the experts over devices and ``moe`` says how the
    runtime and benchmark run them (:func:`moe_ops`)."""
    m, L = model, model.layers
    T = seqs * q_len                                   # tokens through the projections
    h, hd, a = m.hidden, m.head_dim, prec.bytes("act")
    heads = m.heads // tp
    kvh = max(1, m.kv_heads // tp)                     # KV heads replicate when tp > kv_heads
    ffn = m.ffn // tp
    w, kvb = prec.weights, prec.bytes("kv")
    ops = [_vector("embedding", 1, T * h, T * h * a, T * h * a),
           _vector("rmsnorm_attn", L, 4 * T * h, T * h * a, T * h * a)]
    if m.mla:
        ops += mla_ops(m, seqs=seqs, q_len=q_len, ctx=ctx, tp=tp, prec=prec)
    else:
        ops += [_gemm("qkv", T, (heads + 2 * kvh) * hd, h, w, L),
                _vector("rope", L, 6 * T * (heads + kvh) * hd, T * (heads + kvh) * hd * a, T * (heads + kvh) * hd * a)]
        # attention: causal scores and context for the new tokens against the context
        pairs = seqs * heads * (q_len * ctx - q_len * (q_len - 1) / 2)
        reads = kvh if kv_shared or q_len > 1 else heads
        att_bytes = (T * heads * hd * 2 * a                       # read Q, write O
                     + seqs * ctx * 2 * reads * hd * kvb          # read K and V of the whole context
                     + T * 2 * kvh * hd * kvb)                    # write the new K and V
        ops.append(Op("attention", "attention", L, flops=4 * hd * pairs, bytes=att_bytes, elements=5 * pairs,
                      attention=(seqs, q_len, ctx, heads, kvh, hd)))
        ops.append(_gemm("o_proj", T, h, heads * hd, w, L))
    if tp > 1:
        ops.append(Op("allreduce_attn", "collective", L, bytes=0, collective="all_reduce", message_bytes=T * h * a))
    ops.append(_vector("residual_rmsnorm_mlp", L, 6 * T * h, 2 * T * h * a, 2 * T * h * a))
    if dense := L - m.moe_layers:               # every layer of a dense model; DeepSeek's first ones
        ops += [_gemm("gate_up", T, 2 * ffn, h, w, dense),
                _vector("swiglu", dense, 4 * T * ffn, T * 2 * ffn * a, T * ffn * a),
                _gemm("down", T, h, ffn, w, dense)]
    if m.moe_layers:
        kw: dict[str, Any] = {"ep": ep} if ep > 1 else {}
        if moe is not None and moe != MoeRun():      # the default run: the call as it always was
            kw["run"] = moe
        ops += moe_ops(m, T, m.expert_ffn * ep // tp, prec, **kw)
    if tp > 1:
        ops.append(Op("allreduce_mlp", "collective", L, bytes=0, collective="all_reduce", message_bytes=T * h * a))
    ops.append(_vector("residual", L, T * h, 2 * T * h * a, T * h * a))
    # the head: the last position of each sequence only
    vocab = -(-m.vocab // tp)
    ops += [_vector("final_rmsnorm", 1, 4 * seqs * h, seqs * h * a, seqs * h * a),
            _gemm("lm_head", seqs, vocab, h, w, 1)]
    if tp > 1:
        ops.append(Op("allgather_logits", "collective", 1, bytes=0, collective="all_gather",
                      message_bytes=seqs * vocab * 4))
    ops.append(_vector("sampling", 1, 4 * seqs * m.vocab, seqs * m.vocab * 4, seqs * 4))
    return ops


def moe_ops(m: DecoderShape, T: int, ffn: int, prec: Precision, *, ep: int = 1, run: MoeRun | None = None) -> list[Op]:
    """The mixture-of-experts block of ``T`` tokens on one device (``ffn``: each expert's
    FFN width on it), in each of the model's MoE layers: the router GEMM, the routing
    kernels (top-k and softmax of the router logits; sorting the tokens by expert, as
    vLLM's fused MoE does), the grouped expert
    GEMMs (``experts_touched``: one kernel each over the experts the step touches, each expert's
    GEMM as tall as the busiest expert's tokens: :mod:`.moe`), SwiGLU and the weighted sum;
    the shared experts (DeepSeek) as dense GEMMs split as the experts are; with ``ep`` > 1
    the experts split over ``ep`` devices (:func:`~.moe.expert_parallel_share`), each
    device's share of the tokens (1 / ep) dispatched to them and combined back as all-to-alls.
    ``run`` (:class:`~.moe.MoeRun`): the routing, and the dtype and kind of kernel the runtime's
    grouped expert GEMMs use."""
    run = run or MoeRun()
    L, h, a, k = m.moe_layers, m.hidden, prec.bytes("act"), m.experts_per_token
    w, xw = prec.weights, run.expert_dtype(prec.weights)
    load = expert_load(T, m.experts, k, run.routing)
    touched, n = expert_parallel_share(load, ep)
    rows = load.gemm_rows
    # with ep > 1 each device sends its share of the routed copies out and back
    sent = T / ep * k * h * a
    dispatch, combine = ([Op(f"moe_{x}", "collective", L, collective="all_to_all", message_bytes=sent)]
                         if ep > 1 else [] for x in ("dispatch", "combine"))
    ops = [_gemm("router", T, m.experts, h, w, L),
           _vector("expert_topk", L, 4 * T * m.experts, T * m.experts * 4, T * k * 8),
           _vector("expert_sort", L, 2 * T * k, T * k * 4, 2 * (T * k + m.experts) * 4), *dispatch,
           *([_vector("expert_offsets", L, T * k, T * k * 4, m.experts * 8),
              _vector("expert_expand", L, T * k * h, T * h * a, T * k * h * a)] if run.expand_rows else []),
           replace(_gemm("expert_gate_up", rows, 2 * ffn, h, xw, L, n), experts_touched=touched,
                   legacy_mma=run.legacy_mma),
           _vector("swiglu", L, 4 * T * k * ffn / ep, T * k * 2 * ffn * a / ep, T * k * ffn * a / ep),
           replace(_gemm("expert_down", rows, h, ffn, xw, L, n), experts_touched=touched,
                   legacy_mma=run.legacy_mma), *combine,
           _vector("expert_combine", L, 2 * T * k * h, T * k * h * a, T * h * a)]
    if m.shared_experts:
        width = m.shared_experts * ffn // ep          # = shared x expert width / tp
        ops += [_gemm("shared_gate_up", T, 2 * width, h, w, L),
                _vector("shared_swiglu", L, 4 * T * width, T * 2 * width * a, T * width * a),
                _gemm("shared_down", T, h, width, w, L)]
    return ops


def mla_ops(m: DecoderShape, *, seqs: int, q_len: int, ctx: int, tp: int, prec: Precision) -> list[Op]:
    """A multi-head latent attention block (:mod:`.mla`) on one device, in every layer."""
    st = mla_step(m, seqs=seqs, q_len=q_len, ctx=ctx, tp=tp, act_bytes=prec.bytes("act"), kv_bytes=prec.bytes("kv"))
    L, w = m.layers, prec.weights
    ops = [_gemm(name, M, N, K, w, L, par) for name, M, N, K, par in st.before]
    ops.append(_vector("mla_norm_rope", L, st.vector_elements, st.vector_bytes / 2, st.vector_bytes / 2))
    ops.append(Op("attention", "attention", L, flops=st.flops, bytes=st.bytes, elements=st.elements,
                  attention=st.shape))
    return ops + [_gemm(name, M, N, K, w, L, par) for name, M, N, K, par in st.after]


# -- devices -------------------------------------------------------------------------------
#: Columns of a GPU operator's cost terms (see :meth:`GpuServing.terms`).
TERMS = ("math_s", "hbm_s", "gddr_s", "kernels", "fixed_s")


@dataclass(frozen=True)
class GpuParams:
    """The GPU model's parameters that the serving fit sets (``data/gpu_fit.yaml``)."""

    compute_derate: float
    mem_eff_hbm: float
    mem_eff_gddr: float
    launch_s: float

    def as_array(self) -> np.ndarray:
        return np.array([self.compute_derate, self.mem_eff_hbm, self.mem_eff_gddr, self.launch_s])

    @classmethod
    def stored(cls) -> GpuParams:
        a = assumptions()
        return cls(a.compute_derate, a.mem_eff_hbm, a.mem_eff_gddr, a.launch_s)

    @classmethod
    def for_runtime(cls, runtime: str | None = None) -> GpuParams:
        """The parameters under ``runtime`` (``data/runtimes.yaml``; None: :meth:`stored`)."""
        a = layer_assumptions("runtime", runtime)
        return cls(a.compute_derate, a.mem_eff_hbm, a.mem_eff_gddr, a.launch_s)


def combine(terms: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Seconds of each operator (rows of ``terms``, columns :data:`TERMS`) at parameters
    ``theta`` (:class:`GpuParams` order): max(tensor time, DRAM time) + kernels' fixed cost
    + communication."""
    derate, m_hbm, m_gddr, launch = theta
    compute = terms[..., 0] / derate
    memory = terms[..., 1] / m_hbm + terms[..., 2] / m_gddr
    return np.maximum(compute, memory) + terms[..., 3] * launch + terms[..., 4]


class GpuServing:
    """An Nvidia GPU as a serving device (``gpu_id``), computing in ``dtype``, under a
    serving ``runtime`` (``data/runtimes.yaml``; None: the fitted default) and an optional
    board ``power_cap_W`` (W; ``models/gpu/power_cap.py``)."""

    kind = "gpu"

    def __init__(self, gpu: GpuSpec | str, dtype: str, runtime: str | None = None,
                 power_cap_W: float | None = None):
        self.spec = get_gpu(gpu)
        self.runtime = None if runtime is None else get_runtime(runtime).name
        self.power_cap_W = check_power_cap(self.spec, power_cap_W)
        self.id = self.spec.id
        self.dtype = dtype = check_gpu_dtype(self.spec, dtype)
        self.memory_bytes = self.spec.memory_GB * 2**30      # marketed GB of GPU memory are GiB
        self.power_W = float(self.spec.tdp_W)          # design power: what provisioning counts
        self.idle_power_W = gpu_idle_W(self.spec)
        price = gpu_price(self.spec)
        self.price_usd = price.usd if price else None
        self.price_range_usd = (price.low_usd, price.high_usd) if price else None
        self.tp_link = gpu_link(self.spec)
        self.link, self.link_GBps, self.link_latency_s = self.tp_link.kind, self.tp_link.GBps, self.tp_link.latency_s
        self.all_reduce = runtime_all_reduce(self.runtime)     # the runtime's own all-reduce, or NCCL's
        _, self._half_peak, _ = resolve_peak(self.spec, "bf16" if self.spec.peak("bf16") else "fp16")
        # attention at the runtime's own kernel's fraction of the peak where it declares one (SGLang on Hopper)
        self._half_eff = (attention_kernel_fraction(self.runtime, self.spec.family)
                          or calibration().lookup(self.spec.family, "half")[0])
        self._mem_col = 2 if self.spec.memory_type.upper().startswith("GDDR") else 1   # gddr_s or hbm_s
        self.notes = tuple(self.spec.flags(f"peak_dense_tflops.{dtype}", "mem_bw_GBps", "tdp_W")) + format_notes(dtype)
        if self.runtime is not None:
            self.notes += (f"runtime {self.runtime}: its fixed cost per kernel and compute derate",)
        if self.power_cap_W is not None:
            self.notes += (f"power cap {self.power_cap_W:g} W: clock lowered to hold a step's power (power ∝ f³), "
                           "tensor rate in proportion",)

    @property
    def params(self) -> GpuParams:
        """The runtime layer's parameters this device reads (read at each use: a fit may change them)."""
        return GpuParams.stored() if self.runtime is None else GpuParams.for_runtime(self.runtime)

    def __repr__(self) -> str:
        return f"GpuServing({self.id!r}, {self.dtype!r})"

    def terms(self, ops: list[Op], tp: int) -> np.ndarray:
        """Cost terms of every operator (one row each, columns :data:`TERMS`)."""
        bw = self.spec.mem_bw_GBps * 1e9
        out = np.zeros((len(ops), len(TERMS)))
        for i, op in enumerate(ops):
            row = out[i]
            if op.kind == "gemm":
                assert op.gemm is not None
                math_s, nbytes, launches = gpu_gemm_terms(self.id, op.gemm)
                eff = (serving_data().grouped_gemm_efficiency * op.gemm.parallel / op.experts_touched
                       if op.experts_touched else 1.0)
                if op.legacy_mma:
                    math_s /= serving_data().legacy_mma_fraction.get(self.spec.family, 1.0)
                row[0], row[3] = math_s / eff, launches
                row[self._mem_col] = nbytes / bw / eff
            elif op.kind == "attention":
                assert op.attention is not None
                row[0] = op.flops * op.calls / (self._half_peak * 1e12 * self._half_eff)
                row[self._mem_col] = op.bytes * op.calls / bw
                row[3] = op.calls
            elif op.kind == "vector":
                row[self._mem_col] = op.bytes * op.calls / bw
                row[3] = op.calls
            else:
                row[3] = op.calls
                row[4] = op.calls * link_collective_seconds(op.collective, op.message_bytes, tp, self.tp_link,
                                                            self.all_reduce)
        return out

    def seconds(self, ops: list[Op], tp: int) -> np.ndarray:
        """Seconds of every operator at the stored (fitted) parameters; under a power cap,
        tensor time at the clock the cap allows for the step."""
        terms = self.terms(ops, tp)
        if self.power_cap_W is not None:
            terms[:, 0] /= clock_fraction(self.spec, self._uncapped_power_W(ops, tp), self.power_cap_W)
        return combine(terms, self.params.as_array())

    def busy_s(self, ops: list[Op], tp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per operator: tensor-core busy seconds (its useful FLOPs at the dtype's dense peak,
        attention at the 16-bit peak), DRAM busy seconds and seconds, at the stored parameters."""
        terms, theta = self.terms(ops, tp), self.params.as_array()
        peak = float(resolve_peak(self.spec, self.dtype)[1]) * 1e12     # the constructor checked it exists
        tensor = np.array([op.flops * op.calls / (self._half_peak * 1e12 if op.kind == "attention" else peak)
                           for op in ops])
        return tensor, terms[:, 1] / theta[1] + terms[:, 2] / theta[2], combine(terms, theta)

    def _uncapped_power_W(self, ops: list[Op], tp: int) -> float:
        uc, um = step_activity(*self.busy_s(ops, tp))
        return float(gpu_power_W(self.spec, compute_activity=uc, memory_activity=um))

    def step_power_W(self, ops: list[Op], tp: int) -> float:
        """Mean board power while running ``ops`` once, W (``models/gpu/power.py``),
        at most the power cap."""
        p = self._uncapped_power_W(ops, tp)
        return p if self.power_cap_W is None else min(p, self.power_cap_W)


@reads_fit
@cache
def gpu_gemm_terms(gpu_id: str, gemm: Gemm) -> tuple[float, int, int]:
    return gemm_terms(get_gpu(gpu_id), gemm)


class ChipServing:
    """A systolab chip as a serving device: GEMMs through the mapper and the chip's cycle
    model (equal to its RTL), everything else on its vector unit (``ChipConfig.lanes``
    32-bit lanes at the chip's clock)."""

    kind = "custom"

    def __init__(self, chip: ChipConfig, dtype: str):
        self.chip = chip
        self.id = chip.name
        self.dtype = check_chip_dtype(chip.name, chip.core.dtype, dtype)
        area, power, cost = chip_area(chip), chip_power(chip), chip_unit_cost(chip)
        self.memory_bytes = chip.dram.GB * 1e9
        self.power_W = float(power.tdp_W)              # design power: what provisioning counts
        self.idle_power_W = chip_idle_W(chip)
        self.price_usd: float | None = cost.usd
        self.price_range_usd: tuple[float, float] | None = (cost.low_usd, cost.high_usd)
        self.tp_link = chip_link(chip.io_bidir_GBps)
        self.link, self.link_GBps, self.link_latency_s = self.tp_link.kind, self.tp_link.GBps, self.tp_link.latency_s
        self.vector_lanes = chip.lanes
        self.notes = (f"vector unit: {self.vector_lanes:,} 32-bit lanes at {chip.clock_mhz:g} MHz, "
                      f"{area.vector_mm2:.1f} mm², {power.vector_W:.0f} W at full activity "
                      f"(data/energy.yaml: vector_lane, an assumption)",)

    def __repr__(self) -> str:
        return f"ChipServing({self.id!r})"

    def _vector_s(self, elements: float, nbytes: float) -> float:
        return max(elements / (self.vector_lanes * self.chip.clock_hz), nbytes / (self.chip.dram.GBps * 1e9))


    def _attention(self, op: Op) -> tuple[Gemm, Gemm, int]:
        """Attention as the chip runs it: the scores and context GEMMs, and the dense score
        elements its vector unit takes through the softmax (written out and read back)."""
        assert op.attention is not None
        seqs, q_len, ctx, heads, kvh, hd = op.attention
        group, n = heads // kvh, seqs * kvh * op.calls
        scores = Gemm(group * q_len, ctx, hd, self.dtype, n, "attn_scores", seqs * kvh)
        context = Gemm(group * q_len, hd, ctx, self.dtype, n, "attn_context", seqs * kvh)
        return scores, context, seqs * heads * q_len * ctx

    def step_power_W(self, ops: list[Op], tp: int) -> float:
        """Mean power while running ``ops`` once, W: their activity energy (MACs, DRAM and
        SRAM bytes from the mapper and cycle model, vector element operations) over their
        time, plus leakage and the idle floor (``models/silicon/energy.py``). Collectives
        add time, not energy (link energy is not modelled)."""
        macs = dram = sram = vector = 0.0
        for op in ops:
            gemms: list[Gemm] = []
            if op.kind == "gemm":
                assert op.gemm is not None
                gemms = [op.gemm]
            elif op.kind == "attention":
                scores, context, dense = self._attention(op)
                gemms = [scores, context]
                vector += 5 * dense * op.calls
                dram += 2 * dense * 2 * op.calls
            elif op.kind == "vector":
                vector += op.elements * op.calls
                dram += op.bytes * op.calls
            for g in gemms:
                perf = _chip_gemm_perf(self.chip, g)
                macs, dram = macs + perf.macs_issued, dram + perf.bytes_moved
                sram += sum(r["sram_bytes"] for r in perf.gemms)
        return chip_step_power_W(self.chip, seconds=float(self.seconds(ops, tp).sum()), macs_issued=macs,
                                 dram_bytes=dram, sram_bytes=sram, vector_ops=vector)

    def seconds(self, ops: list[Op], tp: int) -> np.ndarray:
        out = np.zeros(len(ops))
        for i, op in enumerate(ops):
            if op.kind == "gemm":
                assert op.gemm is not None
                out[i] = _chip_gemm_seconds(self.chip, op.gemm)
            elif op.kind == "attention":
                scores, context, dense = self._attention(op)
                softmax = self._vector_s(5 * dense, 2 * dense * 2) * op.calls   # scores out and back, 16-bit
                out[i] = _chip_gemm_seconds(self.chip, scores) + _chip_gemm_seconds(self.chip, context) + softmax
            elif op.kind == "vector":
                out[i] = self._vector_s(op.elements, op.bytes) * op.calls
            else:
                out[i] = op.calls * collective_seconds(op.collective, op.message_bytes, tp, self.link_GBps,
                                                       self.link_latency_s)
        return out


@cache
def _chip_gemm_perf(chip: ChipConfig, gemm: Gemm) -> WorkloadPerf:
    return chip_workload_perf(chip, [gemm])


@cache
def _chip_gemm_seconds(chip: ChipConfig, gemm: Gemm) -> float:
    return _chip_gemm_perf(chip, gemm).seconds


def device_prices(dev: GpuServing | ChipServing) -> tuple[tuple[float, float, float], float]:
    """(the device itself at its value, high and low price; the fixed NRE), USD: a GPU's
    street price (no NRE); the chip's manufacturing cost (die, memory, package) and its
    bottom-up NRE (``models/cost/schedule.py``), paid once for all the units."""
    if isinstance(dev, GpuServing):
        if dev.price_usd is None:
            raise UserError(f"device: {dev.id} has no public price", parameter="device")
        lo, hi = dev.price_range_usd or (dev.price_usd, dev.price_usd)
        return (dev.price_usd, hi, lo), 0.0
    chip = dev.chip
    part = unit_cost(die_area_mm2=chip_area(chip).die_mm2, node=chip.node, memory_GB=chip.dram.GB,
                     memory_kind=chip.dram.kind)
    return (part.usd, part.high_usd, part.low_usd), nre_breakdown(chip.node).total.value


def lifetime_cost(dev: GpuServing | ChipServing, *, devices: int, power_W: float | None, idle_power_W: float | None,
                  accelerator_usd: float) -> TcoBreakdown:
    """One device's lifetime cost (``models/cost/tco.py``) in its system (a GPU's HGX or
    PCIe server; the chip on a card, or on OAM modules when a replica of ``devices`` spans
    chips), drawing ``power_W`` while serving and ``idle_power_W`` otherwise (each at most
    its design power), at the cost model's utilisation."""
    system = system_for_gpu(dev.id) if isinstance(dev, GpuServing) else custom_system(devices)
    serving = min(power_W if power_W is not None else dev.power_W, dev.power_W)
    idle = min(idle_power_W if idle_power_W is not None else serving, dev.power_W)
    return per_device_tco(system=system, accelerator_usd=accelerator_usd, peak_power_W=dev.power_W,
                          avg_power_W=serving, idle_power_W=idle,
                          utilization=cost_inputs().operations["utilization"].value)


def get_device(device: Any, dtype: str | None = None, *, runtime: str | None = None,
               power_cap_W: float | None = None) -> GpuServing | ChipServing:
    """A serving device: a GPU id or :class:`GpuSpec`, a chip name or chip file, or a
    :class:`ChipConfig`;
    ``dtype`` defaults to the chip's (GPU: fp8_e4m3 where the GPU has it, else bf16).
    ``runtime`` and ``power_cap_W`` (W) apply to GPUs only (see :class:`GpuServing`)."""
    if is_gpu(device):
        spec = get_gpu(device)
        if dtype is None:
            dtype = "fp8_e4m3" if spec.peak("fp8_e4m3") else "bf16"
        return GpuServing(spec, dtype, runtime, power_cap_W)
    for name, value in (("runtime", runtime), ("power-cap-w", power_cap_W)):
        if value is not None:
            raise UserError(f"{name}: applies to GPUs only, not to the chip {device!r}", parameter=name)
    if not isinstance(device, (str, ChipConfig)):
        raise UserError(f"device: give a GPU id or a chip, not {device!r}", parameter="device")
    try:
        chip = get_chip(device)
    except UserError as exc:
        raise UserError(f"device: {device!r} is neither a GPU id ({', '.join(load_gpus())}) nor a chip "
                        f"({str(exc).split(': ', 1)[-1]})", parameter="device") from None
    return ChipServing(chip, dtype or chip.core.dtype)


# -- scenario ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServingResult:
    """An LLM served on ``tp x pp`` devices of one kind.

    Times in seconds; ``output_tokens_per_s`` per device (the group's output divided by
    its devices), ``output_tokens_per_s_group`` for the whole group; memory in bytes per
    device; energy in J per output token; cost in USD per million output tokens; power in W
    per device (each step at its own power: ``models/gpu/power.py``, the chip's activity
    energy), energy = the steps' power x time over the output tokens."""

    device: str
    kind: str
    model: str
    isl: int
    osl: int
    batching: str               # "static" or "continuous"
    sequences: int              # batch or concurrency
    tp: int
    pp: int
    dtype: str
    kv_dtype: str
    ttft_s: float
    tpot_s: float
    output_tokens_per_s: float
    output_tokens_per_s_group: float
    max_batch: int
    memory: dict[str, float]
    energy_per_token_J: float
    usd_per_million_tokens: float | None
    usd_per_million_tokens_range: tuple[float, float] | None
    prefill_ops: tuple[dict, ...]
    decode_ops: tuple[dict, ...]
    notes: tuple[str, ...] = field(default=())
    power_W: float | None = None            # mean power per device while serving (time-weighted over steps)
    prefill_power_W: float | None = None    # mean power per device during prefill steps
    decode_power_W: float | None = None     # mean power per device during decode steps
    idle_power_W: float | None = None       # a device switched on with no work
    ep: int = 1                             # expert-parallel degree (of the tp devices)
    kv_cache: dict | None = None            # the paged KV cache and both capacities (kv_cache.py)
    schedule: dict | None = None            # continuous batching: the steady-state cycle (batching.py)

    @property
    def devices(self) -> int:
        return self.tp * self.pp

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["devices"] = self.devices
        d["prefill_ops"], d["decode_ops"] = list(self.prefill_ops), list(self.decode_ops)
        d["notes"], d["assumptions"] = list(self.notes), list(ASSUMPTIONS)
        if self.usd_per_million_tokens_range is not None:
            d["usd_per_million_tokens_range"] = list(self.usd_per_million_tokens_range)
        return d

    def to_frame(self):
        """The decode step's operators as a DataFrame (one row per operator)."""
        return data_frame(self.decode_ops)


def check_parallelism(model: DecoderShape, tp: int, pp: int, ep: int = 1) -> None:
    """Tensor parallelism must divide the heads, the FFN and the hidden size (and the KV
    heads, or be a multiple of them); pipeline parallelism must divide the layers; expert
    parallelism the experts and the tensor-parallel size (:func:`check_expert_parallel`)."""
    check_expert_parallel(model, tp, ep)
    if model.heads % tp or model.ffn % tp or model.hidden % tp:
        raise UserError(f"tp: {tp} does not divide {model.name}'s {model.heads} heads, FFN width {model.ffn} and "
                        f"hidden size {model.hidden}", parameter="tp")
    if model.kv_heads % tp and tp % model.kv_heads:
        raise UserError(f"tp: {tp} neither divides nor is a multiple of {model.name}'s {model.kv_heads} KV heads",
                        parameter="tp")
    if model.layers % pp:
        raise UserError(f"pp: {pp} does not divide {model.name}'s {model.layers} layers", parameter="pp")


def check_expert_parallel(model: DecoderShape, tp: int, ep: int) -> None:
    """``ep`` > 1 splits a mixture-of-experts model's experts over ``ep`` of its ``tp``
    tensor-parallel devices (each expert sharded over tp / ep of them): ``ep`` must divide
    the experts and ``tp``; each expert's FFN width must divide by tp / ep."""
    if ep == 1:
        return
    if model.experts <= 1:
        raise UserError(f"ep: {model.name} has no experts to split over {ep} devices", parameter="ep")
    if model.experts % ep:
        raise UserError(f"ep: {ep} does not divide {model.name}'s {model.experts} experts", parameter="ep")
    if tp % ep:
        raise UserError(f"ep: {ep} must divide tp ({tp}): the experts split over ep of the tensor-parallel devices",
                        parameter="ep")
    if model.expert_ffn * ep % tp:
        raise UserError(f"ep: tp / ep = {tp // ep} does not divide {model.name}'s expert width {model.expert_ffn}",
                        parameter="ep")


def memory_plan(model: DecoderShape, *, tp: int, pp: int, prec: Precision, tokens_per_seq: int,
                prefill_tokens: int) -> dict[str, float]:
    """Bytes per device: ``weights``, ``activations`` (the widest operator's input and
    output over the largest prefill) and
    ``kv_per_sequence`` (a sequence of ``tokens_per_seq`` tokens)."""
    kv_token = (model.layers // pp) * kv_elements_per_token(model, tp) * prec.bytes("kv")
    widest = max(model.hidden, 2 * model.ffn // tp, (model.heads + 2 * model.kv_heads) * model.head_dim // tp)
    return {"weights": model.params * prec.bytes("weights") / (tp * pp),
            "activations": prefill_tokens * (model.hidden + widest) * prec.bytes("act"),
            "kv_per_token": kv_token, "kv_per_sequence": kv_token * tokens_per_seq}


def _positive_int(name: str, v: Any) -> int:
    return check_int(name, v, hi=1 << 30)


def check_request(model: str | DecoderShape, *, isl: Any, osl: Any, batch: Any,
                  concurrency: Any) -> tuple[DecoderShape, int, int, bool, int]:
    """What a scenario asks of any device, checked: (model, isl, osl, static batching?,
    sequences). A :class:`UserError` names the parameter: an unknown model, lengths that
    are not positive or exceed the model's context, both or neither of ``batch`` and
    ``concurrency``."""
    shape = model if isinstance(model, DecoderShape) else get_llm(model)
    isl, osl = _positive_int("isl", isl), _positive_int("osl", osl)
    if isl + osl > shape.max_context:
        raise UserError(f"isl: {isl} prompt + {osl} output tokens exceed {shape.name}'s context of "
                        f"{shape.max_context:,} tokens", parameter="isl")
    if (batch is None) == (concurrency is None):
        raise UserError("batch: give exactly one of batch (static batching) and concurrency (continuous batching)",
                        parameter="batch")
    static = batch is not None
    seqs = _positive_int("batch" if static else "concurrency", batch if static else concurrency)
    return shape, isl, osl, static, seqs


def serve(device: Any, model: str | DecoderShape, *, isl: int, osl: int, batch: int | None = None,
          concurrency: int | None = None, tp: int = 1, pp: int = 1, dtype: str | None = None,
          kv_dtype: str | None = None, runtime: str | None = None, power_cap_W: float | None = None,
          ep: int = 1, chunk_tokens: int | None = None, kv_block: int | None = None,
          options: BatchingOptions | None = None) -> ServingResult:
    """Serve ``model`` on ``tp x pp`` devices of ``device`` (a GPU id, chip name or file, or
    a :class:`ChipConfig`), with ``isl`` prompt and ``osl`` output tokens per request and
    either a static ``batch`` or a ``concurrency`` of requests in flight.

    ``dtype`` is the weights' and GEMMs' dtype (default: the chip's; a GPU's fp8 where it
    has it, else bf16); ``kv_dtype`` the KV cache's (default ``dtype``). A request that
    cannot fit, parallelism that does not divide the model, or a dtype the device lacks
    raises :class:`UserError` naming the parameter. On a GPU, ``runtime`` names the serving
    runtime (``data/runtimes.yaml``; default the fitted vLLM) and ``power_cap_W`` caps the
    board's power, W (:class:`GpuServing`). ``ep`` > 1 splits a mixture-of-experts model's
    experts over ``ep`` of the ``tp`` devices (:func:`check_expert_parallel`). ``chunk_tokens`` is the engine step's token
    budget (default ``serving.yaml: batching.max_step_tokens``) and ``kv_block`` the KV
    cache's block size in tokens (default the runtime's): :mod:`.kv_cache`, :mod:`.batching`;
    ``options`` (:class:`~.batching.BatchingOptions`: prefix caching, speculative decoding)
    apply to continuous batching."""
    shape, isl, osl, static, seqs = check_request(model, isl=isl, osl=osl, batch=batch, concurrency=concurrency)
    tp, pp, ep = _positive_int("tp", tp), _positive_int("pp", pp), _positive_int("ep", ep)
    if isinstance(device, (GpuServing, ChipServing)) and (runtime is not None or power_cap_W is not None):
        raise UserError("runtime: with a device object, give runtime and power_cap_W to get_device instead",
                        parameter="runtime")
    dev = (device if isinstance(device, (GpuServing, ChipServing))
           else get_device(device, dtype, runtime=runtime, power_cap_W=power_cap_W))
    if dtype is not None and canonical_name(dtype) != dev.dtype:
        raise UserError(f"dtype: the device was made for {dev.dtype}, not {dtype}", parameter="dtype")
    kv_dtype = canonical_name(kv_dtype) if kv_dtype else default_kv_dtype(dev.dtype)
    if kv_dtype not in DTYPES or get_dtype(kv_dtype).weight_only:
        raise UserError(f"kv-dtype: {kv_dtype!r} is not a KV-cache dtype ({', '.join(DTYPES)}, not weight-only)",
                        parameter="kv-dtype")
    if isinstance(dev, GpuServing) and kv_dtype != dev.dtype and not dev.spec.peak(kv_dtype) and kv_dtype not in ("fp16", "bf16"):
        raise UserError(f"kv-dtype: {dev.id} has no {kv_dtype} support", parameter="kv-dtype")
    if isinstance(dev, GpuServing) and kv_dtype in FP4_DTYPES:
        check_gpu_dtype(dev.spec, kv_dtype, parameter="kv-dtype")
    if dev.kind == "custom" and kv_dtype != dev.dtype:
        raise UserError(f"kv-dtype: {dev.id} computes attention in {dev.dtype}; the KV cache must be {dev.dtype}",
                        parameter="kv-dtype")
    check_parallelism(shape, tp, pp, ep)
    prec = Precision(dev.dtype, kv_dtype)
    budget = max_step_tokens() if chunk_tokens is None else check_step_tokens(chunk_tokens)
    block = kv_block_tokens(getattr(dev, "runtime", None)) if kv_block is None else check_block_tokens(kv_block)
    # activations: one engine step of the token budget (static batches too: what a runtime reserves)
    mem = memory_plan(shape, tp=tp, pp=pp, prec=prec, tokens_per_seq=isl + osl, prefill_tokens=budget)
    capacity = dev.memory_bytes * serving_data().usable_memory_fraction
    # the one capacity check (as perf --chip, map --chip and compare): the weights on each device
    check_fits(mem["weights"], capacity / 1e9, dev.id, parameter="tp", of="usable memory", plural=True,
               what=f"on each of {tp * pp} {dev.id}, {shape.name}'s weights", hint="raise tp or pp")
    opt = check_options(options, static)
    shared = opt.cached_tokens(isl, block)
    kv = KvCache(block, mem["kv_per_token"], capacity, mem["weights"], mem["activations"], budget)
    max_batch = check_capacity(kv, isl=isl, osl=osl, seqs=seqs, static=static, device=dev.id, shared=shared)
    mem.update(capacity=capacity, kv_cache=(seqs * kv.blocks_per_request(isl, osl, static, shared)
                                            + -(-shared // block)) * kv.bytes_per_block)

    plan = serving_plan(shape, isl=isl, osl=osl, seqs=seqs, static=static, tp=tp, pp=pp, prec=prec, ep=ep,
                        chunk_tokens=budget, options=opt, block_tokens=block,
                        moe=moe_run(dev.runtime) if isinstance(dev, GpuServing) else None)
    timed = [(w, ops, dev.seconds(ops, tp)) for w, ops in plan["steps"]]
    ttft = sum(c * float(sec.sum()) for (_, _, sec), c in zip(timed, plan["ttft"]))
    total = sum(w * float(sec.sum()) for w, _, sec in timed)
    tpot = (sum(c * float(sec.sum()) for (_, _, sec), c in zip(timed, plan["tpot"])) if "tpot" in plan
            else (total - ttft) / max(osl - 1, 1))
    _, pre_ops, pre_sec = timed[0]
    run = [t for t in timed[1:] if t[0] > 0]         # the cycle's steps (not those that time the first token only)
    _, dec_ops, dec_sec = run[len(run) // 2] if run else timed[0]
    group_rate = seqs * osl / total
    devices = tp * pp
    per_device = group_rate / devices
    watts = [dev.step_power_W(ops, tp) for _, ops, _ in timed]
    joules = [w * float(sec.sum()) * p for (w, _, sec), p in zip(timed, watts)]    # per device
    energy = sum(joules) * devices / (seqs * osl)
    decode_s = sum(w * float(sec.sum()) for w, _, sec in timed[1:])
    power = {"power_W": sum(joules) / total, "prefill_power_W": watts[0], "idle_power_W": dev.idle_power_W,
             "decode_power_W": sum(joules[1:]) / decode_s if decode_s > 0 else None}
    cost = cost_range = None
    if dev.price_usd:
        # each device at its lifetime cost (server, network, facility, energy at the power it
        # draws, maintenance, operations); a chip's NRE over its volume_units
        prices, nre = device_prices(dev)
        nre_unit = nre / dev.chip.volume_units if isinstance(dev, ChipServing) else 0.0
        low, value, high = (float(usd_per_million_tokens_tco(
            lifetime_cost(dev, devices=devices, power_W=power["power_W"], idle_power_W=dev.idle_power_W,
                          accelerator_usd=p), tokens_per_s=per_device, nre_per_unit_usd=nre_unit))
            for p in (prices[2], prices[0], prices[1]))
        cost, cost_range = value, (low, high)

    def table(ops: list[Op], sec: np.ndarray) -> tuple[dict, ...]:
        return tuple({**op.to_dict(), "seconds": float(s)} for op, s in zip(ops, sec))

    return ServingResult(dev.id, dev.kind, shape.name, isl, osl, "static" if static else "continuous", seqs, tp, pp,
                         dev.dtype, kv_dtype, ttft, tpot, per_device, group_rate, max_batch, mem, energy, cost,
                         cost_range, table(pre_ops, pre_sec), table(dec_ops, dec_sec),
                         tuple(dev.notes) + (OPTION_ASSUMPTIONS if opt.active else ()), **power,
                         kv_cache=kv.summary(isl, osl, shared),
                         schedule={**plan["schedule"].to_dict(), "options": opt.to_dict()} if "schedule" in plan else None,
                         ep=ep)


def serving_plan(shape: DecoderShape, *, isl: int, osl: int, seqs: int, static: bool, tp: int, pp: int,
                 prec: Precision, kv_shared: bool = True, ep: int = 1, chunk_tokens: int | None = None,
                 options: BatchingOptions | None = None, block_tokens: int = 16, moe: MoeRun | None = None) -> dict:
    """The forward steps a scenario is timed by: ``steps`` as (weight, operators); the run
    takes sum(weight x step time) and the first token sum(``ttft`` x step time). With
    ``pp`` stages the batch runs as ``pp`` micro-batches: a step's
    operators are those of one micro-batch through all layers, plus the hand-overs.
    Continuous batching (``static=False``) is :func:`.batching.continuous_plan` under a
    step token budget of ``chunk_tokens`` (default ``serving.yaml``); it adds ``tpot``
    (the weights of the time per output token) and ``schedule``. ``moe``: how the runtime runs
    mixture-of-experts blocks (:func:`moe_run`)."""
    micro = -(-seqs // pp)

    def ops(n: int, q_len: int, ctx: int) -> list[Op]:
        out = step_ops(shape, seqs=n, q_len=q_len, ctx=ctx, tp=tp, prec=prec, kv_shared=kv_shared, ep=ep, moe=moe)
        if pp > 1:
            out.append(Op("pipeline_send", "collective", pp - 1, collective="send",
                          message_bytes=n * q_len * shape.hidden * prec.bytes("act")))
        return out

    if static:
        ctxs = decode_contexts(isl, osl)
        fill = 1 + (min(pp, seqs) - 1) / pp            # the micro-batches' prefills queue behind one another
        steps = [(fill, ops(micro, isl, isl))] + [((osl - 1) / len(ctxs), ops(micro, 1, c)) for c in ctxs]
        return {"steps": steps, "ttft": [fill] + [0.0] * len(ctxs)}
    return continuous_plan(ops, isl=isl, osl=osl, seqs=micro, options=options, block_tokens=block_tokens,
                           budget=max_step_tokens() if chunk_tokens is None else chunk_tokens)


def decode_contexts(isl: int, osl: int, samples: int = DECODE_SAMPLES) -> list[int]:
    """Context lengths at which decode steps are timed: the midpoints of ``samples`` equal
    spans of the ``osl - 1`` decode steps (every step when there are fewer)."""
    n = osl - 1
    if n <= 0:
        return []
    if n <= samples:
        return [isl + 1 + j for j in range(n)]
    return [isl + 1 + int((j + 0.5) * n / samples) for j in range(samples)]


# -- fleets (the fleets themselves: fleet.py) ----------------------------------------------
#: Tensor-parallel sizes tried, smallest first, when a fleet's ``tp`` is not given.
AUTO_TP = (1, 2, 4, 8, 16, 32, 64)


def auto_tp_sizes(ep: int = 1) -> tuple[int, ...]:
    """The tensor-parallel sizes of :data:`AUTO_TP` that the expert-parallel degree ``ep``
    divides (the experts split over ``ep`` of the ``tp`` devices)."""
    ep = check_int("ep", ep, hi=AUTO_TP[-1])
    return tuple(t for t in AUTO_TP if t % ep == 0)


def serve_auto(device: Any, model: str | DecoderShape, *, tp: int | None = None, **kwargs) -> ServingResult:
    """:func:`serve` at ``tp``, or at the smallest tensor-parallel size in :data:`AUTO_TP`
    (those ``ep`` divides) on which the scenario fits (the last size's error when none does)."""
    if tp is not None:
        return serve(device, model, tp=tp, **kwargs)
    error: UserError | None = None
    for t in auto_tp_sizes(kwargs.get("ep", 1)):
        try:
            return serve(device, model, tp=t, **kwargs)
        except UserError as exc:
            if exc.parameter not in ("tp", "batch", "concurrency", "isl"):
                raise
            error = exc
    assert error is not None
    raise error
