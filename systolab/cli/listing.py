"""``systolab list [chips|gpus|workloads|models|spaces]``: the names every other command
accepts, each with one line on what it is."""
from __future__ import annotations

import argparse
import re

from ..models.chip.config import get_chip, list_chips
from ..models.explore.space import SPACES_DIR
from ..models.gpu.specs import get_gpu, list_gpus
from ..models.workloads.catalog import BUILTINS, get_workload, llm_models
from .common import emit

KINDS = ("chips", "gpus", "workloads", "models", "spaces")


def _chips() -> list[dict]:
    rows = []
    for name in list_chips():
        c = get_chip(name)
        rows.append({"name": name, "about": f"{c.cores} {c.core.dataflow} {c.core.rows}x{c.core.cols} "
                                            f"{c.core.dtype} cores at {c.clock_mhz:g} MHz on {c.node}"})
    return rows


def _gpus() -> list[dict]:
    return [{"name": gid, "about": get_gpu(gid).name} for gid in list_gpus()]


def _workloads() -> list[dict]:
    rows = []
    for name in BUILTINS:
        w = get_workload(name, dtype="int8")
        rows.append({"name": name, "about": f"{len(w.gemms)} GEMMs per {w.unit}; {w.source.split(' (')[0]}"})
    return rows


def _models() -> list[dict]:
    by_shape: dict[str, list[str]] = {}
    for alias, shape in llm_models().items():
        by_shape.setdefault(shape.name, []).append(alias)
    return [{"name": name, "about": f"{llm_models()[name].params / 1e9:.1f}B parameters"
             + (f"; also {', '.join(a for a in aliases if a != name)}" if len(aliases) > 1 else "")}
            for name, aliases in by_shape.items()]


def _spaces() -> list[dict]:
    rows = []
    for path in sorted(SPACES_DIR.glob("*.yaml")):
        lines = path.read_text().splitlines()
        header = " ".join(line.lstrip("#").strip() for line in lines[:next((i for i, line in enumerate(lines)
                                                                            if not line.startswith("#")), len(lines))])
        first = re.split(r"(?<=\.)\s|\s\(|\sUsage:", header, maxsplit=1)[0].rstrip(".:,")
        rows.append({"name": path.stem, "about": first if len(first) <= 160 else first[:159] + "…"})
    return rows


LISTERS = {"chips": _chips, "gpus": _gpus, "workloads": _workloads, "models": _models, "spaces": _spaces}


def add_parser(sub, parents) -> None:
    p = sub.add_parser("list", parents=[parents.json], help="the built-in chips, GPUs, workloads, LLMs and spaces",
                       description="The names the other commands accept: chips (--chip, compare), GPUs (--gpu, "
                                   "--gpus, serve --device), workloads (--workload), LLMs (serve/fleet --model) "
                                   "and bundled design spaces (explore).")
    p.add_argument("kind", nargs="?", choices=KINDS, help="one kind only (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    payload = {kind: LISTERS[kind]() for kind in kinds}

    def human(q: dict) -> str:
        lines = []
        for kind, rows in q.items():
            lines.append(f"{kind}:")
            width = max((len(r["name"]) for r in rows), default=0)
            lines += [f"  {r['name']:{width}}  {r['about']}".rstrip() for r in rows]
        return "\n".join(lines)

    emit(args, payload, human)
    return 0
