"""Batching as runtimes do it: the paged KV cache (models/serving/kv_cache.py), continuous
batching with batched, chunked prefill (models/serving/batching.py), the in-flight rows of
the serving measurements, and the serve command's batching flags."""
import json
import math

import numpy as np
import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.serving import fit as sf
from systolab.models.serving.batching import BatchingOptions, mixed_step_ops, schedule
from systolab.models.serving.disaggregated import disaggregated
from systolab.models.serving.kv_cache import (
    KvCache,
    blocks_for,
    kv_block_tokens,
    published_max_batches,
    steady_blocks_per_request,
)
from systolab.models.serving.model import GpuServing, Precision, serve, step_ops
from systolab.models.specs import load_yaml
from systolab.models.workloads.catalog import get_llm

# TensorRT-LLM v0.9.0 docs/source/performance.md, 'Peak Throughput', H200 and H100 FP8 tables,
# rows LLaMA 70B (Llama-2-70B): (gpu, tp, isl, osl, published batch size); also in serving.yaml
PUBLISHED_LLAMA2_70B_FP8 = (("h200-sxm", 1, 128, 128, 1024), ("h200-sxm", 2, 128, 2048, 512),
                            ("h200-sxm", 1, 2048, 128, 64), ("h200-sxm", 1, 2048, 2048, 64),
                            ("h100-sxm", 2, 128, 128, 1024), ("h100-sxm", 4, 128, 2048, 512),
                            ("h100-sxm", 2, 2048, 128, 96), ("h100-sxm", 2, 2048, 2048, 64))


# -- the paged KV cache ------------------------------------------------------------------------
def test_steady_state_occupancy_is_isl_plus_half_osl_in_whole_blocks():
    # one-token blocks: the mean of isl + 1 .. isl + osl
    assert steady_blocks_per_request(1000, 200, 1) == pytest.approx(1000 + 100.5)
    # 16-token blocks: about half a block more, never less than the tokens need
    b = steady_blocks_per_request(1000, 200, 16)
    assert (1000 + 100.5) / 16 < b < (1000 + 100.5) / 16 + 1
    assert blocks_for(1001, 16) == 63 and blocks_for(1008, 16) == 63 and blocks_for(1009, 16) == 64


def test_batch_and_concurrency_share_one_cache_and_differ_only_in_occupancy():
    """Before: 2,957 requests under --batch against 4,436 under --concurrency (H100, Llama-3-8B,
    128 + 128 tokens), from two definitions of free memory. Now one cache; the static batch
    holds every request at full length, the continuous one at steady-state occupancy."""
    b = serve("h100-sxm", "llama3-8b", isl=128, osl=128, batch=1)
    c = serve("h100-sxm", "llama3-8b", isl=128, osl=128, concurrency=1)
    assert b.kv_cache == c.kv_cache
    kv = b.kv_cache
    assert b.max_batch == kv["max_batch_static"] == kv["blocks"] // blocks_for(256, 16)
    assert c.max_batch == kv["max_concurrency"] == int(kv["blocks"] / steady_blocks_per_request(128, 128, 16))
    ratio = c.max_batch / b.max_batch
    assert ratio == pytest.approx(blocks_for(256, 16) / steady_blocks_per_request(128, 128, 16), rel=0.01)
    # with one output token the semantics coincide: the same capacity
    b1 = serve("h100-sxm", "llama3-8b", isl=128, osl=1, batch=1)
    c1 = serve("h100-sxm", "llama3-8b", isl=128, osl=1, concurrency=1)
    assert b1.max_batch == c1.max_batch


def test_the_capacity_is_enforced_at_its_limit_for_both_batchings():
    for key in ("batch", "concurrency"):
        r = serve("h200-sxm", "llama2-70b", isl=2048, osl=2048, **{key: 1})
        ok = serve("h200-sxm", "llama2-70b", isl=2048, osl=2048, **{key: r.max_batch})
        m = ok.memory
        assert m["weights"] + m["activations"] + m["kv_cache"] <= m["capacity"]
        with pytest.raises(UserError, match=f"{key}: .* KV cache per device") as e:
            serve("h200-sxm", "llama2-70b", isl=2048, osl=2048, **{key: r.max_batch + 1})
        assert e.value.parameter == key


def test_published_maximum_batch_sizes_are_accepted():
    source, runs = published_max_batches()
    assert runs == PUBLISHED_LLAMA2_70B_FP8 and "v0.9.0" in source
    for gpu, tp, isl, osl, batch in runs:
        r = serve(gpu, "llama2-70b", isl=isl, osl=osl, batch=batch, tp=tp, dtype="fp8_e4m3")
        assert r.max_batch >= batch


