import pytest

from systolab.errors import UserError
from systolab.models.workloads.catalog import (
    BUILTINS,
    LLAMA3_8B,
    MIXTRAL_8X7B,
    decoder,
    get_workload,
    load_scalesim_topology,
    resnet50,
)


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_builds_with_sources(name):
    w = get_workload(name, dtype="int8")
    assert w.gemms and w.flops > 0 and w.min_bytes > 0 and w.source


def test_llama3_8b_linear_flops_are_two_per_parameter_per_token():
    w = decoder(LLAMA3_8B, phase="prefill", batch=2, seq_len=512, dtype="bf16")
    per_layer = 4096 * 4096 * 2 + 4096 * 1024 * 2 + 3 * 4096 * 14336   # q, o, k, v, gate, up, down
    linear = sum(g.flops for g in w.gemms if not g.name.startswith(("attn_scores", "attn_context", "lm_head")))
    assert linear == 2 * 1024 * per_layer * 32
    assert w.unit == "token" and w.units_per_run == 1024


def test_decode_uses_gqa_groups_against_the_kv_cache():
    w = decoder(LLAMA3_8B, phase="decode", batch=8, seq_len=4096, dtype="bf16")
    scores = next(g for g in w.gemms if g.name == "attn_scores")
    assert (scores.M, scores.N, scores.K, scores.count) == (4, 4096, 128, 32 * 8 * 8)
    assert w.units_per_run == 8


def test_moe_routes_only_to_active_experts():
    one = decoder(MIXTRAL_8X7B, phase="decode", batch=1, seq_len=128, dtype="bf16")
    gate = next(g for g in one.gemms if g.name == "moe_gate")
    assert (gate.M, gate.count) == (1, 32 * 2)       # one token visits two experts
    many = decoder(MIXTRAL_8X7B, phase="prefill", batch=1, seq_len=1024, dtype="bf16")
    gate = next(g for g in many.gemms if g.name == "moe_gate")
    assert (gate.M, gate.count) == (256, 32 * 8)     # 1024 tokens x 2 / 8 experts


def test_resnet50_is_3_8_giga_macs():
    macs = sum(g.M * g.N * g.K * g.count for g in resnet50(dtype="int8").gemms)
    assert 3.8e9 < macs < 3.9e9                       # He et al. report 3.8e9 multiply-adds


def test_scalesim_topologies_both_forms(tmp_path):
    conv = tmp_path / "net.csv"
    conv.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "Conv1, 224, 224, 7, 7, 3, 64, 2,\n")
    g = load_scalesim_topology(conv, dtype="int8").gemms[0]
    assert (g.M, g.N, g.K) == (109 * 109, 64, 147)    # (224 - 7) // 2 + 1 = 109, no padding
    mnk = tmp_path / "gemm.csv"
    mnk.write_text("Layer, M, N, K,\nQKT, 1024, 1024, 64,\n")
    assert get_workload(str(mnk), dtype="int8").gemms[0].K == 64
    bad = tmp_path / "bad.csv"
    bad.write_text("Layer, M, N, K,\nX, 1, two, 3,\n")
    with pytest.raises(UserError, match="line 2"):
        load_scalesim_topology(bad, dtype="int8")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name_or_file="gpt5"), "neither a built-in"),
    (dict(name_or_file="llama3-8b-prefill", batch=0), "batch: must be in 1.."),
    (dict(name_or_file="resnet50", seq_len=10), "seq-len: resnet50 has no sequence length"),
])
def test_bad_workload_requests(kwargs, message):
    with pytest.raises(UserError, match=message):
        get_workload(dtype="int8", **kwargs)


def test_resident_bytes_of_llama3_8b():
    w = decoder(LLAMA3_8B, phase="decode", batch=1, seq_len=4096, dtype="bf16")
    parts = dict(w.resident_breakdown)
    # 8.03e9 parameters (Meta's model card) in bf16; KV cache 2 x 32 layers x 1024 x 4096 tokens x 2 bytes
    assert parts["weights"] == pytest.approx(2 * 8.03e9, rel=0.01)
    assert parts["KV cache"] == 2 * 32 * 1024 * 4096 * 2
    assert w.resident_bytes == sum(parts.values())


def test_capacity_is_checked():
    w = get_workload("llama3-8b-decode", dtype="bf16", seq_len=10**8)
    with pytest.raises(UserError, match="workload: llama3-8b-decode needs .* more than h100-sxm's 80 GB"):
        w.check_fits(80, "h100-sxm")
    get_workload("llama3-8b-decode", dtype="bf16").check_fits(80, "h100-sxm")


@pytest.mark.parametrize("text, message", [
    ("Layer, M, N, K,\nX, 4, 4\n", "expected .Layer, M, N, K., got 3 columns"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "C, 8, 8, 3, 3, 1, 4, 0,\n", "Strides must be a positive integer, not 0"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "C, 8, 8, 3, 3, 1, 4, -2,\n", "Strides must be a positive integer, not -2"),
])
def test_bad_scalesim_rows_name_the_line(tmp_path, text, message):
    f = tmp_path / "t.csv"
    f.write_text(text)
    with pytest.raises(UserError, match=f"line 2: {message}"):
        load_scalesim_topology(f, dtype="int8")


def test_gemm_list_rows_with_too_few_fields(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("name,M,N,K,count\nx,4,4\n")
    with pytest.raises(UserError, match="line 2: expected 5 fields"):
        get_workload(str(f), dtype="int8")


def test_non_utf8_files_are_user_errors(tmp_path):
    f = tmp_path / "g.csv"
    f.write_bytes(b"name,M,N,K\n\xff\xfe,1,1,1\n")
    with pytest.raises(UserError, match="workload: .* is not UTF-8"):
        get_workload(str(f), dtype="int8")


def test_dtype_is_required_and_checked():
    with pytest.raises(TypeError):
        get_workload("dlrm")          # type: ignore[call-arg]
    with pytest.raises(UserError, match="dtype: unknown dtype 'int3'"):
        get_workload("dlrm", dtype="int3")
