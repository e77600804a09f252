"""The command line: JSON contract, exit codes, one-line errors."""
import json
import subprocess
import sys

import pytest

from systolab.cli import main


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "systolab", *args], capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_rtl_writes_the_core_by_default(tmp_path, capsys):
    assert main(["rtl", "--rows", "3", "--cols", "2", "--dataflow", "ws", "--out", str(tmp_path / "rtl"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["top"] == "systolab_core" and out["unit"] == "core"
    assert out["params"]["rows"] == 3 and out["params"]["tile_m"] > 0
    assert "module systolab_core" in (tmp_path / "rtl" / "systolab_core.v").read_text()
    names = {p["name"] for p in out["ports"]}
    assert {"cmd__payload", "mem__rd_cmd__valid", "mem__wr_data__payload", "done", "cycles"} <= names


def test_rtl_writes_verilog_and_manifest(tmp_path, capsys):
    tmp_path = tmp_path / "rtl"
    assert main(["rtl", "--unit", "array", "--rows", "3", "--cols", "2", "--dataflow", "ws", "--out", str(tmp_path),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["top"] == "systolab_top"
    assert out["params"]["rows"] == 3 and out["params"]["dataflow"] == "ws"
    text = (tmp_path / "systolab_top.v").read_text()
    assert "module systolab_top" in text and out["verilog"].endswith("systolab_top.v")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    names = {p["name"]: p for p in manifest["ports"]}
    assert names["weights__payload"]["width"] == 2 * 8  # one row of B: cols x int8
    assert names["results__payload"]["width"] == 2 * 32 + 1  # cols x acc32 + last


def test_rtl_does_not_rewrite_unchanged_verilog(tmp_path, capsys):
    main(["rtl", "--out", str(tmp_path), "--json"])
    v = tmp_path / "systolab_core.v"
    stamp = v.stat().st_mtime_ns
    main(["rtl", "--out", str(tmp_path), "--json"])
    assert v.stat().st_mtime_ns == stamp
    main(["rtl", "--rows", "3", "--out", str(tmp_path), "--json"])
    assert v.stat().st_mtime_ns != stamp


@pytest.mark.parametrize("args", [
    ["--rows", "4", "--cols", "4", "--dataflow", "ws", "--dtype", "int8"],
    ["--rows", "4", "--cols", "4", "--dataflow", "os", "--dtype", "int8"],
    ["--rows", "3", "--cols", "5", "--dtype", "int16"],
    ["--rows", "5", "--cols", "3", "--dtype", "uint8"],
    ["--unit", "array", "--rows", "4", "--cols", "4", "--dataflow", "ws"],
    ["--unit", "array", "--rows", "3", "--cols", "5", "--dtype", "int16"],
])
def test_verify_json_contract(args, capsys):
    assert main(["verify", *args, "--gemms", "8", "--seed", "7", "--sim", "amaranth", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("passed", "gemms", "mismatches", "seed", "simulator", "cycles"):
        assert key in out
    assert out["passed"] is True and out["mismatches"] == 0 and out["seed"] == 7
    assert out["gemms"] == len(out["cycles"]) >= 8


def test_verify_done_when_command_on_the_default_simulator():
    rc, out, err = run_cli("verify", "--rows", "4", "--cols", "4", "--dataflow", "ws", "--dtype", "int8",
                           "--gemms", "8", "--seed", "7", "--json")
    assert rc == 0, err
    report = json.loads(out)  # exactly one JSON object on stdout
    assert report["passed"] is True and report["mismatches"] == 0


def test_verify_one_gemm_on_the_bare_ws_array(capsys):
    assert main(["verify", "--unit", "array", "--dataflow", "ws", "--gemm", "30x3x4", "--sim", "amaranth",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shapes"] == [[30, 3, 4]] and out["passed"]


@pytest.mark.parametrize("gemm", ["37x23x19", "1x1x1", "1x16x40", "33x1x7"])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_verify_whole_gemm_on_the_core(gemm, dataflow, capsys):
    assert main(["verify", "--rows", "4", "--cols", "4", "--dataflow", dataflow, "--gemm", gemm, "--seed", "3",
                 "--sim", "amaranth", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["mismatches"] == 0 and out["shapes"] == [[int(v) for v in gemm.split("x")]]
    assert out["cycles"][0] == out["counters"][0]["cycles"] and 0 < out["utilization"][0] <= 1


def test_verify_core_reaches_95_percent_on_64_cubed():
    rc, out, err = run_cli("verify", "--rows", "4", "--cols", "4", "--dataflow", "os", "--gemm", "64x64x64",
                           "--stall-prob", "0", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["passed"] and report["utilization"][0] >= 0.95


@pytest.mark.parametrize("args, parameter", [
    (["verify", "--rows", "0", "--json"], "rows"),
    (["verify", "--dataflow", "diagonal", "--json"], "dataflow"),
    (["verify", "--dtype", "int7", "--json"], "dtype"),
    (["verify", "--acc-bits", "8", "--json"], "acc_bits"),
    (["verify", "--overflow", "clip", "--json"], "overflow"),
    (["verify", "--unit", "array", "--dataflow", "ws", "--gemm", "1x1x9", "--json"], "gemm"),
    (["verify", "--a-buffer-kib", "0.001", "--json"], "a_buffer_kib"),
    (["verify", "--beat-bytes", "3", "--json"], "beat_bytes"),
    (["verify", "--gemm", "4x4x4", "--latency", "0", "--json"], "latency"),
    (["verify", "--gemm", "banana", "--json"], "gemm"),
    (["verify", "--sim", "modelsim", "--json"], "sim"),
    (["verify", "--stall-prob", "1.5", "--json"], "stall-prob"),
    (["verify", "--stall-prob", "1", "--json"], "stall-prob"),
    (["verify", "--seed", "-1", "--json"], "seed"),
    (["verify", "--unit", "array", "--latency", "5", "--json"], "latency"),
    (["rtl", "--json"], "out"),
    (["rtl", "--out", "", "--json"], "out"),
    (["verify", "--rows", "x", "--json"], "rows"),
    (["validate", "--seed", "-1", "--json"], "seed"),
    (["perf", "--gemm", "8x8x8", "--bytes-per-cycle", "inf", "--json"], "bytes-per-cycle"),
    (["perf", "--gemm", "8x8x8", "--batch", "4", "--json"], "batch"),
    (["perf", "--gemm", "1" * 321 + "x8x8", "--json"], "gemm"),
])
def test_bad_input_is_one_line_without_traceback(args, parameter):
    rc, out, err = run_cli(*args)
    assert rc == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"systolab: error: {parameter}:"), lines
    assert json.loads(out)["parameter"] == parameter


def test_rtl_refuses_a_file_or_a_foreign_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for out, why in ((f, "is a file"), (f / "sub", "is a file"), (tmp_path, "holds files systolab did not write")):
        rc, _, err = run_cli("rtl", "--out", str(out))
        assert rc == 2 and "out: " in err and why in err and "Traceback" not in err


def test_config_file_and_flag_override(tmp_path, capsys):
    f = tmp_path / "design.toml"
    f.write_text('rows = 2\ncols = 3\ndataflow = "ws"\n')
    assert main(["rtl", "--config", str(f), "--cols", "5", "--out", str(tmp_path / "o"), "--json"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert (params["rows"], params["cols"], params["dataflow"]) == (2, 5, "ws")


def test_gpu_json_contract(capsys):
    assert main(["gpu", "--gpu", "h100-sxm", "--gemm", "4096x4096x4096", "--dtype", "bf16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("seconds", "tflops", "bound", "gemms", "workload", "units_per_second"):
        assert key in out
    for key in ("compute_efficiency", "memory_efficiency", "wave_efficiency"):
        assert key in out["gemms"][0]
    assert out["bound"] == "compute" and 600 < out["tflops"] < 989.4 and out["workload"] is None


@pytest.mark.parametrize("gpu, eccn", [("a100-sxm4-80gb", "3A090.a.1"), ("h100-sxm", "3A090.a.1"),
                                       ("l40s", "3A090.a.1"), ("l4", "3A090.a.2"), ("h20", "none"), ("l20", "none")])
def test_export_control_gpu(gpu, eccn, capsys):
    assert main(["export-control", "--gpu", gpu, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eccn"] == eccn and "tpp" in out and "performance_density" in out


def test_export_control_custom_chip(capsys):
    assert main(["export-control", "--rows", "256", "--cols", "256", "--dtype", "int8", "--clock-mhz", "700",
                 "--die-area-mm2", "331", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eccn"] == "none" and out["tpp"] == pytest.approx(734, abs=1)
    assert out["headroom"]["largest_square_array_outside_3A090"] >= 256
    assert out["headroom"]["tpp_limit_outside_3A090"] == pytest.approx(1600)


def test_export_control_needs_the_inputs_its_rule_tests(capsys):
    args = ["export-control", "--rows", "4096", "--cols", "4096", "--clock-mhz", "10000", "--die-area-mm2", "100",
            "--rule-date", "2023-01-01", "--json"]
    assert main(args) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["parameter"] == "io-bidir-gbps"
    assert main(args[:-1] + ["--io-bidir-gbps", "900", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["eccn"] == "3A090.a"


@pytest.mark.parametrize("args, word", [
    (["gpu", "--gpu", "h999", "--gemm", "1x1x1"], "gpu"),
    (["gpu", "--gpu", "h100-sxm"], "gemm"),
    (["gpu", "--gpu", "h100-sxm", "--gemm", "1x1x1", "--dtype", "int3"], "dtype"),
    (["export-control", "--rows", "4"], "cols"),
    (["export-control", "--gpu", "h20", "--rows", "4"], "rows"),
    (["export-control", "--gpu", "h20", "--cores", "4"], "cores"),
    (["export-control", "--gpu", "h20", "--not-data-center"], "not-data-center"),
    (["export-control", "--rows", "4", "--cols", "4", "--clock-mhz", "inf", "--die-area-mm2", "10"], "clock-mhz"),
    (["export-control", "--rows", "4", "--cols", "4", "--clock-mhz", "9", "--die-area-mm2", "10",
      "--io-bidir-gbps", "-5"], "io-bidir-gbps"),
    (["gpu", "--gpu", "h100-sxm", "--workload", "llama3-8b-decode", "--seq-len", "100000000"], "workload"),
    (["export-control", "--gpu", "h20", "--rule-date", "yesterday"], "rule-date"),
])
def test_model_commands_reject_bad_input_in_one_line(args, word):
    rc, out, err = run_cli(*args, "--json")
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0]


@pytest.mark.parametrize("size", [4, 8])
def test_area_json_contract(size, capsys):
    assert main(["area", "--rows", str(size), "--cols", str(size), "--dataflow", "os", "--dtype", "int8",
                 "--node", "n7", "--gemm", "64x64x64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["node"] == "n7" and out["synth_area_mm2"] > 0
    assert abs(out["model_area_mm2"] - out["synth_area_mm2"]) / out["synth_area_mm2"] < 0.03
    assert out["breakdown"]["pe_share"] > 0.5 and out["assumptions"]
    assert out["energy"]["tops_per_watt"] > 0


def test_area_bad_node_is_one_line():
    rc, out, err = run_cli("area", "--node", "n1", "--json")
    assert rc == 2 and "Traceback" not in err and "node: unknown node 'n1'" in err


def test_gpu_on_a_builtin_workload(capsys):
    assert main(["gpu", "--gpu", "h20", "--workload", "llama3-8b-decode", "--batch", "16", "--seq-len", "1024",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # batch-16 decode streams weights; the fitted per-kernel cost outweighs the smaller GEMMs' streaming
    assert out["bound"] in ("memory", "latency")
    assert out["units_per_second"] > 0 and out["unit"] == "token" and "tokens_per_second" not in out
    assert {g["bound"] for g in out["gemms"]} >= {"memory"}
    assert out["workload"]["units_per_run"] == 16


def test_verify_core_writes_the_waveform_it_names(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SYSTOLAB_CACHE", str(tmp_path))
    assert main(["verify", "--gemm", "3x2x2", "--sim", "amaranth", "--waves", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["waveform"] and out["waveform"].endswith(".vcd")
    from pathlib import Path

    assert "$timescale" in Path(out["waveform"]).read_text()


def test_flags_that_do_not_apply_are_refused(tmp_path):
    rc, _, err = run_cli("compare", "--workload", "dlrm", "--seq-len", "512", "--out", str(tmp_path / "c"))
    assert rc == 2 and "seq-len: none of dlrm has a sequence length" in err
    rc, _, err = run_cli("perf", "--workload", "dlrm", "--seq-len", "512")
    assert rc == 2 and "seq-len: dlrm has no sequence length" in err
