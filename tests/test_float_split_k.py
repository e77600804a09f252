"""The float write-back's split-K cap, ``ChipConfig.float_split_k``: validated and kept out
of every existing chip's identity; the RTL's descriptor check and ``blocking_status``
reject a float ``gk`` above it alike; the write-back tree has that many leaves; the mapper
never proposes more; the chip's attainable clock follows it (models/silicon/timing.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.sim import Simulator

import systolab as sl
from systolab.blocking import REJECT, Blocking, blocking_status
from systolab.errors import ConfigError, UserError
from systolab.hdl.chip import ChipTop
from systolab.hdl.chip_parts import DescriptorChecker, WriteBackSum
from systolab.models.chip.blocking import candidates
from systolab.models.chip.choose import choose_blocking
from systolab.models.chip.config import FLOAT_SPLIT_K_DEFAULT, ChipConfig, get_chip, load_chips
from systolab.models.chip.mapper import map_gemm
from systolab.models.silicon import chip_timing, writeback_depth_gates
from systolab.sim.chip_bench import random_products, run_chip_gemm
from systolab.sim.golden import tree_sum_fp32

FP8X4 = get_chip("sl-tiny").derive(dtype="fp8_e4m3").with_cores(4)      # 4 float cores, the default cap (4)
CAP2 = FP8X4.derive(float_split_k=2)                                     # the default until 2026-12-08


def _paths(t) -> dict:
    return {p.location: p for p in t.paths}


# -- the field ------------------------------------------------------------------------------------
def test_the_default_is_four_and_the_old_default_keeps_its_identity():
    assert FLOAT_SPLIT_K_DEFAULT == 4 and FP8X4.float_split_k == 4
    for name in sl.list_chips():
        chip = get_chip(name)
        assert "float_split_k" not in chip.to_dict() and "float_split_k" not in chip.canonical_json()
    # the new default is hashed: results stored for the old default (2) keep their hash
    assert FP8X4.to_dict()["float_split_k"] == 4 and CAP2.config_hash != FP8X4.config_hash
    assert "float_split_k" not in CAP2.to_dict() and "float_split_k" not in CAP2.canonical_json()
    # an integer chip ignores it: the same hardware, the same hash
    int8 = get_chip("sl-tiny")
    assert int8.derive(float_split_k=1, name=int8.name).config_hash == int8.config_hash


@pytest.mark.parametrize("value, match", [(3, "power of two"), (0, ""), (8, "at most 4"), ("2", ""), (True, "")])
def test_a_bad_cap_is_a_config_error_naming_it(value, match):
    with pytest.raises(ConfigError, match=rf"^float_split_k: .*{match}"):
        FP8X4.derive(float_split_k=value)


def test_the_default_passes_on_one_core_and_with_cores_cuts_a_larger_cap():
    one = FP8X4.with_cores(1)
    assert one.float_split_k == 4 and one.cores == 1 and one.writeback_stages == 0   # one leaf: no adder
    two = FP8X4.with_cores(2)
    assert two.float_split_k == 4 and two.writeback_stages == 2                      # the tree cut to 2 leaves
    assert CAP2.with_cores(1).float_split_k == 1


def test_a_chips_yaml_file_sets_it(tmp_path):
    chip = sl.get_chip("benchmarks/sl-tiny-fp8x4.yaml")
    assert chip.float_split_k == 4 and chip.cores == 4
    table = {k: v for k, v in chip.to_dict().items() if k != "name"}
    table["float_split_k"] = 16
    f = tmp_path / "chips.yaml"
    f.write_text(json.dumps({"schema": "systolab-chips/1", "chips": {"x": table}}))
    with pytest.raises(Exception, match=r"chips\.x\.float_split_k: must be at most 4"):
        load_chips(f)
    table["float_split_k"] = 1
    f.write_text(json.dumps({"schema": "systolab-chips/1", "chips": {"y": table}}))
    assert load_chips(f)[1]["y"].float_split_k == 1
    assert ChipConfig.from_dict("z", {k: v for k, v in table.items() if k != "float_split_k"}).float_split_k == 4


# -- the controller and blocking_status ---------------------------------------------------------------
def _rtl_status(chip, M, N, K, blk) -> int:
    dut = DescriptorChecker(config=chip.core, cores=chip.cores, op_half=chip.operand_words // 2,
                            acc_half=chip.acc_words // 2, float_split_k=chip.float_split_k)
    got = []

    async def bench(ctx):
        for name, v in dict(m=M, n=N, k=K, count=1, **blk.to_dict()).items():
            ctx.set(getattr(dut.desc, name), v)
        got.append(ctx.get(dut.status))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got[0]


@pytest.mark.parametrize("cap, gk, want", [(1, 2, 6), (2, 2, 0), (2, 4, 6), (4, 4, 0), (1, 1, 0)])
def test_a_float_descriptor_above_the_cap_is_rejected_by_the_rtl_and_the_model_alike(cap, gk, want):
    chip = FP8X4.derive(float_split_k=cap)
    blk = Blocking(4, 4, 32, 4, 4, gk=gk, kc=32 // gk)
    assert blocking_status(chip, 4, 4, 32, 1, blk) == want
    assert _rtl_status(chip, 4, 4, 32, blk) == want
    assert "float_split_k" in REJECT[6]


def test_the_whole_chip_rtl_rejects_a_gk_above_its_cap():
    """The chip (hdl/chip.py, Amaranth's simulator) with a cap of 2 on 4 cores."""
    blk = Blocking(4, 4, 32, 4, 4, gk=4, kc=8)
    r = run_chip_gemm(CAP2, random_products(CAP2, 4, 4, 32, 1, np.random.default_rng(1)), blk)
    assert r.status == 6 == blocking_status(CAP2, 4, 4, 32, 1, blk) and r.reason == REJECT[6] and not r.passed


def test_integer_chips_keep_split_k_up_to_their_cores():
    int8 = FP8X4.derive(dtype="int8")
    blk = Blocking(4, 4, 32, 4, 4, gk=4, kc=8)
    assert blocking_status(int8, 4, 4, 32, 1, blk) == 0 == _rtl_status(int8, 4, 4, 32, blk)


def test_the_chip_rtl_takes_the_cap_from_the_chip():
    for cap in (1, 4):
        m = ChipTop(FP8X4.derive(float_split_k=cap)).elaborate(None)
        assert m.submodules.controller._split_k == cap          # the checker's cap
        assert m.submodules.router._split_k == cap              # each write-back tree's leaves
    assert ChipTop(get_chip("sl-tiny")).elaborate(None).submodules.router._split_k is None   # integers: no tree


@pytest.mark.parametrize("split_k", [1, 2])
def test_the_write_back_tree_adds_split_k_k_groups(split_k):
    """Four cores, K-group kk in core kk (gp = gm = 1): the tree adds K-groups 0..gk-1, gk <= split_k."""
    dut = WriteBackSum(cores=4, lanes=1, acc_bytes=4, float_subnormals="keep", split_k=split_k)
    words = [int(np.float32(v).view(np.uint32)) for v in (1.5, 2.25, 1e-3, -7.0)]
    got = {}

    async def bench(ctx):
        for c, w in enumerate(words):
            ctx.set(dut.acc_data[c], w)
        ctx.set(dut.en, 1)
        for lg in range(split_k.bit_length()):
            ctx.set(dut.lg_gk, lg)
            if dut.stages:                              # through the stages (none for one leaf)
                await ctx.tick().repeat(dut.stages)
            got[1 << lg] = ctx.get(dut.data)

    sim = Simulator(dut)
    if dut.stages:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert dut.stages == 2 * (split_k.bit_length() - 1)
    want = {gk: int(tree_sum_fp32([np.array(w) for w in words[:gk]])) for gk in got}
    assert got == want and set(got) == {g for g in (1, 2) if g <= split_k}
    with pytest.raises(ValueError, match="split_k must be a power of two"):
        WriteBackSum(cores=4, lanes=1, acc_bytes=4, float_subnormals="keep", split_k=3)


# -- the mapper -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cap", [1, 2, 4])
def test_the_mapper_never_proposes_a_float_gk_above_the_cap(cap):
    chip = FP8X4.derive(float_split_k=cap)
    space = candidates(chip, 1, 4, 512)                       # a GEMV: split-K territory
    assert space and max(b.gk for b in space) == cap
    assert map_gemm(chip, 1, 4, 512).blocking.gk <= cap
    int8 = candidates(chip.derive(dtype="int8"), 1, 4, 512)
    assert max(b.gk for b in int8) == 4                       # integers are not capped


def test_a_grid_above_the_cap_is_refused_naming_grid():
    with pytest.raises(UserError, match=r"^grid: .*float_split_k") as exc:
        choose_blocking(CAP2, 1, 4, 512, 1, block="1x4x512", grid="1x1x1x4")
    assert exc.value.parameter == "grid"


# -- the clock -----------------------------------------------------------------------------------------
def test_the_default_float_chip_runs_at_the_macs_clock_at_any_cap():
    fp8 = get_chip(None).derive(dtype="fp8_e4m3")                  # sl-n4-os32: 512 cores, mac_stages 1
    t = chip_timing(fp8)
    wb, mac = _paths(t)["writeback_sum"], _paths(t)["pe_mac"]
    assert t.critical_path.location == "pe_mac" and wb.depth_gates <= mac.depth_gates
    assert wb.depth_gates == writeback_depth_gates(fp8.cores, float_subnormals="keep", split_k=4)
    assert fp8.writeback_stages == 4
    none = chip_timing(fp8.derive(float_split_k=1))
    assert _paths(none)["writeback_sum"].depth_gates < 0.1 * wb.depth_gates      # no adder: the select only
    every = fp8.derive(float_split_k=512)
    assert every.writeback_stages == 18 and chip_timing(every).fmax_mhz == pytest.approx(t.fmax_mhz)


def test_writeback_depth_names_a_bad_split_k():
    with pytest.raises(UserError, match=r"^split_k: "):
        writeback_depth_gates(4, float_subnormals="keep", split_k=3)
