"""Design-space exploration with the RTL checks as its deep stage: the models' exploration
(:mod:`systolab.models.explore`, which never runs a simulator) with
:func:`systolab.flows.deep.deep_check` injected, as ``systolab explore --deep`` runs it."""
from __future__ import annotations

from pathlib import Path

from ..models.explore import explore as explore_models
from ..models.explore import run_explore as run_explore_models
from .deep import deep_check


def run_explore(space: str | Path | dict, *, db: str | Path, search: str = "grid", trials: int = 64, seed: int = 0,
                jobs: int = 1, executor: str = "local", deep: int = 0, progress: bool = False) -> dict:
    """:func:`systolab.models.explore.run_explore` whose deep stage (``deep`` > 0: the
    first ``deep`` Pareto points) is :func:`~systolab.flows.deep.deep_check`."""
    return run_explore_models(space, db=db, search=search, trials=trials, seed=seed, jobs=jobs, executor=executor,
                              deep=deep, progress=progress, deep_stage=deep_check)


def explore(space: str | Path | dict, *, db: str | Path, search: str = "grid", trials: int = 64, seed: int = 0,
            jobs: int = 1, executor: str = "local", deep: int = 0, progress: bool = False):
    """:func:`systolab.models.explore.explore` (every point as a DataFrame, the summary in
    ``.attrs``) whose deep stage is :func:`~systolab.flows.deep.deep_check`."""
    return explore_models(space, db=db, search=search, trials=trials, seed=seed, jobs=jobs, executor=executor,
                          deep=deep, progress=progress, deep_stage=deep_check)


__all__ = ["explore", "run_explore"]
