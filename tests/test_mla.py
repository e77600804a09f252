"""DeepSeek-V3 class models in serving: MLA attention (its latent KV cache, absorbed decode),
shared experts and leading dense layers, and expert parallelism."""
import json

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.serving.goodput import goodput
from systolab.models.serving.mla import kv_elements_per_token, mla_step
from systolab.models.serving.model import Precision, auto_tp_sizes, collective_seconds, serve, step_ops
from systolab.models.serving.moe import expert_load, expert_parallel_share
from systolab.models.workloads.catalog import get_llm

DS = get_llm("deepseek-v3")


def test_the_latent_cache_is_576_elements_per_token_and_layer():
    assert kv_elements_per_token(DS, 8) == 512 + 64
    assert kv_elements_per_token(get_llm("llama3-70b"), 8) == 2 * 1 * 128
    r = serve("h200-sxm", "deepseek-v3", isl=1024, osl=256, concurrency=16, tp=8)
    assert r.memory["kv_per_token"] == 61 * 576 * 1            # fp8 KV: 34.3 kB a token, every device


def test_absorbed_decode_reads_the_latent_once_for_all_heads():
    one = mla_step(DS, seqs=4, q_len=1, ctx=4096, tp=8, act_bytes=2, kv_bytes=1)
    more = mla_step(DS, seqs=4, q_len=1, ctx=8192, tp=8, act_bytes=2, kv_bytes=1)
    assert more.bytes - one.bytes == pytest.approx(4 * 4096 * 576)         # the latent, not 16 heads' K and V
    assert one.flops == 2 * (576 + 512) * 4 * 16 * 4096                     # scores over 576, context over 512
    assert [g[0] for g in one.before] == ["q_a", "q_b", "kv_a", "w_uk"] and one.shape[4] == 1
    pre = mla_step(DS, seqs=1, q_len=512, ctx=512, tp=8, act_bytes=2, kv_bytes=1)
    assert ("kv_b", 512, 16 * 256, 512, 1) in pre.before                  # expanded for prefill


def test_a_decode_step_reads_every_weight_once_with_the_down_projections_replicated():
    tp = 8
    ops = step_ops(DS, seqs=4096, q_len=1, ctx=100, tp=tp, prec=Precision("bf16", "bf16"))
    weights = sum(op.gemm.K * op.gemm.N * op.gemm.count for op in ops if op.kind == "gemm") - DS.vocab * DS.hidden / tp
    replicated = 61 * DS.hidden * (1536 + 576) + 58 * DS.hidden * 256      # q_a, kv_a, router
    expected = (DS.params - 2 * DS.vocab * DS.hidden - replicated) / tp + replicated
    assert weights == pytest.approx(expected, rel=1e-3)
    names = [op.name for op in ops]
    assert names.count("gate_up") == 1 and next(op for op in ops if op.name == "gate_up").calls == 3
    assert next(op for op in ops if op.name == "expert_gate_up").calls == 58 and "shared_gate_up" in names


def test_expert_parallelism_splits_the_experts_and_adds_all_to_alls():
    prec = Precision("fp8_e4m3", "fp8_e4m3")
    ep1 = step_ops(DS, seqs=64, q_len=1, ctx=2048, tp=8, prec=prec)
    ep8 = step_ops(DS, seqs=64, q_len=1, ctx=2048, tp=8, prec=prec, ep=8)
    g1, g8 = (next(op for op in ops if op.name == "expert_gate_up") for ops in (ep1, ep8))
    assert g8.gemm.N == 2 * 2048 and g1.gemm.N == 2 * 2048 // 8          # whole experts against tp-sharded ones
    assert g8.experts_touched == pytest.approx(g1.experts_touched / 8)
    # the same expert weight bytes per device either way
    assert g8.gemm.N * g8.experts_touched == pytest.approx(g1.gemm.N * g1.experts_touched)
    a2a = [op for op in ep8 if op.collective == "all_to_all"]
    assert [op.name for op in a2a] == ["moe_dispatch", "moe_combine"]
    assert a2a[0].message_bytes == 64 / 8 * 8 * DS.hidden * 2
    assert not any(op.collective == "all_to_all" for op in ep1)
    assert 0 < collective_seconds("all_to_all", 1e6, 8, 450, 5e-6) < collective_seconds("all_gather", 1e6, 8, 450, 5e-6)
    touched, n = expert_parallel_share(expert_load(64, 256, 8), 8)
    assert n == round(touched) and touched == pytest.approx(expert_load(64, 256, 8).distinct / 8)


