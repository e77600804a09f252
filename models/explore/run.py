"""An exploration assembled from its stages: the space (:mod:`.space`), a search
(:mod:`.search`) evaluating points by the analytic stage (:mod:`.stages`) into the store
(:mod:`.store`), the constraints judged and the Pareto front drawn when the points are
read, then the deep stage, injected by the caller, on the front's first points."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ...checks import check_choice, check_int, check_seed
from ...errors import UserError
from ...executors import open_executor, parse_executor
from .report import points_frame
from .search import OPTUNA_SEARCHES, SEARCHES, optuna_search, sampled_search
from .space import load_space
from .stages import DeepStage, evaluate_point, gpu_targets, judge, objective_values, pareto, run_deep
from .store import Store, model_version


def run_explore(space: str | Path | dict, *, db: str | Path, search: str = "grid", trials: int = 64, seed: int = 0,
                jobs: int = 1, executor: str = "local", deep: int = 0, progress: bool = False,
                deep_stage: DeepStage | None = None) -> dict:
    """Evaluate the space's points (skipping those already in ``db``) on ``executor``
    (``local`` with ``jobs`` processes, or ``dask://HOST:PORT``), then the Pareto front
    of the feasible ones, then the deep stage ``deep_stage`` (a module-level function,
    :data:`~systolab.models.explore.stages.DeepStage`; the project's is
    :func:`systolab.flows.deep.deep_check`) of its first ``deep`` points (best first
    objective first) on the same executor. Returns ``points``, ``feasible``, ``pareto``,
    the constraint that binds when nothing is feasible, ``deep``, ``store`` and
    ``all_points`` (every point, judged)."""
    sp = load_space(space)
    check_choice("search", search, SEARCHES)
    trials, seed, jobs = check_int("trials", trials, hi=1_000_000), check_seed("seed", seed), check_int("jobs", jobs, hi=256)
    deep = check_int("deep", deep, lo=0, hi=10_000)
    if deep and deep_stage is None:
        raise UserError("deep: give deep_stage, the check to run on the Pareto points (systolab.flows.deep.deep_check; "
                        "systolab.explore passes it)", parameter="deep")
    parse_executor(executor)
    if jobs > 1 and parse_executor(executor)[0] != "local":
        raise UserError("jobs: sets the local processes; a Dask cluster has its own workers", parameter="jobs")
    store = Store(db)
    version = model_version()
    targets = gpu_targets(sp)
    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415  lazy: only an interactive run draws a progress bar

        bar = tqdm(total=len(sp.grid()) if search == "grid" else trials, desc="explore", unit="point")
    try:
        with open_executor(executor, jobs=jobs, version=model_version) as ex:
            if search in OPTUNA_SEARCHES:
                order, evaluated = optuna_search(sp, store, version, Path(db), search, trials, seed, targets, bar, ex)
            else:
                order, evaluated = sampled_search(sp, store, version, search, trials, seed, bar, ex)
            points = [{**p, "result": judge(sp, p["result"], targets)} for p in store.points(order)]
            front = pareto(sp, points)
            deep_out = run_deep(sp, store, version, front, deep, seed, ex, deep_stage) if deep_stage is not None and deep else []
    finally:
        if bar:
            bar.close()
        store.close()
    feasible = [p for p in points if p["result"]["feasible"]]
    why: dict[str, int] = {}
    for p in points:
        for f in p["result"]["failed"]:
            why[f] = why.get(f, 0) + 1
    return {"space": sp.source, "search": search, "seed": seed, "points": len(points), "evaluated": evaluated,
            "feasible": len(feasible), "objectives": [o.label for o in sp.objectives],
            "pareto": [{"design_hash": p["design_hash"], "design": p["design"],
                        "objectives": dict(zip([o.label for o in sp.objectives], objective_values(sp, p["result"])))}
                       for p in front],
            "rejected_by": why, "binding": max(why, key=lambda k: why[k]) if why and not feasible else None,
            "deep": deep_out, "executor": executor, "store": str(Path(db)),
            "note": _why_fewer(sp, search, trials, len(points)), "all_points": points}


def _designs_in(sp) -> int | None:
    """How many distinct designs the space holds (None when a range is continuous)."""
    size = 1
    for p in sp.parameters.values():
        if "values" in p:
            size *= len(p["values"])
        elif p.get("step"):
            size *= int(math.floor((p["max"] - p["min"]) / p["step"] + 1e-9)) + 1
        else:
            return None
    return size


def _why_fewer(sp, search: str, trials: int, points: int) -> str | None:
    """Why a search returned fewer points than ``trials`` (None when it did not)."""
    if search == "grid" or points >= trials:
        return None
    size = _designs_in(sp)
    of = f" (the space has {size:,} designs)" if size is not None else ""
    if search in ("random", "lhs"):
        return (f"{trials - points} of the {trials} trials drew a design already drawn{of}; each design is "
                "evaluated and listed once")
    return f"the search proposed {points} distinct designs in {trials} trials' worth of proposals{of}"


def explore(space: str | Path | dict, *, db: str | Path, search: str = "grid", trials: int = 64, seed: int = 0,
            jobs: int = 1, executor: str = "local", deep: int = 0, progress: bool = False,
            deep_stage: DeepStage | None = None):
    """:func:`run_explore` for notebooks: every point of the run as a DataFrame
    (:func:`~systolab.models.explore.report.points_frame`); the summary (Pareto front,
    feasible count, the binding constraint, the deep stage) in ``.attrs``."""
    res = run_explore(space, db=db, search=search, trials=trials, seed=seed, jobs=jobs, executor=executor, deep=deep,
                      progress=progress, deep_stage=deep_stage)
    df = points_frame(res.pop("all_points"), {p["design_hash"] for p in res["pareto"]})
    df.attrs.update(res)
    return df


def replay(space: str | Path | dict, *, db: str | Path, design_hash_: str) -> dict:
    """Re-evaluate one stored point; ``identical`` says whether the results are bit-identical."""
    sp = load_space(space)
    store = Store(db)
    try:
        stored = store.get(design_hash_)
    finally:
        store.close()
    if stored is None:
        raise UserError(f"replay: no point {design_hash_!r} in {db}", parameter="replay")
    again = json.loads(json.dumps(evaluate_point(sp, stored["design"]), sort_keys=True))
    return {"design_hash": design_hash_, "design": stored["design"], "identical": again == stored["result"],
            "stored_model_version": stored["model_version"], "model_version": model_version(), "result": again}


__all__ = ["explore", "replay", "run_explore"]
