"""Replicas of published accelerators (models/report/replicas.py, models/data/replicas.yaml):
the file loads with a source for every published figure, every replica is a valid chip of
systolab's design space, and the table of modelled against published figures computes,
with finite errors and the medians as measured (benchmarks/replicas.py)."""
from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from systolab.errors import UserError
from systolab.models.chip.config import ChipConfig
from systolab.models.report import ReplicaTable, load_replicas, replica_table
from systolab.models.report.replicas import (
    QUANTITIES,
    REPLICAS_FILE,
    design_sram_W,
    replica_figure,
    replica_rows,
)
from systolab.models.silicon.area import chip_area
from systolab.models.silicon.energy import chip_power, sram_energy_pJ_per_byte
from systolab.models.specs import SpecError


@pytest.fixture(scope="module")
def table() -> ReplicaTable:
    return replica_table()


def test_at_least_three_replicas_each_with_sourced_figures():
    reps = load_replicas()
    assert len(reps) >= 3
    for r in reps:
        for fig in (r.die_mm2, r.peak_tops, r.tdp_W, r.figure):
            assert fig.source.strip() and fig.low <= fig.value <= fig.high
        if r.figure_kind == "tops_per_W":
            assert r.figure_power is not None and r.figure_power.source
        else:
            assert r.workload and r.batch >= 1
        assert r.mapping and r.unmapped


def test_every_replica_is_a_valid_chip_within_the_design_space():
    raw = yaml.safe_load(REPLICAS_FILE.read_text())["replicas"]
    for r in load_replicas():
        assert isinstance(r.chip, ChipConfig)
        assert r.chip.core.rows <= 64 and r.chip.core.cols <= 64
        again = ChipConfig.from_dict(r.key, raw[r.key]["chip"])
        assert again.config_hash == r.chip.config_hash
        assert chip_area(r.chip).die_mm2 > 0


def test_peak_tops_follow_the_published_mac_counts():
    """The replicas' MAC counts and clocks give the published peaks (within 3 %: MTIA v1's
    1,024-MAC PEs give 104.9 TOPS against the 102.4 published)."""
    for r in load_replicas():
        assert r.chip.peak_tops == pytest.approx(r.peak_tops.value, rel=0.03), r.key


def test_the_table_computes_with_finite_errors(table):
    reps = load_replicas()
    assert table.replicas == tuple(r.key for r in reps)
    assert len(table.rows) == len(QUANTITIES) * len(reps)
    for row in table.rows:
        assert math.isfinite(row.modelled) and row.modelled > 0
        assert math.isfinite(row.error_pct)
        assert row.error_pct == pytest.approx(100 * (row.modelled - row.published) / row.published)
        assert (row.held_out is not None) == (row.quantity in ("die_mm2", "tdp_W"))
    frame = table.to_frame()
    assert len(frame) == len(table.rows) and {"modelled", "published", "error_pct"} <= set(frame.columns)
    d = table.to_dict()
    assert d["rows"][0]["replica"] == reps[0].key and "median_abs_die_mm2_error_pct" in d


def test_the_held_out_reading_leaves_the_replica_out(table):
    area = [r for r in table.rows if r.quantity == "die_mm2"]
    first = area[0]
    logs = [math.log(o.published / o.modelled) for o in area[1:]]
    assert first.held_out == pytest.approx(first.modelled * math.exp(sum(logs) / len(logs)))


def test_median_errors_as_measured(table):
    """The medians benchmarks/replicas.py recorded (2026-12-07), with a tolerance. With SRAM
    at a logic die's density, control processors, white space, SRAM traffic and a static
    floor (data/die.yaml) the models miss die area by 38 % and TDP by 24 % in the median
    (69.5 % and 67.6 % before); docs/replicas.md says what remains. Peak TOPS is within 1 %.
    The held-out TDP reading moved from 28.4 % to 21.3 % when TPU v4i and MTIA v2 took their
    published vector widths (MTIA v2's design power fell by 5 W)."""
    s = table.summary()
    assert s["median_abs_peak_tops_error_pct"] < 1.0
    assert s["median_abs_die_mm2_error_pct"] == pytest.approx(37.9, abs=3)
    assert s["median_abs_tdp_W_error_pct"] == pytest.approx(24.0, abs=1)
    assert s["median_abs_die_mm2_held_out_error_pct"] == pytest.approx(24.7, abs=3)
    assert s["median_abs_tdp_W_held_out_error_pct"] == pytest.approx(21.3, abs=3)
    over = {r.replica for r in table.rows if r.quantity == "die_mm2" and r.error_pct > 0}
    assert over == {"groq-tsp"}, "only the SRAM-heavy TSP's die models larger than published"