@pytest.mark.parametrize("model, tp, ep, says", [
    ("deepseek-v3", 8, 3, "ep: 3 does not divide deepseek-v3's 256 experts"),
    ("deepseek-v3", 4, 8, "ep: 8 must divide tp"),
    ("llama3-70b", 8, 2, "ep: llama3-70b has no experts"),
])
def test_bad_expert_parallelism_names_ep(model, tp, ep, says):
    with pytest.raises(UserError, match=says) as e:
        serve("h200-sxm", model, isl=128, osl=16, batch=1, tp=tp, ep=ep)
    assert e.value.parameter == "ep"


def test_deepseek_v3_needs_eight_h200(capsys):
    with pytest.raises(UserError) as e:
        serve("h200-sxm", "deepseek-v3", isl=1024, osl=256, batch=1, tp=4)
    assert e.value.parameter == "tp"
    assert main(["serve", "--device", "h200-sxm", "--model", "deepseek-r1", "--tp", "8", "--ep", "8", "--isl", "1024",
                 "--osl", "256", "--concurrency", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ep"] == 8 and out["model"] == "deepseek-v3" and out["output_tokens_per_s_group"] > 0
    assert any("MLA" in a for a in out["assumptions"])
    assert main(["serve", "--device", "h200-sxm", "--model", "deepseek-v3", "--tp", "8", "--ep", "3", "--isl", "1024",
                 "--osl", "256", "--concurrency", "32", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "ep"


def test_ep_at_the_goodput_point_and_in_fleets(capsys):
    """--ep (and the other serving flags) reach the goodput search and the fleet, whose
    automatic tensor-parallel sizes are those ep divides."""
    plain = goodput("h100-sxm", "mixtral-8x7b", isl=512, osl=128, tpot_s=0.05, tp=2)
    split = goodput("h100-sxm", "mixtral-8x7b", isl=512, osl=128, tpot_s=0.05, tp=2, ep=2)
    assert split.chosen.ep == 2 and plain.chosen.ep == 1
    assert split.output_tokens_per_s != pytest.approx(plain.output_tokens_per_s, rel=1e-3)
    assert goodput("h100-sxm", "mixtral-8x7b", isl=512, osl=128, tpot_s=0.05, ep=2).chosen.tp % 2 == 0
    assert auto_tp_sizes(4) == (4, 8, 16, 32, 64)
    with pytest.raises(UserError) as e:
        goodput("h100-sxm", "mixtral-8x7b", isl=512, osl=128, tpot_s=0.05, tp=2, ep=3)
    assert e.value.parameter == "ep"
    args = ["--device", "h200-sxm", "--model", "deepseek-v3", "--tp", "8", "--isl", "1024", "--osl", "256",
            "--tpot-s", "0.1", "--json"]
    assert main(["serve", *args, "--ep", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["ep"] == 8
    fleet_args = ["fleet", "--devices", "h100-sxm", "--model", "mixtral-8x7b", "--isl", "512", "--osl", "128",
                  "--concurrency", "16", "--tp", "2", "--json"]
    assert main(fleet_args) == 0
    plain_row = json.loads(capsys.readouterr().out)["rows"][0]
    assert main([*fleet_args, "--ep", "2", "--runtime", "trtllm-0.9", "--power-cap-w", "400"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["runtime"], out["power_cap_W"]) == ("trtllm-0.9", 400)
    assert out["rows"][0]["output_tokens_per_s"] != pytest.approx(plain_row["output_tokens_per_s"], rel=1e-3)
    assert main([*fleet_args, "--ep", "3"]) == 2         # the question's error, not one device's
    assert json.loads(capsys.readouterr().out)["parameter"] == "ep"
    assert main([*fleet_args, "--runtime", "nope"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "runtime"