def test_blocks_and_the_step_budget_set_the_capacity():
    one = serve("h100-sxm", "llama3-8b", isl=1000, osl=100, batch=1, kv_block=1).max_batch
    sixteen = serve("h100-sxm", "llama3-8b", isl=1000, osl=100, batch=1, kv_block=16).max_batch
    big = serve("h100-sxm", "llama3-8b", isl=1000, osl=100, batch=1, kv_block=1024).max_batch
    assert one > sixteen > big          # 1,100 tokens: whole blocks of 1,024 waste almost half
    small = serve("h100-sxm", "llama3-8b", isl=1000, osl=100, batch=1, chunk_tokens=512)
    large = serve("h100-sxm", "llama3-8b", isl=1000, osl=100, batch=1, chunk_tokens=65536)
    assert large.memory["activations"] == pytest.approx(128 * small.memory["activations"])
    assert large.kv_cache["blocks"] < small.kv_cache["blocks"]
    assert kv_block_tokens("vllm") == 16 and kv_block_tokens("trtllm-0.12") == 64 and kv_block_tokens(None) == 16


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(kv_block=0), "kv-block"), (dict(kv_block=2.5), "kv-block"),
    (dict(chunk_tokens=0), "chunk-tokens"), (dict(chunk_tokens="8k"), "chunk-tokens"),
])
def test_bad_batching_settings_name_the_parameter(kwargs, parameter):
    with pytest.raises(UserError) as e:
        serve("h100-sxm", "llama3-8b", isl=128, osl=128, concurrency=4, **kwargs)
    assert e.value.parameter == parameter and str(e.value).startswith(parameter)


