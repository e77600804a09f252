"""Pipelined floating-point MACs (``mac_stages``) in the area and energy models: the PE's
pipeline registers and extra accumulators counted from synthesis (``data/area_fit.yaml:
pipelined_pe``), and their flip-flops clocked in the energy per MAC."""
from dataclasses import replace

import pytest

from systolab import AcceleratorConfig
from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.silicon import area
from systolab.models.silicon.energy import (
    chip_power,
    chip_power_W,
    flip_flop_pJ,
    gemm_energy,
    mac_energy_pJ,
    pipeline_register_pJ,
)
from systolab.models.silicon.nodes import get_node
from systolab.models.silicon.synthesis import synthesize
from systolab.models.workloads.gemm import Gemm

FLOATS = ("bf16", "fp16", "fp8_e4m3", "fp8_e5m2")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_float_area_grows_with_mac_stages(dtype, dataflow):
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow=dataflow, dtype=dtype)
    sizes = [area.model_area(cfg.replace(mac_stages=s)).transistors for s in range(1, 8)]
    assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes
    # S = 2 already adds a register layer and (OS) a second accumulator and result: > 10 % of the PE
    assert sizes[1] > 1.1 * sizes[0]
    fit = area.load_fit()
    table = fit.pipelined[area.pe_family(cfg)]                  # the synthesised PEs, S = 1..7
    assert fit.pe_transistors(cfg.replace(mac_stages=5)) == table.transistors[5]
    grown, ffs = fit.pe_growth(cfg.replace(mac_stages=5))
    assert grown == table.transistors[5] - table.transistors[1] > 0
    assert ffs == table.flip_flops[5] - table.flip_flops[1] > 100


def test_output_stationary_pays_for_its_extra_accumulators():
    # OS keeps S accumulators and S results (32 bits each); WS only the pipeline registers
    fit = area.load_fit()
    for dtype in FLOATS:
        os_ff = fit.pe_growth(AcceleratorConfig(dtype=dtype, mac_stages=3))[1]
        ws_ff = fit.pe_growth(AcceleratorConfig(dtype=dtype, dataflow="ws", mac_stages=3))[1]
        assert os_ff - ws_ff >= 2 * 2 * 32, (dtype, os_ff, ws_ff)


def test_integer_designs_unchanged():
    # the S = 1 integer fit is as recorded before pipelining entered (held-out row of area_fit.yaml)
    assert area.model_area(AcceleratorConfig(rows=8, cols=8)).transistors == pytest.approx(631054, abs=1)
    assert area.model_area(AcceleratorConfig(rows=8, cols=8, dataflow="ws")).transistors == pytest.approx(612947, abs=1)
    assert area.load_fit().pe_growth(AcceleratorConfig()) == (0.0, 0)


def test_top_level_counts_the_stages():
    cfg = AcceleratorConfig(rows=4, cols=6, dtype="bf16")
    f1, f3 = area.top_features(cfg), area.top_features(cfg.replace(mac_stages=3))
    assert f3[1] == 3 * f1[1]                                    # OS output mux over 3 x rows result rows
    assert f3[0] - f1[0] == 6 * 2                                # the 2-bit row-group tag in the A skew
    ws = cfg.replace(dataflow="ws")
    w1, w4 = area.top_features(ws), area.top_features(ws.replace(mac_stages=4))
    tri_c_psum = 2 * 15 * 32
    assert w4[0] - tri_c_psum == 4 * (w1[0] - tri_c_psum)      # A skew of k x S cycles for row k


def test_pipelined_held_out_error_within_bound():
    r = area.load_fit().residuals
    held = r["held_out_pipelined"]
    assert len(held) >= 6
    assert any("_s7" in h["config"] for h in held) and any("10x10" in h["config"] for h in held)
    assert any("ftz" in h["config"] for h in held)               # flush designs too
    assert max(abs(h["error_pct"]) for h in held) == pytest.approx(r["held_out_pipelined_max_abs_error_pct"])
    assert r["held_out_pipelined_max_abs_error_pct"] < 3
    assert r["held_out_max_abs_error_pct"] < 3


