"""Memory kinds as data (data/memory_kinds.yaml) and the 3A090.c test of one HBM device."""
import dataclasses
import datetime as dt

import pytest

from systolab.errors import ConfigError, UserError
from systolab.models.chip.config import ChipConfig, get_chip
from systolab.models.cost.pricing import chip_unit_cost, cost_inputs
from systolab.models.silicon.area import chip_area
from systolab.models.silicon.energy import chip_power
from systolab.models.silicon.memory import FIGURES, MemoryFigure, get_memory_kind, list_memory_kinds, memory_class

REQUIRED = ("HBM3", "HBM3E", "HBM2E", "LPDDR5", "LPDDR5X", "GDDR6", "GDDR6X", "GDDR7", "DDR5", "HBM2E-CN",
            "HBM", "DDR")


def test_every_kind_loads_with_sources():
    assert set(REQUIRED) <= set(list_memory_kinds())
    for name in list_memory_kinds():
        k = get_memory_kind(name)
        for f in FIGURES:
            fig = getattr(k, f)
            assert fig.source.strip(), (name, f)
            assert 0 < fig.low <= fig.value <= fig.high, (name, f)
            assert fig.confidence
        assert k.to_dict()["GBps"]["source"]


def test_domestic_hbm_is_marked_uncertain():
    k = get_memory_kind("HBM2E-CN")
    assert k.uncertain and k.family == "HBM" and "CXMT" in k.note
    assert all(getattr(k, f).confidence == "low" for f in FIGURES)


def test_hbm_is_hbm3_with_todays_figures():
    hbm = get_memory_kind("HBM")
    assert hbm is get_memory_kind("HBM3")
    assert hbm.pJ_per_bit.value * 8 == 32 and hbm.usd_per_GB.value == 15 and hbm.phy_mm2.value == 10.45
    ddr = get_memory_kind("DDR")
    assert ddr.pJ_per_bit.value * 8 == 244 and ddr.usd_per_GB.value == 4


def test_unknown_kind_is_a_user_error_naming_memory_kind():
    with pytest.raises(UserError, match="memory-kind") as exc:
        get_memory_kind("HBM9")
    assert exc.value.parameter == "memory-kind"
    with pytest.raises(UserError):
        memory_class("SRAM", "2025-01-01")


def _hbm_at_density(density):
    """HBM3 with the bandwidth that gives ``density`` GB/s per mm² over its footprint."""
    k = get_memory_kind("HBM3")
    bw = density * k.footprint_mm2.value
    return dataclasses.replace(k, GBps=MemoryFigure(bw, bw, bw, "test", "high"))


def test_3a090c_at_its_boundary():
    day = dt.date(2025, 1, 1)
    assert memory_class(_hbm_at_density(2.0), day)[0] is None          # "greater than 2"
    assert memory_class(_hbm_at_density(2.0001), day)[0] == "3A090.c"
    assert memory_class(_hbm_at_density(1.5), day)[0] is None


def test_3a090c_before_and_after_dec_2_2024():
    for name in ("HBM3", "HBM3E", "HBM2E", "HBM2E-CN", "HBM"):
        assert memory_class(name, "2024-12-01")[0] is None
        eccn, reasons = memory_class(name, "2024-12-02")
        assert eccn == "3A090.c" and "89 FR 96790" in reasons[0]
        assert memory_class(name, dt.date(2026, 1, 1))[0] == "3A090.c"


def test_non_hbm_kinds_are_not_3a090c():
    for name in ("LPDDR5", "LPDDR5X", "GDDR6", "GDDR6X", "GDDR7", "DDR5", "DDR"):
        eccn, reasons = memory_class(name, "2025-06-01")
        assert eccn is None and "not HBM" in reasons[0]


def test_dram_config_accepts_every_kind():
    chip = get_chip("sl-n4-os32")
    for name in list_memory_kinds():
        assert chip.derive(dram_kind=name).dram.kind == name
    with pytest.raises(ConfigError, match="kind: must be one of HBM, DDR, HBM3"):
        chip.derive(dram_kind="SRAM")


def test_a_new_kind_brings_its_phy_energy_and_price():
    chip = get_chip("sl-n4-os32")
    g = chip.derive(dram_kind="GDDR6")
    assert g.dram.phy_mm2_per_stack == get_memory_kind("GDDR6").phy_mm2.value
    assert chip_area(g).dram_phy_mm2 == pytest.approx(6 * 4)
    gddr6 = get_memory_kind("GDDR6")
    assert (g.dram.GBps_per_stack, g.dram.GB_per_stack, g.dram.latency_ns) == (gddr6.GBps.value, gddr6.GB.value,
                                                                                gddr6.latency_ns.value)
    assert chip_power(g).dram_W == pytest.approx(g.dram.GBps * 1e9 * 7.5 * 8 * 1e-12)
    assert cost_inputs().memory_usd_per_GB["GDDR6"].value == 6
    assert chip_unit_cost(g).breakdown["package_usd"] < chip_unit_cost(chip).breakdown["package_usd"]  # organic
    kept = chip.derive(dram_kind="HBM3E", dram_phy_mm2_per_stack=12.0)
    assert kept.dram.phy_mm2_per_stack == 12.0


def test_a_chip_table_without_phy_area_takes_the_kinds():
    d = get_chip("sl-n4-os32").to_dict()
    d["dram"] = {k: v for k, v in d["dram"].items() if k != "phy_mm2_per_stack"} | {"kind": "HBM3E"}
    d.pop("name")
    chip = ChipConfig.from_dict("x", d)
    assert chip.dram.phy_mm2_per_stack == get_memory_kind("HBM3E").phy_mm2.value
    d["dram"]["kind"] = ["HBM"]
    with pytest.raises(ConfigError, match="kind: must be one of"):
        ChipConfig.from_dict("x", d)