def test_kv_cache_to_dict_is_json_ready():
    kv = KvCache(16, 1000.0, 1e10, 4e9, 1e9, 8192)
    d = kv.to_dict()
    assert d["blocks"] == int(5e9 // 16000) and json.loads(json.dumps(d)) == d


# -- continuous batching ---------------------------------------------------------------------
def test_one_request_prefills_in_one_step_then_decodes():
    s = schedule(isl=1024, osl=256, concurrency=1, budget=8192)
    assert s.mixed_steps == 1 and s.prefill_tokens == 1024 and s.decode_tokens == 1
    assert s.decode_steps == pytest.approx(254) and s.ttft_mixed_steps == 1


def test_short_prompts_at_high_concurrency_fill_a_few_budget_steps():
    s = schedule(isl=128, osl=128, concurrency=256, budget=8192)
    assert s.decode_tokens == 256 and s.prefill_tokens == 8192 - 256
    assert s.mixed_steps == pytest.approx(256 * 128 / (8192 - 256)) and s.steps == pytest.approx(127)


def test_long_prompts_against_the_budget_make_every_step_mixed():
    s = schedule(isl=8192, osl=16, concurrency=64, budget=8192)
    assert s.decode_steps == 0 and s.steps > 15 and s.decode_tokens < 64
    # every token of the cycle is scheduled exactly once
    assert s.steps * s.decode_tokens == pytest.approx(64 * 15)
    assert s.mixed_steps * s.prefill_tokens == pytest.approx(64 * 8192)
    assert s.decode_tokens + s.prefill_tokens <= s.budget + 1e-9
    # a prompt longer than the budget is chunked over several steps
    chunked = schedule(isl=4096, osl=128, concurrency=1, budget=1024)
    assert chunked.prefill_tokens == 1024 - 1 and chunked.ttft_mixed_steps == math.ceil(4096 / 1023)


def test_a_mixed_step_runs_its_gemms_once_over_all_its_tokens():
    shape, prec = get_llm("llama3-8b"), Precision("fp8_e4m3", "fp8_e4m3")

    def ops_of(n, q, c):
        return step_ops(shape, seqs=n, q_len=q, ctx=c, tp=1, prec=prec)

    ops = {op.name: op for op in mixed_step_ops(ops_of, decode_seqs=200, decode_ctx=500, prefill_tokens=1000,
                                                isl=250)}
    assert ops["qkv"].gemm.M == 1200 and ops["down"].gemm.M == 1200
    assert ops["lm_head"].gemm.M == 200 + 4                    # the decodes and the 4 prompts it completes
    decode, prefill = ops["attention_decode"], ops["attention_prefill"]
    assert decode.attention[:3] == (200, 1, 500) and prefill.attention[:3] == (4, 250, 250)
    # a chunk of a longer prompt: its causal work is a whole prompt's spread over its chunks
    chunk = {op.name: op for op in mixed_step_ops(ops_of, decode_seqs=0, decode_ctx=0, prefill_tokens=512,
                                                  isl=4096)}["attention_prefill"]
    whole = [op for op in ops_of(1, 4096, 4096) if op.kind == "attention"][0]
    assert chunk.flops * 4096 / 512 == pytest.approx(whole.flops, rel=0.01)


def legacy_rate(gpu, model, dtype, isl, osl, c):
    """Output tokens/s of the model before batched prefill: each prefill alone, then the pool's decode."""
    dev, shape, prec = GpuServing(gpu, dtype), get_llm(model), Precision(dtype, dtype)

    def t(n, q, ctx):
        return float(dev.seconds(step_ops(shape, seqs=n, q_len=q, ctx=ctx, tp=1, prec=prec), 1).sum())

    return c * osl / (c * t(1, isl, isl) + (osl - 1) * t(c, 1, isl + osl // 2))


def test_batched_prefill_is_faster_than_prefills_run_alone_at_high_concurrency():
    new = serve("h100-sxm", "llama3-8b", isl=128, osl=128, concurrency=256)
    assert new.output_tokens_per_s > 1.3 * legacy_rate("h100-sxm", "llama3-8b", "fp8_e4m3", 128, 128, 256)
    assert new.schedule["mixed_steps"] < 5 and new.batching == "continuous"
    # at concurrency 1 it is the same work: one prefill, then decode
    one = serve("h100-sxm", "llama3-8b", isl=1024, osl=256, concurrency=1)
    assert one.output_tokens_per_s == pytest.approx(legacy_rate("h100-sxm", "llama3-8b", "fp8_e4m3", 1024, 256, 1),
                                                    rel=0.02)


def test_chunking_a_prompt_delays_its_first_token():
    # a budget of one prompt plus the decodes: each prompt prefills in one step of its own
    whole = serve("h100-sxm", "llama3-8b", isl=4096, osl=128, concurrency=8, chunk_tokens=4096 + 8)
    chunked = serve("h100-sxm", "llama3-8b", isl=4096, osl=128, concurrency=8, chunk_tokens=1024)
    assert chunked.schedule["ttft_mixed_steps"] == 5 and whole.schedule["ttft_mixed_steps"] == 1
    assert chunked.ttft_s > whole.ttft_s
    # the default budget (8,192) packs two prompts a step for the throughput, but a steady
    # load's requests arrive spread over the cycle (8 in about 127 steps): the first token
    # waits for its own prompt only
    packed = serve("h100-sxm", "llama3-8b", isl=4096, osl=128, concurrency=8)
    assert packed.schedule["prefill_tokens"] > 8000 and packed.ttft_s == pytest.approx(whole.ttft_s, rel=1e-9)
    assert packed.output_tokens_per_s != whole.output_tokens_per_s
    # where prompts do arrive faster than a step (64 in about 8 steps), the first token's step
    # holds the prompts that arrived during one step: it waits for them
    busy = serve("h100-sxm", "llama3-8b", isl=1024, osl=4, concurrency=64)
    calm = serve("h100-sxm", "llama3-8b", isl=1024, osl=4, concurrency=2)
    assert busy.ttft_s > 4 * calm.ttft_s


def test_static_batches_are_timed_as_before_whatever_the_step_budget():
    a = serve("h100-sxm", "llama2-70b", isl=2048, osl=128, batch=16, tp=2)
    b = serve("h100-sxm", "llama2-70b", isl=2048, osl=128, batch=16, tp=2, chunk_tokens=1024)
    assert a.output_tokens_per_s == b.output_tokens_per_s and a.ttft_s == b.ttft_s and a.schedule is None


def test_tpot_is_the_cycle_less_the_first_token_over_the_output_tokens():
    r = serve("h200-sxm", "llama3-8b", isl=512, osl=256, concurrency=64)
    cycle = 64 * 256 / r.output_tokens_per_s_group
    assert r.tpot_s < cycle / 255 and r.ttft_s + 255 * r.tpot_s == pytest.approx(cycle, rel=0.05)


# -- the in-flight rows ------------------------------------------------------------------------
def test_in_flight_rows_are_replayed_as_continuous_batching_and_fit_their_memory():
    ms = [m for m in sf.measurements() if sf.in_flight(m)]
    assert len(ms) >= 20 and all(m.id.startswith("ifb-") for m in ms)
    sources = load_yaml(sf.SERVING_FILE)["measurement_sources"]
    assert all(m.source in sources for m in ms)
    assert not [i for i in sf.check_capacity() if i.startswith("ifb-")]


def test_batched_prefill_fixes_the_short_prompt_in_flight_rows():
    """The 128 + 128 token rows were 30 to 51 % too slow with every prefill alone."""
    ms = sf.measurements()
    idx = [i for i, m in enumerate(ms) if sf.in_flight(m) and m.isl == m.osl == 128]
    pred = sf.predict(sf.stored_theta(), idx)
    for i, p in zip(idx, pred):
        m = ms[i]
        if m.tp > 1:
            continue                 # legacy_rate here is single-device
        before = legacy_rate(m.gpu_id, m.model, m.dtype, m.isl, m.osl, m.batch)
        assert abs(p / m.value - 1) < abs(before / m.value - 1) and abs(p / m.value - 1) < 0.2, m.id
    errors = np.abs(pred / np.array([ms[i].value for i in idx]) - 1)
    assert np.median(errors) < 0.15


# -- the serve command --------------------------------------------------------------------------
def test_serve_command_batching_flags_and_fields(capsys):
    assert main(["serve", "--device", "h100-sxm", "--model", "llama3-8b", "--isl", "128", "--osl", "128",
                 "--concurrency", "256", "--chunk-tokens", "4096", "--kv-block", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kv_cache"]["block_tokens"] == 32 and out["kv_cache"]["step_tokens"] == 4096
    assert out["schedule"]["budget"] == 4096 and out["max_batch"] == out["kv_cache"]["max_concurrency"]
    for key in ("ttft_s", "tpot_s", "output_tokens_per_s", "max_batch"):     # the contract's fields stay
        assert out[key] > 0
    assert main(["serve", "--device", "h100-sxm", "--model", "llama3-8b", "--isl", "128", "--osl", "128",
                 "--concurrency", "256"]) == 0
    assert "steady state (continuous)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, parameter", [
    (["--concurrency", "4", "--kv-block", "0"], "kv-block"),
    (["--concurrency", "4", "--chunk-tokens", "-5"], "chunk-tokens"),
    (["--tpot-s", "0.1", "--chunk-tokens", "0"], "chunk-tokens"),
    (["--tpot-s", "0.1", "--spec-acceptance", "0.5"], "spec-tokens"),
])
def test_serve_command_bad_batching_flags(capsys, argv, parameter):
    assert main(["serve", "--device", "h100-sxm", "--model", "llama3-8b", "--isl", "128", "--osl", "16",
                 *argv, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == parameter


# -- options: prefix caching, speculative decoding ---------------------------------------------
def test_prefix_caching_skips_the_cached_prompt_and_holds_its_blocks_once():
    base = serve("h100-sxm", "llama3-70b", isl=2048, osl=256, concurrency=64, tp=4)
    hit = serve("h100-sxm", "llama3-70b", isl=2048, osl=256, concurrency=64, tp=4,
                options=BatchingOptions(prefix_hit=0.75))
    assert hit.schedule["new_tokens"] == 512 and base.schedule["new_tokens"] == 2048
    assert hit.schedule["mixed_steps"] == pytest.approx(base.schedule["mixed_steps"] / 4, rel=0.02)
    assert hit.output_tokens_per_s > base.output_tokens_per_s and hit.tpot_s < base.tpot_s
    assert hit.kv_cache["shared_prefix_tokens"] == 1536 and hit.max_batch > 3 * base.max_batch
    assert hit.memory["kv_cache"] < base.memory["kv_cache"] / 3
    # only whole blocks are shared, and never the last prompt token
    assert BatchingOptions(prefix_hit=0.5).cached_tokens(100, 16) == 48
    assert BatchingOptions(prefix_hit=0.999).cached_tokens(64, 16) == 48
    assert any("prefix caching" in n for n in hit.notes) and not any("prefix caching" in n for n in base.notes)


def test_speculative_decoding_yields_the_expected_tokens_per_target_step():
    opt = BatchingOptions(draft_tokens=4, acceptance=0.7, draft_cost=0.05)
    assert opt.tokens_per_round == pytest.approx((1 - 0.7**5) / 0.3)
    assert BatchingOptions(draft_tokens=3, acceptance=1.0).tokens_per_round == 4
    assert BatchingOptions(draft_tokens=3, acceptance=0.0).tokens_per_round == 1
    base = serve("h100-sxm", "llama3-8b", isl=1024, osl=256, concurrency=16)
    spec = serve("h100-sxm", "llama3-8b", isl=1024, osl=256, concurrency=16, options=opt)
    assert spec.schedule["rounds"] == pytest.approx(255 / opt.tokens_per_round)
    assert spec.schedule["verify_tokens"] == 5 and spec.tpot_s < base.tpot_s
    # the target checks 5 tokens a request per step: its GEMMs are 5 times as tall
    decode = {op["name"]: op for op in spec.decode_ops}
    assert decode["qkv"]["gemm"]["M"] == 5 * round(spec.schedule["decode_tokens"])
    # a draft as slow as the target, never accepted: slower than no speculation
    useless = serve("h100-sxm", "llama3-8b", isl=1024, osl=256, concurrency=16,
                    options=BatchingOptions(draft_tokens=4, acceptance=0.0, draft_cost=1.0))
    assert useless.tpot_s > 4 * base.tpot_s


@pytest.mark.parametrize("options, parameter", [
    (BatchingOptions(prefix_hit=1.0), "prefix-hit"), (BatchingOptions(prefix_hit=-0.1), "prefix-hit"),
    (BatchingOptions(draft_tokens=-1), "spec-tokens"), (BatchingOptions(draft_tokens=2, acceptance=1.2),
                                                        "spec-acceptance"),
    (BatchingOptions(draft_tokens=2, acceptance=0.5, draft_cost=-1), "spec-draft-cost"),
])
def test_bad_options_name_the_parameter(options, parameter):
    with pytest.raises(UserError) as e:
        serve("h100-sxm", "llama3-8b", isl=128, osl=128, concurrency=4, options=options)
    assert e.value.parameter == parameter


def test_options_are_for_continuous_batching():
    with pytest.raises(UserError, match="continuous batching") as e:
        serve("h100-sxm", "llama3-8b", isl=128, osl=128, batch=4, options=BatchingOptions(draft_tokens=2))
    assert e.value.parameter == "spec-tokens"
    with pytest.raises(TypeError):
        serve("h100-sxm", "llama3-8b", isl=128, osl=128, concurrency=4, options={"prefix_hit": 0.5})


def test_serve_command_options(capsys):
    base = ["serve", "--device", "h100-sxm", "--model", "llama3-8b", "--isl", "1024", "--osl", "256",
            "--concurrency", "16", "--json"]
    assert main([*base, "--spec-tokens", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schedule"]["options"] == {"prefix_hit": 0.0, "draft_tokens": 4, "acceptance": 0.7,
                                          "draft_cost": 0.05, "tokens_per_round": pytest.approx(2.7731)}
    assert any("assumed defaults" in n for n in out["notes"])
    assert main([*base, "--spec-acceptance", "0.5"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "spec-tokens"
    assert main([*base, "--prefix-hit", "1.0"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "prefix-hit"


# -- disaggregated prefill and decode ------------------------------------------------------------
def test_disaggregated_pools_split_the_phases_and_send_the_kv_cache():
    kw = dict(isl=2048, osl=256, concurrency=64, prefill_tp=4, decode_tp=4)
    r = disaggregated("h100-sxm", "llama3-70b", **kw, decode_groups=2)
    shape = get_llm("llama3-70b")
    assert r.kv_bytes_per_request == 2 * shape.layers * shape.kv_heads * shape.head_dim * 1 * 2048   # fp8 KV
    slow = disaggregated("h100-sxm", "llama3-70b", **kw, decode_groups=2, link_GBps=50)
    assert slow.kv_transfer_s > 8 * r.kv_transfer_s
    assert slow.ttft_s - slow.prefill_ttft_s == pytest.approx(slow.kv_transfer_s)
    # decode never waits on a prefill: its TPOT is below the co-located server's at the same concurrency
    colocated = serve("h100-sxm", "llama3-70b", isl=2048, osl=256, concurrency=64, tp=4)
    assert r.tpot_s < colocated.tpot_s
    # the rate is the smaller pool's; more prefill groups move the bound to decode
    assert r.bound == "prefill" and r.output_tokens_per_s == pytest.approx(r.prefill_requests_per_s * 256)
    more = disaggregated("h100-sxm", "llama3-70b", **kw, prefill_groups=3, decode_groups=1)
    assert more.bound == "decode" and more.output_tokens_per_s == pytest.approx(more.decode_requests_per_s * 256)
    assert more.devices == 16 and more.to_dict()["devices"] == 16


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(prefill_groups=0), "prefill-groups"), (dict(decode_groups=1.5), "decode-groups"),
    (dict(link_GBps=-1.0), "link-GBps"), (dict(concurrency=100_000), "concurrency"),
])
def test_disaggregated_bad_input_names_the_parameter(kwargs, parameter):
    args = dict(isl=1024, osl=128, concurrency=16) | kwargs
    with pytest.raises(UserError) as e:
        disaggregated("h100-sxm", "llama3-8b", **args)
    assert e.value.parameter == parameter
