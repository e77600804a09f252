"""A chip's attainable clock includes its write-back reduction (models/silicon/timing.py
chip_timing, writeback_depth_gates; hdl/chip_parts.py WriteBackSum)."""
import math

import pytest

from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.silicon import TimingWarning, check_timing, chip_timing, load_delay_model, writeback_depth_gates


def paths(t) -> dict:
    return {p.location: p for p in t.paths}


def test_the_write_back_path_is_timed_and_deepens_with_the_core_count():
    depth = {n: writeback_depth_gates(n) for n in (2, 4, 8)}
    assert depth[2] < depth[4] <= depth[8]
    chip = get_chip("sl-tiny")                                 # 2 int8 cores
    t = chip_timing(chip)
    assert set(paths(t)) == {"pe_mac", "array_top", "writeback_sum"}
    wb = paths(t)["writeback_sum"]
    assert wb.depth_gates == depth[2] and wb.delay_ps > 0
    four = paths(chip_timing(chip.derive(cores=4)))["writeback_sum"]
    assert four.depth_gates == depth[4] and four.delay_ps > wb.delay_ps


def test_a_wider_beat_adds_the_select_fan_out():
    chip = get_chip("sl-tiny")                                 # 16-byte beats: 4 lanes of 32-bit sums
    narrow = paths(chip_timing(chip))["writeback_sum"]
    wide = paths(chip_timing(chip.derive(dma_beat_bytes=64)))["writeback_sum"]
    assert narrow.fanout_fo4 == pytest.approx(math.log(4, 4))
    assert wide.fanout_fo4 == pytest.approx(math.log(16, 4)) and wide.delay_ps > narrow.delay_ps
    assert wide.depth_gates == narrow.depth_gates


def test_a_float_chips_tree_dominates_unless_pipelined():
    bf16 = get_chip("sl-tiny").derive(dtype="bf16")
    two = chip_timing(bf16)                                    # one fp32 adder: shallower than the bf16 MAC
    assert two.critical_path.location == "pe_mac"
    four = chip_timing(bf16.derive(cores=4, float_split_k=4))  # two levels of fp32 adders
    assert four.critical_path.location == "writeback_sum"
    assert paths(four)["writeback_sum"].depth_gates > 1.5 * paths(two)["writeback_sum"].depth_gates
    piped = chip_timing(bf16.derive(mac_stages=3))             # a pipelined MAC leaves the tree critical
    assert piped.critical_path.location == "writeback_sum"
    assert piped.fmax_mhz == pytest.approx(1e6 / paths(piped)["writeback_sum"].delay_ps)


def test_float_trees_beyond_the_stand_in_add_one_adder_a_level():
    cap = load_delay_model().writeback_stand_in_max_cores["float"]
    top, half = writeback_depth_gates(cap, float_subnormals="keep"), writeback_depth_gates(cap // 2,
                                                                                             float_subnormals="keep")
    step = top - half
    assert writeback_depth_gates(4 * cap, float_subnormals="keep") == top + 2 * step
    assert writeback_depth_gates(6 * cap, float_subnormals="keep") == top + 2 * step    # leaves: 4 x cap
    assert writeback_depth_gates(32, float_subnormals="keep") > 4 * writeback_depth_gates(2, float_subnormals="keep")


def test_bad_arguments_name_the_parameter():
    with pytest.raises(UserError, match=r"^cores: "):
        writeback_depth_gates(0)
    with pytest.raises(UserError, match=r"^acc_bytes: "):
        writeback_depth_gates(2, acc_bytes="4")


def test_the_default_int8_chip_names_its_critical_path():
    chip = get_chip(None)                                      # sl-n4-os32: 512 int8 cores at 1.2 GHz, n4
    t = chip_timing(chip)
    wb = paths(t)["writeback_sum"]
    assert t.critical_path.location == "writeback_sum" and t.critical_path == wb
    assert wb.depth_gates > paths(t)["pe_mac"].depth_gates
    cap = load_delay_model().writeback_stand_in_max_cores["int"]
    assert wb.depth_gates > writeback_depth_gates(cap)         # extrapolated past the stand-in
    assert t.to_dict()["critical_path"]["location"] == "writeback_sum"
    if not t.meets(chip.clock_mhz):
        with pytest.warns(TimingWarning, match=r"clock_mhz: .*critical path writeback_sum"):
            check_timing(chip)


def test_area_chip_json_reports_the_chips_fmax_and_critical_path(capsys):
    import json

    from systolab.cli import main

    assert main(["area", "--chip", "sl-small", "--json"]) == 0              # 4 int8 cores at 1 GHz, n7
    out = json.loads(capsys.readouterr().out)
    t = chip_timing(get_chip("sl-small"))
    assert out["chip"] == "sl-small" and out["node"] == "n7" and out["die_mm2"] > 0
    assert out["fmax_mhz"]["value"] == pytest.approx(t.fmax_mhz)
    assert out["critical_path"]["location"] == "writeback_sum" and out["meets_clock"] is t.meets(1000)
    assert {p["location"] for p in out["timing"]["paths"]} == {"pe_mac", "array_top", "writeback_sum"}
    assert main(["area", "--chip", "sl-tiny"]) == 0
    assert "critical path pe_mac" in capsys.readouterr().out
    for flag in (["--node", "n4"], ["--gemm", "64x64x64"]):
        assert main(["area", "--chip", "sl-tiny", *flag, "--json"]) == 2
        assert json.loads(capsys.readouterr().out)["parameter"] == flag[0][2:]
