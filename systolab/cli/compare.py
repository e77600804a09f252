"""``systolab compare``: the main job, a custom chip of systolab cores against Nvidia GPUs."""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import UserError
from ..files import check_output_folder
from ..models.legal.purchase import ANY_BUYER, scenario
from ..models.report.chip import get_chip
from ..models.report.compare import (
    DEFAULT_BUYER,
    DEFAULT_DATE,
    DEFAULT_GPUS,
    DEFAULT_WORKLOADS,
    ISO_VIEWS,
    compare,
    default_chip_for,
)
from ..models.report.figures import write_report
from ..models.report.sizing import fit_cores
from ..models.silicon.feasibility import check_feasible
from .common import emit, in_number_format, int_in, legal_parent, positive_int, real_in


def add_parser(sub, parents) -> None:
    legal = legal_parent(buyer=DEFAULT_BUYER, date=DEFAULT_DATE,
                         what="every GPU is marked with whether that buyer may buy it, the chip with whether they could "
                              "have it built, and only what they may have leads a conclusion")
    p = sub.add_parser("compare", parents=[legal, parents.json],
                       help="the main job: a custom chip of systolab cores against Nvidia GPUs")
    p.add_argument("chip", nargs="?", help="chip name in models/data/chips.yaml or a chips YAML file (default: the "
                                          "chips file's default, or the first of LEGAL_DEFAULT_CHIPS the buyer could "
                                          "have built)")
    p.add_argument("--dtype", metavar="D",
                   help="run the comparison in this format: the chip's cores are derived to it (bf16, fp16, "
                        "fp8_e4m3, fp8_e5m2 accumulate in fp32; int8, uint8, int16) and every GPU runs at its "
                        "tensor rate in it (default: the chip's own format)")
    p.add_argument("--subnormals", help="floating-point cores: keep (IEEE, default) or flush to signed zeros")
    p.add_argument("--mac-stages", type=int_in(1, 7), dest="mac_stages",
                   help="floating-point cores: pipeline stages of the MAC, 1..7 (default: the chip's own, 1); "
                        "the chip runs at the attainable clock of its cores")
    p.add_argument("--workload", action="append", metavar="W",
                   help="built-in workload or CSV, repeatable (default: llama3-8b-prefill, llama3-8b-decode, dlrm)")
    p.add_argument("--gpus", metavar="IDS", help="comma-separated GPU ids (default h100-sxm,h200-sxm,h20,a100-sxm4-80gb,b200)")
    p.add_argument("--batch", type=positive_int, help="batch of the built-in workloads")
    p.add_argument("--seq-len", type=positive_int, dest="seq_len", help="sequence length of the LLM workloads")
    p.add_argument("--fit-die-mm2", type=real_in(0.0, 1e5), dest="fit_die_mm2",
                   help="resize the chip to the most cores in this die area")
    p.add_argument("--fit-power-w", type=real_in(0.0, 1e6), dest="fit_power_w",
                   help="... and/or under this TDP (with a buyer: only chips that buyer could have built)")
    p.add_argument("--feasible", action="store_true",
                   help="refuse a chip that does not fit physically (memory PHYs along its edge, package, power density)")
    p.add_argument("--iso", metavar="VIEWS",
                   help="also resize the chip to each GPU's die area, TDP and/or price: a comma list of "
                        "area, power, price (default: none)")
    p.add_argument("--out", default="out/compare", metavar="DIR", help="output folder (default out/compare)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    legal = scenario(args.buyer, args.date)
    legal_view = None if legal.buyer == ANY_BUYER else legal
    chip = in_number_format(get_chip(args.chip if args.chip is not None else default_chip_for(legal_view)), args)
    check_output_folder(args.out)                    # before any work
    iso = tuple(v.strip() for v in args.iso.split(",") if v.strip()) if args.iso is not None else ()
    if args.iso is not None and not iso:
        raise UserError(f"iso: name at least one of {', '.join(ISO_VIEWS)}")
    for v in iso:
        if v not in ISO_VIEWS:
            raise UserError(f"iso: unknown view {v!r}; choose from {', '.join(ISO_VIEWS)}")
    if args.fit_die_mm2 is not None or args.fit_power_w is not None:
        chip = fit_cores(chip, die_mm2=args.fit_die_mm2, power_W=args.fit_power_w, legal_for=legal_view,
                         feasible=args.feasible)
    elif args.feasible:
        check_feasible(chip, warn=False)
    gpus = tuple(g.strip() for g in args.gpus.split(",") if g.strip()) if args.gpus is not None else DEFAULT_GPUS
    workloads = tuple(args.workload) if args.workload else DEFAULT_WORKLOADS
    comparison = compare(chip, workloads=workloads, gpus=gpus, batch=args.batch, seq_len=args.seq_len, iso=iso,
                         scenario=legal_view)
    files = write_report(comparison, args.out)
    result = comparison.to_dict()
    payload: dict[str, Any] = {k: result[k] for k in ("chip", "devices", "workloads", "rows", "iso", "serving", "model_errors",
                                      "assumptions", "scenario", "legal", "build") if k in result}
    payload["files"] = files

    def human(p: dict) -> str:
        lines = [f"{chip.name}: {len(p['devices'])} devices x {len(p['workloads'])} workloads -> {p['files']['report']}"]
        for r in p["rows"]:
            lines.append(f"  {r['workload']:20} {r['device']:16} {r['throughput']:14.4g} {r['unit']}s/s "
                         f"{r['bound']:8} util {r['utilization']:.3f}  {r['eccn']}")
        if p["serving"]:
            sc = p["serving"]["scenario"]
            lines.append(f"  serving {sc['model']} ({sc['isl']} + {sc['osl']} tokens):")
            for r in p["serving"]["rows"]:
                if "output_tokens_per_s" in r:
                    fleet = r["fleet_output_tokens_per_s"]
                    lines.append(f"  {'':20} {r['device']:16} {r['output_tokens_per_s']:14.4g} tokens/s per device "
                                 f"(tp {r['tp']}), fleet {f'{fleet:.4g}' if fleet else 'n/a'} tokens/s")
        return "\n".join(lines)

    emit(args, payload, human)
    return 0
