"""The SGLang runtime: its public rows (serving.yaml SGLANG-H200-DATACRUNCH), its entry in
runtimes.yaml, and `serve --runtime sglang`."""
from __future__ import annotations

import json
import re

import pytest

from systolab.cli import main
from systolab.models.gpu.fit_file import fit_file
from systolab.models.gpu.runtime import RUNTIMES_FILE, get_runtime, load_runtimes
from systolab.models.serving import fit as sf
from systolab.models.serving.kv_cache import kv_block_tokens
from systolab.models.serving.model import serve
from systolab.models.specs import load_yaml

SOURCE = "SGLANG-H200-DATACRUNCH"


def _rows():
    return [m for m in sf.measurements() if m.source == SOURCE]


def test_the_sglang_rows_are_read_with_their_source():
    rows = _rows()
    assert len(rows) == 5
    assert SOURCE in load_yaml(sf.SERVING_FILE)["measurement_sources"]
    for m in rows:
        assert (m.runtime, m.gpu_id, m.model, m.dtype, m.tp) == ("sglang", "h200-sxm", "llama3-70b", "bf16", 4)
        assert sf.in_flight(m) and m.metric == "output_tokens_per_s_per_gpu"
        # the value is the group's output_throughput quoted in the notes, per device
        group = float(re.search(r"output_throughput ([0-9.]+) tokens/s", m.notes).group(1))
        assert m.value == pytest.approx(group / m.tp, abs=0.01)
        # isl and osl are the runs' mean lengths: the quoted totals over the prompts
        prompts = int(re.search(r"; (\d+) prompts at request_rate Infinity", m.notes).group(1))
        tin, tout = (int(x) for x in re.search(r"total_input_tokens (\d+) / total_output_tokens (\d+)", m.notes).groups())
        assert (m.isl, m.osl) == (round(tin / prompts), round(tout / prompts))
        assert m.batch <= min(prompts, 4096)        # the concurrency SGLang can reach
    assert not [i for i in sf.check_capacity() if "sglang" in i]       # the model's cache holds them


def test_sglang_is_a_runtime_that_borrows_vllms_cost_until_fitted():
    entry = load_yaml(RUNTIMES_FILE)["runtimes"]["sglang"]
    assert entry["like"] == "vllm" and sf.unseen_like()["sglang"] == "vllm"
    assert entry["scheduling"]["chunked_prefill_tokens"] == 8192 and "server_args.py" in entry["scheduling"]["source"]
    by_runtime = load_yaml(fit_file()).get("launch_overhead_s_by_runtime") or {}
    rt = get_runtime("sglang")
    if "sglang" in by_runtime:                      # after the lead's refit: its own cost
        assert rt.launch_overhead_s == by_runtime["sglang"] and "not fitted yet" not in rt.source
    else:                                           # until then: vLLM's, and the source says so
        assert rt.launch_overhead_s == get_runtime("vllm").launch_overhead_s
        assert "not fitted yet: that of vllm (like)" in rt.source
    assert kv_block_tokens("sglang") == 1           # token-granular KV pool (page_size 1)


def test_a_runtime_the_fit_has_not_seen_reads_its_likes_cost(tmp_path):
    path = tmp_path / "runtimes.yaml"
    path.write_text("schema: systolab-runtimes/1\ndefault: vllm\nruntimes:\n"
                    "  vllm:\n    launch_overhead_s: fitted\n    compute_derate: fitted\n"
                    "  new:\n    fit_name: never-fitted\n    like: vllm\n"
                    "    launch_overhead_s: fitted\n    compute_derate: fitted\n")
    rts = load_runtimes(str(path))
    assert rts["new"].launch_overhead_s == rts["vllm"].launch_overhead_s
    assert "not fitted yet" in rts["new"].source and "not fitted yet" not in rts["vllm"].source


def test_serve_command_under_sglang(capsys):
    args = ["serve", "--device", "h200-sxm", "--model", "llama3-70b", "--isl", "508", "--osl", "515", "--tp", "4",
            "--dtype", "bf16", "--concurrency", "1488", "--json"]
    assert main(args + ["--runtime", "sglang"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runtime"] == "sglang" and out["output_tokens_per_s"] > 0
    steady = serve("h200-sxm", "llama3-70b", isl=508, osl=515, tp=4, dtype="bf16", concurrency=1488, runtime="sglang")
    assert out["output_tokens_per_s"] == pytest.approx(steady.output_tokens_per_s, rel=1e-9)
    # the measured row is replayed as the finite run it was (serving.yaml: finite_runs), not as
    # this steady state at its mean lengths: the ramp, the drain and SGLang's separate prefill
    # batches make it slower
    row = next(m for m in _rows() if (m.isl, m.osl, m.batch) == (508, 515, 1488))
    i = sf.measurements().index(row)
    finite = sf.predict(sf.stored_theta(), [i])[0]
    assert 0.7 * steady.output_tokens_per_s < finite < 0.95 * steady.output_tokens_per_s


def test_check_only_sources_are_predicted_but_never_fitted():
    """The SGLang rows (mean of random lengths, derived concurrency) are always held out:
    no fit uses them, yet the leave-one-source-out report predicts them."""
    ms = sf.measurements()
    skip = sf.check_only_sources()
    assert "SGLANG-H200-DATACRUNCH" in skip and "finite run" in skip["SGLANG-H200-DATACRUNCH"]
    fitted = sf.fit_indices()
    assert {ms[i].source for i in fitted}.isdisjoint(skip)
    assert len(fitted) == len(ms) - sum(m.source in skip for m in ms) and len(fitted) < len(ms)
    held = [r for r in sf.report(loo=False) if r["id"].startswith("ifb-sglang-")]
    assert len(held) == 5 and all(r["model_value"] > 0 for r in held)
