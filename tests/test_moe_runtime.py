"""How a runtime and a benchmark run mixture-of-experts blocks (models/serving/moe.py: MoeRun,
models/serving/model.py: moe_run): the routing of random-weight benchmark engines, and
TensorRT-LLM's grouped expert GEMM before 0.10 (16-bit experts on Ampere kernels)."""
import json
from dataclasses import replace

import numpy as np
import pytest

from systolab.errors import UserError
from systolab.models.serving import fit as sf
from systolab.models.serving import model as sm
from systolab.models.serving.model import GpuServing, Precision, moe_run, serve, step_ops
from systolab.models.serving.moe import ROUTINGS, MoeRun, expert_load
from systolab.models.specs import load_yaml
from systolab.models.workloads.catalog import get_llm

FP8 = Precision("fp8_e4m3", "fp8_e4m3")
MIXTRAL = get_llm("mixtral-8x7b")


def test_collapsed_routing_sends_every_token_to_the_same_k_experts():
    one = expert_load(64, 8, 2, "collapsed")
    assert (one.distinct, one.max_tokens, one.imbalance) == (2.0, 64.0, 1.0)
    assert (one.gemm_experts, one.gemm_rows) == (2, 64)
    spread = expert_load(64, 8, 2)                       # a trained router: nearly every expert
    assert spread.distinct > 7.9 and spread.gemm_rows < 64


@pytest.mark.parametrize("make", [lambda: expert_load(8, 8, 2, "random"), lambda: MoeRun(routing="sorted")])
def test_an_unknown_routing_is_refused_naming_it(make):
    with pytest.raises(UserError, match="^routing: ") as e:
        make()
    assert e.value.parameter == "routing" and all(r in str(e.value) for r in ROUTINGS)


def test_the_expert_dtype_falls_back_to_what_the_grouped_gemm_supports():
    old = MoeRun(expert_dtypes=("fp16", "bf16"))
    assert old.expert_dtype("fp8_e4m3") == "fp16" and old.expert_dtype("bf16") == "bf16"
    assert MoeRun().expert_dtype("fp8_e4m3") == "fp8_e4m3"


def test_moe_run_reads_the_runtime_and_the_random_weight_sources():
    assert moe_run("trtllm-0.9", "TRT-LLM-PERF-V090") == MoeRun("collapsed", ("fp16", "bf16"), True, True)
    assert moe_run("trtllm-0.9").routing == "uniform"        # a served model has trained weights
    assert moe_run("trtllm-0.8") == moe_run("trtllm-0.9")
    assert moe_run("vllm") == moe_run(None) == moe_run("vllm", "VLLM-PERF-BENCH") == MoeRun()


def test_the_new_moe_inputs_are_sourced_and_the_sources_exist():
    doc = load_yaml(sm.SERVING_FILE)
    moe = doc["moe"]
    hopper = moe["legacy_mma_fraction"]["hopper"]
    assert hopper["low"] <= hopper["value"] <= hopper["high"] < 1 and "arXiv:2407.08608" in hopper["source"]
    assert sm.serving_data().legacy_mma_fraction == {"hopper": hopper["value"]}
    for name, entry in moe["runtimes"].items():
        assert "moe_gemm_kernels_template.h" in entry["source"] and name in sf.runtimes()
    assert set(moe["random_weights"]["sources"]) <= set(doc["measurement_sources"])
    assert "trtllm-build --model_config" in moe["random_weights"]["basis"]


def _ops(moe=None, seqs=16):
    return {op.name: op for op in step_ops(MIXTRAL, seqs=seqs, q_len=1, ctx=256, tp=2, prec=FP8, moe=moe)}


