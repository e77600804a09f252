"""Issue 33, class 3 (capacity and applicability on every path) and class 6 (errors name
their parameter).

Capacity: one function, :func:`systolab.models.workloads.catalog.check_fits`, decides
whether data fit a device's memory; every command and library entry point that runs a
workload or a descriptor on a chip goes through it, so a workload a chip cannot hold is
refused on each of them, naming the workload (or the GEMM). Flags that do not apply to
the command as given are refused, naming the flag.
"""
from __future__ import annotations

import json

import pytest

import systolab as sl
from systolab import UserError
from systolab.cli import main
from systolab.models.chip import perf as chip_perf_module
from systolab.models.chip.choose import descriptor_perf
from systolab.models.chip.config import get_chip
from systolab.models.chip.mapper import map_gemm, map_gemms
from systolab.models.chip.workload import chip_workload_perf
from systolab.models.report.evaluate import evaluate_chip
from systolab.models.serving import model as serving_model
from systolab.models.workloads import catalog
from systolab.models.workloads.catalog import check_fits, get_workload

TINY = get_chip("sl-tiny")          # 1 GB of DRAM


def _run(argv: list[str], capsys) -> tuple[int, dict]:
    rc = main([*argv, "--json"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return rc, json.loads(lines[-1]) if lines else {}


# -- capacity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["perf", "--chip", "sl-tiny", "--workload", "llama3-70b-decode"],
    ["map", "--chip", "sl-tiny", "--workload", "llama3-70b-decode"],
    ["perf", "--chip", "sl-tiny", "--workload", "llama3-8b-decode", "--seq-len", "100000000"],
    ["map", "--chip", "sl-n4-os32", "--workload", "llama3-8b-prefill", "--seq-len", "100000000"],
    ["compare", "sl-tiny", "--workload", "llama3-70b-decode", "--gpus", "h20", "--out", "{tmp}/cmp"],
], ids=["perf", "map", "perf-seq-len", "map-seq-len", "compare"])
def test_every_command_refuses_a_workload_the_chip_cannot_hold(argv, tmp_path, capsys):
    rc, err = _run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert rc == 2 and err["parameter"] == "workload" and "GB resident" in err["error"]


@pytest.mark.parametrize("argv", [
    ["perf", "--chip", "sl-tiny", "--gemm", "100000x100000x100"],
    ["map", "--chip", "sl-tiny", "--gemm", "100000x100000x100"],
    ["perf", "--chip", "sl-tiny", "--gemm", "1000x1000x1000", "--count", "1000"],
    ["gpu", "--gpu", "h20", "--gemm", "2147483647x2147483647x2147483647"],
    ["verify", "--chip", "sl-tiny", "--gemm", "100000x100000x100000", "--sim", "amaranth"],
], ids=["perf", "map", "perf-count", "gpu", "verify"])
def test_every_command_refuses_a_gemm_the_device_cannot_hold(argv, capsys):
    rc, err = _run(argv, capsys)
    assert rc == 2 and err["parameter"] == "gemm" and "GB resident" in err["error"]


def test_every_library_entry_point_goes_through_the_one_capacity_check(monkeypatch):
    """Each entry point calls check_fits (counted through the module attribute every
    caller resolves), and refuses what it refuses."""
    calls = []
    real = catalog.check_fits

    def counting(*args, **kwargs):
        calls.append(kwargs.get("what"))
        return real(*args, **kwargs)

    for module in (catalog, chip_perf_module, serving_model):
        monkeypatch.setattr(module, "check_fits", counting)
    big = get_workload("llama3-70b-decode", dtype="int8")
    entry_points = {
        "descriptor_perf": lambda: descriptor_perf(TINY, 100_000, 100_000, 100),
        "map_gemm": lambda: map_gemm(TINY, 100_000, 100_000, 100),
        "map_gemms": lambda: map_gemms(TINY, [(8, 8, 8, 1), (100_000, 100_000, 100, 1)]),
        "chip_workload_perf": lambda: chip_workload_perf(TINY, big),
        "evaluate_chip": lambda: evaluate_chip(TINY, big),
        "Chip.evaluate": lambda: sl.get_chip("sl-tiny").evaluate(big),
        "serve": lambda: serving_model.serve("sl-tiny", "llama3-70b", isl=8, osl=8, batch=1),
    }
    for name, call in entry_points.items():
        calls.clear()
        with pytest.raises(UserError) as exc:
            call()
        assert calls, f"{name} did not go through check_fits"
        assert exc.value.parameter in ("workload", "gemm", "tp"), (name, exc.value)


