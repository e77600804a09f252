"""Could this buyer have this custom chip built, on this date? The chip's own export class
and what the licence policies say of it for the buyer, the foundry due-diligence rule's
presumption at the chip's node, the export class of its memory devices, and whether it
fits physically: each with its rule and citation.

The answer is ``yes`` (no licence needed on any count), ``licence_needed`` (a licence is
required, reviewed case by case, or the outcome is unknown) or ``presumed_denied`` (a
licence is required and reviewed under a presumption of denial); it also lists the memory
kinds and the nodes whose rules leave this buyer free on that date. Physical feasibility
is reported beside it, not folded into it: it is a fact of the design, not of the rules.

systolab states what a rule allows, for whom and from when; it never proposes a way around a
control.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from ...errors import UserError
from ..chip.config import ChipConfig, get_chip
from ..gpu.specs import GpuSpec, is_gpu, load_gpus
from ..silicon.feasibility import Feasibility, chip_feasibility
from ..silicon.memory import list_memory_kinds, memory_class
from ..silicon.nodes import load_nodes, node_at_foundry
from .export_control import ExportClass, classify_chip
from .foundry import FoundryCheck, chip_foundry_check
from .purchase import (
    STATUSES,
    LicenceRules,
    Purchasability,
    Scenario,
    licence_status,
    load_licence_rules,
    purchasability,
    scenario,
)

#: Outcomes, from the freest.
BUILD_STATUSES = ("yes", "licence_needed", "presumed_denied")


def _build_status(status: str) -> str:
    return {"allowed": "yes", "presumption_of_denial": "presumed_denied"}.get(status, "licence_needed")


@dataclass(frozen=True)
class Buildability:
    """Whether ``buyer`` could have ``chip`` built on ``date``, and why (see the module)."""

    chip: str
    buyer: str
    date: str
    status: str                        # one of BUILD_STATUSES
    eccn: str                          # the chip's class under the 3A090 rule set of the date
    licence: Purchasability            # the licence policies on the chip's own class, for the buyer
    foundry: FoundryCheck              # the foundry's presumption at the chip's node
    foundry_licence: Purchasability | None   # the policies on 3A090.a, where the foundry must presume it
    memory_kind: str
    memory_eccn: str | None            # the class of one memory device (3A090.c or None)
    memory_licence: Purchasability | None    # the policies on that class, for the buyer
    feasibility: Feasibility
    open_memory_kinds: tuple[str, ...]  # kinds whose devices need no licence for this buyer on this date
    open_nodes: tuple[str, ...]         # nodes where the foundry rule leaves this design free for this buyer
    reasons: tuple[str, ...]
    uncertain: bool

    @property
    def can_build(self) -> bool:
        return self.status == "yes"

    def to_dict(self) -> dict[str, Any]:
        return {"chip": self.chip, "buyer": self.buyer, "date": self.date, "status": self.status,
                "can_build": self.can_build, "eccn": self.eccn, "licence": self.licence.to_dict(),
                "foundry": self.foundry.to_dict(),
                "foundry_licence": self.foundry_licence.to_dict() if self.foundry_licence else None,
                "memory": {"kind": self.memory_kind, "eccn": self.memory_eccn,
                           "licence": self.memory_licence.to_dict() if self.memory_licence else None},
                "feasibility": self.feasibility.to_dict(), "open_memory_kinds": list(self.open_memory_kinds),
                "open_nodes": list(self.open_nodes), "reasons": list(self.reasons), "uncertain": self.uncertain}


def _metrics(chip: ChipConfig, cls: ExportClass) -> dict[str, float | None]:
    """What a licence policy's conditions may test of ``chip`` (its TPP from its class)."""
    return {"tpp": cls.tpp, "pd": cls.performance_density, "dram_bw_GBps": chip.dram.GBps, "io_bidir_GBps": chip.io_bidir_GBps}


def _foundry_licence(chip: ChipConfig, cls: ExportClass, check: FoundryCheck, sc: Scenario,
                     rules: LicenceRules) -> Purchasability | None:
    """The policies on the class the foundry must presume (3A090.a), where it must."""
    if not check.presumed_3a090a:
        return None
    return licence_status(chip.name, replace(cls, eccn="3A090.a"), _metrics(chip, cls), sc, rules=rules)


def _memory_licence(chip: ChipConfig, kind: str, cls: ExportClass, sc: Scenario,
                    rules: LicenceRules) -> tuple[str | None, Purchasability | None, tuple[str, ...]]:
    eccn, why = memory_class(kind, sc.date)
    if eccn is None:
        return None, None, why
    return eccn, licence_status(f"{chip.name} memory ({kind})", replace(cls, eccn=eccn), {}, sc, rules=rules), why


