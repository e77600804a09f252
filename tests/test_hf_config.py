"""Any model from its Hugging Face config.json: Llama-, Qwen2-, Mixtral- and DeepSeek-V3-like
configs, and errors that name the field."""
import json

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.serving.model import serve
from systolab.models.workloads.catalog import get_llm, get_workload
from systolab.models.workloads.hf_config import load_hf_config

# Qwen2-7B-Instruct's config.json (huggingface.co/Qwen/Qwen2-7B-Instruct), trimmed
QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
         "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
         "max_position_embeddings": 32768, "vocab_size": 152064, "tie_word_embeddings": False,
         "torch_dtype": "bfloat16"}
# DeepSeek-V3's config.json (huggingface.co/deepseek-ai/DeepSeek-V3), the fields systolab reads
DEEPSEEK_V3 = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
               "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
               "num_attention_heads": 128, "num_key_value_heads": 128, "n_routed_experts": 256,
               "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "kv_lora_rank": 512,
               "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
               "max_position_embeddings": 163840, "vocab_size": 129280, "tie_word_embeddings": False}
# a small Mixtral-like MoE with an explicit head_dim and tied embeddings
TINY_MOE = {"hidden_size": 512, "intermediate_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 2,
            "head_dim": 128, "num_hidden_layers": 4, "num_local_experts": 4, "num_experts_per_tok": 2,
            "max_position_embeddings": 4096, "vocab_size": 1000, "tie_word_embeddings": True}


def write(tmp_path, config, name="config.json", folder="model"):
    path = tmp_path / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return str(path)


def test_qwen2_config(tmp_path):
    m = get_llm(write(tmp_path, QWEN2, folder="Qwen2-7B-Instruct"))
    assert m.name == "Qwen2-7B-Instruct" and (m.hidden, m.layers, m.heads, m.kv_heads, m.head_dim) == (
        3584, 28, 28, 4, 128)
    # 7.6B parameters (the Qwen2 model card), the attention biases (0.3M per layer) aside
    assert m.params / 1e9 == pytest.approx(7.62, rel=0.01)
    r = serve("h100-sxm", m, isl=512, osl=64, batch=4)
    assert r.model == "Qwen2-7B-Instruct" and r.memory["kv_per_token"] == 2 * 28 * 4 * 128 * 1


def test_deepseek_v3_config_matches_the_builtin(tmp_path):
    m = load_hf_config(write(tmp_path, DEEPSEEK_V3, folder="DeepSeek-V3"))
    builtin = get_llm("deepseek-v3")
    fields = ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab", "max_context", "experts",
              "experts_per_token", "moe_ffn", "shared_experts", "dense_layers", "kv_lora_rank", "q_lora_rank",
              "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
    assert {f: getattr(m, f) for f in fields} == {f: getattr(builtin, f) for f in fields}
    assert get_llm("deepseek-r1") is builtin
    # 671B: the model card's 685B less its 14B multi-token-prediction module
    assert m.params / 1e9 == pytest.approx(671, rel=0.005) and m.mla and m.moe_layers == 58


def test_head_dim_and_tied_embeddings(tmp_path):
    m = load_hf_config(write(tmp_path, TINY_MOE, name="tiny.json"))
    assert m.name == "tiny" and m.head_dim == 128 and m.tied_embeddings
    attn = 2 * 512 * 8 * 128 + 2 * 512 * 2 * 128
    assert m.params == 4 * (attn + 3 * 512 * 1024 * 4 + 512 * 4) + 1000 * 512
    w = get_workload("llama3-8b-decode", dtype="bf16")          # the catalogue still builds
    assert w.gemms


@pytest.mark.parametrize("change, field", [
    ({"num_key_value_heads": 5}, "num_key_value_heads (5) must divide num_attention_heads"),
    ({"hidden_size": None}, "field hidden_size is missing"),
    ({"num_hidden_layers": "61"}, "field num_hidden_layers must be an integer"),
    ({"num_experts_per_tok": 300}, "num_experts_per_tok (300) exceeds n_routed_experts"),
    ({"first_k_dense_replace": 61}, "first_k_dense_replace (61) must be below num_hidden_layers"),
    ({"v_head_dim": None}, "field v_head_dim is missing"),
    ({"tie_word_embeddings": "no"}, "field tie_word_embeddings must be true or false"),
    ({"num_key_value_heads": 0}, "field num_key_value_heads must be an integer >= 1"),
])
def test_a_bad_field_is_named(tmp_path, change, field):
    config = {k: v for k, v in {**DEEPSEEK_V3, **change}.items() if v is not None}
    with pytest.raises(UserError, match="config.json " + field.replace("(", r"\(").replace(")", r"\)")) as e:
        get_llm(write(tmp_path, config))
    assert e.value.parameter == "model" and str(e.value).startswith("model: ")


def test_a_missing_or_malformed_file_names_model(tmp_path):
    with pytest.raises(UserError, match="no such file") as e:
        get_llm(str(tmp_path / "absent" / "config.json"))
    assert e.value.parameter == "model"
    bad = tmp_path / "bad.json"
    bad.write_text("{\"hidden_size\": 4096,")
    with pytest.raises(UserError, match="not valid JSON") as e:
        get_llm(str(bad))
    assert e.value.parameter == "model"
    bad.write_text("[1, 2]")
    with pytest.raises(UserError, match="JSON list, not a config object"):
        get_llm(str(bad))


def test_serve_command_takes_a_config_path(tmp_path, capsys):
    path = write(tmp_path, QWEN2, folder="qwen2")
    assert main(["serve", "--device", "h100-sxm", "--model", path, "--isl", "256", "--osl", "32", "--batch", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "Qwen2-7B-Instruct" or out["model"] == "qwen2"
    broken = write(tmp_path, {**QWEN2, "num_key_value_heads": 3}, folder="broken")
    assert main(["serve", "--device", "h100-sxm", "--model", broken, "--isl", "256", "--osl", "32", "--batch", "2",
                 "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["parameter"] == "model" and "num_key_value_heads" in err["error"]


def test_a_config_is_a_gpu_workload(tmp_path, capsys):
    path = write(tmp_path, TINY_MOE)
    decode = get_workload(path, dtype="nvfp4", batch=4, seq_len=256)
    prefill = get_workload(path + ":prefill", dtype="bf16", batch=1, seq_len=256)
    assert decode.name == "model-decode" and decode.units_per_run == 4 and prefill.units_per_run == 256
    assert dict(decode.resident_breakdown)["weights"] == int(load_hf_config(path).params * 4.5 / 8)
    assert main(["gpu", "--gpu", "b200", "--workload", path, "--dtype", "fp4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dtype"] == "nvfp4"
    with pytest.raises(UserError) as e:
        get_workload(str(tmp_path / "none.json"), dtype="bf16")
    assert e.value.parameter == "workload"
