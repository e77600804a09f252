"""A chip's attainable clock includes its write-back reduction, timed by its deepest register
stage (models/silicon/timing.py chip_timing, writeback_depth_gates; hdl/chip_parts.py
WriteBackSum; systolab/blocking.py writeback_stages)."""
import math
import warnings

import pytest

from systolab.blocking import writeback_stages
from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.silicon import TimingWarning, check_timing, chip_timing, load_delay_model, writeback_depth_gates


def paths(t) -> dict:
    return {p.location: p for p in t.paths}


def test_the_write_back_path_is_timed_by_its_deepest_stage_and_stays_below_the_pe():
    depth = {n: writeback_depth_gates(n) for n in (1, 2, 4, 8, 32, 64, 512)}
    assert depth[1] < 10                                       # one core: the select alone
    assert all(depth[n] <= 67 for n in depth)                  # the int8 PE: 67 gates
    assert writeback_stages(2) == 0 < writeback_stages(4) <= writeback_stages(512) == 2
    chip = get_chip("sl-tiny")                                 # 2 int8 cores, unstaged
    t = chip_timing(chip)
    assert set(paths(t)) == {"pe_mac", "array_top", "writeback_sum"}
    wb = paths(t)["writeback_sum"]
    assert wb.depth_gates == depth[2] and wb.delay_ps > 0 and t.critical_path.location == "pe_mac"
    four = chip.derive(cores=4)
    assert four.writeback_stages == 1 and paths(chip_timing(four))["writeback_sum"].depth_gates == depth[4]


def test_a_wider_beat_adds_the_select_fan_out():
    chip = get_chip("sl-tiny")                                 # 16-byte beats: 4 lanes of 32-bit sums
    narrow = paths(chip_timing(chip))["writeback_sum"]
    wide = paths(chip_timing(chip.derive(dma_beat_bytes=64)))["writeback_sum"]
    assert narrow.fanout_fo4 == pytest.approx(math.log(4, 4))
    assert wide.fanout_fo4 == pytest.approx(math.log(16, 4)) and wide.delay_ps > narrow.delay_ps
    assert wide.depth_gates == narrow.depth_gates


def test_a_float_chips_pipelined_tree_keeps_the_macs_clock_at_any_cap():
    bf16 = get_chip("sl-tiny").derive(dtype="bf16")
    two = chip_timing(bf16)                                    # one fp32 adder, cut in two stages
    assert two.critical_path.location == "pe_mac"
    four = chip_timing(bf16.derive(cores=4, float_split_k=4))  # two levels of adders, four stages
    assert four.critical_path.location == "pe_mac" and four.fmax_mhz == pytest.approx(two.fmax_mhz)
    assert paths(four)["writeback_sum"].depth_gates == paths(two)["writeback_sum"].depth_gates
    assert paths(two)["writeback_sum"].depth_gates < paths(two)["pe_mac"].depth_gates / 2
    piped = chip_timing(bf16.derive(mac_stages=3))             # a MAC stage shallower than half an adder
    assert piped.critical_path.location == "writeback_sum"
    assert piped.fmax_mhz == pytest.approx(1e6 / paths(piped)["writeback_sum"].delay_ps)


def test_float_trees_beyond_the_stand_in_keep_the_stands_ins_stage():
    cap = load_delay_model().writeback_stand_in_max_cores["float"]
    top = writeback_depth_gates(cap, float_subnormals="keep")
    assert writeback_depth_gates(4 * cap, float_subnormals="keep") == top
    assert writeback_depth_gates(512, float_subnormals="keep", split_k=512) == top
    assert writeback_depth_gates(1, float_subnormals="keep") < 10 < top     # one leaf: no adder
    assert writeback_stages(512, is_float=True, split_k=512) == 18


def test_bad_arguments_name_the_parameter():
    with pytest.raises(UserError, match=r"^cores: "):
        writeback_depth_gates(0)
    with pytest.raises(UserError, match=r"^acc_bytes: "):
        writeback_depth_gates(2, acc_bytes="4")


def test_the_default_int8_chip_meets_its_clock_with_the_write_back_in_two_stages():
    chip = get_chip(None)                                      # sl-n4-os32: 512 int8 cores at 1.2 GHz, n4
    t = chip_timing(chip)
    wb = paths(t)["writeback_sum"]
    assert chip.writeback_stages == 2 and wb.depth_gates <= paths(t)["pe_mac"].depth_gates
    assert t.critical_path.location == "pe_mac" and t.to_dict()["critical_path"]["location"] == "pe_mac"
    assert t.meets(chip.clock_mhz)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimingWarning)
        check_timing(chip)
    slow = chip.derive(clock_mhz=2000)                         # above the PE's fmax: warned, naming the path
    with pytest.warns(TimingWarning, match=r"clock_mhz: .*critical path pe_mac"):
        check_timing(slow)


def test_area_chip_json_reports_the_chips_fmax_and_critical_path(capsys):
    import json

    from systolab.cli import main

    assert main(["area", "--chip", "sl-small", "--json"]) == 0              # 4 int8 cores at 1 GHz, n7
    out = json.loads(capsys.readouterr().out)
    t = chip_timing(get_chip("sl-small"))
    assert out["chip"] == "sl-small" and out["node"] == "n7" and out["die_mm2"] > 0
    assert out["fmax_mhz"]["value"] == pytest.approx(t.fmax_mhz)
    assert out["critical_path"]["location"] == "pe_mac" and out["meets_clock"] is t.meets(1000) is True
    assert {p["location"] for p in out["timing"]["paths"]} == {"pe_mac", "array_top", "writeback_sum"}
    assert main(["area", "--chip", "sl-tiny"]) == 0
    assert "critical path pe_mac" in capsys.readouterr().out
    for flag in (["--node", "n4"], ["--gemm", "64x64x64"]):
        assert main(["area", "--chip", "sl-tiny", *flag, "--json"]) == 2
        assert json.loads(capsys.readouterr().out)["parameter"] == flag[0][2:]