def test_the_sram_term_prices_each_buffer_at_its_own_size():
    """design_sram_W by hand for a weight-stationary replica (TPU v1): per core and cycle,
    64 operand bytes read from the global slice, written to and read from the 8 KiB A
    buffer, and 64 partial sums of 4 bytes read and written in the 8 KiB accumulator
    buffer; 15 % overhead. It is the design power's sram_W."""
    chip = next(r.chip for r in load_replicas() if r.key == "tpu-v1")
    pJ = (2 * 64 + 2 * 64 * 4) * sram_energy_pJ_per_byte(8, "n28") + 64 * sram_energy_pJ_per_byte(1760, "n28")
    assert design_sram_W(chip) == pytest.approx(16 * pJ * 1e-12 * 700e6 * 1.15)
    assert chip_power(chip).sram_W == pytest.approx(design_sram_W(chip))
    os_chip = chip.derive(dataflow="os")       # no partial sums; B operands through the 16 KiB B buffer
    pJ_os = 2 * 64 * (sram_energy_pJ_per_byte(8, "n28") + sram_energy_pJ_per_byte(16, "n28")) \
        + 128 * sram_energy_pJ_per_byte(os_chip.slice_bytes / 1024, "n28")
    assert design_sram_W(os_chip) == pytest.approx(16 * pJ_os * 1e-12 * 700e6 * 1.15)
    assert design_sram_W(chip.derive(clock_mhz=1400)) == pytest.approx(2 * design_sram_W(chip))
    big = chip.derive(a_buffer_kib=64)
    assert design_sram_W(big) > design_sram_W(chip), "a larger A buffer costs more per byte"


def test_replicas_count_their_control_processors():
    """MTIA's two RISC-V cores per PE (128) and TPU v4i's scalar unit are in the die and the
    design power of their rows; a replica without them has none."""
    reps = {r.key: r for r in load_replicas()}
    assert reps["mtia-v1"].scalar_cores == 128 and reps["tpu-v4i"].scalar_cores == 1
    assert reps["tpu-v1"].scalar_cores == 0
    r = reps["mtia-v1"]
    rows = {row.quantity: row for row in replica_rows(r)}
    assert rows["die_mm2"].modelled == pytest.approx(chip_area(r.chip, scalar_cores=128).die_mm2)
    assert rows["die_mm2"].modelled > chip_area(r.chip).die_mm2
    assert rows["tdp_W"].modelled == pytest.approx(chip_power(r.chip, scalar_cores=128).tdp_W)


def test_replicas_take_their_makers_vector_widths():
    """TPU v4i's vector unit (128 lanes x 8 sublanes x 2 ALUs) and MTIA v2's vector cores
    (2.76 fp32 TFLOPS at 1.35 GHz) set their lanes, not the default of one per array column;
    the vector unit's area and power follow the lanes."""
    reps = {r.key: r for r in load_replicas()}
    v4i, v2 = reps["tpu-v4i"].chip, reps["mtia-v2"].chip
    assert v4i.lanes == 2048 and v4i.lanes != v4i.cores * v4i.core.cols
    assert v2.lanes == 1024 and v2.cores * v2.core.cols == 4096
    assert 2 * v2.lanes * 1.35e9 == pytest.approx(2.76e12, rel=0.01)
    default = v2.derive(vector_lanes=None)
    assert chip_area(default).vector_mm2 == pytest.approx(4 * chip_area(v2).vector_mm2)
    assert chip_power(default).vector_W == pytest.approx(4 * chip_power(v2).vector_W)
    assert reps["mtia-v1"].chip.vector_lanes is None, "no published vector width: the default"


