"""What the command line asks of the library: a descriptor's blocking from --block, --grid
and --order (or the mapper's), its numbers, a workload's rates and mapping totals, and
the limit of the chips the RTL commands take. The CLI prints these; it computes nothing."""
from __future__ import annotations

import json

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.flows.verify import MAX_SIMULATED_PES, check_simulable
from systolab.models.chip.choose import ORDER_FLAGS, choose_blocking, descriptor_perf, parse_dims
from systolab.models.chip.config import get_chip
from systolab.models.chip.mapper import map_gemm, map_gemms, mapping_totals, workload_rows
from systolab.models.chip.workload import chip_workload_perf
from systolab.models.report.compare import ISO_VIEWS
from systolab.models.workloads.catalog import get_workload


@pytest.mark.parametrize("kwargs, parameter", [
    (dict(grid="1x2x1"), "grid"),                               # a grid splits a block
    (dict(order="nm"), "order"),                                # an order runs the blocks
    (dict(block="16x36"), "block"),                             # three sizes
    (dict(block="4000x36x64", grid="1x1x1"), "block"),          # the operands do not fit a slice
    (dict(block="16x36x64", grid="1x3x1"), "grid"),             # more cores than the chip has
])
def test_a_blocking_the_chip_refuses_names_the_flag(kwargs, parameter):
    with pytest.raises(UserError) as e:
        choose_blocking(get_chip("sl-tiny"), 40, 36, 100, 1, **kwargs)
    assert e.value.parameter == parameter and str(e.value).startswith(f"{parameter}: ")


def test_the_blocking_is_the_mappers_unless_given():
    chip = get_chip("sl-tiny")
    b, found = choose_blocking(chip, 40, 36, 100, 1)
    assert found is not None and b == found.blocking == map_gemm(chip, 40, 36, 100).blocking
    b, found = choose_blocking(chip, 40, 36, 100, 1, block="8x16x64", grid="1x1x2", order="nm")
    assert found is None and (b.mb, b.nb, b.kb, b.gp, b.gm, b.gn) == (8, 16, 64, 1, 1, 2)
    assert b.order == ORDER_FLAGS.index("nm")
    assert parse_dims(" 2 x 3X4 ", "grid", (3, 4)) == [2, 3, 4]


def test_a_descriptors_numbers_are_the_perf_commands(capsys):
    chip = get_chip("sl-tiny")
    d = descriptor_perf(chip, 40, 36, 100, 2, block="8x16x64")
    assert d.seconds == d.perf.cycles / chip.clock_hz and not d.to_dict()["searched"]
    assert main(["perf", "--chip", "sl-tiny", "--gemm", "40x36x100", "--count", "2", "--block", "8x16x64",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in d.to_dict()} == json.loads(json.dumps(d.to_dict()))


def test_a_workloads_rates_and_mapping_totals_come_from_the_library(capsys):
    chip = get_chip("sl-tiny")
    wl = get_workload("bert-base", dtype=chip.core.dtype, batch=1, seq_len=64)
    perf = chip_workload_perf(chip, wl.gemms)
    assert perf.units_per_second(wl.units_per_run) == wl.units_per_run / perf.seconds
    assert 0 < perf.dram_bandwidth_utilization(chip.dram_bytes_per_cycle) <= 1
    rows = workload_rows(wl.gemms, map_gemms(chip, [(g.M, g.N, g.K, g.parallel) for g in wl.gemms]))
    totals = mapping_totals(chip, rows)
    assert totals["cycles"] == sum(r["cycles"] for r in rows) and totals["seconds"] == totals["cycles"] / chip.clock_hz
    assert main(["map", "--chip", "sl-tiny", "--workload", "bert-base", "--batch", "1", "--seq-len", "64",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"] == json.loads(json.dumps(totals))


def test_the_rtl_commands_refuse_a_chip_too_large_to_simulate():
    big = get_chip("sl-n4-os32")
    assert big.cores * big.core.rows * big.core.cols > MAX_SIMULATED_PES
    with pytest.raises(UserError) as e:
        check_simulable(big, "verify")
    assert e.value.parameter == "chip" and "verify" in str(e.value)
    check_simulable(get_chip("sl-tiny"), "verify")
    assert ISO_VIEWS == ("area", "power", "price")


def test_the_area_command_prints_the_librarys_area_check(capsys):
    from systolab.config import AcceleratorConfig
    from systolab.models.silicon.area_check import area_check

    check = area_check(AcceleratorConfig(rows=2, cols=3), "n5")
    assert check.model_error_pct == 100 * (check.model_mm2 - check.synth_area_mm2) / check.synth_area_mm2
    assert main(["area", "--rows", "2", "--cols", "3", "--node", "n5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {**json.loads(json.dumps(check.to_dict())), "energy": None}
