"""Purchasability of GPUs for a buyer on a date, from dated licence policies."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from systolab.cli import main
from systolab.errors import UserError
from systolab.models.legal.purchase import load_licence_rules, purchasability, scenario
from systolab.models.specs import SpecError

RULES = """
schema: systolab-licence-rules/1
destinations:
  us: {name: United States}
  allied: {name: Country Group A:5}
  china: {name: China, Macau and Country Group D:5}

policies:
  - id: ac-2022
    title: 3A090 to China needs a licence
    effective: 2022-10-07
    destinations: [china]
    applies: {eccn: [3A090]}
    status: presumption_of_denial
    citation: rule A
  - id: part-letter
    title: a named part needs a licence
    effective: 2025-04-09
    destinations: [china]
    applies: {gpus: [h20]}
    status: licence_required
    citation: letter B
  - id: review-2026
    title: case-by-case below limits
    effective: 2026-01-15
    uncertain: true
    destinations: [china]
    applies: {eccn: [3A090], gpus: [h20], when: [[tpp, "<", 21000], [dram_bw_GBps, "<", 6500]]}
    status: case_by_case
    citation: rule C
  - id: never
    title: a rule rescinded before it applied
    effective: 2025-05-15
    rescinded: 2025-05-13
    destinations: [allied, china]
    applies: {eccn: [3A090]}
    status: presumption_of_denial
    citation: rule D
