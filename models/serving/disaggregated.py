"""Disaggregated prefill and decode: separate pools of devices, the KV cache sent between them.

A disaggregated deployment (DistServe, Zhong et al. 2024, arXiv:2401.09670; Splitwise,
Patel et al. 2024, arXiv:2311.18885; vLLM's and TensorRT-LLM's disaggregated serving)
runs prompts on a *prefill* pool and output tokens on a *decode* pool, so that neither
phase's steps slow the other's. A request's KV cache (its ``isl`` prompt tokens, every
layer) moves from the prefill group to a decode group over the fabric once.

The model, per request kind (``isl`` prompt and ``osl`` output tokens):

* **prefill pool**: ``prefill_groups`` groups of ``prefill_tp`` devices, each running
  prefill-only engine steps (:func:`~systolab.models.serving.model.serve` with one output
  token at the concurrency that fills the step token budget): requests/s per group and
  the prefill's time to the first token;
* **transfer**: the prompt's KV bytes, each prefill device sending its own shard on its
  own link of ``link_GBps`` per direction (default the device's NVLink, or PCIe: both
  pools in one NVLink domain; about 50 GB/s for a 400 Gb/s InfiniBand port per GPU), plus
  the link's latency; added to the first token's time (layer-by-layer streaming, which
  would hide part of it, is not modelled);
* **decode pool**: ``decode_groups`` groups of ``decode_tp`` devices, each with
  ``concurrency`` requests decoding in steady state (decode-only steps at the mean
  context ``isl + osl / 2``; the KV cache must hold them): TPOT is one step, and a group
  finishes ``concurrency / ((osl - 1) x TPOT)`` requests a second.

The system serves the smaller of the two pools' request rates; output tokens/s per device
divide it over every device of both pools.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...checks import check_int, check_positive
from ...errors import UserError
from ..workloads.catalog import get_llm
from .kv_cache import max_step_tokens
from .model import GpuServing, Precision, get_device, serve, step_ops


@dataclass(frozen=True)
class DisaggregatedResult:
    """Disaggregated serving of ``model`` on ``device``: times in s, rates per second,
    bytes per request (all layers, all KV heads), link bandwidth in GB/s per direction."""

    device: str
    model: str
    isl: int
    osl: int
    concurrency: int               # requests decoding on each decode group
    prefill_tp: int
    decode_tp: int
    prefill_groups: int
    decode_groups: int
    kv_bytes_per_request: float
    link_GBps: float
    kv_transfer_s: float
    prefill_ttft_s: float
    ttft_s: float
    tpot_s: float
    prefill_requests_per_s: float   # the whole prefill pool
    decode_requests_per_s: float    # the whole decode pool
    output_tokens_per_s: float      # the system
    output_tokens_per_s_per_device: float
    bound: str                      # "prefill" or "decode": the pool that limits the rate

    @property
    def devices(self) -> int:
        return self.prefill_groups * self.prefill_tp + self.decode_groups * self.decode_tp

    def to_dict(self) -> dict:
        return {**asdict(self), "devices": self.devices}


def disaggregated(device: Any, model: str, *, isl: int, osl: int, concurrency: int, prefill_tp: int = 1,
                  decode_tp: int = 1, prefill_groups: int = 1, decode_groups: int = 1, dtype: str | None = None,
                  kv_dtype: str | None = None, link_GBps: float | None = None,
                  chunk_tokens: int | None = None) -> DisaggregatedResult:
    """Serve ``model`` on ``device`` (a GPU id) with separate prefill and decode pools (see
    the module's description). A :class:`UserError` names the parameter: pool sizes that
    are not positive integers, a ``link_GBps`` that is not positive, a decode ``concurrency``
    the decode group's KV cache cannot hold (``concurrency``), and whatever
    :func:`~systolab.models.serving.model.serve` refuses."""
    groups = {name: check_int(name, v) for name, v in (("prefill-groups", prefill_groups),
                                                       ("decode-groups", decode_groups))}
    concurrency = check_int("concurrency", concurrency)
    budget = max_step_tokens() if chunk_tokens is None else chunk_tokens
    fill = max(1, budget // max(int(isl), 1))          # prompts that fill one prefill step
    pre = serve(device, model, isl=isl, osl=1, concurrency=fill, tp=prefill_tp, dtype=dtype, kv_dtype=kv_dtype,
                chunk_tokens=chunk_tokens)
    # the decode group's capacity check (steady state at the decode concurrency) and its KV accounting
    dec = serve(device, model, isl=isl, osl=osl, concurrency=concurrency, tp=decode_tp, dtype=dtype,
                kv_dtype=kv_dtype, chunk_tokens=chunk_tokens)
    dev = get_device(device, dtype)
    if not isinstance(dev, GpuServing):
        raise UserError(f"device: disaggregated serving is modelled on GPUs, not on {dev.id}", parameter="device")
    link = dev.link_GBps if link_GBps is None else check_positive("link-GBps", link_GBps)
    kv_token = dec.memory["kv_per_token"] * decode_tp          # all KV heads (each device holds 1/tp of them)
    kv_bytes = kv_token * isl
    # each prefill device sends its shard on its own link (KV heads replicate beyond kv_heads: no gain)
    transfer = kv_bytes / min(prefill_tp, decode_tp) / (link * 1e9) + dev.link_latency_s
    ops = step_ops(get_llm(dec.model), seqs=concurrency, q_len=1, ctx=isl + osl // 2, tp=decode_tp,
                   prec=Precision(dev.dtype, dec.kv_dtype))
    tpot = float(dev.seconds(ops, decode_tp).sum())
    pre_rate = groups["prefill-groups"] * pre.output_tokens_per_s_group      # one token per prefill request
    dec_rate = groups["decode-groups"] * concurrency / (max(osl - 1, 1) * tpot)
    rate = min(pre_rate, dec_rate)
    devices = groups["prefill-groups"] * prefill_tp + groups["decode-groups"] * decode_tp
    return DisaggregatedResult(dev.id, dec.model, isl, osl, concurrency, prefill_tp, decode_tp,
                               groups["prefill-groups"], groups["decode-groups"], kv_bytes, link, transfer,
                               pre.ttft_s, pre.ttft_s + transfer, tpot, pre_rate, dec_rate, rate * osl,
                               rate * osl / devices, "prefill" if pre_rate < dec_rate else "decode")


__all__ = ["disaggregated", "DisaggregatedResult"]
