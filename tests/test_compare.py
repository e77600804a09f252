"""Chip model, sizing helpers, the comparison and `systolab compare`."""
import json
import re
import subprocess
import sys

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.chip.config import load_chips
from systolab.models.report.chip import get_chip
from systolab.models.report.compare import DEFAULT_GPUS, compare
from systolab.models.report.sizing import fit_cores, largest_outside, match_gpu
from systolab.models.specs import SpecError
from systolab.models.workloads.catalog import get_workload


def test_default_chip_is_consistent():
    chip = get_chip()
    s = chip.summary()
    a = s["area"]
    parts = a["cores_mm2"] + a["noc_mm2"] + a["global_sram_mm2"] + a["dram_phy_mm2"] + a["io_mm2"] + a["vector_mm2"] \
        + a["scalar_mm2"]
    assert a["die_mm2"] == pytest.approx(parts + a["whitespace_mm2"]) and a["whitespace_mm2"] > 0
    # the vector unit: one lane per array column unless set; its area and power scale with its lanes
    assert chip.lanes == chip.cores * chip.core.cols and a["vector_mm2"] > 0
    half = chip.derive(vector_lanes=chip.lanes // 2)
    assert half.area().vector_mm2 == pytest.approx(a["vector_mm2"] / 2)
    assert half.power_W().vector_W == pytest.approx(s["power"]["vector_W"] / 2)
    pw = s["power"]
    assert s["tdp_W"] == pytest.approx(pw["logic_W"] + pw["dram_W"] + pw["vector_W"] + pw["sram_W"] + pw["scalar_W"]
                                       + pw["static_W"])
    assert a["cores_mm2"] == pytest.approx(chip.cores * (a["core_array_mm2"] + a["core_sram_mm2"]))
    assert s["peak_tops"] == pytest.approx(2 * chip.core.rows * chip.core.cols * chip.cores * chip.clock_mhz * 1e6 / 1e12)
    assert s["unit_cost_range_usd"][0] <= s["unit_cost_usd"] <= s["unit_cost_range_usd"][1]
    assert s["eccn"].startswith("3A090") or s["eccn"] == "none"
    assert s["tdp_W"] > s["power"]["dram_W"] > 0


def test_chip_views_are_typed_results_of_their_layers():
    """A ChipConfig is configuration only; its area, power, cost and export class come from
    the functions of their layers, and the Chip facade (what get_chip returns) delegates to them."""
    from systolab.models.chip.config import ChipConfig
    from systolab.models.chip.config import get_chip as get_config
    from systolab.models.cost.pricing import chip_unit_cost
    from systolab.models.legal.export_control import classify_chip
    from systolab.models.report.chip import Chip, chip_summary
    from systolab.models.silicon.area import chip_area
    from systolab.models.silicon.energy import chip_power

    config, chip = get_config(), get_chip()
    assert type(config) is ChipConfig and not hasattr(config, "area") and isinstance(chip, Chip)
    assert type(chip.derive(cores=10)) is Chip and type(chip.with_cores(3)) is Chip
    assert type(config.derive(cores=10)) is ChipConfig
    s = chip_summary(config)
    assert s == chip.summary()
    assert chip_area(config).to_dict() == s["area"] == chip.area().to_dict()
    assert chip_power(config).to_dict() == s["power"] and chip_unit_cost(config).to_dict() == s["cost"]
    assert classify_chip(config).eccn == s["eccn"] == chip.export_class().eccn
    assert chip_area(config).die_mm2 == s["die_mm2"] and chip_power(config).tdp_W == s["tdp_W"]


def test_sizing_helpers():
    chip = get_chip()
    big = fit_cores(chip, die_mm2=814)
    assert big.area().die_mm2 <= 814 < big.with_cores(big.cores + 1).area().die_mm2
    both = fit_cores(chip, die_mm2=814, power_W=300)
    assert both.power_W().tdp_W <= 300 and both.cores <= big.cores
    iso = match_gpu(chip, "h100-sxm", by="area")
    assert iso.cores == big.cores
    free = largest_outside(chip)
    assert free.export_class().eccn == "none" and free.with_cores(free.cores + 1).export_class().eccn != "none"
    with pytest.raises(UserError, match="budget"):
        fit_cores(chip)
    with pytest.raises(UserError, match="budget"):
        fit_cores(chip, die_mm2=50)
    with pytest.raises(UserError, match="by"):
        match_gpu(chip, "h100-sxm", by="colour")


def _chip_file(tmp_path, edit):
    """A one-chip YAML file: the default chip with ``edit`` applied to its table."""
    import yaml

    from systolab.models.chip.config import CHIPS_FILE

    d = yaml.safe_load(CHIPS_FILE.read_text())
    table = d["chips"][d["default"]]
    edit(table)
    f = tmp_path / "chips.yaml"
    f.write_text(yaml.safe_dump({"schema": "systolab-chips/1", "chips": {"x": table}}))
    return f


@pytest.mark.parametrize("edit, field", [
    (lambda t: t["core"].__setitem__("rows", 0), "chips.x.core.rows: must be in 1..64"),
    (lambda t: t["dram"].__setitem__("kind", "SRAM"), "chips.x.dram.kind: must be one of HBM, DDR"),
    (lambda t: t.__setitem__("colck_mhz", 900), "chips.x.colck_mhz: unknown chip field"),
    (lambda t: t.pop("core"), "chips.x.core: missing"),
    (lambda t: t["dram"].__setitem__("latency", 5), "chips.x.dram.latency: unknown DRAM field"),
    (lambda t: t.__setitem__("clock_mhz", float("inf")), "chips.x.clock_mhz: must be a finite number"),
    (lambda t: t.__setitem__("cores", 0), "chips.x.cores: must be in 1.."),
    (lambda t: t.__setitem__("noc_overhead_fraction", 1.0), "chips.x.noc_overhead_fraction: must be < 1"),
])
def test_bad_chip_files_name_the_field(tmp_path, edit, field):
    f = _chip_file(tmp_path, edit)
    with pytest.raises(SpecError, match=re.escape(field)):
        load_chips(str(f))


def test_unknown_chip_name():
    with pytest.raises(UserError, match="chip"):
        get_chip("no-such-chip")


def test_chip_config_is_validated_and_derived():
    from systolab.models.chip.config import ReticleWarning

    chip = get_chip()
    small = chip.derive(rows=16, cols=16, cores=300)
    assert small.name == "sl-n4-os32+cols=16,cores=300,rows=16" and small.core.rows == 16
    assert small.config_hash != chip.config_hash and chip.derive(name="copy").config_hash == chip.config_hash
    assert chip.derive(dram_stacks=4).dram.GBps == 4 * chip.dram.GBps_per_stack
    with pytest.warns(ReticleWarning, match="reticle limit"):
        chip.derive(cores=8000)
    with pytest.raises(UserError, match="colour: not a chip, core or DRAM field"):
        chip.derive(colour="red")
    with pytest.raises(UserError, match="cores: must be in 1"):
        chip.derive(cores=0)
    with pytest.raises(UserError, match="rows: must be in 1..64"):
        chip.derive(rows=65)


def test_compare_rows_cover_every_device_and_workload():
    chip = get_chip()
    result = compare(chip, workloads=("llama3-8b-decode", "dlrm"), gpus=("h100-sxm", "h20"),
                     iso=("area", "power", "price"), progress=lambda m: None)
    assert len(result.rows) == 2 * 3
    d = result.to_dict()
    assert d["rows"] == list(result.rows) and d["chip"] == chip.summary() and d["serving"]["rows"]
    assert [x["id"] for x in d["devices"]] == [chip.name, "h100-sxm", "h20"]
    frame = result.to_frame()
    assert len(frame) == 6 and "gemms" not in frame.columns
    # the same keys whatever the workload's unit: units_per_second beside unit
    assert all(r["units_per_second"] == r["throughput"] and not any(k.endswith("s_per_second") and k != "units_per_second"
                                                                   for k in r) for r in result.rows)
    assert {r["unit"] for r in result.rows} == {"token", "sample"}
    perf = chip.workload_perf(get_workload("dlrm", dtype="int8").gemms)
    mine = next(r for r in result.rows if r["device"] == chip.name and r["workload"] == "dlrm")
    assert mine["seconds"] == pytest.approx(perf.seconds)
    for r in result.rows:
        for key in ("seconds", "throughput", "utilization", "bound", "energy_J", "tops_per_mm2", "tops_per_W",
                    "usd_per_million_units", "eccn", "model"):
            assert key in r
        assert r["throughput"] > 0 and 0 < r["utilization"] <= 1
    assert set(result.model_errors) >= {"custom_time", "custom_area", "gpu_time", "cost", "export"}
    iso = [r for r in result.iso if "ratio" in r]
    assert {r["view"] for r in iso} == {"iso-area", "iso-power", "iso-price"}
    area = next(r for r in iso if r["view"] == "iso-area" and r["gpu"] == "h100-sxm")
    assert area["die_mm2"] <= 814 and area["ratio"] == pytest.approx(area["throughput"] / area["gpu_throughput"])
    assert all(r["die_mm2"] <= 858 for r in iso)          # never past the reticle limit
    assert not compare(chip, workloads=("dlrm",), gpus=("h20",), progress=lambda m: None).iso
    with pytest.raises(UserError, match="gpu"):
        compare(chip, gpus=("h100-sxm", "rtx-4090"), progress=lambda m: None)


def test_compare_cli_writes_the_report(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    devices = {r["device"] for r in summary["rows"]}
    assert len(devices) == 1 + len(DEFAULT_GPUS) >= 3
    assert json.loads((out / "summary.json").read_text())["rows"] == json.loads(json.dumps(summary["rows"]))
    report = (out / "report.md").read_text()
    assert "## Models behind the numbers and their measured errors" in report and "cycle model" in report
    for png in ("roofline.png", "latency_per_layer.png", "efficiency.png", "export_map.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, parameter", [
    (["--gpus", "h100-sxm,nope"], "gpus"),
    (["--gpus", ","], "gpus"),
    (["--fit-power-w", "-3"], "fit-power-w"),
    (["--out", "/dev/null/report"], "out"),
])
def test_compare_cli_bad_input_is_one_line(tmp_path, args, parameter):
    argv = [sys.executable, "-m", "systolab", "compare", "--out", str(tmp_path), *args, "--json"]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"error: {parameter}" in r.stderr, r.stderr


def test_plots_return_figures_and_draw_into_given_axes():
    from matplotlib.figure import Figure

    from systolab.models.report.figures import plot_efficiency, plot_export_map, plot_latency_per_layer, plot_roofline

    result = compare(get_chip(), workloads=("dlrm",), gpus=("h20",), progress=lambda m: None)
    for fn in (plot_roofline, plot_latency_per_layer, plot_export_map):
        assert isinstance(fn(result), Figure)
        fig = Figure()
        ax = fig.subplots()
        assert fn(result, ax=ax) is fig and ax.has_data()
    fig = Figure()
    axes = fig.subplots(2, 3)              # one row per workload and one for the serving case, 3 panels each
    assert plot_efficiency(result, ax=axes) is fig and all(a.has_data() for a in axes.ravel())
    with pytest.raises(UserError, match="ax: this plot needs 6 axes"):
        plot_efficiency(result, ax=[axes[0][0]])


def test_evaluations_render_and_convert():
    import systolab as sl

    chip = sl.get_chip()
    wl = sl.get_workload("dlrm", dtype="int8", batch=256)
    mine, theirs = chip.evaluate(wl), sl.evaluate_gpu("h20", wl)
    for ev in (mine, theirs):
        df = ev.to_frame()
        assert list(df["name"]) == [g.name for g in wl.gemms] and "seconds_s" in df.columns
        assert df["seconds_s"].sum() == pytest.approx(ev.seconds, rel=1e-6)
        assert "<b>dlrm</b>" in ev._repr_html_() and ev.to_dict()["units_per_second"] == ev.throughput
        assert ev.to_dict()["unit"] == "sample" and "samples_per_second" not in ev.to_dict()
    assert "ECCN" in chip._repr_html_() and "ECCN" in chip.export_class()._repr_html_()
    with pytest.raises(UserError, match="dtype: dlrm is bf16 but sl-n4-os32's cores compute int8"):
        chip.evaluate(sl.get_workload("dlrm", dtype="bf16"))
    assert set(sl.list_workloads()) >= {"llama3-8b-decode", "dlrm"} and "h20" in sl.list_gpus()
    assert sl.list_chips()[0] == "sl-n4-os32"


def test_the_cycle_models_error_is_cited_from_the_recorded_validation_runs(tmp_path, monkeypatch):
    """The report's claim about the cycle models is the last recorded `systolab validate`
    run, not text: the repository's records say every GEMM was exact, and a different
    record changes what the report says."""
    from systolab.flows import validate as val
    from systolab.models import records
    from systolab.models.report.compare import validation_text

    for kind in ("core", "chip"):
        r = records.recorded(kind)
        assert r is not None and r["all_passed"] and r["exact_cycles"] == r["shapes"] > 0
        assert not any(r["max_abs_error"].values())
        assert validation_text(kind).startswith(f"{r['shapes']} of {r['shapes']} GEMMs cycle-exact")
    record = tmp_path / "validation.yaml"
    monkeypatch.setattr(records, "record_file", lambda: record)
    assert validation_text("chip").startswith("not recorded")
    report = {"simulator": "verilator", "seed": 1, "shapes": 3, "configurations": 1, "exact_cycles": 2,
              "max_abs_cycle_error": 4, "all_passed": True, "max_abs_error": {"cycles": 4, "steps": 0, "macs": 1},
              "cases": {"a chip": {"exact": 2, "shapes": 3}}}
    assert val.record(report, "chip", command="systolab validate --chip", path=record) == record
    text = validation_text("chip")
    assert text.startswith("2 of 3 GEMMs cycle-exact (max |error| 4 cycles), macs off on 1 chips (a chip: 2/3 exact)")
    assert validation_text("core").startswith("not recorded")
