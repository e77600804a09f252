"""``systolab legal``: whether a buyer may buy a GPU, or could have a custom chip built, on
a date, with the rules that decide."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..models.chip.config import ChipConfig
from ..models.gpu.specs import GpuSpec, get_gpu
from ..models.legal.build import legal
from ..models.report.chip import get_chip
from ..models.silicon.nodes import get_node, node_at_foundry
from .common import emit, legal_parent


def add_parser(sub, parents) -> None:
    p = sub.add_parser("legal", parents=[legal_parent(required=True, what="the rules read for that buyer"), parents.json],
                       help="may a buyer buy a GPU, or have a chip built, on a date (dated rules, with citations)")
    p.add_argument("--gpu", metavar="ID", help="GPU id, e.g. h20 (see models/data/gpus.yaml)")
    p.add_argument("--chip", metavar="NAME|FILE", help="a chip of models/data/chips.yaml or a chips YAML file")
    p.add_argument("--node", metavar="NODE",
                   help="with --chip: the chip made at this node instead, and so at its foundry (models/data/nodes.yaml: "
                        "n28 ... n3 at TSMC, smic-7duv at SMIC)")
    p.add_argument("--foundry", metavar="NAME",
                   help="with --chip: the chip made at this foundry (TSMC, SMIC ...), at its node nearest the chip's "
                        "(or --node's, which must then be this foundry's)")
    p.set_defaults(func=run)


def _gpu_text(p: dict) -> str:
    head = (f"{p['device']} for a buyer in {p['buyer']} on {p['date']}: {p['status'].replace('_', ' ')}"
            f"{' (uncertain)' if p['uncertain'] else ''}")
    cite = [f"  decided by {p['policy']}: {p['citation']}"] if p["policy"] else []
    return "\n".join([head, *cite, *(f"  {r}" for r in p["reasons"])])


def _chip_text(p: dict) -> str:
    checks = [f"  {c['name']}: {c['value']:.4g} against {c['limit']:.4g}{'' if c['ok'] else '  FAILS (' + c['field'] + ')'}"
              for c in p["feasibility"]["checks"]]
    return "\n".join([f"{p['chip']} built for a buyer in {p['buyer']} on {p['date']}: {p['status'].replace('_', ' ')}"
                      f"{' (uncertain)' if p['uncertain'] else ''}; ECCN {p['eccn']}",
                      *(f"  {r}" for r in p["reasons"]),
                      f"  memory kinds open to this buyer: {', '.join(p['open_memory_kinds']) or 'none'}",
                      f"  nodes the foundry rule leaves open: {', '.join(p['open_nodes']) or 'none'}",
                      f"  physically feasible: {'yes' if p['feasibility']['feasible'] else 'no'}", *checks])


def run(args: argparse.Namespace) -> int:
    if (args.gpu is None) == (args.chip is None):
        raise UserError("gpu: give --gpu ID or --chip NAME|FILE (one of them)", parameter="gpu")
    if args.node is not None and args.chip is None:
        raise UserError("node: applies to --chip (a GPU's node is its own)", parameter="node")
    if args.foundry is not None and args.chip is None:
        raise UserError("foundry: applies to --chip (a GPU's foundry is its own)", parameter="foundry")
    if args.gpu is not None:
        device: GpuSpec | ChipConfig = get_gpu(args.gpu)            # a bad id names --gpu
    else:
        chip = get_chip(args.chip)                                  # a bad name or file names --chip
        device = chip.derive(node=args.node) if args.node is not None else chip
        if args.node is not None and args.foundry is not None and \
                node_at_foundry(args.node, args.foundry) != get_node(args.node).name:
            raise UserError(f"foundry: {args.node} is made at {get_node(args.node).foundry}, not {args.foundry}",
                            parameter="foundry")
    result = legal(device, buyer=args.buyer, date=args.date, foundry=args.foundry).to_dict()
    emit(args, result, _chip_text if args.chip else _gpu_text)
    return 0
