"""Finite offline runs stepped through a runtime's scheduler (models/serving/finite_run.py) and
costed step by step (models/serving/finite_replay.py); the SGLang rows replayed through them."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from systolab.errors import UserError
from systolab.models.gpu.model import calibration
from systolab.models.serving import fit as sf
from systolab.models.serving import model as serving_model
from systolab.models.serving.attention_kernel import attention_kernel_fraction
from systolab.models.serving.finite_replay import (
    attention_coefficients,
    finite_runs,
    finite_throughput,
    runtime_scheduler,
)
from systolab.models.serving.finite_run import (
    DECODE,
    PREFILL,
    SchedulerConfig,
    bench_serving_lengths,
    draw_lengths,
    simulate,
)
from systolab.models.serving.model import GpuServing, Precision, serve, step_ops
from systolab.models.workloads.catalog import get_llm

SOURCE = "SGLANG-H200-DATACRUNCH"
L70 = get_llm("llama3-70b")
BF16 = Precision("bf16", "bf16")


def _sglang():
    return runtime_scheduler("sglang", "h200-sxm", L70, tp=4, prec=BF16)


def test_the_harness_draws_are_the_runs_lengths():
    """bench_serving's own generator with its default seed gives lengths whose sums are the
    token totals each SGLang run reports (quoted in the measurement's notes)."""
    rows = {m.id: m for m in sf.measurements() if m.source == SOURCE}
    runs = finite_runs()
    assert set(runs) == set(rows) and len(runs) == 5
    for mid, run in runs.items():
        tin, tout = (int(x) for x in re.search(r"total_input_tokens (\d+) / total_output_tokens (\d+)",
                                                rows[mid].notes).groups())
        prompts = int(re.search(r"; (\d+) prompts at request_rate Infinity", rows[mid].notes).group(1))
        isl, osl = run.lengths()
        assert (len(isl), int(isl.sum()), int(osl.sum())) == (prompts, tin, tout)
        assert isl.min() >= 1 and isl.max() <= run.input_len and osl.min() >= 0 and osl.max() <= run.output_len


def test_draws_are_deterministic_from_their_seed():
    a, b = draw_lengths(500, 1024, 512, seed=7), draw_lengths(500, 1024, 512, seed=7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = draw_lengths(500, 1024, 512, seed=8)
    assert not np.array_equal(a[0], c[0])
    lo = draw_lengths(2000, 100, 100, range_ratio=0.5, seed=1)
    assert lo[0].min() >= 50 and lo[1].min() >= 50 and lo[0].max() <= 100


def test_the_replay_is_deterministic():
    isl, osl = draw_lengths(400, 2048, 1024, seed=3)
    cfg = SchedulerConfig(pool_tokens=200_000, max_running=256, chunk_tokens=4096)
    s1, s2 = simulate(cfg, isl, osl), simulate(cfg, isl, osl)
    for field in ("kind", "count", "decode_seqs", "decode_ctx", "prefill_tokens", "prefill_pairs", "first_block"):
        assert np.array_equal(getattr(s1, field), getattr(s2, field))
    assert s1.to_dict() == s2.to_dict()
    frame = s1.to_frame()
    assert len(frame) == len(s1.kind) and int(frame["steps"].sum()) == s1.steps
    assert set(frame["kind"]) <= {"prefill", "decode", "mixed"}


@pytest.mark.parametrize("admission", ["peak", "ratio"])
def test_admission_respects_the_pool_and_the_running_limit(admission):
    isl, osl = draw_lengths(600, 2048, 2048, seed=5)
    cfg = SchedulerConfig(pool_tokens=150_000, max_running=96, chunk_tokens=4096, admission=admission)
    s = simulate(cfg, isl, osl)
    assert s.peak_pool_tokens <= cfg.pool_tokens
    assert s.peak_running <= cfg.max_running
    assert s.output_tokens == int(osl.sum()) and s.requests == 600
    # every prompt token is computed at least once (more after a retraction)
    assert s.prefill_tokens @ s.count >= isl.sum()
    # every output but the one a (re)computed prompt samples is a decode token
    assert s.decode_seqs @ s.count == np.maximum(osl - 1, 0).sum() - s.retracted


def test_peak_admission_never_needs_to_retract_but_the_ratio_rule_can():
    """SGLang's check for requests that ignore end-of-sequence keeps the pool from running out;
    the ratio rule under-reserves and retracts when long outputs fill the pool."""
    isl, osl = draw_lengths(300, 200, 1500, seed=2)
    base = SchedulerConfig(pool_tokens=60_000, max_running=1000, chunk_tokens=8192)
    assert simulate(base, isl, osl).retracted == 0
    ratio = simulate(replace(base, admission="ratio"), isl, osl)
    assert ratio.retracted > 0 and ratio.peak_pool_tokens <= base.pool_tokens
    # a retracted request recomputes its prompt and outputs: more prefill tokens than prompts
    assert ratio.prefill_tokens @ ratio.count > isl.sum()
    assert ratio.decode_seqs @ ratio.count == np.maximum(osl - 1, 0).sum() - ratio.retracted


def test_prefill_and_decode_run_apart_unless_mixed_and_prompts_are_chunked():
    isl, osl = np.full(40, 5000), np.full(40, 50)
    cfg = SchedulerConfig(pool_tokens=400_000, max_running=64, chunk_tokens=2048)
    s = simulate(cfg, isl, osl)
    assert np.all(s.decode_seqs[s.kind == PREFILL] == 0)          # separate batches (SGLang's default)
    assert np.all(s.prefill_tokens[s.kind == DECODE] == 0)
    assert s.prefill_tokens.max() <= 2048 and s.prefill_steps >= 40 * 5000 / 2048
    m = simulate(replace(cfg, mixed=True), isl, osl)
    assert np.any((m.decode_seqs > 0) & (m.prefill_tokens > 0))    # --enable-mixed-chunk
    assert (m.decode_seqs + m.prefill_tokens).max() <= 2048


def test_a_finite_run_converges_to_the_steady_state_as_it_grows():
    """Fixed lengths, mixed steps and the steady state's token budget: the longer the run, the
    smaller the ramp and the drain, and the closer the finite run's throughput comes to the
    steady-state model's at the same concurrency."""
    model, C, budget, isl, osl = "llama3-8b", 64, 2048, 256, 128
    steady = serve("h100-sxm", model, isl=isl, osl=osl, concurrency=C, chunk_tokens=budget, dtype="fp8_e4m3")
    cfg = SchedulerConfig(pool_tokens=10_000_000, max_running=C, chunk_tokens=budget, mixed=True)
    errs = []
    for n in (2 * C, 40 * C):
        run = finite_throughput("h100-sxm", model, isl=np.full(n, isl), osl=np.full(n, osl), tp=1, dtype="fp8_e4m3",
                                scheduler=cfg)
        errs.append(abs(run.output_tokens_per_s / steady.output_tokens_per_s - 1))
    assert errs[1] < errs[0] and errs[1] < 0.02


def test_attention_is_costed_as_the_sum_over_requests():
    def ops_of(n, q, c):
        return step_ops(L70, seqs=n, q_len=q, ctx=c, tp=4, prec=BF16)

    coef = attention_coefficients(ops_of)
    att = next(op for op in ops_of(7, 300, 900) if op.kind == "attention")
    pairs = 7 * (300 * 900 - 300 * 299 / 2)
    assert coef.flops_per_pair * pairs == pytest.approx(att.flops)
    assert coef.prefill_bytes_per_token * 7 * 300 + coef.prefill_bytes_per_ctx * 7 * 900 == pytest.approx(att.bytes)
    dec = next(op for op in ops_of(50, 1, 1000) if op.kind == "attention")
    assert coef.decode_bytes_per_token * 50 + coef.decode_bytes_per_ctx * 50 * 1000 == pytest.approx(dec.bytes)


def test_sglangs_limits_come_from_its_source():
    cfg = _sglang()
    # the KV token pool the rows' notes derive: (0.85 x 141 GiB - 35.28 GB) / 81,920 bytes a token
    assert cfg.pool_tokens == 1_140_280
    assert (cfg.max_running, cfg.chunk_tokens, cfg.mixed, cfg.admission) == (4096, 8192, False, "peak")
    with pytest.raises(UserError) as exc:
        runtime_scheduler("vllm", "h200-sxm", L70, tp=4, prec=BF16)
    assert exc.value.parameter == "runtime"


def test_the_sglang_rows_replay_as_finite_runs():
    """Each SGLang row is predicted from its own 800-6,000 requests through SGLang's scheduler;
    the fit's prediction is the replay's throughput, below the steady state's at the row's
    derived concurrency (the ramp, the drain and the separate prefill batches cost time)."""
    ms = sf.measurements()
    theta = sf.stored_theta()
    names = sf.runtimes()
    dev_theta = np.array([*theta[:3], theta[3 + names.index("sglang")]])
    for i, m in enumerate(ms):
        if m.source != SOURCE:
            continue
        run = finite_runs()[m.id]
        isl, osl = run.lengths()
        replay = finite_throughput(m.gpu_id, L70, isl=isl, osl=osl, tp=m.tp, dtype=m.dtype, scheduler=_sglang(),
                                   runtime="sglang", theta=dev_theta)
        assert sf.predict(theta, [i])[0] == pytest.approx(replay.output_tokens_per_s, rel=1e-9)
        steady = serve(m.gpu_id, L70, isl=m.isl, osl=m.osl, tp=m.tp, dtype=m.dtype, concurrency=m.batch,
                       runtime="sglang")
        assert replay.output_tokens_per_s < steady.output_tokens_per_s
        assert replay.schedule.retracted == 0 and replay.schedule.peak_pool_tokens <= _sglang().pool_tokens


def test_bad_input_names_the_parameter():
    cfg = SchedulerConfig(pool_tokens=1000, max_running=4, chunk_tokens=256)
    with pytest.raises(UserError) as exc:
        simulate(cfg, [10, 20], [5])
    assert exc.value.parameter == "isl"
    with pytest.raises(UserError) as exc:
        simulate(cfg, [10.5], [5])
    assert exc.value.parameter == "isl"
    with pytest.raises(TypeError):
        simulate({"pool_tokens": 1000}, [10], [5])
    with pytest.raises(UserError) as exc:
        simulate(replace(cfg, admission="greedy"), [10], [5])
    assert exc.value.parameter == "admission"
    with pytest.raises(UserError) as exc:
        simulate(cfg, [5000], [5])
    assert exc.value.parameter == "pool_tokens"
    with pytest.raises(UserError) as exc:
        bench_serving_lengths(10, 100, 100, range_ratio=1.5)
    assert exc.value.parameter == "range_ratio"
    with pytest.raises(UserError) as exc:
        finite_throughput("h100-sxm", "llama3-8b", isl=[10], osl=[5], tp=0, dtype="fp8_e4m3", scheduler=cfg)
    assert exc.value.parameter == "tp"
    with pytest.raises(TypeError):
        finite_throughput("h100-sxm", 8, isl=[10], osl=[5], tp=1, dtype="fp8_e4m3", scheduler=cfg)


def test_sglang_attention_runs_at_flashinfer_016s_fraction_on_hopper_only():
    """SGLang 0.4.0's FlashInfer 0.1.6 runs FlashAttention-2-style kernels: 35 % of the H200's
    16-bit peak (FlashAttention-3's paper), not the GEMM calibration's; other runtimes and
    other families keep the calibration."""
    assert attention_kernel_fraction("sglang", "hopper") == pytest.approx(0.35)
    assert attention_kernel_fraction("sglang", "ampere") is None
    assert attention_kernel_fraction("vllm", "hopper") is None
    assert attention_kernel_fraction(None, "hopper") is None
    shape, prec = get_llm("llama3-70b"), Precision("bf16", "bf16")
    ops = [op for op in step_ops(shape, seqs=1, q_len=8192, ctx=8192, tp=4, prec=prec) if op.kind == "attention"]
    sgl = GpuServing("h200-sxm", "bf16", runtime="sglang").terms(ops, 4)[:, 0].sum()
    vllm = GpuServing("h200-sxm", "bf16", runtime="vllm").terms(ops, 4)[:, 0].sum()
    assert sgl / vllm == pytest.approx(calibration().lookup("hopper", "half")[0] / 0.35)
    other = [op for op in step_ops(shape, seqs=1, q_len=8192, ctx=8192, tp=4, prec=prec) if op.kind == "gemm"]
    assert np.array_equal(GpuServing("h200-sxm", "bf16", runtime="sglang").terms(other, 4),
                          GpuServing("h200-sxm", "bf16", runtime="vllm").terms(other, 4))



def _sglang_tokens_per_s(input_len: int) -> float:
    runs = finite_runs()
    m = next(m for m in sf.measurements() if m.id in runs and runs[m.id].input_len == input_len)
    isl, osl = runs[m.id].lengths()
    cfg = runtime_scheduler(m.runtime, m.gpu_id, get_llm(m.model), tp=m.tp, prec=Precision(m.dtype, m.kv_dtype))
    return finite_throughput(m.gpu_id, m.model, isl=isl, osl=osl, tp=m.tp, dtype=m.dtype, scheduler=cfg,
                             runtime=m.runtime).output_tokens_per_s


def test_flashinfer_attention_slows_sglangs_long_prompt_runs_most(monkeypatch):
    """The attention kernel costs the 4,096-token-prompt runs (a chunk attends to its prompt's
    earlier chunks) more than the 256-token ones: their replay gets slower."""
    with_kernel = {n: _sglang_tokens_per_s(n) for n in (4096, 256)}
    monkeypatch.setattr(serving_model, "attention_kernel_fraction", lambda runtime, family: None)
    calibrated = {n: _sglang_tokens_per_s(n) for n in (4096, 256)}
    long_slow, short_slow = with_kernel[4096] / calibrated[4096], with_kernel[256] / calibrated[256]
    assert long_slow < 0.99
    assert long_slow < short_slow <= 1.0
