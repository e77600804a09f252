"""Number formats on the GPU and serving side: FP4 (NVFP4, MXFP4) on Blackwell, weight-only
int4/int8/fp8, the KV cache's default under them, and what the chip can serve."""
import json

import pytest

from systolab.cli import main
from systolab.dtypes import DTYPES, canonical_dtype, get_dtype, math_dtype, operand_bytes
from systolab.errors import UserError
from systolab.models.gpu.formats import check_gpu_dtype, fp4_gpus
from systolab.models.gpu.model import estimate_gemm
from systolab.models.gpu.specs import get_gpu
from systolab.models.serving.formats import check_chip_dtype, default_kv_dtype
from systolab.models.serving.model import serve
from systolab.models.workloads.gemm import Gemm


def test_block_scaled_formats_store_their_scales():
    # NVFP4: E2M1 + an E4M3 scale per 16 = 4.5 bits; MXFP4: E8M0 per 32 = 4.25 bits
    assert get_dtype("nvfp4").storage_bits == 4.5 and get_dtype("mxfp4").storage_bits == 4.25
    # int4 with an fp16 scale and a 4-bit zero point per group of 128
    assert get_dtype("w4a16").storage_bits == pytest.approx(4 + 20 / 128)
    assert get_dtype("bf16").storage_bytes == 2 and get_dtype("tf32").storage_bytes == 4
    assert canonical_dtype("fp4") == "nvfp4" and get_dtype("fp4") is DTYPES["nvfp4"]
    assert math_dtype("w4a16") == "bf16" and math_dtype("nvfp4") == "nvfp4"
    assert operand_bytes("w4a16") == (2.0, get_dtype("w4a16").storage_bytes)
    # the E2M1 element: largest finite value 6, through ml_dtypes
    assert float(get_dtype("nvfp4").numpy_type(7.0)) == 6.0


def test_gemm_bytes_read_weights_at_their_storage_bits():
    g = Gemm(1, 8192, 8192, "w4a16")
    a, b = operand_bytes("w4a16")
    assert g.min_bytes == pytest.approx(8192 * 2 + 8192 * 8192 * b + 8192 * 2, abs=1)
    assert Gemm(16, 4096, 4096, "nvfp4").min_bytes < Gemm(16, 4096, 4096, "fp8_e4m3").min_bytes * 0.6


def test_fp4_runs_on_blackwell_at_twice_fp8():
    b200 = get_gpu("b200")
    assert b200.peak("nvfp4") == 2 * b200.peak("fp8_e4m3") and b200.peak("mxfp4") == b200.peak("nvfp4")
    assert "sparse" in b200.peak_sources["nvfp4"]           # the source's figure is sparse, halved
    assert fp4_gpus() == ["b200"]
    big = [estimate_gemm("b200", Gemm(8192, 8192, 8192, d), layer="kernel").tflops for d in ("fp8_e4m3", "nvfp4")]
    assert 1.7 < big[1] / big[0] < 2.0
    # a decode GEMM is memory-bound: FP4 reads 4.5 / 8 of FP8's weight bytes
    small = [estimate_gemm("b200", Gemm(8, 8192, 8192, d), layer="kernel").memory_s for d in ("fp8_e4m3", "nvfp4")]
    assert small[1] / small[0] == pytest.approx(4.5 / 8, rel=0.02)


@pytest.mark.parametrize("gpu", ["h100-sxm", "a100-sxm4-80gb", "h200-sxm", "l40s"])
def test_fp4_on_a_gpu_without_it_names_dtype(gpu):
    with pytest.raises(UserError, match="has no FP4 tensor cores") as e:
        check_gpu_dtype(get_gpu(gpu), "fp4")
    assert e.value.parameter == "dtype"
    with pytest.raises(UserError) as e:
        serve(gpu, "llama3-8b", isl=128, osl=16, batch=1, dtype="nvfp4")
    assert e.value.parameter == "dtype" and "Blackwell" in str(e.value)


def test_weight_only_runs_where_a_16_bit_rate_exists():
    assert check_gpu_dtype(get_gpu("a100-sxm4-80gb"), "w4a16") == "w4a16"
    est = estimate_gemm("a100-sxm4-80gb", Gemm(8192, 8192, 8192, "w4a16"), layer="kernel")
    assert est.dtype_used == "bf16" and any("storage stays w4a16" in n for n in est.notes)
    with pytest.raises(UserError, match="unknown dtype") as e:
        check_gpu_dtype(get_gpu("a100-sxm4-80gb"), "int3")
    assert e.value.parameter == "dtype"


