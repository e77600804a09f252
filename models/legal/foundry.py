"""Could a foundry build it: the foundry due-diligence presumption of ECCN 3A090.a.

Under the January 2025 due-diligence rule (``data/foundry_rule.yaml``), a front-end
fabricator or an OSAT that makes or packages a logic IC at the 16/14 nm node or below, or
with non-planar transistors, presumes it is 3A090.a (a licence for every destination)
unless the presumption is overcome: the designer is an approved or authorised IC designer,
or the final packaged IC's aggregate transistor count is below a threshold that steps up
with the year of the export (and, as reported, it contains no HBM). A planar 28 nm design
is outside the rule; before the rule's effective date it is not in force.

:func:`foundry_presumption` answers for stated facts; :func:`chip_foundry_check` for a
custom chip, with its transistor estimate (:func:`~..silicon.transistors.chip_transistors`).
Every reason names the rule and its citation; ``uncertain`` says where a figure could not
be confirmed. systolab states what the rule presumes; it never suggests a way around it.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...checks import check_chip, check_date
from ...errors import UserError
from ..silicon.nodes import Node, get_node
from ..silicon.transistors import chip_transistors
from ..specs import DATA_DIR, SpecError, load_yaml, need

if TYPE_CHECKING:
    from ..chip.config import ChipConfig

FOUNDRY_FILE = DATA_DIR / "foundry_rule.yaml"


@dataclass(frozen=True)
class Threshold:
    start: dt.date
    transistors: float        # the count at or above which the presumption stands
    source: str
    uncertain: bool


@dataclass(frozen=True)
class Designer:
    id: str
    note: str
    overcomes: bool
    uncertain: bool


@dataclass(frozen=True)
class FoundryRule:
    id: str
    title: str
    citation: str
    effective: dt.date
    node_nm_at_most: float
    thresholds: tuple[Threshold, ...]     # in order of start
    hbm_condition: str
    hbm_uncertain: bool
    designers: dict[str, Designer]
    uncertain: bool

    def threshold_on(self, date: dt.date) -> Threshold | None:
        """The threshold in force on ``date`` (None before the first)."""
        now = [t for t in self.thresholds if t.start <= date]
        return now[-1] if now else None


def _date(p: Path, where: str, raw: Any) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    raise SpecError(p, where, f"must be a date YYYY-MM-DD, not {raw!r}")


@cache
def load_foundry_rule(path: str = str(FOUNDRY_FILE)) -> FoundryRule:
    """The rule of ``path``; a bad file raises :class:`SpecError` naming the field."""
    p = Path(path)
    d = load_yaml(p)
    r = need(p, "", d, "rule", dict)
    thresholds = []
    for i, t in enumerate(need(p, "rule", r, "thresholds", list)):
        w = f"rule.thresholds[{i}]"
        thresholds.append(Threshold(_date(p, f"{w}.from", t.get("from")),
                                    need(p, w, t, "transistors_B", (int, float), positive=True) * 1e9,
                                    need(p, w, t, "source", str), bool(t.get("uncertain", False))))
    if not thresholds:
        raise SpecError(p, "rule.thresholds", "names no threshold")
    hbm = need(p, "rule", r, "hbm_condition", dict)
    designers = {k: Designer(k, need(p, f"rule.designers.{k}", v, "note", str),
                             need(p, f"rule.designers.{k}", v, "overcomes", bool), bool(v.get("uncertain", False)))
                 for k, v in need(p, "rule", r, "designers", dict).items()}
    return FoundryRule(need(p, "rule", r, "id", str), " ".join(need(p, "rule", r, "title", str).split()),
                       " ".join(need(p, "rule", r, "citation", str).split()),
                       _date(p, "rule.effective", r.get("effective")),
                       need(p, "rule", r, "node_nm_at_most", (int, float), positive=True),
                       tuple(sorted(thresholds, key=lambda t: t.start)), need(p, "rule.hbm_condition", hbm, "text", str),
                       bool(hbm.get("uncertain", False)), designers, bool(r.get("uncertain", False)))


@dataclass(frozen=True)
class FoundryCheck:
    """Whether a foundry or OSAT must presume the design is 3A090.a, and why."""

    node: str
    nm: float
    planar: bool
    transistors: float            # the final packaged IC's aggregate count
    date: dt.date
    buyer: str | None             # the designer's standing under the rule (None: not stated)
    in_force: bool                # the rule is in force on ``date``
    in_scope: bool                # 16/14 nm or below, or non-planar
    presumed_3a090a: bool | None  # None: the facts given do not decide it
    threshold: float | None       # the transistor count in force on ``date``
    reasons: tuple[str, ...]
    citation: str
    uncertain: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, date=self.date.isoformat(), reasons=list(self.reasons))


def _checked(rule: FoundryRule, node: str, planar: bool | None, transistors: float, buyer: str | None,
             hbm: bool | None) -> tuple[Node, bool]:
    if not isinstance(node, str):
        raise UserError(f"node: expected a node name, not {node!r}", parameter="node")
    facts = get_node(node)
    if planar is not None and not isinstance(planar, bool):
        raise UserError(f"planar: must be True, False or None, not {planar!r}", parameter="planar")
    if isinstance(transistors, bool) or not isinstance(transistors, (int, float)) \
            or not math.isfinite(transistors) or transistors < 0:
        raise UserError(f"transistors: must be a count >= 0, not {transistors!r}", parameter="transistors")
    if buyer is not None and buyer not in rule.designers:
        raise UserError(f"buyer: unknown designer standing {buyer!r}; choose one of {', '.join(rule.designers)} "
                        f"or None", parameter="buyer")
    if hbm is not None and not isinstance(hbm, bool):
        raise UserError(f"hbm: must be True, False or None, not {hbm!r}", parameter="hbm")
    return facts, facts.planar if planar is None else planar


def foundry_presumption(*, node: str, planar: bool | None, transistors: float, date: str | dt.date,
                        buyer: str | None = None, hbm: bool | None = None,
                        rule: FoundryRule | None = None) -> FoundryCheck:
    """Whether a front-end fab or OSAT must presume a logic IC is 3A090.a on ``date``.

    ``node`` a node of ``data/nodes.yaml`` (``n28`` ... ``n3``, ``smic-7duv``); ``planar`` the
    transistor architecture (None: the node's); ``transistors`` the final packaged IC's
    aggregate count (a count, not billions); ``buyer`` the designer's standing under the
    rule (``approved_ic_designer``, ``authorized_ic_designer``, ``other``; None: not
    stated, treated as ``other``); ``hbm`` whether the package holds HBM (None: not stated).
    """
    rule = rule or load_foundry_rule()
    day = check_date("date", date)
    facts, is_planar = _checked(rule, node, planar, transistors, buyer, hbm)
    cite = f"{rule.id} ({rule.citation})"
    base = FoundryCheck(node=facts.name, nm=facts.nm_class, planar=is_planar, transistors=float(transistors), date=day,
                        buyer=buyer, in_force=True, in_scope=True, presumed_3a090a=None, threshold=None, reasons=(),
                        citation=rule.citation, uncertain=rule.uncertain)
    if day < rule.effective:
        return replace(base, in_force=False, in_scope=False, presumed_3a090a=False,
                       reasons=(f"{rule.id} not in force on {day}: effective {rule.effective} ({rule.citation})",))
    in_scope = facts.nm_class <= rule.node_nm_at_most or not is_planar
    arch = "planar" if is_planar else "non-planar"
    if not in_scope:
        return replace(base, in_scope=False, presumed_3a090a=False,
                       reasons=(f"outside {cite}: {facts.name} is a {facts.nm_class:g} nm {arch} node, above the "
                                f"16/14 nm node and planar",))
    scope = f"{facts.name} ({facts.nm_class:g} nm, {arch}) is within {cite}: 16/14 nm node or below, or non-planar"
    designer = rule.designers.get(buyer or "other")
    if designer is not None and designer.overcomes:
        return replace(base, presumed_3a090a=False, reasons=(scope, f"presumption overcome: {designer.note} ({cite})"),
                       uncertain=rule.uncertain or designer.uncertain)
    t = rule.threshold_on(day)
    assert t is not None                       # the first threshold starts with the rule
    count = f"{transistors / 1e9:.2f} B transistors"
    limit = f"the {t.transistors / 1e9:g} B threshold in force from {t.start} ({t.source})"
    reasons = [scope]
    if transistors >= t.transistors:
        presumed: bool | None = True
        reasons.append(f"presumed 3A090.a at the foundry and OSAT: {count} is at or above {limit}")
    elif hbm:
        presumed = True
        reasons.append(f"{count} is below {limit}, but the package holds HBM and {rule.hbm_condition}: "
                       f"presumed 3A090.a ({cite})")
    else:
        presumed = False
        reasons.append(f"not presumed 3A090.a by {rule.id}: {count} is below {limit}, provided an approved OSAT "
                       f"packages it (or the fab, outside Macau and D:5) and attests the count")
        if hbm is None:
            reasons.append(f"HBM not stated: {rule.hbm_condition} (uncertain)")
    if buyer is None:
        reasons.append("designer's standing not stated: treated as on neither list of approved IC designers")
    uncertain = rule.uncertain or t.uncertain or (presumed is not True and hbm is None and rule.hbm_uncertain) \
        or (hbm is True and rule.hbm_uncertain)
    return replace(base, presumed_3a090a=presumed, threshold=t.transistors, reasons=tuple(reasons),
                   uncertain=uncertain)


def chip_foundry_check(chip: ChipConfig, date: str | dt.date, *, buyer: str | None = None,
                       rule: FoundryRule | None = None) -> FoundryCheck:
    """:func:`foundry_presumption` for ``chip``: its node, its estimated transistors
    (:func:`chip_transistors`) and whether its DRAM is HBM. Where the estimate's range
    straddles the threshold, the answer is marked uncertain and says so."""
    check_chip("chip", chip)
    est = chip_transistors(chip)
    check = foundry_presumption(node=chip.node, planar=None, transistors=est.transistors, date=date, buyer=buyer,
                                hbm=chip.dram.kind.upper().startswith("HBM"), rule=rule)
    note = (f"{chip.name}: estimated {est.total_B:.2f} B transistors (range {est.low_B:.2f}-{est.high_B:.2f} B; "
            f"logic {est.logic_B:.2f}, SRAM {est.sram_B:.2f}, uncore {est.uncore_B:.2f})")
    straddles = check.threshold is not None and est.low_B * 1e9 < check.threshold <= est.high_B * 1e9
    extra = (note,) + (("the estimate's range straddles the threshold: the count decides and is uncertain",)
                       if straddles else ())
    return replace(check, reasons=check.reasons + extra, uncertain=check.uncertain or straddles)
