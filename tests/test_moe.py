"""Mixture-of-experts decode: routing statistics (models/serving/moe.py) and how the
serving model times the expert GEMMs with them."""
import dataclasses
import json
import math

import pytest

from systolab.errors import UserError
from systolab.models.serving import model as sm
from systolab.models.serving.model import GpuServing, Op, Precision, serve, step_ops
from systolab.models.serving.moe import (
    distinct_experts,
    expected_max_load,
    expert_load,
    simulate_max_load,
)
from systolab.models.specs import load_yaml
from systolab.models.workloads.catalog import get_llm
from systolab.models.workloads.gemm import Gemm

BF16 = Precision("bf16", "bf16")


def test_distinct_experts_limits():
    assert distinct_experts(1, 8, 2) == pytest.approx(2.0)            # one token: its k experts
    assert distinct_experts(1, 256, 8) == pytest.approx(8.0)
    assert distinct_experts(10_000, 8, 2) == pytest.approx(8.0)       # many tokens: every expert
    assert distinct_experts(8, 8, 2) == pytest.approx(8 * (1 - 0.75 ** 8))
    seq = [distinct_experts(t, 8, 2) for t in range(1, 40)]
    assert all(b > a for a, b in zip(seq, seq[1:])) and seq[-1] < 8
    assert distinct_experts(5, 4, 4) == 4.0                           # every token to every expert


def test_imbalance_is_at_least_one_and_vanishes_with_many_tokens():
    loads = [expert_load(t, 8, 2) for t in (1, 2, 4, 8, 16, 64, 256, 1024, 100_000)]
    assert all(x.imbalance >= 1.0 for x in loads)
    assert loads[0].imbalance == pytest.approx(1.0) and loads[0].max_tokens == pytest.approx(1.0)
    assert loads[3].imbalance > 1.5                                   # 8 tokens: the busiest expert has ~4
    tail = [x.imbalance for x in loads[4:]]
    assert all(b < a for a, b in zip(tail, tail[1:])) and tail[-1] < 1.01
    assert 1.0 < expert_load(10**7, 8, 2).imbalance < 1.001           # a long prefill: summed over a band only
    x = loads[3]
    assert (x.gemm_experts, x.gemm_rows) == (7, 4) and x.to_dict()["distinct"] == pytest.approx(x.distinct)


@pytest.mark.parametrize("tokens", [2, 8, 32])
def test_closed_form_busiest_expert_matches_a_seeded_simulation(tokens):
    sim = simulate_max_load(tokens, 8, 2, trials=4000, seed=1)
    assert expected_max_load(tokens, 8, 2) == pytest.approx(sim, rel=0.06)
    assert simulate_max_load(tokens, 8, 2, trials=500, seed=3) == simulate_max_load(tokens, 8, 2, trials=500, seed=3)


def test_bad_routing_arguments_name_the_parameter():
    with pytest.raises(UserError, match="^experts_per_token: 3 exceeds") as e:
        expert_load(4, 2, 3)
    assert e.value.parameter == "experts_per_token"
    with pytest.raises(UserError) as e:
        distinct_experts(0, 8, 2)
    assert e.value.parameter == "tokens"
    with pytest.raises(UserError, match="^trials: ") as e:
        simulate_max_load(100_000, 8, 2, trials=1000)
    assert e.value.parameter == "trials"


