"""Cost functions against hand-computed cases."""
import pytest

from systolab.errors import UserError
from systolab.models.cost import pricing as cost
from systolab.models.gpu.specs import get_gpu


def test_dies_per_wafer_hand_computed():
    # 300 mm wafer, no edge exclusion, 100 mm2: pi*150^2/100 - pi*300/sqrt(200) = 706.86 - 66.64
    assert cost.dies_per_wafer(100, edge_exclusion_mm=0) == 640
    # 814 mm2 (H100-size) with 3 mm edge: pi*147^2/814 - pi*294/sqrt(1628) = 83.40 - 22.89
    assert cost.dies_per_wafer(814) == 60


def test_negative_binomial_yield_hand_computed():
    assert cost.die_yield(100, 0.1, alpha=3) == pytest.approx((1 + 0.1 / 3) ** -3)
    assert cost.die_yield(100, 0.0) == 1.0
    assert cost.die_yield(814, 0.1) < cost.die_yield(100, 0.1)


def test_die_cost_is_wafer_cost_over_good_dies():
    e = cost.die_cost(100, "n7")
    expected = 9346 / (cost.dies_per_wafer(100) * cost.die_yield(100, 0.09))
    assert e.usd == pytest.approx(expected)
    assert e.low_usd < e.usd < e.high_usd
    assert any("Khan & Mann" in s for s in e.sources)


def test_unit_cost_adds_memory_and_packaging():
    e = cost.unit_cost(die_area_mm2=100, node="n7", memory_GB=80)
    assert e.usd == pytest.approx(cost.die_cost(100, "n7").usd + 80 * 15 + 800)
    bare = cost.unit_cost(die_area_mm2=100, node="n7")
    assert bare.breakdown["package_usd"] == 60 and bare.breakdown["memory_usd"] == 0


def test_nre_per_unit():
    e = cost.nre_per_unit("n5", 100_000)
    assert e.usd == pytest.approx((542e6 + 16e6) / 100_000)
    assert e.low_usd == pytest.approx((400e6 + 13e6) / 100_000)


def test_fleet_for_the_default_budget():
    f = cost.buy_units(unit_price_usd=30_000, throughput_per_unit=2.0)
    assert f["budget_usd"] == 7e9 and f["units"] == 233_333 and f["aggregate_throughput"] == 466_666


def test_usd_per_million_tokens_hand_computed():
    # $30,000 over 4 years, 700 W at PUE 1.3 and $0.08/kWh, 1000 tokens/s at 50 % utilisation
    e = cost.usd_per_million_tokens(unit_capex_usd=30_000, power_W=700, tokens_per_s=1000, lifetime_years=4,
                                    pue=1.3, usd_per_kWh=0.08, utilization=0.5)
    hourly = 30_000 / (4 * 8760) + 0.7 * 1.3 * 0.08
    assert e.usd == pytest.approx(hourly / (1000 * 3600 * 0.5) * 1e6)
    assert e.low_usd == e.usd == e.high_usd  # every input given: no range
    ranged = cost.usd_per_million_tokens(unit_capex_usd=30_000, power_W=700, tokens_per_s=1000)
    assert ranged.low_usd < ranged.usd < ranged.high_usd


def test_gpu_prices_are_estimates_or_absent():
    assert cost.gpu_price(get_gpu("h100-sxm")).usd == 32_500
    assert cost.gpu_price(get_gpu("l4")) is None


@pytest.mark.parametrize("call, message", [
    (lambda: cost.dies_per_wafer(0), "die_area_mm2: must be > 0"),
    (lambda: cost.die_cost(100, "n2"), "node: no cost data for 'n2'"),
    (lambda: cost.die_cost(80000, "n7"), "does not fit on a wafer"),
    (lambda: cost.unit_cost(die_area_mm2=100, node="n7", memory_kind="SRAM"), "memory_kind"),
    (lambda: cost.nre_per_unit("n7", 0), "volume: must be in 1.."),
    (lambda: cost.buy_units(unit_price_usd=0, throughput_per_unit=1), "unit_price_usd"),
    (lambda: cost.usd_per_million_tokens(unit_capex_usd=1, power_W=1, tokens_per_s=1, utilization=1.5),
     "utilization: must be in"),
])
def test_bad_inputs_name_the_parameter(call, message):
    with pytest.raises(UserError, match=message):
        call()


def test_gpu_fleet_for_a_workload():
    from systolab.models.workloads.gemm import Gemm

    gemms = [Gemm(2048, 4096, 4096, "bf16", count=32)]
    rows = {r["gpu"]: r for r in cost.gpu_fleet(gemms, gpu_ids=["h100-sxm", "h20", "l4"])}
    h100 = rows["h100-sxm"]
    assert h100["units"] == int(7e9 // 32_500)
    assert h100["units_range"] == [int(7e9 // 40_000), int(7e9 // 25_000)]
    assert h100["runs_per_second"] == pytest.approx(h100["units"] / h100["workload_seconds"])
    assert rows["l4"]["units"] is None and "no public price" in rows["l4"]["note"]
    # per dollar the H20 fleet is far slower on compute-bound work than the H100 fleet
    assert rows["h20"]["runs_per_second"] < h100["runs_per_second"]


def test_a_chips_unit_cost_is_its_part_plus_its_share_of_the_nre():
    from systolab.models.chip.config import get_chip
    from systolab.models.silicon.area import chip_area

    chip = get_chip()
    c = cost.chip_unit_cost(chip)
    part = cost.unit_cost(die_area_mm2=chip_area(chip).die_mm2, node=chip.node, memory_GB=chip.dram.GB,
                          memory_kind=chip.dram.kind)
    nre = cost.nre_per_unit(chip.node, chip.volume_units)
    assert c.usd == pytest.approx(part.usd + nre.usd) and (c.manufacturing_usd, c.nre_per_unit_usd) == (part.usd, nre.usd)
    assert c.low_usd <= c.usd <= c.high_usd and c.breakdown == part.breakdown
    assert c.to_dict() == {"usd": c.usd, "low_usd": c.low_usd, "high_usd": c.high_usd, "manufacturing_usd": part.usd,
                           "nre_per_unit_usd": nre.usd, "breakdown": part.breakdown,
                           "sources": list(part.sources + nre.sources)}