def test_fit_without_the_stage_names_mac_stages():
    fit = replace(area.load_fit(), pipelined={})
    with pytest.raises(UserError, match="^mac_stages: no area fit for os_bf16_keep at 3 stages") as err:
        area.model_area(AcceleratorConfig(dtype="bf16", mac_stages=3), fit_=fit)
    assert err.value.parameter == "mac_stages"
    area.model_area(AcceleratorConfig(dtype="bf16"), fit_=fit)      # one stage needs no table


def test_fit_pipelined_from_samples():
    base = area.load_fit()
    cfg = AcceleratorConfig(rows=2, cols=2, dtype="fp8_e4m3")
    fit = area.fit_pipelined(base, [(cfg, 1000, 90), (cfg.replace(mac_stages=2), 1500, 200)], anchor_flip_flops=82)
    assert fit.pe_growth(cfg.replace(mac_stages=2)) == (500.0, 110)
    assert fit.pe == base.pe and (fit.top["os"] == base.top["os"]).all()
    with pytest.raises(ValueError, match="one stage too"):
        area.fit_pipelined(base, [(cfg.replace(mac_stages=2), 1500, 200)], anchor_flip_flops=82)
    with pytest.raises(ValueError, match="only floating-point MACs"):
        area.fit_pipelined(base, [(AcceleratorConfig(), 1000, 90)], anchor_flip_flops=82)
    flush = area.fit_pipelined(base, [(cfg.replace(subnormals="flush"), 900, 90),
                                      (cfg.replace(subnormals="flush", mac_stages=2), 1600, 200)], anchor_flip_flops=82)
    assert flush.pe_transistors(cfg.replace(subnormals="flush", mac_stages=2)) == 1600


def test_pipeline_registers_are_clocked_in_the_mac_energy():
    n4 = get_node("n4")
    # 0.5 x (0.2 + 0.1) pJ over the int8 OS PE's 82 flip-flops at 45 nm, scaled to the node
    assert flip_flop_pJ("n4") == pytest.approx(0.15 / 82 * n4.energy_scale_vs_45nm.value)
    for dataflow in ("os", "ws"):
        cfg = AcceleratorConfig(dtype="bf16", dataflow=dataflow)
        e = [mac_energy_pJ(cfg.replace(mac_stages=s), "n4") for s in range(1, 6)]
        assert all(b > a for a, b in zip(e, e[1:]))
        ffs = area.load_fit().pe_growth(cfg.replace(mac_stages=3))[1]
        assert e[2] - e[0] == pytest.approx(ffs * flip_flop_pJ("n4"))
        assert pipeline_register_pJ(cfg.replace(mac_stages=3), "n4") == pytest.approx(e[2] - e[0])
    assert pipeline_register_pJ(AcceleratorConfig(), "n4") == 0.0
    g = Gemm(64, 64, 64)
    one = gemm_energy(AcceleratorConfig(rows=4, cols=4, dtype="bf16"), g, node="n7")
    three = gemm_energy(AcceleratorConfig(rows=4, cols=4, dtype="bf16", mac_stages=3), g, node="n7")
    assert three.mac_joules > one.mac_joules and any("clocked every cycle" in a for a in three.assumptions)


def test_chip_area_and_power_follow_the_stages():
    chip = get_chip().derive(dtype="fp8_e4m3", a_buffer_kib=40)
    deep = chip.derive(mac_stages=5)
    a1, a5 = area.chip_area(chip), area.chip_area(deep)
    assert a5.core_array_mm2 > 1.3 * a1.core_array_mm2 and a5.die_mm2 > a1.die_mm2
    p1, p5 = chip_power(chip), chip_power(deep)
    assert p5.logic_W > p1.logic_W and p5.tdp_W > p1.tdp_W
    w1 = chip_power_W(chip.core, cores=1, node="n4")["total_W"]
    assert chip_power_W(deep.core, cores=1, node="n4")["total_W"] > w1


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(rows=4, cols=3, dataflow="ws", dtype="fp8_e4m3", mac_stages=3),
    dict(rows=3, cols=4, dataflow="os", dtype="bf16", mac_stages=2, subnormals="flush"),
])
def test_pipelined_model_within_3_percent_of_synthesis(params):
    cfg = AcceleratorConfig(**params)
    s = synthesize(cfg)
    m = area.model_area(cfg)
    assert abs(m.transistors - s.transistors) / s.transistors < 0.03, (m.transistors, s.transistors)