def buildability(chip: ChipConfig, sc: Scenario, *, options: bool = True,
                 rules: LicenceRules | None = None) -> Buildability:
    """Whether the scenario's buyer could have ``chip`` built on its date (see the module);
    ``options=False`` leaves the open memory kinds and nodes out (a search's inner loop)."""
    if not isinstance(chip, ChipConfig):
        raise TypeError(f"chip must be a ChipConfig (systolab.get_chip), not {type(chip).__name__}")
    if not isinstance(sc, Scenario):
        raise TypeError(f"sc must be a Scenario (systolab.scenario), not {type(sc).__name__}")
    rules = rules or load_licence_rules()
    cls = classify_chip(chip, rule_date=sc.date)
    own = licence_status(chip.name, cls, _metrics(chip, cls), sc, rules=rules)
    foundry = chip_foundry_check(chip, sc.date)
    presumed = _foundry_licence(chip, cls, foundry, sc, rules)
    mem_eccn, mem_licence, mem_why = _memory_licence(chip, chip.dram.kind, cls, sc, rules)
    counts = [p for p in (own, presumed, mem_licence) if p is not None]
    worst = max(counts, key=lambda p: STATUSES.index(p.status))
    open_kinds = tuple(k for k in list_memory_kinds() if _memory_open(chip, k, cls, sc, rules)) if options else ()
    open_nodes = tuple(n for n in load_nodes() if _node_open(chip, n, cls, sc, rules)) if options else ()
    reasons = (f"the chip: {own.status.replace('_', ' ')} ({own.policy or 'no policy'}; ECCN {cls.eccn})",
               *(f"the foundry: {r}" for r in foundry.reasons),
               *((f"presumed 3A090.a at the foundry: {presumed.status.replace('_', ' ')} "
                  f"({presumed.policy or 'no policy'})",) if presumed else ()),
               *(f"the memory: {r}" for r in mem_why),
               *((f"memory {mem_eccn}: {mem_licence.status.replace('_', ' ')} ({mem_licence.policy or 'no policy'})",)
                 if mem_licence else ()))
    return Buildability(chip.name, sc.buyer, sc.date.isoformat(), _build_status(worst.status), cls.eccn, own, foundry,
                        presumed, chip.dram.kind, mem_eccn, mem_licence, chip_feasibility(chip), open_kinds, open_nodes,
                        reasons,
                        any(p.uncertain for p in counts) or foundry.uncertain)


def _memory_open(chip: ChipConfig, kind: str, cls: ExportClass, sc: Scenario, rules: LicenceRules) -> bool:
    """Whether a device of ``kind`` needs no licence for the buyer on the date."""
    licence = _memory_licence(chip, kind, cls, sc, rules)[1]
    return licence is None or licence.status == "allowed"


def _node_open(chip: ChipConfig, node: str, cls: ExportClass, sc: Scenario, rules: LicenceRules) -> bool:
    """Whether the foundry rule leaves this design free for the buyer at ``node``."""
    moved = replace(chip, node=node)
    presumed = _foundry_licence(moved, cls, chip_foundry_check(moved, sc.date), sc, rules)
    return presumed is None or presumed.status == "allowed"


def legal(device: GpuSpec | ChipConfig | str, *, buyer: str, date: str | dt.date,
          foundry: str | None = None) -> Purchasability | Buildability:
    """The legal view of ``device`` for ``buyer`` on ``date``: a GPU (a :class:`GpuSpec` or
    its id) gives whether the buyer may buy it (:class:`Purchasability`); a chip (a
    :class:`ChipConfig`, or a name or file of ``chips.yaml``) whether the buyer could have it
    built (:class:`Buildability`) — with ``foundry``, made at that foundry's node nearest its
    own (:func:`node_at_foundry`; the answer's chip then names the node)."""
    sc = scenario(buyer, date)
    if foundry is not None and not isinstance(device, ChipConfig) and is_gpu(device):
        raise UserError("foundry: applies to a custom chip (a GPU's foundry is its own)", parameter="foundry")
    if isinstance(device, ChipConfig):
        return buildability(_at_foundry(device, foundry), sc)
    if is_gpu(device):
        return purchasability(device, sc)
    if not isinstance(device, str):
        raise TypeError(f"device must be a GPU id, a GpuSpec, a chip name or a ChipConfig, not {type(device).__name__}")
    try:
        chip = get_chip(device)
    except UserError as exc:
        raise UserError(f"device: {device!r} is neither a GPU id ({', '.join(load_gpus())}) nor a chip "
                        f"({str(exc).split(': ', 1)[-1]})", parameter="device") from None
    return buildability(_at_foundry(chip, foundry), sc)


def _at_foundry(chip: ChipConfig, foundry: str | None) -> ChipConfig:
    """``chip`` made at ``foundry``'s nearest node (itself when no foundry is named or the
    foundry offers its node)."""
    if foundry is None:
        return chip
    node = node_at_foundry(chip.node, foundry)
    return chip if node == chip.node else chip.derive(node=node)
