"""Physical feasibility: memory beachfront, interposer area, power density, reticle."""
import math
import warnings

import pytest

from systolab.errors import UserError
from systolab.models.chip.config import get_chip, list_chips
from systolab.models.silicon.area import chip_area
from systolab.models.silicon.feasibility import FeasibilityWarning, check_feasible, chip_feasibility, packaging_limits

NAMES = ("beachfront_mm", "interposer_mm2", "power_density_W_per_mm2", "die_mm2")


def test_limits_have_sources():
    for value, source in packaging_limits().values():
        assert value > 0 and source


def test_every_chip_has_every_check():
    for name in list_chips():
        f = chip_feasibility(get_chip(name))
        names = [c.name for c in f.checks]
        hbm = get_chip(name).dram.kind.startswith("HBM")
        assert names == [n for n in NAMES if hbm or n != "interposer_mm2"]
        assert f.feasible == all(c.ok for c in f.checks)
        d = f.to_dict()
        assert d["chip"] == name and len(d["checks"]) == len(f.checks)
        for c in f.checks:
            assert c.ok == (c.value <= c.limit) and c.name in c.message and c.field


def test_beachfront_is_the_stacks_against_half_the_square_die_edge():
    chip = get_chip("sl-n4-os32")
    c = next(c for c in chip_feasibility(chip).checks if c.name == "beachfront_mm")
    assert c.value == 6 * 8
    assert c.limit == pytest.approx(4 * math.sqrt(chip_area(chip).die_mm2) * 0.5)


def test_too_many_hbm_stacks_are_refused_naming_the_limit_and_field():
    chip = get_chip("sl-n4-os32").derive(dram_stacks=24)
    with pytest.raises(UserError, match=r"dram\.stacks: .*beachfront_mm: 24 HBM3 PHYs.*exceeds the limit") as exc:
        check_feasible(chip, warn=False)
    assert exc.value.parameter == "dram.stacks"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = check_feasible(chip, warn=True)
    assert all(w.category is FeasibilityWarning for w in caught)
    assert "beachfront_mm" in str(caught[0].message) and len(caught) == len(f.failures)
    assert not f.feasible
    over = {c.name for c in f.failures}
    assert {"beachfront_mm", "interposer_mm2"} <= over      # 24 stacks overfill a CoWoS-S interposer too


def test_a_small_die_with_one_stack_fits_its_edge():
    chip = get_chip("sl-n4-os32").derive(dram_stacks=1, dram_kind="HBM3", clock_mhz=400)
    f = chip_feasibility(chip)
    assert all(c.ok for c in f.checks if c.name in ("beachfront_mm", "interposer_mm2", "die_mm2"))


def test_a_feasible_chip_passes_silently():
    chip = get_chip("sl-n4-os32").derive(dram_stacks=2, clock_mhz=300)
    assert chip_feasibility(chip).feasible
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_feasible(chip, warn=True).feasible
        assert check_feasible(chip, warn=False).feasible


def test_reticle_check_names_cores():
    chip = get_chip("sl-n4-os32").derive(cores=8192)
    c = next(c for c in chip_feasibility(chip).checks if c.name == "die_mm2")
    assert not c.ok and c.field == "cores" and c.limit == 858