def test_a_negative_scalar_core_count_is_refused(tmp_path):
    p = _write(tmp_path, lambda r: r.update(scalar_cores=-1))
    with pytest.raises(SpecError, match=r"replicas\.tpu-v1\.scalar_cores"):
        load_replicas(p)


def test_a_tops_per_watt_figure_is_peak_over_design_power():
    r = next(r for r in load_replicas() if r.figure_kind == "tops_per_W")
    rows = {row.quantity: row for row in replica_rows(r)}
    assert rows["figure"].modelled == pytest.approx(rows["peak_tops"].modelled / rows["tdp_W"].modelled)


def test_an_unknown_quantity_names_the_parameter(table):
    with pytest.raises(UserError, match="^quantity") as err:
        table.errors("area")
    assert err.value.parameter == "quantity"


def _write(tmp_path: Path, mutate) -> Path:
    d = yaml.safe_load(REPLICAS_FILE.read_text())
    d["replicas"] = {"tpu-v1": d["replicas"]["tpu-v1"]}
    mutate(d["replicas"]["tpu-v1"])
    p = tmp_path / "replicas.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_a_figure_without_a_source_is_refused(tmp_path):
    p = _write(tmp_path, lambda r: r["published"]["tdp_W"].update(source=" "))
    with pytest.raises(SpecError, match=r"published\.tdp_W\.source"):
        load_replicas(p)


def test_a_bad_chip_field_is_named(tmp_path):
    p = _write(tmp_path, lambda r: r["chip"].update(cores=0))
    with pytest.raises(SpecError, match=r"replicas\.tpu-v1\.chip\.cores"):
        load_replicas(p)


def test_a_value_outside_its_range_is_refused(tmp_path):
    p = _write(tmp_path, lambda r: r["published"]["die_mm2"].update(value=400))
    with pytest.raises(SpecError, match="low <= value <= high"):
        load_replicas(p)


def test_a_dram_less_replica_runs_its_workload_from_its_sram(table):
    """Groq's ResNet-50 figure comes from the chip's performance model with the operands
    served at the SRAM's bandwidth: the same replica on its nominal 1 GB/s channel runs
    far slower (memory-bound)."""
    groq = next(r for r in load_replicas() if r.figure_kind == "workload")
    row = next(x for x in table.rows if x.replica == groq.key and x.quantity == "figure")
    assert row.modelled == pytest.approx(replica_figure(groq)[0])
    nominal, _ = replica_figure(replace(groq, sram_GBps=None))
    assert nominal < row.modelled / 10


def test_the_benchmark_checks_the_candidate_explanations(capsys):
    """benchmarks/replicas.py --checks recomputes each replica's die and TDP under each
    candidate explanation of the gaps from the model's own breakdown: with the global SRAM
    at an SRAM-only die's bitcell share (V-Cache, data/die.yaml's high end) the Groq TSP
    lands within 5 % of its die and every other replica moves further below its own."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "replicas.py"
    spec = importlib.util.spec_from_file_location("replicas_benchmark", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.checks(None)
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("| global SRAM at the SRAM-only die's share"))
    groq = re.search(r"groq-tsp ([0-9,]+) \(([+-][0-9]+) %\)", line)
    assert groq is not None and abs(int(groq.group(2))) <= 5
    for key in ("tpu-v1", "tpu-v4i", "mtia-v1", "mtia-v2"):
        err = re.search(rf"{key} [0-9,]+ \(([+-][0-9]+) %\)", line)
        assert err is not None and int(err.group(1)) < -30, key
    assert "static floor = idle fraction of design power" in out and "arrays x" not in out
    gf14 = next(ln for ln in out.splitlines() if "GF 14LPP" in ln)
    assert "tpu-v1 260 (-21 %)" in gf14, "only the 14 nm replica changes"
    groq = re.search(r"groq-tsp ([0-9,]+) \(([+-][0-9]+) %\)", gf14)
    assert groq is not None and 27 <= int(groq.group(2)) <= 33
