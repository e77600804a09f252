"""Process nodes: the facts every node carries (planar, nm class, foundry, sources), the domestic
7 nm-class DUV node's uncertain ranges, a chip priced and sized on it, and bad input named."""
from pathlib import Path

import pytest
import yaml

import systolab as sl
from systolab.errors import UserError
from systolab.models.cost import pricing
from systolab.models.silicon.nodes import NODES_FILE, get_node, load_nodes

DOMESTIC = "smic-7duv"
FIGURES = ("logic_density_MTr_per_mm2", "sram_bitcell_um2", "energy_scale_vs_45nm", "default_clock_MHz")


def test_every_node_has_process_facts_and_sources():
    nodes = load_nodes()
    assert DOMESTIC in nodes
    for name, n in nodes.items():
        assert isinstance(n.planar, bool), name
        assert n.nm_class > 0 and n.foundry.strip() and n.access_note.strip() and n.process_source.strip(), name
        assert n.planar == (n.nm_class >= 28), name          # FinFET from 16/14 nm; 28 nm and above planar
        for f in FIGURES:
            s = getattr(n, f)
            assert s.source.strip() and s.confidence.strip(), (name, f)
            lo, hi = s.bounds
            assert 0 < lo <= s.value <= hi, (name, f)
        d = n.to_dict()
        assert {"planar", "nm_class", "foundry", "access_note", "process_source"} <= set(d)
    assert {n: (v.planar, v.nm_class, v.foundry) for n, v in nodes.items()} == {
        "n28": (True, 28, "TSMC"), "n16": (False, 16, "TSMC"), "n7": (False, 7, "TSMC"), "n5": (False, 5, "TSMC"),
        "n4": (False, 4, "TSMC"), "n3": (False, 3, "TSMC"), DOMESTIC: (False, 7, "SMIC")}


def test_existing_nodes_unchanged():
    n7, n4 = get_node("n7"), get_node("n4")
    assert (n7.logic_density_MTr_per_mm2.value, n7.sram_bitcell_um2.value, n7.energy_scale_vs_45nm.value,
            n7.default_clock_MHz.value) == (96.3, 0.027, 0.22, 1050)
    assert n4.logic_density_MTr_per_mm2.bounds == (138.2, 138.2)          # no range given


def test_domestic_node_is_uncertain_with_ranges():
    n = get_node(DOMESTIC)
    assert n.nm_class == 7 and not n.planar and n.foundry == "SMIC"
    for f in FIGURES:
        s = getattr(n, f)
        assert s.uncertain and s.low is not None and s.high is not None and s.low < s.high, f
    assert n.logic_density_MTr_per_mm2.bounds == (89, 99)                 # TechInsights N+1 89, N+2 -10 % area
    assert len(n.flags()) == len(FIGURES)                                 # every figure flagged as estimated
    for extra in (n.capacity_wafers_per_month, n.reported_yield):
        assert extra is not None and extra.uncertain and extra.low < extra.high and extra.source.strip()
    assert 0 < n.reported_yield.bounds[0] < n.reported_yield.bounds[1] <= 1
    figs = pricing.cost_inputs().nodes[DOMESTIC]
    for k in ("wafer_cost_usd", "defect_density_per_cm2"):
        assert figs[k].confidence == "low" and figs[k].low < figs[k].value < figs[k].high, k
    # DUV multi-patterning costs more per wafer than TSMC N7 (FT: 40-50 % above TSMC)
    assert figs["wafer_cost_usd"].low > pricing.cost_inputs().nodes["n7"]["wafer_cost_usd"].high


def test_chip_on_domestic_node_prices_and_sizes():
    base = sl.get_chip("sl-n4-os32")
    c = base.derive(node=DOMESTIC)
    a, u = c.area(), c.unit_cost()
    assert c.node == DOMESTIC
    assert a.die_mm2 > 0 and a.cores_mm2 > 0
    assert 0 < u.low_usd <= u.usd <= u.high_usd
    assert a.die_mm2 > base.area().die_mm2            # 94 MTr/mm2 vs N4's 138: a larger die
    assert u.to_dict()["breakdown"]["wafer_cost_usd"] == 14000


def test_bad_node_id_names_the_parameter():
    with pytest.raises(UserError, match="node: unknown node 'smic-n1'") as e:
        get_node("smic-n1")
    assert e.value.parameter == "node"
    with pytest.raises(UserError) as e:
        sl.get_chip("sl-n4-os32").derive(node="cn-5euv")
    assert e.value.parameter == "node"


def _write(tmp_path: Path, edit) -> str:
    d = yaml.safe_load(NODES_FILE.read_text())
    edit(d["nodes"])
    p = tmp_path / "nodes.yaml"
    p.write_text(yaml.safe_dump(d))
    return str(p)


@pytest.mark.parametrize("edit, field", [
    (lambda n: n["n7"].pop("planar"), "nodes.n7.planar"),
    (lambda n: n["n7"].update(planar="yes"), "nodes.n7.planar"),
    (lambda n: n["n7"].update(nm_class=0), "nodes.n7.nm_class"),
    (lambda n: n["n7"].update(foundry=" "), "nodes.n7.foundry"),
    (lambda n: n["n5"].pop("process_source"), "nodes.n5.process_source"),
    (lambda n: n[DOMESTIC]["logic_density_MTr_per_mm2"].pop("high"), f"nodes.{DOMESTIC}.logic_density_MTr_per_mm2.high"),
    (lambda n: n[DOMESTIC]["sram_bitcell_um2"].update(low=0.05), f"nodes.{DOMESTIC}.sram_bitcell_um2"),
    (lambda n: n[DOMESTIC]["reported_yield"].update(high=1.5), f"nodes.{DOMESTIC}.reported_yield"),
])
def test_bad_file_names_the_field(tmp_path, edit, field):
    path = _write(tmp_path, edit)
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_nodes(path)
