"""Transistor counts of a custom chip (models/silicon/transistors.py) and their check against
published chips (the table benchmarks/README.md records)."""
import json

import pytest

from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.silicon import TransistorEstimate, chip_transistors, model_area, transistor_validation
from systolab.models.silicon.transistors import (
    BITS_PER_KIB,
    BITS_PER_MIB,
    density_check,
    load_transistor_figures,
    logic_transistors_in,
    mac_transistors,
    sram_transistors,
    validation_table,
)

#: The check's bound: every estimate within this of the published count, in percent.
ERROR_BOUND_PCT = 35


def test_chip_transistors_parts_add_up_and_follow_the_chip():
    chip = get_chip("sl-n4-os32")
    est = chip_transistors(chip)
    assert isinstance(est, TransistorEstimate)
    assert est.total_B == pytest.approx(est.logic_B + est.sram_B + est.uncore_B)
    assert est.low_B < est.total_B < est.high_B
    assert est.logic_B == pytest.approx(chip.cores * model_area(chip.core).transistors / 1e9)
    bits = chip.cores * chip.core.buffer_kib * BITS_PER_KIB + chip.global_sram_mib * BITS_PER_MIB
    assert est.sram_bits == pytest.approx(bits)
    f = load_transistor_figures()
    assert est.sram_B == pytest.approx(bits * 6 * f.sram_periphery.value / 1e9)
    assert est.transistors == pytest.approx(est.total_B * 1e9)
    d = json.loads(json.dumps(est.to_dict()))
    assert d["node"] == "n4" and d["assumptions"] and any("6 transistors per bit" in a for a in d["assumptions"])


def test_more_cores_and_sram_more_transistors():
    chip = get_chip("sl-n4-os32")
    base, more = chip_transistors(chip), chip_transistors(chip.derive(cores=2 * chip.cores))
    assert more.logic_B == pytest.approx(2 * base.logic_B)
    assert more.total_B > base.total_B
    bigger = chip_transistors(chip.derive(global_sram_mib=chip.global_sram_mib + 64))
    assert bigger.sram_B - base.sram_B == pytest.approx(64 * BITS_PER_MIB * 6 * 1.15 / 1e9)


def test_helpers_and_bad_input():
    assert logic_transistors_in(1.0, "n7") == pytest.approx(96.3e6 * 0.7)
    assert sram_transistors(8, factor=1.0) == 48
    assert mac_transistors("fp16") > mac_transistors("int8") > 0
    with pytest.raises(UserError, match="bits"):
        sram_transistors(-1)
    with pytest.raises(UserError) as e:
        density_check("no-such-gpu", "n7")
    assert e.value.parameter == "gpu"


def test_validation_against_published_chips():
    rows = transistor_validation()
    by_method = {m: [r for r in rows if r.method == m] for m in ("density", "structural")}
    assert len(by_method["density"]) >= 3 and len(by_method["structural"]) >= 3
    for r in rows:
        assert abs(r.error_pct) <= ERROR_BOUND_PCT, (r.chip, r.error_pct)
        assert r.in_range, (r.chip, r.low_B, r.published_B, r.high_B)
    # the node's peak density is an upper bound on every GPU's whole-die density
    assert all(r.published_B <= r.high_B for r in by_method["density"])
    a100 = next(r for r in rows if r.chip.startswith("A100"))
    assert a100.published_B == 54.2 and a100.die_area_mm2 == 826
    table = validation_table(rows)
    assert table.count("\n") == len(rows) + 1 and "Graphcore Colossus GC200" in table
    assert json.loads(json.dumps([r.to_dict() for r in rows]))[0]["error_pct"] == pytest.approx(rows[0].error_pct)