"""


@pytest.fixture()
def rules(tmp_path):
    path = tmp_path / "licence_rules.yaml"
    path.write_text(RULES)
    return load_licence_rules(str(path))


@pytest.mark.parametrize("gpu, buyer, date, status, policy", [
    ("h100-sxm", "china", "2022-06-01", "allowed", None),                  # before the first rule
    ("h100-sxm", "china", "2022-10-07", "presumption_of_denial", "ac-2022"),  # the day it took effect
    ("h100-sxm", "allied", "2024-01-01", "allowed", None),
    ("h100-sxm", "us", "2025-06-01", "allowed", None),
    ("h20", "china", "2024-06-01", "allowed", None),                       # outside 3A090, no letter yet
    ("h20", "china", "2025-04-09", "licence_required", "part-letter"),
    ("h20", "china", "2026-02-01", "case_by_case", "review-2026"),          # the later policy decides
    ("h200-sxm", "china", "2026-02-01", "case_by_case", "review-2026"),
    ("b200", "china", "2026-02-01", "presumption_of_denial", "ac-2022"),    # above the 2026 limits
    ("h100-sxm", "allied", "2025-06-01", "allowed", None),                 # the rescinded rule never applies
])
def test_purchasability_follows_the_dated_policies(rules, gpu, buyer, date, status, policy):
    p = purchasability(gpu, buyer, date, rules=rules)
    assert (p.status, p.policy) == (status, policy)
    assert p.may_buy == (status == "allowed")
    assert p.eccn.startswith("3A090") or gpu in ("h20",) or p.date < dt.date(2022, 10, 7)


def test_the_answer_carries_its_citation_and_uncertainty(rules):
    p = purchasability("h200-sxm", "china", "2026-02-01", rules=rules)
    assert p.citation == "rule C" and p.uncertain
    assert any("superseded by review-2026" in r for r in p.reasons)
    d = p.to_dict()
    assert d["status"] == "case_by_case" and d["date"] == "2026-02-01" and d["may_buy"] is False
    lapsed = purchasability("h100-sxm", "allied", "2025-06-01", rules=rules)
    assert any("never no longer applies: rescinded 2025-05-13" in r for r in lapsed.reasons)
    early = purchasability("h100-sxm", "china", "2021-01-01", rules=rules)
    assert any("before the first licence policy on record (2022-10-07)" in r for r in early.reasons)


def test_buyer_any_is_the_unconstrained_view(rules):
    p = purchasability("b200", "any", "2026-02-01", rules=rules)
    assert p.status == "allowed" and p.policy is None and "unconstrained" in p.reasons[-1]


def test_a_scenario_is_checked_and_reusable(rules):
    sc = scenario("china", "2025-04-09", rules=rules)
    assert purchasability("h20", sc, rules=rules).status == "licence_required"
    with pytest.raises(UserError) as e:
        scenario("atlantis", "2025-01-01", rules=rules)
    assert e.value.parameter == "buyer"
    for bad in ("2025-13-01", "yesterday", "01/02/2025"):
        with pytest.raises(UserError) as e:
            scenario("china", bad, rules=rules)
        assert e.value.parameter == "date"
    with pytest.raises(UserError) as e:
        purchasability("h20", sc, "2025-01-01", rules=rules)
    assert e.value.parameter == "date"
    with pytest.raises(UserError, match="gpu"):
        purchasability("no-such-gpu", "china", "2025-01-01", rules=rules)


@pytest.mark.parametrize("edit, field", [
    (("status: case_by_case", "status: maybe"), "policies[2].status"),
    (("destinations: [china]\n    applies: {gpus", "destinations: [mars]\n    applies: {gpus"), "policies[1].destinations"),
    (("effective: 2022-10-07", "effective: soon"), "policies[0].effective"),
    (("applies: {gpus: [h20]}", "applies: {}"), "policies[1].applies"),
    (("id: never", "id: ac-2022"), "policies"),
])
def test_a_bad_rules_file_names_the_field(tmp_path, edit, field):
    path = tmp_path / "bad.yaml"
    path.write_text(RULES.replace(*edit, 1))
    with pytest.raises(SpecError) as e:
        load_licence_rules(str(path))
    assert e.value.field == field


def test_the_shipped_rules_load_and_cite_every_policy():
    rules = load_licence_rules()
    assert {"us", "allied", "china"} <= set(rules.destinations)
    for p in rules.policies:
        assert p.citation.strip(), p.id
    assert purchasability("h100-sxm", "us", "2025-06-01").status == "allowed"


def test_legal_command(capsys):
    assert main(["legal", "--gpu", "h100-sxm", "--buyer", "us", "--date", "2025-06-01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "allowed" and out["buyer"] == "us" and out["eccn"].startswith("3A090")
    assert main(["legal", "--gpu", "h100-sxm", "--buyer", "atlantis", "--date", "2025-06-01", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "buyer"
    assert main(["legal", "--gpu", "h100-sxm", "--buyer", "china", "--date", "June", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "date"


def test_compare_marks_what_the_buyer_may_buy(tmp_path):
    """With a buyer and a date, every GPU row and the report say whether that buyer may buy
    the GPU, with the deciding policy; without them the comparison is unchanged."""
    from systolab.models.report.compare import compare
    from systolab.models.report.figures import render_markdown

    kw = dict(workloads=("dlrm",), gpus=("h100-sxm", "l4"), serving=None, progress=lambda msg: None)
    plain = compare("sl-small", **kw)
    assert "scenario" not in plain.to_dict() and all("purchasability" not in r for r in plain.rows)
    legal = compare("sl-small", scenario=scenario("us", "2025-06-01"), **kw)
    d = legal.to_dict()
    assert d["scenario"] == {"buyer": "us", "date": "2025-06-01"}
    assert [p["device"] for p in d["legal"]] == ["h100-sxm", "l4"]
    assert {r["purchasability"] for r in d["rows"] if r["kind"] == "gpu"} == {"allowed"}
    assert all("purchasability" not in r for r in d["rows"] if r["kind"] == "custom")
    assert "## Who may buy what: a buyer in us on 2025-06-01" in render_markdown(legal)
    assert "Who may buy what" not in render_markdown(plain)
    with pytest.raises(TypeError):
        compare("sl-small", scenario="china", **kw)


def test_serve_and_fleet_mark_what_the_buyer_may_buy(capsys):
    base = ["--model", "llama3-8b", "--isl", "128", "--osl", "16", "--batch", "1", "--json"]
    assert main(["serve", "--device", "h100-sxm", *base, "--buyer", "us", "--date", "2025-06-01"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["purchasability"]["status"] == "allowed" and out["purchasability"]["buyer"] == "us"
    assert main(["serve", "--device", "h100-sxm", *base]) == 0
    assert "purchasability" not in json.loads(capsys.readouterr().out)
    assert main(["fleet", "--devices", "sl-small,l4", *base, "--buyer", "us", "--date", "2025-06-01"]) == 0
    rows = {r["device"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["l4"]["purchasability"] == "allowed" and rows["sl-small"]["purchasability"] is None
    assert main(["serve", "--device", "h100-sxm", *base, "--buyer", "us"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "date"


def _refused(path, text: str, match: str) -> None:
    """The space ``text`` is refused with a message matching ``match``."""
    from systolab.models.explore import load_space

    path.write_text(text)
    with pytest.raises(UserError, match=match):
        load_space(str(path))


#: A one-point space on one workload, with the constraints given.
SPACE = """
base: {base}
parameters: {{cores: [{cores}]}}
workloads: [{{name: dlrm}}]
objectives: [{{metric: throughput, workload: dlrm, goal: max}}]
constraints: {{{constraints}}}
gpus: [l4]
"""


def test_a_space_marks_its_reference_gpus_for_its_buyer(tmp_path):
    from systolab.models.explore import gpu_reference, load_space

    text = SPACE.format(base="sl-small", cores=2, constraints='rule_date: "2025-06-01", buyer: us')
    path = tmp_path / "space.yaml"
    path.write_text(text)
    assert gpu_reference(load_space(str(path)))["l4"]["purchasability"] == "allowed"
    _refused(path, text.replace("buyer: us", "buyer: atlantis"), "constraints.buyer")
    _refused(path, text.replace('rule_date: "2025-06-01", ', ""), "needs constraints.rule_date")


# The rules' history for a buyer in China, from docs/legal.md: (status, deciding policy) by
# date. "PoD" is a presumption of denial; None: no policy applies.
HISTORY_DATES = ("2022-06-01", "2022-11-01", "2023-12-01", "2025-05-01", "2025-09-01", "2026-03-01")
POD, CBC, LR = "presumption_of_denial", "case_by_case", "licence_required"
HISTORY = {
    "h100-sxm": [("allowed", None), (POD, "oct2022-china"), (POD, "oct2023-d5-a"), (POD, "oct2023-d5-a"),
                 (POD, "oct2023-d5-a"), (CBC, "jan2026-china-cbc")],
    "h800-sxm": [("allowed", None), ("allowed", None), (POD, "oct2023-d5-a"), (POD, "oct2023-d5-a"),
                 (POD, "oct2023-d5-a"), (CBC, "jan2026-china-cbc")],
    "a800-sxm4-80gb": [("allowed", None), ("allowed", None), (POD, "oct2023-d5-a"), (POD, "oct2023-d5-a"),
                       (POD, "oct2023-d5-a"), (CBC, "jan2026-china-cbc")],
    "h20": [("allowed", None), ("allowed", None), ("allowed", None), (LR, "h20-isinformed-2025"),
            (CBC, "h20-licences-2025"), (CBC, "h20-licences-2025")],
    "h200-sxm": [("allowed", None), (POD, "oct2022-china"), (POD, "oct2023-d5-a"), (POD, "oct2023-d5-a"),
                 (POD, "oct2023-d5-a"), (CBC, "jan2026-china-cbc")],
    "b200": [("allowed", None), (POD, "oct2022-china"), (POD, "oct2023-d5-a"), (POD, "oct2023-d5-a"),
             (POD, "oct2023-d5-a"), (POD, "oct2023-d5-a")],
    "l20": [("allowed", None)] * 6,
}


@pytest.mark.parametrize("gpu", sorted(HISTORY))
def test_the_rules_history_for_a_buyer_in_china(gpu):
    got = [(p.status, p.policy) for p in (purchasability(gpu, "china", d) for d in HISTORY_DATES)]
    assert got == HISTORY[gpu]


@pytest.mark.parametrize("buyer", ["allied", "us"])
def test_allied_and_us_buyers_may_buy_every_gpu_in_2025(buyer):
    assert {purchasability(g, buyer, "2025-05-01").status for g in HISTORY} == {"allowed"}


def test_the_h100_became_controlled_for_china_on_the_first_rule():
    assert purchasability("h100-sxm", "china", "2022-10-06").may_buy
    after = purchasability("h100-sxm", "china", "2022-10-07")
    assert not after.may_buy and "87 FR 62186" in after.citation


def test_the_diffusion_rule_never_applies():
    rules = load_licence_rules()
    diffusion = next(p for p in rules.policies if p.id == "diffusion-2025")
    assert diffusion.rescinded is not None and diffusion.rescinded <= diffusion.effective
    assert not any(diffusion.in_force(dt.date(2025, m, 1)) for m in range(1, 13))


def test_buildability_of_a_custom_chip_for_a_buyer():
    from systolab import get_chip
    from systolab.models.legal import Buildability, Purchasability, legal

    big = legal("sl-n4-os32", buyer="china", date="2025-09-01")
    assert isinstance(big, Buildability) and big.status == "presumed_denied" and not big.can_build
    assert big.eccn == "3A090.a.1" and big.licence.policy == "oct2023-d5-a"
    assert big.memory_eccn == "3A090.c" and big.memory_licence is not None and big.memory_licence.policy == "dec2024-hbm"
    assert big.foundry.presumed_3a090a and "90 FR 5298" in big.foundry.citation
    assert "HBM3" not in big.open_memory_kinds and "LPDDR5" in big.open_memory_kinds
    assert not big.feasibility.feasible                     # six HBM3 PHYs do not fit the die's edge
    assert legal(get_chip("sl-n4-os32"), buyer="allied", date="2025-09-01").status == "yes"
    before = legal("sl-n4-os32", buyer="china", date="2024-06-01")
    assert before.memory_eccn is None and before.foundry.in_force is False and before.status == "presumed_denied"
    edge = legal("sl-n7-os32-edge", buyer="china", date="2025-09-01")
    assert edge.status == "yes" and edge.eccn == "none" and edge.can_build
    d = edge.to_dict()
    assert d["memory"]["kind"] == get_chip("sl-n7-os32-edge").dram.kind and d["feasibility"]["feasible"] is True
    assert isinstance(legal("h20", buyer="china", date="2025-09-01"), Purchasability)
    with pytest.raises(UserError) as e:
        legal("no-such-device", buyer="china", date="2025-09-01")
    assert e.value.parameter == "device"


def test_legal_command_for_a_chip(capsys):
    assert main(["legal", "--chip", "sl-n7-os32-edge", "--buyer", "china", "--date", "2025-09-01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "yes" and out["eccn"] == "none" and "open_nodes" in out
    assert main(["legal", "--chip", "sl-tiny", "--gpu", "h20", "--buyer", "china", "--date", "2025-09-01",
                 "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "gpu"


def test_a_space_can_require_buildable_and_physically_feasible_designs(tmp_path):
    from systolab.models.explore import load_space
    from systolab.models.explore.stages import evaluate_point, judge

    text = SPACE.format(base="sl-n4-os32", cores=64,
                        constraints='rule_date: "2025-09-01", buyer: china, buildable: true, physically_feasible: true')
    path = tmp_path / "space.yaml"
    path.write_text(text)
    space = load_space(str(path))
    m = evaluate_point(space, {"cores": 64})
    assert m["build_status"] == "presumed_denied" and m["physical_limits_failed"] == ["beachfront_mm"]
    assert set(judge(space, m, [])["failed"]) == {"buildable", "physically_feasible"}
    path.write_text(text.replace("buyer: china", "buyer: allied").replace("physically_feasible: true", "physically_feasible: false"))
    space = load_space(str(path))
    assert judge(space, evaluate_point(space, {"cores": 64}), [])["failed"] == []
    _refused(path, text.replace("buyer: china, ", ""), "buildable: needs constraints.buyer")
    _refused(path, text.replace("buildable: true", "buildable: yes please"), "must be true or false")


def test_the_bundled_china_space_finds_a_chip_the_buyer_could_have_built(tmp_path, capsys):
    """cn-2025-70b: at least one feasible design; the cheapest is buildable for a buyer in
    China on the space's date and fits physically; the report names the binding constraint
    and says whether it beats the best GPU that buyer may buy without a licence."""
    from systolab import get_chip
    from systolab.models.legal import legal
    from systolab.models.silicon.feasibility import chip_feasibility

    out = tmp_path / "out"
    assert main(["explore", "cn-2025-70b", "--out", str(out), "--db", str(tmp_path / "cn.db"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["feasible"] >= 1 and res["pareto"]
    best = min(res["pareto"], key=lambda p: p["objectives"]["usd_per_million_units[llama3-70b-serving]"])
    chip = get_chip("sl-n7-os32-edge").derive(**best["design"])
    assert legal(chip, buyer="china", date="2025-09-01").status == "yes"
    assert chip_feasibility(chip).feasible
    report = (out / "report.md").read_text()
    assert "rejects the most" in report and "without a licence" in report


def test_compare_defaults_to_what_a_buyer_in_china_may_have(tmp_path, capsys):
    """`systolab compare` (what `make demo` runs) answers for the default buyer and date: the
    default chip is one that buyer could have built, every GPU is marked, and only what the
    buyer may have leads a conclusion; --buyer any is the unconstrained view."""
    from systolab.models.report.compare import DEFAULT_BUYER, DEFAULT_DATE

    args = ["compare", "--workload", "dlrm", "--gpus", "h20,l20", "--json"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == {"buyer": DEFAULT_BUYER, "date": DEFAULT_DATE}
    assert out["build"]["can_build"] and out["chip"]["name"] == "sl-cn-n7-lp5x"
    report = (tmp_path / "a" / "report.md").read_text()
    conclusions = report.split("## Conclusions")[1].split("##")[0]
    assert "GPUs they may buy without a licence: l20" in conclusions and "h20 case by case" in conclusions
    assert "the H20 (the export-compliant GPU)" not in conclusions      # a GPU the buyer may not buy leads nothing
    devices = report.split("## Devices")[1].split("##")[0]
    assert "buyer may have it?" in devices and "build: yes" in devices and "buy: case by case" in devices
    assert main([*args, "--buyer", "any", "--out", str(tmp_path / "b")]) == 0
    free = json.loads(capsys.readouterr().out)
    assert "scenario" not in free and free["chip"]["name"] == "sl-n4-os32"
    assert main([*args, "--buyer", "mars", "--out", str(tmp_path / "c")]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == "buyer"


def test_derive_and_fit_can_require_a_legal_and_feasible_chip():
    from systolab import get_chip
    from systolab.models.report.sizing import fit_cores

    cn = scenario("china", "2025-09-01")
    edge = get_chip("sl-n7-os32-edge")
    assert edge.derive(cores=32, legal_for=cn, feasible=True).cores == 32
    with pytest.raises(UserError) as e:
        edge.derive(cores=1024, legal_for=cn)            # past the 3A090 thresholds
    assert e.value.parameter == "legal_for" and "could not be built for a buyer in china" in str(e.value)
    with pytest.raises(UserError, match="beachfront_mm") as e:
        get_chip("sl-n4-os32").derive(cores=256, feasible=True)   # six HBM3 PHYs do not fit its edge
    assert e.value.parameter == "dram.stacks"
    free = fit_cores(edge, die_mm2=800)
    legal = fit_cores(edge, die_mm2=800, legal_for=cn)
    assert legal.cores < free.cores
    from systolab.models.legal import buildability
    assert buildability(legal, cn, options=False).can_build
    assert not buildability(legal.with_cores(legal.cores + 1), cn, options=False).can_build
    with pytest.raises(TypeError):
        fit_cores(edge, die_mm2=800, legal_for=("china", "2025-09-01"))


def test_legal_command_at_another_node_and_a_new_memory_kind(capsys):
    """--node makes the chip at another node (and so its foundry); a new memory kind brings
    its devices' latency and bandwidth, which set the chip RTL's DRAM timing."""
    from systolab import get_chip
    from systolab.models.silicon.memory import get_memory_kind

    assert main(["legal", "--chip", "sl-cn-n7-lp5x", "--node", "smic-7duv", "--buyer", "china", "--date",
                 "2026-12-01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["foundry"]["node"] == "smic-7duv" and out["chip"].endswith("node=smic-7duv")
    for bad, parameter in ((["--chip", "sl-tiny", "--node", "n99"], "node"), (["--gpu", "h20", "--node", "n7"], "node")):
        assert main(["legal", *bad, "--buyer", "china", "--date", "2026-12-01", "--json"]) == 2
        assert json.loads(capsys.readouterr().out)["parameter"] == parameter
    chip = get_chip("sl-cn-n7-lp5x")
    g7 = chip.derive(dram_kind="GDDR7")
    kind = get_memory_kind("GDDR7")
    assert g7.dram.latency_ns == kind.latency_ns.value and g7.dram.GBps_per_stack == kind.GBps.value
    assert g7.dram_latency_cycles == max(1, round(kind.latency_ns.value * g7.clock_mhz / 1000))
    assert g7.dram_bytes_per_cycle != chip.dram_bytes_per_cycle      # the RTL's DRAM port follows the kind


@pytest.mark.parametrize("flags, parameter", [
    (["--chip", "no-such-chip.yaml"], "chip"),
    (["--gpu", "h99"], "gpu"),
])
def test_legal_command_names_the_flag_of_an_unknown_device(capsys, flags, parameter):
    assert main(["legal", *flags, "--buyer", "china", "--date", "2025-01-01", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["parameter"] == parameter


def test_a_foundry_moves_the_chip_to_its_nearest_node(capsys):
    """--foundry (and ``legal(..., foundry=)``) answers for the chip made at that foundry: at
    its own node when the foundry offers it, else at the foundry's node nearest in nm class."""
    from systolab import legal
    from systolab.models.silicon.nodes import node_at_foundry

    assert node_at_foundry("n4", "TSMC") == "n4" and node_at_foundry("n4", "smic") == "smic-7duv"
    assert node_at_foundry("smic-7duv", "tsmc") == "n7"          # the same nm class
    at_smic = legal("sl-n4-os32", buyer="china", date="2025-06-01", foundry="SMIC")
    assert at_smic.foundry.node == "smic-7duv" and at_smic.chip.endswith("node=smic-7duv")
    assert legal("sl-n4-os32", buyer="china", date="2025-06-01", foundry="tsmc").foundry.node == "n4"
    assert main(["legal", "--chip", "sl-cn-n7-lp5x", "--foundry", "smic", "--buyer", "china", "--date",
                 "2026-12-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["foundry"]["node"] == "smic-7duv"
    for bad in (["--chip", "sl-tiny", "--foundry", "intel"], ["--gpu", "h20", "--foundry", "tsmc"],
                ["--chip", "sl-tiny", "--node", "smic-7duv", "--foundry", "tsmc"], ["--chip", "sl-tiny", "--foundry", ""]):
        assert main(["legal", *bad, "--buyer", "china", "--date", "2026-12-01", "--json"]) == 2
        assert json.loads(capsys.readouterr().out)["parameter"] == "foundry"
    with pytest.raises(UserError) as exc:
        legal("h20", buyer="china", date="2025-06-01", foundry="tsmc")
    assert exc.value.parameter == "foundry"