def test_fp4_serving_on_b200_beats_fp8_and_keeps_an_fp8_kv_cache():
    fp4 = serve("b200", "llama3-70b", isl=1024, osl=256, concurrency=64, dtype="fp4")
    fp8 = serve("b200", "llama3-70b", isl=1024, osl=256, concurrency=64, dtype="fp8_e4m3")
    assert fp4.dtype == "nvfp4" and fp4.kv_dtype == "fp8_e4m3"
    assert fp4.memory["weights"] == pytest.approx(fp8.memory["weights"] * 4.5 / 8)
    assert fp4.max_batch > fp8.max_batch
    assert fp4.output_tokens_per_s > 1.1 * fp8.output_tokens_per_s
    assert any("FP4" in n for n in fp4.notes)
    kv4 = serve("b200", "llama3-70b", isl=1024, osl=256, concurrency=64, dtype="fp4", kv_dtype="nvfp4")
    assert kv4.memory["kv_per_token"] == pytest.approx(fp4.memory["kv_per_token"] * 4.5 / 8)


def test_weight_only_serving_reads_int4_weights_and_computes_in_bf16():
    w4 = serve("h100-sxm", "llama3-8b", isl=512, osl=128, batch=1, dtype="w4a16")
    bf = serve("h100-sxm", "llama3-8b", isl=512, osl=128, batch=1, dtype="bf16")
    assert w4.kv_dtype == "bf16" and w4.memory["weights"] == pytest.approx(bf.memory["weights"] * 4.15625 / 16)
    assert w4.tpot_s < 0.6 * bf.tpot_s                      # batch-1 decode is weight-bandwidth bound
    assert any("weight-only" in n for n in w4.notes)
    with pytest.raises(UserError) as e:
        serve("h100-sxm", "llama3-8b", isl=512, osl=128, batch=1, dtype="w4a16", kv_dtype="w4a16")
    assert e.value.parameter == "kv-dtype"


def test_default_kv_dtypes():
    assert default_kv_dtype("nvfp4") == "fp8_e4m3" and default_kv_dtype("w8a16") == "bf16"
    assert default_kv_dtype("fp8_e4m3") == "fp8_e4m3"


@pytest.mark.parametrize("dtype, says", [("fp4", "block-scaled FP4"), ("w4a16", "weight-only"),
                                         ("fp32", "fp32 MAC"), ("bf16", "compute in int8")])
def test_the_chip_names_what_its_datapath_lacks(dtype, says):
    with pytest.raises(UserError, match=says) as e:
        check_chip_dtype("tiny", "int8", dtype)
    assert e.value.parameter == "dtype"
    assert check_chip_dtype("tiny", "int8", "int8") == "int8"


def test_serve_fp4_on_b200_command(capsys):
    assert main(["serve", "--device", "b200", "--model", "llama3-70b", "--dtype", "fp4", "--isl", "1024",
                 "--osl", "128", "--concurrency", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dtype"] == "nvfp4" and out["kv_dtype"] == "fp8_e4m3" and out["output_tokens_per_s"] > 0
    assert main(["serve", "--device", "h100-sxm", "--model", "llama3-8b", "--dtype", "fp4", "--isl", "128",
                 "--osl", "16", "--batch", "1", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "dtype"


def test_gpu_gemm_nvfp4_command(capsys):
    assert main(["gpu", "--gpu", "b200", "--gemm", "4096x4096x4096", "--dtype", "fp4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dtype"] == "nvfp4" and out["gemms"][0]["dtype_used"] == "nvfp4" and out["tflops"] > 4500
    assert any(n.startswith("FP4 (nvfp4, mxfp4)") for n in out["notes"])
    assert main(["gpu", "--gpu", "h100-sxm", "--gemm", "4096x4096x4096", "--dtype", "nvfp4", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "dtype"


@pytest.mark.parametrize("dtype", ["fp4", "mxfp4", "w8a16"])
def test_serving_on_the_chip_refuses_what_its_datapath_lacks(dtype):
    with pytest.raises(UserError, match="unsupported on the systolab chip's datapath") as e:
        serve("sl-tiny", "llama3-8b", isl=128, osl=16, batch=1, dtype=dtype)
    assert e.value.parameter == "dtype"


def test_a_peak_source_must_name_a_peak(tmp_path):
    import yaml

    from systolab.models.gpu.specs import GPU_FILE, load_gpus
    from systolab.models.specs import SpecError

    data = yaml.safe_load(GPU_FILE.read_text())
    data["gpus"]["b200"]["peak_sources"]["fp16"] = "a source for a peak listed"
    data["gpus"]["b200"]["peak_sources"]["tf32"] = "fine"
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(data))
    assert load_gpus(ok)["b200"].peak_sources["tf32"] == "fine"
    del data["gpus"]["b200"]["peak_dense_tflops"]["mxfp4"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="peak_sources.mxfp4"):
        load_gpus(bad)
