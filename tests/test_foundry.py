"""The foundry due-diligence presumption of ECCN 3A090.a (models/legal/foundry.py)."""
import datetime as dt
import json

import pytest

from systolab.checks import check_date
from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.legal import FoundryCheck, chip_foundry_check, foundry_presumption
from systolab.models.legal.foundry import load_foundry_rule
from systolab.models.silicon import chip_transistors
from systolab.models.specs import SpecError

B = 1e9


def check(**kw) -> FoundryCheck:
    args = dict(node="n7", planar=None, transistors=31 * B, date="2025-06-01")
    return foundry_presumption(**{**args, **kw})


def test_advanced_node_above_the_threshold_is_presumed_3a090a():
    for node in ("n7", "N4"):
        c = check(node=node)
        assert c.in_force and c.in_scope and c.presumed_3a090a is True
        assert c.threshold == 30 * B
        assert any("presumed 3A090.a" in r and "30 B threshold" in r for r in c.reasons)
        assert any("foundry-due-diligence-2025" in r and "90 FR 5298" in r for r in c.reasons)
        assert "90 FR 5298" in c.citation
    assert check(transistors=30 * B).presumed_3a090a is True        # at the threshold: not below it


def test_the_same_design_below_the_threshold_is_not_presumed():
    c = check(transistors=29 * B)
    assert c.in_scope and c.presumed_3a090a is False and c.threshold == 30 * B
    assert any("not presumed 3A090.a" in r and "below the 30 B threshold" in r for r in c.reasons)
    assert c.uncertain                                               # thresholds unverified, HBM not stated


def test_thresholds_step_up_with_the_date():
    assert check(transistors=32 * B, date="2026-12-31").presumed_3a090a is True
    later = check(transistors=32 * B, date="2027-06-01")
    assert later.threshold == 35 * B and later.presumed_3a090a is False
    assert check(transistors=38 * B, date="2029-01-01").threshold == 40 * B
    assert check(transistors=38 * B, date="2029-01-01").presumed_3a090a is False
    rule = load_foundry_rule()
    assert [t.transistors / B for t in rule.thresholds] == [30, 35, 40]
    assert all(t.uncertain for t in rule.thresholds)


def test_28nm_planar_is_outside_the_rule():
    c = check(node="n28", transistors=100 * B)
    assert c.in_force and not c.in_scope and c.presumed_3a090a is False and c.planar and c.nm == 28
    assert "outside foundry-due-diligence-2025" in c.reasons[0]
    assert check(node="n28", planar=False, transistors=100 * B).presumed_3a090a is True   # non-planar at 28 nm
    assert check(node="n16").in_scope                                                   # the 16/14 nm node


def test_before_the_effective_date_the_rule_is_not_in_force():
    c = check(date="2025-01-15", transistors=100 * B)
    assert not c.in_force and c.presumed_3a090a is False and c.threshold is None
    assert "not in force on 2025-01-15" in c.reasons[0] and "2025-01-16" in c.reasons[0]
    assert check(date=dt.date(2025, 1, 16), transistors=100 * B).in_force


def test_designer_standing_and_hbm():
    c = check(transistors=100 * B, buyer="approved_ic_designer")
    assert c.presumed_3a090a is False and any("overcome" in r for r in c.reasons) and c.uncertain
    assert check(transistors=100 * B, buyer="other").presumed_3a090a is True
    hbm = check(transistors=10 * B, hbm=True)
    assert hbm.presumed_3a090a is True and hbm.uncertain and any("HBM" in r for r in hbm.reasons)
    assert check(transistors=10 * B, hbm=False).presumed_3a090a is False


@pytest.mark.parametrize("kw, parameter", [
    (dict(node="n1"), "node"), (dict(date="2025-13-01"), "date"), (dict(date="June 2025"), "date"),
    (dict(date=2025), "date"), (dict(transistors=-1.0), "transistors"), (dict(transistors="30e9"), "transistors"),
    (dict(buyer="friend"), "buyer"), (dict(planar="yes"), "planar"), (dict(hbm="no"), "hbm"),
])
def test_bad_input_names_the_parameter(kw, parameter):
    with pytest.raises(UserError) as e:
        check(**kw)
    assert e.value.parameter == parameter
    assert check_date("date", "2025-02-01") == dt.date(2025, 2, 1)


def test_chip_foundry_check_uses_the_chip_node_and_estimate():
    edge = get_chip("sl-n7-os32-edge")                   # DDR, about 1 B transistors
    c = chip_foundry_check(edge, "2026-01-01")
    assert c.node == "n7" and c.presumed_3a090a is False
    assert c.transistors == pytest.approx(chip_transistors(edge).transistors)
    assert any("sl-n7-os32-edge: estimated" in r for r in c.reasons)
    big = edge.derive(global_sram_mib=4096)                # ~4 GiB of SRAM: far above 30 B
    assert chip_foundry_check(big, "2026-01-01").presumed_3a090a is True
    assert chip_foundry_check(big.derive(node="n28"), "2026-01-01").in_scope is False
    assert chip_foundry_check(big, "2024-12-31").in_force is False
    json.dumps(c.to_dict())


def test_a_bad_rule_file_names_the_field(tmp_path):
    p = tmp_path / "rule.yaml"
    p.write_text("rule: {id: x}\nnodes: {}\n")
    with pytest.raises(SpecError, match="thresholds"):
        load_foundry_rule(str(p))
