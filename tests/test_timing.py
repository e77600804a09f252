"""Attainable clocks (models/silicon/timing.py): depth from synthesis, sourced delays, the check."""
import json
import re
import warnings

import pytest

from systolab.cli import main
from systolab.config import AcceleratorConfig
from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.report.compare import at_attainable_clock
from systolab.models.silicon import (
    TimingWarning,
    attainable_clock_mhz,
    check_timing,
    fmax_mhz,
    load_delay_model,
    timing_estimate,
)
from systolab.models.silicon.nodes import load_nodes


def small(dtype: str) -> AcceleratorConfig:
    return AcceleratorConfig(rows=4, cols=4, dataflow="os", dtype=dtype)


@pytest.fixture(scope="module")
def estimates():
    return {dt: timing_estimate(small(dt), "n4") for dt in ("int8", "fp8_e4m3", "bf16")}


def test_depth_grows_int8_fp8_bf16_and_fmax_falls(estimates):
    depth = {dt: t.critical_path.depth_gates for dt, t in estimates.items()}
    assert depth["int8"] < depth["fp8_e4m3"] < depth["bf16"]
    fmax = {dt: t.fmax_mhz for dt, t in estimates.items()}
    assert fmax["int8"] > fmax["fp8_e4m3"] > fmax["bf16"]
    for t in estimates.values():
        assert t.critical_path.location == "pe_mac"          # the unpipelined MAC, not the array's control
        assert t.fmax_low_mhz < t.fmax_mhz < t.fmax_high_mhz


def test_int8_meets_the_default_chip_clock_at_n4_and_floats_do_not(estimates):
    clock = get_chip(None).clock_mhz                           # 1200 MHz at n4
    assert estimates["int8"].meets(clock)
    assert not estimates["fp8_e4m3"].meets(clock) and not estimates["bf16"].meets(clock)


def test_fmax_falls_with_depth_and_rises_at_a_faster_node():
    assert fmax_mhz(200, "n7")[0] < fmax_mhz(100, "n7")[0] < fmax_mhz(50, "n7")[0]
    assert fmax_mhz(67, "n28")[0] < fmax_mhz(67, "n16")[0] < fmax_mhz(67, "n7")[0] < fmax_mhz(67, "n4")[0]
    value, low, high = fmax_mhz(67, "n7")
    assert low < value < high
    assert fmax_mhz(67, "n7", extra_fo4=8)[0] < value             # a buffer tree slows the path


def test_period_is_the_stated_formula():
    m = load_delay_model()
    expected = (100 * m.fo4_per_gate.value + m.register_overhead_fo4.value) * m.fo4_ps["n7"].value * \
        (1 + m.margin_fraction.value)
    assert m.period_ps(100, "n7") == pytest.approx(expected)
    assert fmax_mhz(100, "n7")[0] == pytest.approx(1e6 / expected)


def test_every_node_has_a_sourced_fo4_with_a_range():
    m = load_delay_model()
    assert set(m.fo4_ps) == set(load_nodes())
    for f in m.fo4_ps.values():
        assert f.source and f.bounds[0] < f.value < f.bounds[1]


@pytest.mark.parametrize("call", [lambda: timing_estimate(small("int8"), "n99"), lambda: fmax_mhz(10, "bogus")])
def test_bad_node_names_the_parameter(call):
    with pytest.raises(UserError, match=r"^node: "):
        call()


def test_bad_depth_names_the_parameter():
    with pytest.raises(UserError, match=r"^depth_gates: "):
        fmax_mhz(-1, "n7")


def test_a_chip_over_its_fmax_warns_naming_clock_mhz():
    chip = get_chip("sl-tiny").derive(clock_mhz=5000)
    with pytest.warns(TimingWarning, match=r"clock_mhz: .*5000 MHz.*fmax \d+ MHz"):
        t = check_timing(chip)
    assert not t.meets(5000)
    with pytest.raises(UserError, match=r"^clock_mhz: ") as exc:
        check_timing(chip, warn=False)
    assert exc.value.parameter == "clock_mhz"
    assert attainable_clock_mhz(chip) == pytest.approx(t.fmax_mhz)


def test_a_chip_under_its_fmax_is_quiet():
    chip = get_chip("sl-tiny")                               # int8 at 1 GHz, n7
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimingWarning)
        t = check_timing(chip)
    assert t.meets(chip.clock_mhz) and attainable_clock_mhz(chip) == chip.clock_mhz


def test_compare_runs_a_float_chip_at_its_attainable_clock_and_says_so():
    fp8 = get_chip("sl-tiny").derive(dtype="fp8_e4m3")
    with pytest.warns(TimingWarning):
        slowed, note = at_attainable_clock(fp8)
    t = check_timing(slowed)                                 # no warning: now at or below fmax
    assert slowed.clock_mhz <= t.fmax_mhz < fp8.clock_mhz and slowed.name == fp8.name
    assert note is not None and "attainable clock" in note and f"{slowed.clock_mhz:g} MHz" in note
    int8 = get_chip("sl-tiny")
    assert at_attainable_clock(int8) == (int8, None)         # integer chips keep their clock


@pytest.mark.parametrize("dtype,node", [("int8", "n4"), ("int8", "n28"), ("fp8_e4m3", "n4"), ("bf16", "n7")])
def test_area_json_has_fmax_and_critical_path(dtype, node, capsys):
    assert main(["area", "--rows", "4", "--cols", "4", "--dtype", dtype, "--node", node, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    f, c = out["fmax_mhz"], out["critical_path"]
    assert f["low"] < f["value"] < f["high"]
    assert c["location"] in ("pe_mac", "array_top") and c["depth_gates"] > 0 and c["delay_ps"] > 0
    assert f["value"] == pytest.approx(1e6 / c["delay_ps"])
    assert out["timing"]["method"].startswith("estimate")
    assert {p["location"] for p in out["timing"]["paths"]} == {"pe_mac", "array_top"}


def test_area_human_output_states_the_estimate(capsys):
    assert main(["area", "--rows", "4", "--cols", "4", "--dtype", "int8", "--node", "n4"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "fmax" in x)
    assert re.search(r"fmax \(estimate\) \d+ MHz \(range \d+-\d+\); critical path pe_mac, \d+ gates, \d+ ps", line)
