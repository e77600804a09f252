"""Who may buy which GPU, and from when: dated licence policies for destination groups.

A *scenario* is a buyer (a destination group as the rules group them: ``us``, ``allied``,
``china`` ... from ``data/licence_rules.yaml``, or ``any`` for the unconstrained view) and a
decision date. For a GPU in a scenario, the policies in force on that date (``effective``
on or before it, not ``rescinded`` by then) whose destinations include the buyer and whose
``applies`` matches the GPU (its ECCN under the 3A090 rule set of that date, its id, and
any further conditions on TPP, performance density, DRAM bandwidth or I/O) are collected;
the one that took effect last decides, the more restrictive on a tie. No such policy: the
GPU may be bought without a licence (``allowed``). Every answer carries the policy and its
citation, and says when the deciding rule's date or content is uncertain.

systolab states what the rules allow; it never suggests a way around them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ...checks import check_date
from ...errors import UserError
from ..gpu.specs import GpuSpec, get_gpu
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .export_control import Condition, ExportClass, classify_gpu, parse_conditions

LICENCE_FILE = DATA_DIR / "licence_rules.yaml"
#: Outcomes from the least to the most restrictive.
STATUSES = ("allowed", "unknown", "case_by_case", "licence_required", "presumption_of_denial")
#: The buyer that every rule leaves free to buy: the unconstrained view.
ANY_BUYER = "any"


@dataclass(frozen=True)
class Destination:
    id: str
    name: str
    note: str = ""


@dataclass(frozen=True)
class Policy:
    """One dated licence policy (a row of ``licence_rules.yaml``)."""

    id: str
    title: str
    effective: dt.date
    rescinded: dt.date | None
    uncertain: bool
    destinations: tuple[str, ...]
    eccn: tuple[str, ...]             # ECCN prefixes it covers
    gpus: tuple[str, ...]             # named parts it covers
    when: tuple[Condition, ...]       # further conditions, all must hold
    status: str
    citation: str
    source_url: str
    notes: str

    def in_force(self, date: dt.date) -> bool:
        return self.effective <= date and (self.rescinded is None or date < self.rescinded)


@dataclass(frozen=True)
class LicenceRules:
    destinations: dict[str, Destination]
    policies: tuple[Policy, ...]       # in order of effect

    @property
    def first_effective(self) -> dt.date:
        return min(p.effective for p in self.policies)


@dataclass(frozen=True)
class Scenario:
    """Who buys, and when: a destination group (or ``any``) and a decision date."""

    buyer: str
    date: dt.date

    def to_dict(self) -> dict[str, str]:
        return {"buyer": self.buyer, "date": self.date.isoformat()}


@dataclass(frozen=True)
class Purchasability:
    """Whether ``buyer`` may buy ``device`` on ``date``, the policy that decides and why."""

    device: str
    buyer: str
    date: dt.date
    status: str                        # one of STATUSES
    eccn: str                          # under the 3A090 rule set in force on ``date``
    policy: str | None                 # the deciding policy's id (None: no policy applies)
    citation: str
    uncertain: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def may_buy(self) -> bool:
        """True only where no licence is needed."""
        return self.status == "allowed"

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "buyer": self.buyer, "date": self.date.isoformat(), "status": self.status,
                "may_buy": self.may_buy, "eccn": self.eccn, "policy": self.policy, "citation": self.citation,
                "uncertain": self.uncertain, "reasons": list(self.reasons)}


def _date(path: Path, where: str, raw: Any) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    raise SpecError(path, where, f"must be a date YYYY-MM-DD, not {raw!r}")


def _strings(path: Path, where: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise SpecError(path, where, f"must be a list of strings, not {raw!r}")
    return tuple(raw)


def _policy(p: Path, w: str, r: Any, destinations: dict[str, Destination]) -> Policy:
    applies = need(p, w, r, "applies", dict)
    dests = _strings(p, f"{w}.destinations", need(p, w, r, "destinations", list))
    unknown = [d for d in dests if d not in destinations]
    if unknown or not dests:
        raise SpecError(p, f"{w}.destinations", f"unknown destination {unknown[0] if unknown else '(none)'}; "
                                                 f"choose from {', '.join(destinations)}")
    status = need(p, w, r, "status", str)
    if status not in STATUSES:
        raise SpecError(p, f"{w}.status", f"must be one of {', '.join(STATUSES)}, not {status!r}")
    eccn, gpus = _strings(p, f"{w}.applies.eccn", applies.get("eccn")), _strings(p, f"{w}.applies.gpus", applies.get("gpus"))
    if not eccn and not gpus:
        raise SpecError(p, f"{w}.applies", "names no ECCN and no GPU")
    when = parse_conditions(p, f"{w}.applies.when", applies["when"]) if applies.get("when") else ()
    return Policy(need(p, w, r, "id", str), str(r.get("title", "")), _date(p, f"{w}.effective", r.get("effective")),
                  None if r.get("rescinded") is None else _date(p, f"{w}.rescinded", r["rescinded"]),
                  bool(r.get("uncertain", False)),
                  dests, eccn, gpus, when, status, need(p, w, r, "citation", str), str(r.get("source_url", "")),
                  " ".join(str(r.get("notes", "")).split()))


@cache
def load_licence_rules(path: str = str(LICENCE_FILE)) -> LicenceRules:
    """The destination groups and dated policies of ``path``; a bad file names the field."""
    p = Path(path)
    d = load_yaml(p)
    raw_dests = need(p, "", d, "destinations", dict)
    destinations = {k: Destination(k, need(p, f"destinations.{k}", v, "name", str), str(v.get("note", "")))
                    for k, v in raw_dests.items()}
    if ANY_BUYER in destinations:
        raise SpecError(p, f"destinations.{ANY_BUYER}", "is reserved for the unconstrained view")
    policies = [_policy(p, f"policies[{i}]", r, destinations) for i, r in enumerate(need(p, "", d, "policies", list))]
    ids = [x.id for x in policies]
    if len(set(ids)) != len(ids):
        raise SpecError(p, "policies", f"ids must be unique ({sorted({i for i in ids if ids.count(i) > 1})})")
    return LicenceRules(destinations, tuple(sorted(policies, key=lambda x: x.effective)))


def scenario(buyer: str, date: str | dt.date, *, rules: LicenceRules | None = None) -> Scenario:
    """A checked :class:`Scenario`: ``buyer`` a destination group of the rules (or ``any``),
    ``date`` a date or ``YYYY-MM-DD``."""
    rules = rules or load_licence_rules()
    if not isinstance(buyer, str) or (buyer != ANY_BUYER and buyer not in rules.destinations):
        raise UserError(f"buyer: unknown buyer {buyer!r}; choose one of {', '.join([*rules.destinations, ANY_BUYER])}",
                        parameter="buyer")
    return Scenario(buyer, check_date("date", date))


def _matches(policy: Policy, device: str, eccn: str, metrics: dict[str, float | None]) -> bool:
    covered = device in policy.gpus or any(eccn == e or eccn.startswith(e + ".") for e in policy.eccn)
    return covered and all(c.holds(metrics) is True for c in policy.when)


def licence_status(device: str, cls: ExportClass, metrics: dict[str, float | None], sc: Scenario, *,
                   rules: LicenceRules | None = None) -> Purchasability:
    """What the licence policies say of an item of class ``cls`` (``device`` names it for
    policies that name parts) with ``metrics`` (tpp, pd, dram_bw_GBps, io_bidir_GBps) for
    the scenario's buyer on its date: a GPU to buy or a custom chip to have made."""
    rules = rules or load_licence_rules()
    reasons = [f"ECCN {cls.eccn} under the {cls.rule_set} rule set ({cls.citation})"]
    if sc.buyer == ANY_BUYER:
        return Purchasability(device, sc.buyer, sc.date, "allowed", cls.eccn, None, "", False,
                              (*reasons, "unconstrained view (--buyer any): no destination's rules applied"))
    if sc.date < rules.first_effective:
        reasons.append(f"{sc.date} is before the first licence policy on record ({rules.first_effective})")
    mine = [p for p in rules.policies if sc.buyer in p.destinations and _matches(p, device, cls.eccn, metrics)]
    live = [p for p in mine if p.in_force(sc.date)]
    reasons += [f"{p.id} no longer applies: rescinded {p.rescinded} ({p.citation})"
                for p in mine if p.rescinded is not None and p.rescinded <= sc.date]
    if not live:
        reasons.append(f"no licence policy for buyer {sc.buyer} covers {device} on {sc.date}")
        return Purchasability(device, sc.buyer, sc.date, "allowed", cls.eccn, None, "", False, tuple(reasons))
    decider = max(live, key=lambda p: (p.effective, STATUSES.index(p.status)))
    reasons += [f"{p.id} ({p.effective}): {p.status}, superseded by {decider.id}" for p in live if p is not decider]
    reasons.append(f"{decider.id} ({decider.effective}{', date or content uncertain' if decider.uncertain else ''}): "
                   f"{decider.title}")
    return Purchasability(device, sc.buyer, sc.date, decider.status, cls.eccn, decider.id, decider.citation,
                          decider.uncertain, tuple(reasons))


def purchasability(gpu: GpuSpec | str, buyer: str | Scenario, date: str | dt.date | None = None, *,
                   rules: LicenceRules | None = None) -> Purchasability:
    """Whether ``buyer`` may buy ``gpu`` on ``date`` (or in the :class:`Scenario` given as
    ``buyer``), with the deciding policy, its citation and the reasons."""
    rules = rules or load_licence_rules()
    if isinstance(buyer, Scenario):
        if date is not None:
            raise UserError("date: give a Scenario or a buyer and a date, not both", parameter="date")
        sc = buyer
    else:
        if date is None:
            raise UserError("date: required with a buyer (YYYY-MM-DD)", parameter="date")
        sc = scenario(buyer, date, rules=rules)
    spec = get_gpu(gpu)
    cls = classify_gpu(spec, rule_date=sc.date)
    metrics = {"tpp": cls.tpp, "pd": cls.performance_density, "io_bidir_GBps": spec.io_bidir_GBps,
               "dram_bw_GBps": spec.mem_bw_GBps}
    return licence_status(spec.id, cls, metrics, sc, rules=rules)