def test_expert_gemms_cover_the_touched_experts_and_the_busiest_expert():
    m = get_llm("mixtral-8x7b")
    one = {op.name: op for op in step_ops(m, seqs=1, q_len=1, ctx=100, tp=2, prec=BF16)}
    g = one["expert_gate_up"].gemm
    assert (g.M, g.N, g.K, g.parallel) == (1, 2 * m.ffn // 2, m.hidden, 2)
    assert one["expert_gate_up"].experts_touched == pytest.approx(2.0)
    assert {"router", "expert_topk", "expert_sort", "expert_down", "expert_combine"} <= set(one)
    eight = {op.name: op for op in step_ops(m, seqs=8, q_len=1, ctx=100, tp=2, prec=BF16)}
    g = eight["expert_down"].gemm
    assert (g.M, g.parallel) == (4, 7)                                 # 7.2 experts touched, busiest has ~3.8
    assert eight["expert_down"].to_dict()["experts_touched"] == pytest.approx(8 * (1 - 0.75 ** 8))


def test_an_expert_split_tp_cannot_divide_raises_naming_tp():
    with pytest.raises(UserError, match="^tp: 3 does not divide") as e:
        serve("h100-sxm", "mixtral-8x7b", isl=128, osl=16, batch=1, tp=3, dtype="bf16")
    assert e.value.parameter == "tp"


def _balanced_moe_ops(m, T, ffn, prec):
    """The expert block as the model read it before: tokens spread evenly over
    min(E, T k) experts, dense GEMM kernels, no routing kernels."""
    L, h, w, k = m.layers, m.hidden, prec.weights, m.experts_per_token
    active = min(m.experts, T * k)
    routed = -(-T * k // active)

    def gemm(name, M, N, K, parallel):
        g = Gemm(M, N, K, w, L * parallel, name, parallel)
        return Op(name, "gemm", L, flops=g.flops / L, bytes=g.min_bytes / L, gemm=g)

    return [gemm("router", T, m.experts, h, 1), gemm("expert_gate_up", routed, 2 * ffn, h, active),
            gemm("expert_down", routed, h, ffn, active)]


def _tpot(batch, gpu="h100-sxm"):
    return serve(gpu, "mixtral-8x7b", isl=128, osl=32, batch=batch, tp=2, dtype="bf16").tpot_s


@pytest.mark.parametrize("batch", [1, 2, 128])
def test_mixtral_decode_is_slower_than_balanced_dense_gemms(monkeypatch, batch):
    """Batch 1-2: the routing kernels and the grouped kernel's efficiency; batch 128: the
    busiest expert's extra rows. (At 4-8 tokens the balanced reading read all 8 experts
    where 5.5-7.2 are touched on average, so it is not slower there.)"""
    now = _tpot(batch)
    monkeypatch.setattr(sm, "moe_ops", _balanced_moe_ops)
    assert now > 1.02 * _tpot(batch)


@pytest.mark.parametrize("model, tp", [("llama3-8b", 1), ("llama3-70b", 4)])
def test_dense_models_never_reach_the_moe_path(monkeypatch, model, tp):
    before = serve("h100-sxm", model, isl=512, osl=64, batch=8, tp=tp).to_dict()

    def refuse(*args, **kwargs):
        raise AssertionError("a dense model reached the MoE block")

    monkeypatch.setattr(sm, "moe_ops", refuse)
    monkeypatch.setattr(sm, "expert_load", refuse)
    after = serve("h100-sxm", model, isl=512, osl=64, batch=8, tp=tp).to_dict()
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    assert not any("experts_touched" in op for op in after["decode_ops"])
    assert math.isfinite(after["tpot_s"])


def test_the_grouped_kernel_efficiency_is_sourced_and_scales_the_expert_gemms():
    row = load_yaml(sm.SERVING_FILE)["moe"]["grouped_gemm_efficiency"]
    assert row["low"] <= row["value"] <= row["high"] <= 1.0 and "pytorch.org" in row["source"]
    eff = sm.serving_data().grouped_gemm_efficiency
    assert eff == row["value"]
    m = get_llm("mixtral-8x7b")
    op = next(o for o in step_ops(m, seqs=8, q_len=1, ctx=64, tp=2, prec=BF16) if o.name == "expert_down")
    dense = dataclasses.replace(op, experts_touched=0.0)
    dev = GpuServing("h100-sxm", "bf16")
    grouped, plain = dev.terms([op], 2)[0], dev.terms([dense], 2)[0]
    scale = op.experts_touched / op.gemm.parallel / eff               # 7 GEMMs stand for 7.2 experts
    assert scale > 1.0
    assert grouped[0] == pytest.approx(plain[0] * scale) and grouped[1] == pytest.approx(plain[1] * scale)
    assert grouped[3] == plain[3]                                     # one kernel, as a dense GEMM's
