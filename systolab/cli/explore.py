"""``systolab explore``: a design space searched under constraints, kept in a crash-safe store."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from ..files import check_output_folder, path_kind
from ..flows.explore import run_explore
from ..models.explore import replay, write_explore_report
from ..models.explore.search import SEARCHES
from ..models.explore.space import SPACES_DIR
from .common import emit, int_in, seed_int


def add_parser(sub, parents) -> None:
    bundled = ", ".join(sorted(f.stem for f in SPACES_DIR.glob("*.yaml")))
    p = sub.add_parser("explore", parents=[parents.json],
                       help="evaluate a design space (YAML) under constraints; Pareto front; resumable",
                       description="Evaluate a design space (a YAML file, or a bundled space by name: "
                                   f"{bundled}) under its constraints and draw the Pareto front. Every point is "
                                   "kept in a SQLite store: a rerun resumes, and runs sharing a --db share the work.")
    p.add_argument("space", nargs="?", help=f"the space file (YAML: parameters, workloads, objectives, constraints) "
                                            f"or a bundled space: {bundled}")
    p.add_argument("--out", default=None, help="folder for report.md, points.csv and pareto.csv "
                                               "(default out/explore)")
    p.add_argument("--db", default=None, help="the SQLite store (default OUT.sqlite beside the output folder); "
                                              "rerunning resumes")
    p.add_argument("--search", choices=SEARCHES, default=None,
                   help="grid (default), random, lhs (Latin hypercube), nsga2 or tpe (Optuna)")
    p.add_argument("--trials", type=int_in(1, 1_000_000), default=None,
                   help="points for random, lhs, nsga2 and tpe (default 64; nsga2 and tpe count distinct points)")
    p.add_argument("--seed", type=seed_int, default=None, help="seed of the non-grid searches (default 0)")
    p.add_argument("--jobs", type=int_in(1, 256), default=None, help="local worker processes (default 1)")
    p.add_argument("--executor", default=None, metavar="local|dask://HOST:PORT",
                   help="where points are evaluated: local processes (default) or a Dask scheduler's workers")
    p.add_argument("--deep", type=int_in(0, 10_000), default=None, metavar="K",
                   help="verify the core RTL (Verilator) and synthesise the array of the first K Pareto points")
    p.add_argument("--replay", metavar="HASH", help="re-evaluate one stored point and say if it is bit-identical")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it is drawn on stderr only when that is a "
                                                        "terminal, and never with --json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output_folder("out/explore" if args.out is None else args.out)   # before any work
    if args.space is None:
        raise UserError("space: give the space file (YAML)", parameter="space")
    for flag in ("replay", "executor"):         # given empty is a mistake, not the default
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            raise UserError(f"{flag}: give a value, not an empty string", parameter=flag)
    if args.db is not None and path_kind(args.db, parameter="db") not in (None, "file"):
        raise UserError(f"db: {args.db} is not a file", parameter="db")
    db = Path(args.db) if args.db is not None else out.with_name(out.name + ".sqlite")
    search = args.search or "grid"
    if args.replay is not None:
        given = [f for f in ("search", "trials", "seed", "jobs", "executor", "deep") if getattr(args, f) is not None]
        if given:
            raise UserError(f"{given[0]}: does not apply to --replay (it re-evaluates one stored point)",
                            parameter=given[0])
    elif search == "grid":
        given = [f for f in ("trials", "seed") if getattr(args, f) is not None]
        if given:
            raise UserError(f"{given[0]}: the grid evaluates every combination; {given[0]} applies to random, lhs, "
                            "nsga2 and tpe", parameter=given[0])
    if args.replay is not None:
        r = replay(args.space, db=db, design_hash_=args.replay)
        emit(args, r, lambda q: f"{q['design_hash']}: {'bit-identical' if q['identical'] else 'DIFFERENT'} "
                                f"({q['design']})")
        return 0 if r["identical"] else 1
    res = run_explore(args.space, db=db, search=search, trials=args.trials or 64, seed=args.seed or 0,
                      jobs=args.jobs or 1, executor=args.executor or "local", deep=args.deep or 0,
                      progress=not (args.json or args.quiet) and sys.stderr.isatty())
    outputs = write_explore_report(res, out, args.space)
    res.pop("all_points")
    res["outputs"] = outputs

    def human(q: dict) -> str:
        lines = [f"{q['points']} points ({q['evaluated']} evaluated now, the rest from {q['store']}), "
                 f"{q['feasible']} feasible, {len(q['pareto'])} on the Pareto front of {', '.join(q['objectives'])}"]
        if q["note"]:
            lines.append(f"  fewer points than trials: {q['note']}")
        if not q["feasible"] and q["binding"]:
            lines.append(f"  nothing is feasible: {q['binding']} rejects {q['rejected_by'][q['binding']]} of them "
                         f"(all constraints: {q['rejected_by']})")
        for p in q["pareto"][:20]:
            vals = ", ".join(f"{k} {v:.4g}" for k, v in p["objectives"].items())
            lines.append(f"  {p['design_hash']} {p['design']}: {vals}")
        for d in q["deep"]:
            lines.append(f"  deep {d['design_hash']}: " + (f"failed: {d['error']}" if "error" in d else
                         f"RTL {'bit-exact' if d['passed'] else 'MISMATCH'}, cycles "
                         f"{'equal to the model' if d['cycles_exact'] else 'DIFFER from the model'}, "
                         f"array {d['synth_array_mm2']:.4g} mm² synthesised (model {d['area_error']:+.1%})"))
        return "\n".join(lines)

    emit(args, res, human)
    return 0