def test_an_fp8_build_on_trtllm_0_9_runs_its_experts_in_fp16_on_legacy_kernels():
    old, new = _ops(moe_run("trtllm-0.9")), _ops()
    for name in ("expert_gate_up", "expert_down"):
        assert old[name].gemm.dtype == "fp16" and old[name].legacy_mma
        assert new[name].gemm.dtype == "fp8_e4m3" and not new[name].legacy_mma
        assert old[name].to_dict()["legacy_mma"] is True and "legacy_mma" not in new[name].to_dict()
    assert old["qkv"].gemm.dtype == new["qkv"].gemm.dtype == "fp8_e4m3"    # the rest stays in FP8
    assert {"expert_offsets", "expert_expand"} <= set(old) and not {"expert_offsets", "expert_expand"} & set(new)
    # the copy to the experts' groups moves every routed row in and out
    h, k = MIXTRAL.hidden, MIXTRAL.experts_per_token
    assert old["expert_expand"].bytes == pytest.approx(16 * h * 2 * (1 + k))


def test_random_weight_routing_reads_two_experts_a_step():
    collapsed = _ops(MoeRun(routing="collapsed"), seqs=32)["expert_gate_up"]
    spread = _ops(seqs=32)["expert_gate_up"]
    assert (collapsed.gemm.parallel, collapsed.gemm.M, collapsed.experts_touched) == (2, 32, 2.0)
    assert spread.gemm.parallel == 8 and spread.gemm.M < 32
    assert collapsed.gemm.min_bytes < 0.3 * spread.gemm.min_bytes     # 2 of 8 experts' weights


@pytest.mark.parametrize("gpu, slower", [("h100-sxm", True), ("h200-sxm", True), ("a100-sxm4-80gb", False),
                                         ("l40s", False)])
def test_legacy_kernels_run_below_the_peak_on_hopper_only(gpu, slower):
    ops = _ops(moe_run("trtllm-0.9"))
    gate_up = ops["expert_gate_up"]
    pair = [gate_up, replace(gate_up, legacy_mma=False)]
    dev = GpuServing(gpu, "fp16")
    legacy, native = dev.terms(pair, 2)
    ratio = legacy[0] / native[0]
    assert ratio == pytest.approx(1 / sm.serving_data().legacy_mma_fraction["hopper"] if slower else 1.0)
    assert legacy[1] == native[1] and legacy[3] == native[3]         # bytes and launches unchanged


def test_serving_under_trtllm_0_9_applies_the_runtime_terms_to_moe_models_only(monkeypatch):
    kw = dict(isl=512, osl=64, batch=64, tp=2, dtype="fp8_e4m3", runtime="trtllm-0.9")
    with_terms = serve("h100-sxm", "mixtral-8x7b", **kw)
    dense = serve("h100-sxm", "llama3-70b", **kw).to_dict()
    monkeypatch.setattr(sm, "moe_run", lambda *a, **k: MoeRun())
    without = serve("h100-sxm", "mixtral-8x7b", **kw)
    assert with_terms.output_tokens_per_s < 0.8 * without.output_tokens_per_s
    assert with_terms.ttft_s > 1.2 * without.ttft_s
    assert json.dumps(serve("h100-sxm", "llama3-70b", **kw).to_dict(), sort_keys=True) == json.dumps(dense, sort_keys=True)


def test_the_trtllm_0_9_mixtral_rows_replay_with_the_terms():
    """The 24 Mixtral rows of TensorRT-LLM 0.9 at the stored fit: 13.3 % median |error| with
    the terms (the 26 MoE rows: 28.8 % read as FP8 experts with a trained router's spread,
    12.6 % with the terms: benchmarks/moe.py terms)."""
    ms, pred = sf.measurements(), sf.predict(sf.stored_theta())
    rows = [i for i, m in enumerate(ms) if m.runtime == "trtllm-0.9" and m.model == "mixtral-8x7b"]
    err = {ms[i].id: 100 * (pred[i] / ms[i].value - 1) for i in rows}
    assert len(err) == 24 and np.median(np.abs(list(err.values()))) < 20
    # batch-32 decode of 2,048 + 2,048 tokens on A100 beats reading all 8 experts: collapsed routing
    assert abs(err["trt09-a100-mixtral-2048-2048"]) < 15
    # H100 prefill of 2,048 tokens: FP16 experts on Ampere kernels (it was modelled 2.1x too fast)
    assert abs(err["trt09-h100-ttft-mixtral-2048"]) < 20
