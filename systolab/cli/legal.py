"""``systolab legal``: whether a buyer may buy a GPU on a date, with the rule that decides."""
from __future__ import annotations

import argparse

from ..models.legal.purchase import purchasability
from .common import emit


def add_parser(sub, parents) -> None:
    p = sub.add_parser("legal", parents=[parents.json],
                       help="whether a buyer may buy a GPU on a date (dated licence policies, with citations)")
    p.add_argument("--gpu", required=True, metavar="ID", help="GPU id, e.g. h20 (see models/data/gpus.yaml)")
    p.add_argument("--buyer", required=True,
                   help="destination group of the buyer (models/data/licence_rules.yaml: us, allied, china ...) "
                        "or any (the unconstrained view)")
    p.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the decision date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = purchasability(args.gpu, args.buyer, args.date)

    def human(p: dict) -> str:
        head = (f"{p['device']} for a buyer in {p['buyer']} on {p['date']}: {p['status'].replace('_', ' ')}"
                f"{' (uncertain)' if p['uncertain'] else ''}")
        cite = [f"  decided by {p['policy']}: {p['citation']}"] if p["policy"] else []
        return "\n".join([head, *cite, *(f"  {r}" for r in p["reasons"])])

    emit(args, result.to_dict(), human)
    return 0
