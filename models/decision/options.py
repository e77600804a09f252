"""The options a decision weighs: what the buyer may buy or have built on the date.

A GPU is an option when the buyer may buy it without a licence (``allowed``), or, marked as
such, when a licence may be granted (``case_by_case`` or ``licence_required``): the report
then says every such answer holds only if the licence is granted. A GPU under a
presumption of denial, or without a public price, is listed with the reason and not
weighed. The custom chip is an option when the buyer could have it built (``yes``); else it
is listed with the rules that stand in the way. systolab says what the rules allow; it
never suggests a way around them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..chip.config import ChipConfig
from ..cost.pricing import gpu_price
from ..gpu.specs import get_gpu
from ..legal.build import buildability
from ..legal.purchase import Scenario, purchasability

#: Purchase statuses under which a GPU is weighed, and whether a licence is then assumed.
WEIGHED = {"allowed": False, "case_by_case": True, "licence_required": True, "unknown": True}


@dataclass(frozen=True)
class Option:
    """One thing the buyer could do: buy ``device`` (a GPU id) or build it (a chip).

    ``weighed`` says whether the decision costs it; ``needs_licence`` that its answers hold
    only if a licence is granted; ``status`` is the legal answer (purchase status of a GPU,
    build status of a chip) and ``why`` the deciding rule, with its citation."""

    name: str
    side: str                      # "buy" or "build"
    status: str
    eccn: str
    weighed: bool
    needs_licence: bool
    policy: str | None
    citation: str
    uncertain: bool
    why: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.name} (licence)" if self.needs_licence else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "side": self.side, "status": self.status, "eccn": self.eccn,
                "weighed": self.weighed, "needs_licence": self.needs_licence, "policy": self.policy,
                "citation": self.citation, "uncertain": self.uncertain, "why": list(self.why)}


def gpu_option(gpu_id: str, sc: Scenario) -> Option:
    """A GPU as an option for the scenario's buyer (see the module)."""
    p = purchasability(gpu_id, sc)
    priced = gpu_price(get_gpu(gpu_id)) is not None
    weighed = p.status in WEIGHED and priced
    why = list(p.reasons)
    if not priced:
        why.append("no public price (models/data/gpus.yaml): not costed")
    if p.status not in WEIGHED:
        why.append(f"{p.status.replace('_', ' ')} for a buyer in {sc.buyer} on {sc.date}: not an option")
    return Option(p.device, "buy", p.status, p.eccn, weighed, WEIGHED.get(p.status, False) and weighed, p.policy,
                  p.citation, p.uncertain, tuple(why))


def chip_option(chip: ChipConfig, sc: Scenario) -> Option:
    """The custom chip as an option: weighed only when the buyer could have it built."""
    b = buildability(chip, sc, options=False)
    return Option(chip.name, "build", b.status, b.eccn, b.can_build, False, b.licence.policy, b.licence.citation,
                  b.uncertain, b.reasons)