def test_check_fits_states_the_device_and_the_data():
    check_fits(10**9, 1.0, "x", what="w")
    with pytest.raises(UserError, match=r"^tp: w needs 2 GB resident \(weights 2 GB\), more than x's 1 GB") as exc:
        check_fits(2 * 10**9, 1.0, "x", what="w", breakdown=(("weights", 2 * 10**9),), parameter="tp")
    assert exc.value.parameter == "tp"


# -- applicability --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, parameter", [
    (["perf", "--gemm", "8x8x8", "--search", "exhaustive"], "search"),
    (["perf", "--gemm", "8x8x8", "--search", "fast"], "search"),
    (["verify", "--gemm", "2x2x2", "--gemms", "3", "--sim", "amaranth"], "gemms"),
    (["verify", "--gemm", "2x2x2", "--no-corners", "--sim", "amaranth"], "no-corners"),
    (["verify", "--gemm", "2x2x2", "--search", "fast", "--sim", "amaranth"], "search"),
    (["explore", "h20-beater", "--out", "{tmp}/ex", "--replay", ""], "replay"),
    (["explore", "h20-beater", "--out", "{tmp}/ex", "--replay", " "], "replay"),
    (["explore", "h20-beater", "--out", "{tmp}/ex", "--executor", ""], "executor"),
    (["serve", "--device", "", "--model", "llama3-8b", "--isl", "8", "--osl", "8", "--batch", "1"], "device"),
    (["serve", "--device", " ", "--model", "llama3-8b", "--isl", "8", "--osl", "8", "--batch", "1"], "device"),
    (["perf", "--chip", "", "--gemm", "8x8x8"], "chip"),
])
def test_flags_that_do_not_apply_are_refused(argv, parameter, tmp_path, capsys):
    rc, err = _run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert rc == 2 and err["parameter"] == parameter, err


def test_search_still_applies_with_a_chip(capsys):
    rc, out = _run(["perf", "--chip", "sl-tiny", "--gemm", "8x8x8", "--search", "exhaustive"], capsys)
    assert rc == 0 and out["searched"]


# -- class 6: errors name their parameter ---------------------------------------------------------------
BROKEN_CHIPS = {
    "not UTF-8": b"\xff\xfe chips",
    "no core": b"schema: systolab-chips/1\nchips:\n  x:\n    cores: 4\n    clock_mhz: 1000\n",
    "no schema": b"chips:\n  x: {cores: 4}\n",
    "not a mapping": b"- 1\n- 2\n",
    "not YAML": b"chips: [unclosed\n",
    "empty": b"",
}


@pytest.mark.parametrize("content", list(BROKEN_CHIPS), ids=list(BROKEN_CHIPS))
def test_a_broken_chip_file_names_the_chip_everywhere(content, tmp_path, capsys):
    path = tmp_path / "chip.yaml"
    path.write_bytes(BROKEN_CHIPS[content])
    with pytest.raises(UserError) as exc:
        sl.get_chip(str(path))
    assert exc.value.parameter == "chip"
    for argv, parameter in ((["compare", str(path), "--workload", "dlrm", "--gpus", "h20", "--out", str(tmp_path / "c")],
                             "chip"),
                            (["perf", "--chip", str(path), "--gemm", "8x8x8"], "chip"),
                            (["legal", "--chip", str(path), "--buyer", "us", "--date", "2025-01-15"], "chip"),
                            (["serve", "--device", str(path), "--model", "llama3-8b", "--isl", "8", "--osl", "8",
                              "--batch", "1"], "device")):
        rc, err = _run(argv, capsys)
        assert rc == 2 and err["parameter"] == parameter, (argv[0], err)


@pytest.mark.parametrize("name", ["", " ", "\t"])
def test_an_empty_chip_name_is_not_the_default_chip(name):
    with pytest.raises(UserError) as exc:
        sl.get_chip(name)
    assert exc.value.parameter == "chip"
    assert sl.get_chip(None).name == get_chip().name            # None still means the default
