"""``systolab decide``: build the chip or buy GPUs, for a buyer on a date, and how sure that is."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import UserError
from ..files import check_output_folder
from ..models.cost.pricing import cost_inputs
from ..models.decision.compose import decide
from ..models.decision.evaluate import decision_data
from ..models.decision.report import write_decision_report
from ..models.report.compare import DEFAULT_BUYER, DEFAULT_DATE
from .common import emit, int_in, legal_parent, positive_int, real_in


def add_parser(sub, parents) -> None:
    d = decision_data()["defaults"]
    legal = legal_parent(buyer=DEFAULT_BUYER, date=DEFAULT_DATE,
                         what="only what that buyer may buy (or, marked, buy with a licence) or have built is weighed")
    p = sub.add_parser("decide", parents=[legal, parents.json],
                       help="the decision: build the chip or buy GPUs (legal options, TCO, latency targets, time to "
                            "silicon, Monte Carlo and sensitivity); writes report.md and report.html")
    p.add_argument("--chip", metavar="NAME|FILE", help="the chip to build (default: the default chip the buyer "
                                                       "could have built)")
    p.add_argument("--gpus", metavar="IDS", help="comma-separated GPU ids to weigh (default: every GPU with a "
                                                 "public price)")
    p.add_argument("--model", metavar="NAME", help=f"the LLM to serve (default {d['model']})")
    p.add_argument("--isl", type=positive_int, metavar="N", help=f"prompt tokens per request (default {d['isl']})")
    p.add_argument("--osl", type=positive_int, metavar="N", help=f"output tokens per request (default {d['osl']})")
    p.add_argument("--ttft-s", dest="ttft_s", type=real_in(0.0, 3600.0), metavar="S",
                   help="time-to-first-token target, s (default 2: MLPerf's Llama-2-70B server target)")
    p.add_argument("--tpot-s", dest="tpot_s", type=real_in(0.0, 3600.0), metavar="S",
                   help="time-per-output-token target, s (default 0.2: the same)")
    p.add_argument("--budget-usd", dest="budget_usd", type=real_in(0.0, 1e15), metavar="USD",
                   help="what each option may spend on whole deployments over their life (default the cost "
                        f"model's {cost_inputs().default_budget_usd:.3g})")
    p.add_argument("--power-cap-mw", dest="power_cap_MW", type=real_in(0.0, 1e6), metavar="MW",
                   help="facility power the fleet may draw, MW (default: no cap)")
    p.add_argument("--horizon-years", dest="horizon_years", type=real_in(0.0, 30.0), metavar="Y",
                   help=f"years the options are compared over (default {d['horizon_years']})")
    p.add_argument("--draws", type=int_in(100, 1_000_000), metavar="N",
                   help=f"Monte Carlo draws (default {d['draws']:,})")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), metavar="S", help=f"the draws' seed (default {d['seed']})")
    p.add_argument("--sobol-base", dest="sobol_base", type=int_in(16, 1 << 16), metavar="N",
                   help=f"SALib's base sample for the Sobol indices, a power of 2 (default {d['sobol_base']})")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", dest="overrides",
                   help="replace an uncertain input (a name of the report's input table): NAME=V fixes it, "
                        "NAME=LOW:MODE:HIGH draws it from a triangle; repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--out", default="out/decision", metavar="DIR", help="output folder (default out/decision)")
    p.set_defaults(func=run)


def _progress(args: argparse.Namespace) -> Any:
    if args.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm  # noqa: PLC0415  lazy: only a terminal run shows progress

    bar = tqdm(total=3, desc="decide", file=sys.stderr, leave=False)

    def tell(stage: str) -> None:
        bar.set_description(stage)
        bar.update(1)

    return tell


def _overrides(given: list[str] | None) -> dict[str, Any] | None:
    if not given:
        return None
    out: dict[str, Any] = {}
    for text in given:
        name, sep, value = text.partition("=")
        parts = value.split(":")
        try:
            numbers = [float(v) for v in parts]
        except ValueError:
            numbers = []
        if not sep or not name.strip() or len(numbers) not in (1, 3):
            raise UserError(f"set: expected NAME=VALUE or NAME=LOW:MODE:HIGH, not {text!r}", parameter="set")
        out[name.strip()] = numbers[0] if len(numbers) == 1 else tuple(numbers)
    return out


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out)                    # before any work
    gpus = None
    if args.gpus is not None:
        gpus = tuple(g.strip() for g in args.gpus.split(",") if g.strip())
        if not gpus:
            raise UserError("gpus: name at least one GPU id", parameter="gpus")
    d = decide(overrides=_overrides(args.overrides), buyer=args.buyer, date=args.date, chip=args.chip, gpus=gpus,
               model=args.model, isl=args.isl,
               osl=args.osl, ttft_s=args.ttft_s, tpot_s=args.tpot_s, budget_usd=args.budget_usd,
               power_cap_MW=args.power_cap_MW, horizon_years=args.horizon_years, draws=args.draws, seed=args.seed,
               sobol_base=args.sobol_base, progress=_progress(args))
    files = write_decision_report(d, args.out)
    result = d.to_dict()
    payload = {k: result[k] for k in ("scenario", "question", "verdict", "options", "p_build_beats_buy", "best_buy",
                                      "sensitivity", "break_even", "break_evens", "break_even_date")}
    payload["files"] = files

    def human(p: dict) -> str:
        lines = [p["verdict"], ""]
        for o in p["options"]:
            m = o["measures"].get("usd_per_Mtok")
            if m:
                beat = o["p_build_beats_this"]
                lines.append(f"  {o['name']:16} {o['side']:5} {o['status']:22} $/M tokens {m['p50']:8.3g} "
                             f"({m['p5']:.3g}-{m['p95']:.3g})" + (f"  P(build beats) {beat:.0%}" if beat is not None
                                                                  else ""))
        lines.append(f"report: {p['files']['report']} (and report.html)")
        return "\n".join(lines)

    emit(args, payload, human)
    return 0
