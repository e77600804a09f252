"""The searches of an exploration: which points of the space to evaluate, in which order.

``grid`` (every combination of lists and stepped ranges, in a fixed order), ``random``
and ``lhs`` (Latin hypercube) with a seed: the same seed gives the same points; ``nsga2``
and ``tpe``: Optuna's multi-objective samplers, the constraints set on each trial (its
study is stored beside the store and resumed by name); their budget (``trials``) counts
distinct points, so a proposal of a point already seen is answered from the store and
not counted. Every search evaluates on an executor (``systolab.executors``) and stores
each point as it returns; a point already in the store is read, not evaluated.
"""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

from .space import Space
from .stages import evaluate_job, judge, objective_values
from .store import Store, design_hash

#: Samplers of our own (exact, resumable to the same points) and Optuna's multi-objective
#: searches under constraints (NSGA-II, TPE).
OPTUNA_SEARCHES = ("nsga2", "tpe")
SEARCHES = ("grid", "random", "lhs", *OPTUNA_SEARCHES)
#: An Optuna search stops after this many proposals per point of its budget, should it
#: keep proposing points it has already seen.
MAX_ASKS_PER_POINT = 20


#: Points claimed per round: enough to keep every worker busy, few enough that runs
#: sharing a store split the work between them.
CLAIMS_PER_WORKER = 2
#: How often a run waiting for points another run claimed looks at the store, s.
CLAIM_POLL_S = 0.2


def evaluate_shared(sp: Space, store: Store, version: str, designs: dict[str, dict], ex, bar=None) -> int:
    """Evaluate the designs (by hash) that are not in ``store`` on ``ex``, sharing the work
    with any other run on the same store: points are claimed a few at a time
    (:meth:`Store.claim`), and those another run claimed are waited for (and taken over
    should that run die). Returns how many this run evaluated."""
    evaluated = 0
    pending = dict.fromkeys(designs)
    while pending:
        mine, stored = store.claim(iter(pending), max(1, CLAIMS_PER_WORKER * ex.workers))
        if not mine and not stored:                 # the rest is claimed by other runs: wait for them
            time.sleep(CLAIM_POLL_S)
        done: set[str] = set()
        try:
            for i, result in ex.imap(evaluate_job, [(sp, designs[h]) for h in mine]):
                store.put(mine[i], designs[mine[i]], version, result)
                done.add(mine[i])
        except BaseException:                       # stopped: leave the rest to other runs at once
            store.release([h for h in mine if h not in done])
            raise
        evaluated += len(done)
        for h in (*mine, *stored):
            del pending[h]
        if bar:
            bar.update(len(mine) + len(stored))
    return evaluated


def sampled_search(sp: Space, store: Store, version: str, search: str, trials: int, seed: int, bar,
                   ex) -> tuple[list[str], int]:
    """``grid``, ``random`` or ``lhs``: the search's points, those not in the store
    evaluated on ``ex`` and stored as they return. Returns (the points' hashes in the
    search's order, how many were evaluated now)."""
    designs = sp.grid() if search == "grid" else sp.sample(search, trials, seed)
    order = list(dict.fromkeys(design_hash(d, sp) for d in designs))
    by_hash = {design_hash(d, sp): d for d in designs}
    stored = store.hashes()
    todo = [h for h in order if h not in stored]
    if bar:
        bar.update(len(designs) - len(todo))
    return order, evaluate_shared(sp, store, version, {h: by_hash[h] for h in todo}, ex, bar)


def _suggest(trial, name: str, p: dict):
    if "values" in p:
        return trial.suggest_categorical(name, p["values"])
    step = p.get("step")
    if p["int"]:
        return trial.suggest_int(name, p["min"], p["max"], step=step or 1)
    return trial.suggest_float(name, p["min"], p["max"], step=step)


def optuna_search(sp: Space, store: Store, version: str, db: Path, search: str, trials: int, seed: int,
                  targets: list[float], bar, ex) -> tuple[list[str], int]:
    """Optuna's NSGA-II or TPE with the space's constraints (``Trial.set_constraint``): its
    study lives beside the store (``<db>.optuna.sqlite``, resumed by name), every point in
    our store, so a point the search proposes again is read, not evaluated. It asks as
    many trials at a time as the executor has workers, evaluates them there and tells
    them in the order asked (deterministic for a given number of workers)."""
    import optuna  # noqa: PLC0415  lazy: Optuna takes about a second to import, and only its searches need it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler
    if search == "nsga2":
        # a small population, many generations: four individuals per parameter, at most a
        # tenth of the budget (benchmarks/README.md: with 10 % of a 5,760-design space,
        # 98.1-99.7 % of the grid's hypervolume on 10 seeds, against 96.0-98.3 % with 50)
        pop = max(4, min(4 * len(sp.parameters), trials // 10))
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=pop)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    name = f"{search}-seed{seed}-{hashlib.sha256(repr(sp).encode()).hexdigest()[:12]}"
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{db.with_suffix('.optuna.sqlite')}",
                                sampler=sampler, load_if_exists=True,
                                directions=["maximize" if o.goal == "max" else "minimize" for o in sp.objectives])
    finished = [t for t in study.trials if t.state.is_finished() and "design_hash" in t.user_attrs]
    order = [t.user_attrs["design_hash"] for t in finished]
    seen = set(order)
    if bar:
        bar.update(len(seen))
    evaluated, asks = 0, len(study.trials)
    # the budget is distinct points: a proposal already seen is told again from the store
    # and not counted; a space with fewer points than the budget ends the search
    size = math.prod(len(p["values"]) for p in sp.parameters.values()) if all(
        "values" in p for p in sp.parameters.values()) else math.inf
    limit = asks + MAX_ASKS_PER_POINT * trials
    while len(seen) < min(trials, size) and asks < limit:
        batch = [study.ask() for _ in range(min(trials - len(seen), ex.workers))]
        asks += len(batch)
        designs = [{n: _suggest(t, n, p) for n, p in sp.parameters.items()} for t in batch]
        hashes = [design_hash(d, sp) for d in designs]
        evaluated += evaluate_shared(sp, store, version, dict(zip(hashes, designs)), ex)
        results = {h: store.points([h])[0]["result"] for h in hashes}
        for trial, h in zip(batch, hashes):
            result = judge(sp, results[h], targets)
            trial.set_user_attr("design_hash", h)
            trial.set_constraint("violations", 0.0 if result["feasible"] else float(len(result["failed"])))
            try:
                values = objective_values(sp, result)
            except KeyError:                              # no metrics: a design the models refuse
                values = None
            if values is None or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values)
            order.append(h)
            if bar and h not in seen:
                bar.update()
            seen.add(h)
    return list(dict.fromkeys(order)), evaluated


__all__ = ["CLAIMS_PER_WORKER", "CLAIM_POLL_S", "MAX_ASKS_PER_POINT", "OPTUNA_SEARCHES", "SEARCHES", "evaluate_shared",
           "optuna_search", "sampled_search"]
