"""``systolab fleet``: what a budget buys of each device for serving one LLM scenario."""
from __future__ import annotations

import argparse

from ..errors import UserError
from ..models.chip.config import get_chip
from ..models.gpu.specs import list_gpus
from ..models.legal.purchase import purchasability
from ..models.report.compare import DEFAULT_GPUS
from ..models.serving.fleet import fleet
from .common import emit, legal_parent, positive_int, real_in, scenario_from_args
from .serve import options_from_args, scenario_parent, serving_options, serving_options_parent, targets_from_args


def add_parser(sub, parents) -> None:
    p = sub.add_parser("fleet", parents=[scenario_parent(), serving_options_parent(), legal_parent(), parents.json],
                       help="serving fleets for a budget: devices, replicas and tokens/s per device kind")
    p.add_argument("--budget-usd", dest="budget_usd", type=real_in(0.0, 1e15), metavar="USD",
                   help="what each fleet may cost, whole deployments over their lifetime (default the cost model's $7B)")
    p.add_argument("--power-cap-mw", dest="power_cap_MW", type=real_in(0.0, 1e6), metavar="MW",
                   help="facility power each fleet may draw, MW (IT power x PUE at peak; default: no cap)")
    p.add_argument("--devices", metavar="IDS",
                   help="comma-separated GPU ids and chips (default: the compare GPUs and the default chip)")
    p.add_argument("--tp", type=positive_int, metavar="T",
                   help="tensor-parallel devices per replica (default: the smallest that fits, per device)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = targets_from_args(args)
    if args.devices is not None:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
        if not devices:
            raise UserError("devices: name at least one GPU id or chip")
    else:
        devices = [get_chip().name, *DEFAULT_GPUS]
    result = fleet(devices, args.model, isl=args.isl, osl=args.osl, batch=args.batch, concurrency=args.concurrency,
                   tp=args.tp, pp=args.pp, budget_usd=args.budget_usd, dtype=args.dtype, kv_dtype=args.kv_dtype,
                   ttft_s=args.ttft_s, tpot_s=args.tpot_s, power_cap_MW=args.power_cap_MW, runtime=args.runtime,
                   power_cap_W=args.power_cap_w, **serving_options(args, options_from_args(args)))
    rows = [r.to_dict() for r in result.rows]
    legal = scenario_from_args(args)
    if legal is not None:
        for row, r in zip(rows, result.rows):
            row["purchasability"] = purchasability(r.device, legal).status if r.device in list_gpus() else None
    budget = next((r["budget_usd"] for r in rows if "budget_usd" in r), args.budget_usd)   # the default resolved
    payload = {"model": args.model, "isl": args.isl, "osl": args.osl, "batch": args.batch,
               "concurrency": args.concurrency, "budget_usd": budget, "power_cap_MW": args.power_cap_MW, "rows": rows}
    if args.runtime is not None or args.power_cap_w is not None:      # the GPUs' rows ran under them
        payload.update(runtime=args.runtime, power_cap_W=args.power_cap_w)
    if targets.given:     # the rows then say whether each device meets them, at which concurrency
        payload["targets"] = targets.to_dict()

    def human(p: dict) -> str:
        wanted = ", ".join(f"{k.split('_')[0].upper()} <= {v * 1e3:,.1f} ms" for k, v in (p.get("targets") or {}).items()
                           if v is not None)
        lines = [f"{p['model']}, {p['isl']} + {p['osl']} tokens, budget ${p['budget_usd']:,.0f} on whole deployments "
                 "(tok/s/k$: per k$ of a device's lifetime cost; tok/s/W: per W drawn while serving)"
                 + (f", targets {wanted}" + ("" if p["batch"] or p["concurrency"] else " (each device at its goodput)")
                    if wanted else ""),
                 f"  {'device':16} {'tp':>3}" + (f" {'load':>5}" if wanted else "")
                 + f" {'tok/s/dev':>10} {'units':>10} {'replicas':>9} {'fleet tok/s':>14} "
                 f"{'MW':>6} {'tok/s/k$':>9} {'tok/s/W':>8} {'$/M tok':>8}"]
        for r in p["rows"]:
            if "output_tokens_per_s" not in r:
                lines.append(f"  {r['device']:16} {r['note']}")
                continue
            def shown(key: str, spec: str, r: dict = r) -> str:     # '-' where the row has no value
                return "-" if r[key] is None else format(r[key], spec)

            load = f" {r['concurrency']:>5}" if wanted else ""     # the batch or concurrency served
            lines.append(f"  {r['device']:16} {r['tp']:>3}{load} {r['output_tokens_per_s']:>10,.0f} "
                         f"{shown('units', ','):>10} {shown('replicas', ','):>9} "
                         f"{shown('fleet_output_tokens_per_s', ',.4g'):>14} {shown('facility_MW', ',.0f'):>6} "
                         f"{shown('tokens_per_s_per_kusd', '.3g'):>9} {r['tokens_per_s_per_W']:>8.3g} "
                         f"{shown('usd_per_million_tokens', '.3g'):>8}" + (f"  {r['note']}" if r.get("note") else "")
                         + (f"  [{r['purchasability'].replace('_', ' ')}]" if r.get("purchasability") else ""))
        return "\n".join(lines)

    emit(args, payload, human)
    return 0
