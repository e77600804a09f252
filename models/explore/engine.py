"""Design-space exploration: a space file, samplers, a crash-safe store and Pareto fronts.

**The space** (YAML, or the same as a dict)::

    base: sl-n4-os32                  # the chip varied (a chips.yaml name; default chip if absent)
    parameters:                       # any field ChipConfig.derive takes
      rows: [16, 32]                  # a list of values
      cores: {min: 128, max: 512, step: 128}   # a range (inclusive; integers when min, max, step are)
      clock_mhz: {min: 800, max: 1400}         # a continuous range (random and lhs only)
    workloads:
      - {name: llama3-8b-decode, batch: 1}
      - {name: llama3-8b-prefill, seq_len: 2048}
      - {serve: llama3-70b, isl: 2048, osl: 256, concurrency: 64}   # LLM serving (name llama3-70b-serving)
    objectives:
      - {metric: throughput, workload: llama3-8b-decode, goal: max}
      - {metric: usd_per_million_units, workload: llama3-8b-decode, goal: min}
      - {metric: die_mm2, goal: min}
    constraints:
      export_class: none              # the allowed ECCN (``none``: outside 3A090) ...
      rule_date: "2025-01-15"         # ... under the rule set in force on this date
      die_mm2_max: 858                # the reticle limit
      power_W_max: 700
      beat: [{gpu: h20, workload: llama3-8b-decode, ratio: 1.0}]
    budget_usd: 7.0e+9                # what a fleet may cost (default: the cost model's $7B)
    gpus: [h100-sxm, h200, h20]       # GPUs drawn as reference points (default h100-sxm, h20)

Metrics of a design: ``die_mm2``, ``power_W``, ``unit_cost_usd``, ``peak_tops``, ``tpp``,
``fleet_units`` (chips the budget buys at the unit cost); per workload: ``throughput``
(units/s per device), ``seconds``, ``utilization``, ``energy_per_unit_J``,
``usd_per_million_units``, ``fleet_throughput`` (units/s of the budget's fleet).

A workload is a built-in one (``name`` with its ``batch`` and ``seq_len``: each device
runs it alone, a fleet is whole devices) or an LLM *serving* scenario (``serve``: a model
of ``data/llm_models.yaml``, ``isl``, ``osl``, and ``batch`` or ``concurrency``; optional
``tp`` and ``name``, default ``<model>-serving``), timed by the serving model
(:func:`~systolab.models.serving.model.serve_auto`: the smallest tensor-parallel group that
holds the model and its KV cache, unless ``tp`` is given). Its ``throughput`` is output
tokens/s per device, ``seconds`` the time per output token, ``ttft_s`` the time to first
token, ``devices`` the group's size, and the fleet buys whole groups. The reference GPUs
serve it in their own serving format (fp8 where they have it, else bf16), as
``systolab fleet`` does.

Every number comes from the models that ``systolab compare`` uses (the chip model through
the mapper, area, power, cost, export); the fleet metrics follow from them and the budget
when the points are read, so changing the budget re-evaluates nothing.

**Search.** ``grid`` (every combination of lists and stepped ranges, in a fixed order),
``random`` and ``lhs`` (Latin hypercube) with a seed: the same seed gives the same points;
``nsga2`` and ``tpe``: Optuna's multi-objective samplers, the constraints set on each
trial (its study is stored beside the store and resumed by name); their budget
(``trials``) counts distinct points, so a proposal of a point already seen is answered
from the store and not counted.

**The store** is SQLite: each evaluated point is one row (its design hash, the design, the
model version, the results) committed in its own transaction. A run killed at any moment
loses at most the points being evaluated; rerunning the same command skips every stored
hash, so nothing is evaluated twice and the final set of points (hence the Pareto front)
is the same as an uninterrupted run's. The design hash is SHA-256 of the canonical JSON of
the design and workloads (never Python's ``hash()``).

**The Pareto front** is computed exactly from the stored feasible points (no point of the
front is dominated by another feasible point in every objective).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...checks import check_choice, check_int, check_seed
from ...errors import ConfigError, UserError
from ..frames import data_frame
from ..specs import DATA_DIR

#: Samplers of our own (exact, resumable to the same points) and Optuna's multi-objective
#: searches under constraints (NSGA-II, TPE).
OPTUNA_SEARCHES = ("nsga2", "tpe")
SEARCHES = ("grid", "random", "lhs", *OPTUNA_SEARCHES)
#: An Optuna search stops after this many proposals per point of its budget, should it
#: keep proposing points it has already seen.
MAX_ASKS_PER_POINT = 20
#: Spaces usable by name (``systolab explore h20-beater``).
SPACES_DIR = DATA_DIR / "spaces"
DESIGN_METRICS = ("die_mm2", "power_W", "unit_cost_usd", "peak_tops", "tpp", "fleet_units")
GEMM_METRICS = ("throughput", "seconds", "utilization", "energy_per_unit_J", "usd_per_million_units",
                "fleet_throughput")
SERVING_METRICS = ("throughput", "seconds", "ttft_s", "devices", "energy_per_unit_J", "usd_per_million_units",
                   "fleet_throughput")
WORKLOAD_METRICS = tuple(dict.fromkeys(GEMM_METRICS + SERVING_METRICS))
SERVING_KEYS = ("serve", "name", "isl", "osl", "batch", "concurrency", "tp")
SPACE_KEYS = ("base", "parameters", "workloads", "objectives", "constraints", "budget_usd", "gpus")
#: GPUs drawn as reference points when the space names none (those ``beat`` names are added).
REFERENCE_GPUS = ("h100-sxm", "h20")
CONSTRAINT_KEYS = ("export_class", "rule_date", "die_mm2_max", "power_W_max", "beat")


def _err(where: str, field: str, message: str) -> UserError:
    return UserError(f"space: {where}: {field}: {message}", parameter="space")


@dataclass(frozen=True)
class Objective:
    metric: str
    goal: str                   # "max" or "min"
    workload: str | None = None

    @property
    def label(self) -> str:
        return f"{self.metric}[{self.workload}]" if self.workload else self.metric


@dataclass(frozen=True)
class Space:
    """A validated space: what is varied, on which workloads, for which objectives."""

    source: str
    base: str | None
    parameters: dict[str, dict]     # name -> {"values": [...]} or {"min", "max", "step"|None}
    workloads: tuple[dict, ...]     # {"name", "batch", "seq_len"} or a serving scenario {"serve", "name", ...}
    objectives: tuple[Objective, ...]
    constraints: dict[str, Any]
    budget_usd: float = 7e9
    gpus: tuple[str, ...] = REFERENCE_GPUS

    def grid(self) -> list[dict]:
        """Every combination, parameters in file order, values in ascending order."""
        axes = []
        for name, p in self.parameters.items():
            if "values" in p:
                axes.append(p["values"])
            elif p.get("step") is None:
                raise _err(self.source, f"parameters.{name}", "a continuous range has no grid: give step or values")
            else:
                n = int(math.floor((p["max"] - p["min"]) / p["step"] + 1e-9)) + 1
                vals = [p["min"] + i * p["step"] for i in range(n)]
                axes.append([int(v) if p["int"] else round(v, 9) for v in vals])
        return [dict(zip(self.parameters, combo)) for combo in itertools.product(*axes)]

    def sample(self, search: str, trials: int, seed: int) -> list[dict]:
        """``trials`` points by ``random`` or ``lhs`` sampling (deterministic in ``seed``)."""
        rng = np.random.default_rng(seed)
        d = len(self.parameters)
        if search == "random":
            u = rng.random((trials, d))
        else:                       # Latin hypercube: one point per stratum in every dimension
            u = (np.argsort(rng.random((d, trials)), axis=1).T + rng.random((trials, d))) / trials
        return [{name: self._value(p, float(u[i, j])) for j, (name, p) in enumerate(self.parameters.items())}
                for i in range(trials)]

    @staticmethod
    def _value(p: dict, u: float):
        if "values" in p:
            return p["values"][min(int(u * len(p["values"])), len(p["values"]) - 1)]
        if p.get("step") is not None:
            n = int(math.floor((p["max"] - p["min"]) / p["step"] + 1e-9)) + 1
            v = p["min"] + min(int(u * n), n - 1) * p["step"]
        else:
            v = p["min"] + u * (p["max"] - p["min"])
        return int(round(v)) if p["int"] else round(v, 9)


def load_space(space: str | Path | dict) -> Space:
    """A space from a YAML file, a bundled space's name (``models/data/spaces``) or a
    dict; every error names the file and the field."""
    from ...files import read_text
    from ..chip.config import get_chip
    from ..cost.pricing import cost_inputs
    from ..gpu.specs import get_gpu
    from ..workloads.catalog import BUILTINS

    if isinstance(space, dict):
        data, source = space, "<dict>"
    else:
        bundled = SPACES_DIR / f"{space}.yaml"
        source = str(space)
        if not Path(space).exists() and bundled.is_file():
            source = f"models/data/spaces/{space}.yaml"     # where it lives in the project, not the install
            space = bundled
        import yaml

        try:
            data = yaml.safe_load(read_text(space, parameter="space"))
        except yaml.YAMLError as exc:
            raise _err(source, "(file)", f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise _err(source, "(file)", "expected a mapping with parameters, workloads and objectives")
    for key in data:
        if key not in SPACE_KEYS:
            raise _err(source, str(key), f"unknown key; expected {', '.join(SPACE_KEYS)}")
    base = data.get("base")
    try:
        chip = get_chip(base)
    except UserError as exc:
        raise _err(source, "base", str(exc).split(": ", 1)[-1]) from None
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise _err(source, "parameters", "give at least one parameter to vary (a list or a {min, max} range)")
    parsed: dict[str, dict] = {}
    for name, spec in params.items():
        where = f"parameters.{name}"
        try:
            if _first(spec) is not None:
                chip.derive(**{name: _first(spec)})
        except UserError as exc:
            raise _err(source, where, str(exc).split(": ", 1)[-1]) from None
        except (TypeError, ValueError) as exc:
            raise _err(source, where, str(exc)) from None
        parsed[name] = _parse_range(source, where, spec)
    workloads = data.get("workloads")
    if not isinstance(workloads, list) or not workloads:
        raise _err(source, "workloads", "give at least one workload, e.g. {name: llama3-8b-decode, batch: 1}")
    wls = []
    for i, w in enumerate(workloads):
        w = {"name": w} if isinstance(w, str) else w
        if isinstance(w, dict) and "serve" in w:
            wls.append(_serving_workload(source, f"workloads[{i}]", w))
            continue
        if not isinstance(w, dict) or w.get("name") not in BUILTINS or set(w) - {"name", "batch", "seq_len"}:
            raise _err(source, f"workloads[{i}]", f"expected {{name, batch, seq_len}} with a built-in name "
                                                  f"({', '.join(BUILTINS)}) or a serving scenario {{serve, isl, "
                                                  f"osl, batch or concurrency}}, not {w!r}")
        wls.append(dict(w))
    names = [w["name"] for w in wls]
    if len(set(names)) < len(names):
        raise _err(source, "workloads", f"two workloads share a name ({', '.join(names)}); give serving ones a name")
    kinds = {w["name"]: SERVING_METRICS if "serve" in w else GEMM_METRICS for w in wls}
    objectives = data.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise _err(source, "objectives", "give at least one objective, e.g. {metric: die_mm2, goal: min}")
    objs = []
    for i, o in enumerate(objectives):
        where = f"objectives[{i}]"
        if not isinstance(o, dict) or set(o) - {"metric", "goal", "workload"}:
            raise _err(source, where, "expected {metric, goal, workload}")
        metric, goal, wl = o.get("metric"), o.get("goal"), o.get("workload")
        if metric not in DESIGN_METRICS + WORKLOAD_METRICS:
            raise _err(source, f"{where}.metric", f"unknown metric {metric!r}; choose one of "
                                                  f"{', '.join(DESIGN_METRICS + WORKLOAD_METRICS)}")
        if goal not in ("max", "min"):
            raise _err(source, f"{where}.goal", f"must be max or min, not {goal!r}")
        if metric in WORKLOAD_METRICS and wl not in names:
            raise _err(source, f"{where}.workload", f"must name one of the space's workloads ({', '.join(names)}), "
                                                    f"not {wl!r}")
        if metric in WORKLOAD_METRICS and metric not in kinds[wl]:
            raise _err(source, f"{where}.metric", f"{wl} has no {metric}; its metrics are {', '.join(kinds[wl])}")
        if metric in DESIGN_METRICS and wl is not None:
            raise _err(source, f"{where}.workload", f"{metric} is a property of the design, not of a workload")
        objs.append(Objective(metric, goal, wl))
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise _err(source, "constraints", "expected a mapping")
    for key, value in constraints.items():
        if key not in CONSTRAINT_KEYS:
            raise _err(source, f"constraints.{key}", f"unknown constraint; expected {', '.join(CONSTRAINT_KEYS)}")
        if key in ("die_mm2_max", "power_W_max") and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                       or value <= 0):
            raise _err(source, f"constraints.{key}", f"must be a positive number, not {value!r}")
    for i, b in enumerate(constraints.get("beat") or []):
        if not isinstance(b, dict) or set(b) != {"gpu", "workload", "ratio"} or b["workload"] not in names:
            raise _err(source, f"constraints.beat[{i}]", "expected {gpu, workload (one of the space's), ratio}")
        try:
            get_gpu(b["gpu"])
        except UserError as exc:
            raise _err(source, f"constraints.beat[{i}].gpu", str(exc).split(": ", 1)[-1]) from None
    budget = data.get("budget_usd", cost_inputs().default_budget_usd)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise _err(source, "budget_usd", f"must be a positive number of dollars, not {budget!r}")
    gpus = data.get("gpus", list(REFERENCE_GPUS))
    if not isinstance(gpus, list) or not gpus:
        raise _err(source, "gpus", "expected a list of GPU ids")
    for i, g in enumerate(gpus):
        try:
            get_gpu(g)
        except UserError as exc:
            raise _err(source, f"gpus[{i}]", str(exc).split(": ", 1)[-1]) from None
    return Space(source, base, parsed, tuple(wls), tuple(objs), dict(constraints), float(budget), tuple(gpus))


def _serving_workload(source: str, where: str, w: dict) -> dict:
    """A serving scenario of a space, checked by the serving model's own checks."""
    from ..serving.model import check_request

    if unknown := set(w) - set(SERVING_KEYS):
        raise _err(source, f"{where}.{sorted(map(str, unknown))[0]}", f"unknown key; a serving workload takes "
                                                                      f"{', '.join(SERVING_KEYS)}")
    try:
        check_request(w["serve"], isl=w.get("isl"), osl=w.get("osl"), batch=w.get("batch"),
                      concurrency=w.get("concurrency"))
        if w.get("tp") is not None:
            check_int("tp", w["tp"])
    except UserError as exc:
        field = "serve" if exc.parameter == "model" else exc.parameter or "serve"
        raise _err(source, f"{where}.{field}", str(exc).split(": ", 1)[-1]) from None
    name = w.get("name", f"{w['serve']}-serving")
    if not isinstance(name, str) or not name:
        raise _err(source, f"{where}.name", f"must be a non-empty string, not {name!r}")
    return {**w, "name": name}


def serving_metrics(device, w: dict) -> dict:
    """A serving workload's metrics on ``device`` (a chip or a GPU id, in its own format)."""
    from ..serving.model import serve_auto

    r = serve_auto(device, w["serve"], tp=w.get("tp"), isl=w["isl"], osl=w["osl"], batch=w.get("batch"),
                   concurrency=w.get("concurrency"))
    return {"throughput": r.output_tokens_per_s, "seconds": r.tpot_s, "ttft_s": r.ttft_s, "devices": r.devices,
            "energy_per_unit_J": r.energy_per_token_J, "usd_per_million_units": r.usd_per_million_tokens}


def _first(spec):
    """A value the range takes (to check the parameter's name and type early)."""
    if isinstance(spec, list):
        return spec[0] if spec else None
    if isinstance(spec, dict):
        return spec.get("min")
    return spec


def _parse_range(source: str, where: str, spec) -> dict:
    if isinstance(spec, list):
        if not spec:
            raise _err(source, where, "an empty list of values")
        return {"values": sorted(spec, key=lambda v: (str(type(v)), v)), "int": False}
    if not isinstance(spec, dict) or set(spec) - {"min", "max", "step"} or not {"min", "max"} <= set(spec):
        raise _err(source, where, "expected a list of values or {min, max[, step]}")
    lo, hi, step = spec["min"], spec["max"], spec.get("step")
    nums = [v for v in (lo, hi, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in nums):
        raise _err(source, where, "min, max and step must be numbers")
    if hi < lo or (step is not None and step <= 0):
        raise _err(source, where, f"an empty range (min {lo}, max {hi}, step {step})")
    return {"min": lo, "max": hi, "step": step, "int": all(isinstance(v, int) for v in nums)}


def design_hash(design: dict, space: Space) -> str:
    """SHA-256 of the canonical JSON of the base, the design, the workloads and the export
    rule date: what the stored metrics depend on (the other constraints are judged when
    the points are read, so changing them re-evaluates nothing)."""
    text = json.dumps({"base": space.base, "design": design, "workloads": list(space.workloads),
                       "rule_date": space.constraints.get("rule_date")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_version() -> str:
    """systolab's version and a hash of the model sources and data that evaluate a point,
    with the configuration classes they derive a design's parameters with."""
    from ... import __version__, config, dtypes

    h = hashlib.sha256(__version__.encode())
    here = DATA_DIR.parent                     # the models package: every model source and data file
    files = sorted(f for f in here.rglob("*") if f.is_file() and (f.suffix == ".py" or DATA_DIR in f.parents))
    for f in [*files, Path(config.__file__), Path(dtypes.__file__)]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def evaluate_point(space: Space, design: dict) -> dict:
    """The metrics of one design on the space's workloads (what the store keeps; the
    constraints are judged when the points are read, :func:`judge`). A design the chip
    model refuses, or one whose memory cannot hold a workload, is marked ``invalid``."""
    import warnings

    from ..chip.config import ReticleWarning
    from ..cost.pricing import usd_per_million_tokens
    from ..report.chip import get_chip
    from ..workloads.catalog import get_workload

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReticleWarning)
        try:
            chip = get_chip(space.base).derive(**design)
        except (UserError, ConfigError) as exc:     # a combination the chip model refuses
            return {"invalid": "design", "error": str(exc), "workloads": {}}
    s = chip.summary()
    out: dict[str, Any] = {"die_mm2": s["die_mm2"], "power_W": s["tdp_W"], "unit_cost_usd": s["unit_cost_usd"],
                           "peak_tops": s["peak_tops"], "tpp": s["tpp"],
                           "eccn": chip.export_class(rule_date=space.constraints.get("rule_date")).eccn,
                           "workloads": {}}
    for w in space.workloads:
        if "serve" in w:
            try:
                out["workloads"][w["name"]] = serving_metrics(chip, w)
            except UserError as exc:                  # the model or its KV cache fits no tensor-parallel group
                return {**out, "invalid": "capacity", "error": str(exc)}
            continue
        wl = get_workload(w["name"], dtype=chip.core.dtype, batch=w.get("batch"), seq_len=w.get("seq_len"))
        try:
            ev = chip.evaluate(wl)
        except UserError as exc:                      # e.g. the workload does not fit the chip's memory
            return {**out, "invalid": "capacity", "error": str(exc)}
        cost = usd_per_million_tokens(unit_capex_usd=s["unit_cost_usd"], power_W=s["tdp_W"],
                                      tokens_per_s=ev.throughput)
        out["workloads"][w["name"]] = {"throughput": ev.throughput, "seconds": ev.seconds,
                                       "utilization": ev.utilization, "energy_per_unit_J": ev.energy_per_unit_J,
                                       "usd_per_million_units": cost.usd}
    return out


def gpu_targets(space: Space) -> list[float]:
    """The throughput each ``beat`` constraint asks for (its GPU's times its ratio)."""
    from ..chip.config import get_chip
    from ..report.evaluate import evaluate_gpu
    from ..workloads.catalog import get_workload

    dtype = get_chip(space.base).core.dtype
    targets = []
    for b in space.constraints.get("beat") or []:
        w = next(x for x in space.workloads if x["name"] == b["workload"])
        if "serve" in w:
            targets.append(b["ratio"] * serving_metrics(b["gpu"], w)["throughput"])
            continue
        wl = get_workload(w["name"], dtype=dtype, batch=w.get("batch"), seq_len=w.get("seq_len"))
        targets.append(b["ratio"] * evaluate_gpu(b["gpu"], wl).throughput)
    return targets


def judge(space: Space, metrics: dict, targets: list[float]) -> dict:
    """``metrics`` with the constraints' verdicts: ``failed`` (the constraints it breaks,
    or ``design`` / ``capacity`` for an invalid design) and ``feasible``."""
    c = space.constraints
    if "invalid" in metrics:
        failed = [metrics["invalid"]]
    else:
        metrics = with_fleet(metrics, space.budget_usd)
        failed = [k for k, bad in (("export_class", "export_class" in c and metrics["eccn"] != c["export_class"]),
                                   ("die_mm2_max", "die_mm2_max" in c and metrics["die_mm2"] > c["die_mm2_max"]),
                                   ("power_W_max", "power_W_max" in c and metrics["power_W"] > c["power_W_max"]))
                  if bad]
        failed += [f"beat[{i}]" for i, (b, t) in enumerate(zip(c.get("beat") or [], targets))
                   if metrics["workloads"][b["workload"]]["throughput"] < t]
    return {**metrics, "failed": failed, "feasible": not failed}


def with_fleet(metrics: dict, budget_usd: float) -> dict:
    """``metrics`` with what ``budget_usd`` buys: ``fleet_units`` (whole devices at the unit
    cost) and each workload's ``fleet_throughput`` (its whole groups of ``devices``, one
    for a built-in workload); ``None`` without a unit cost or a throughput."""
    units = math.floor(budget_usd / metrics["unit_cost_usd"]) if metrics.get("unit_cost_usd") else None

    def fleet(m: dict) -> float | None:
        if units is None or m.get("throughput") is None:
            return None
        group = m.get("devices") or 1
        return units // group * group * m["throughput"]

    return {**metrics, "fleet_units": units,
            "workloads": {w: {**m, "fleet_throughput": fleet(m)} for w, m in metrics["workloads"].items()}}


def objective_values(space: Space, result: dict) -> list[float]:
    return [result["workloads"][o.workload][o.metric] if o.workload else result[o.metric] for o in space.objectives]


def pareto(space: Space, points: list[dict]) -> list[dict]:
    """The feasible points no other feasible point dominates (exact, O(n^2))."""
    feas = [p for p in points if p["result"]["feasible"]]
    if not feas:
        return []
    sign = np.array([-1.0 if o.goal == "max" else 1.0 for o in space.objectives])
    vals = np.array([objective_values(space, p["result"]) for p in feas])* sign
    front = []
    for i, p in enumerate(feas):
        dominated = np.any(np.all(vals <= vals[i], axis=1) & np.any(vals < vals[i], axis=1))
        if not dominated:
            front.append(p)
    return front


class Store:
    """The SQLite store: one row per evaluated design, each in its own transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60)
            with self.db:
                self.db.execute("CREATE TABLE IF NOT EXISTS points (hash TEXT PRIMARY KEY, design TEXT NOT NULL, "
                                "model_version TEXT NOT NULL, result TEXT NOT NULL)")
                self.db.execute("CREATE TABLE IF NOT EXISTS deep (hash TEXT PRIMARY KEY, model_version TEXT NOT NULL, "
                                "result TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"db: {self.path} is not a systolab store ({exc})", parameter="db") from None

    def hashes(self) -> set[str]:
        return {h for (h,) in self.db.execute("SELECT hash FROM points")}

    def put(self, h: str, design: dict, version: str, result: dict) -> None:
        with self.db:                                   # one transaction per point
            self.db.execute("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?)",
                            (h, json.dumps(design, sort_keys=True), version, json.dumps(result, sort_keys=True)))

    def get(self, h: str) -> dict | None:
        row = self.db.execute("SELECT design, model_version, result FROM points WHERE hash = ?", (h,)).fetchone()
        if row is None:
            return None
        return {"design_hash": h, "design": json.loads(row[0]), "model_version": row[1], "result": json.loads(row[2])}

    def points(self, hashes: list[str]) -> list[dict]:
        return [p for p in (self.get(h) for h in hashes) if p is not None]

    def deep(self, h: str) -> dict | None:
        """The deep stage's result for a point, if it ran."""
        row = self.db.execute("SELECT result FROM deep WHERE hash = ?", (h,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_deep(self, h: str, version: str, result: dict) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO deep VALUES (?, ?, ?)", (h, version, json.dumps(result, sort_keys=True)))

    def close(self) -> None:
        self.db.close()


def _evaluate_job(args):
    space, design = args
    return evaluate_point(space, design)


def _deep_job(job):
    """The deep stage of one point; a tool that fails is reported, not stored (a rerun
    tries again)."""
    from ...errors import SimulationError
    from ...flows.deep import deep_check

    try:
        return deep_check(job)
    except (UserError, SimulationError) as exc:
        return {"error": str(exc)}


def _suggest(trial, name: str, p: dict):
    if "values" in p:
        return trial.suggest_categorical(name, p["values"])
    step = p.get("step")
    if p["int"]:
        return trial.suggest_int(name, p["min"], p["max"], step=step or 1)
    return trial.suggest_float(name, p["min"], p["max"], step=step)


def _optuna_search(sp: Space, store: Store, version: str, db: Path, search: str, trials: int, seed: int,
                   targets: list[float], bar, ex) -> tuple[list[str], int]:
    """Optuna's NSGA-II or TPE with the space's constraints (``Trial.set_constraint``): its
    study lives beside the store (``<db>.optuna.sqlite``, resumed by name), every point in
    our store, so a point the search proposes again is read, not evaluated. It asks as
    many trials at a time as the executor has workers, evaluates them there and tells
    them in the order asked (deterministic for a given number of workers)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
        results = {h: st["result"] for h in hashes if (st := store.get(h)) is not None}
        todo = list({h: d for h, d in zip(hashes, designs) if h not in results}.items())
        for i, result in ex.imap(_evaluate_job, [(sp, d) for _, d in todo]):
            store.put(todo[i][0], todo[i][1], version, result)
            results[todo[i][0]] = result
        evaluated += len(todo)
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


def run_explore(space: str | Path | dict, *, db: str | Path, search: str = "grid", trials: int = 64, seed: int = 0,
                jobs: int = 1, executor: str = "local", deep: int = 0, progress: bool = False) -> dict:
    """Evaluate the space's points (skipping those already in ``db``) on ``executor``
    (``local`` with ``jobs`` processes, or ``dask://HOST:PORT``), then the Pareto front
    of the feasible ones, then the deep stage (:mod:`~systolab.flows.deep`) of its first
    ``deep`` points (best first objective first) on the same executor. Returns
    ``points``, ``feasible``, ``pareto``, the constraint that binds when nothing is
    feasible, ``deep`` and ``store``."""
    from ...executors import open_executor, parse_executor

    sp = load_space(space)
    check_choice("search", search, SEARCHES)
    trials, seed, jobs = check_int("trials", trials, hi=1_000_000), check_seed("seed", seed), check_int("jobs", jobs, hi=256)
    deep = check_int("deep", deep, lo=0, hi=10_000)
    parse_executor(executor)
    if jobs > 1 and parse_executor(executor)[0] != "local":
        raise UserError("jobs: sets the local processes; a Dask cluster has its own workers", parameter="jobs")
    store = Store(db)
    version = model_version()
    targets = gpu_targets(sp)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(sp.grid()) if search == "grid" else trials, desc="explore", unit="point")
    try:
        with open_executor(executor, jobs=jobs, version=model_version) as ex:
            if search in OPTUNA_SEARCHES:
                order, evaluated = _optuna_search(sp, store, version, Path(db), search, trials, seed, targets, bar, ex)
            else:
                designs = sp.grid() if search == "grid" else sp.sample(search, trials, seed)
                order = list(dict.fromkeys(design_hash(d, sp) for d in designs))
                by_hash = {design_hash(d, sp): d for d in designs}
                stored = store.hashes()
                todo = [h for h in order if h not in stored]
                evaluated = len(todo)
                if bar:
                    bar.update(len(designs) - len(todo))
                for i, result in ex.imap(_evaluate_job, [(sp, by_hash[h]) for h in todo]):
                    store.put(todo[i], by_hash[todo[i]], version, result)
                    bar and bar.update()
            points = [{**p, "result": judge(sp, p["result"], targets)} for p in store.points(order)]
            front = pareto(sp, points)
            deep_out = _run_deep(sp, store, version, front, deep, seed, ex) if deep else []
    finally:
        if bar:
            bar.close()
        store.close()
    feasible = [p for p in points if p["result"]["feasible"]]
    why = {}
    for p in points:
        for f in p["result"]["failed"]:
            why[f] = why.get(f, 0) + 1
    return {"space": sp.source, "search": search, "seed": seed, "points": len(points), "evaluated": evaluated,
            "feasible": len(feasible), "objectives": [o.label for o in sp.objectives],
            "pareto": [{"design_hash": p["design_hash"], "design": p["design"],
                        "objectives": dict(zip([o.label for o in sp.objectives], objective_values(sp, p["result"])))}
                       for p in front],
            "rejected_by": why, "binding": max(why, key=lambda k: why[k]) if why and not feasible else None,
            "deep": deep_out, "executor": executor, "store": str(Path(db)), "all_points": points}


def _pes(sp: Space, design: dict) -> int:
    from ..chip.config import get_chip

    core = get_chip(sp.base).derive(**design).core
    return core.rows * core.cols


def _run_deep(sp: Space, store: Store, version: str, front: list[dict], k: int, seed: int, ex) -> list[dict]:
    """The deep stage of the front's first ``k`` points (best first objective first), those
    not yet in the store's ``deep`` table run on the executor, each stored as it returns."""
    first = sp.objectives[0]
    ranked = sorted(front, key=lambda p: objective_values(sp, p["result"])[0] * (-1 if first.goal == "max" else 1))[:k]
    done = {p["design_hash"]: r for p in ranked if (r := store.deep(p["design_hash"])) is not None}
    todo = [p for p in ranked if p["design_hash"] not in done]
    # the largest arrays first, so that the last job to finish is a short one
    todo.sort(key=lambda p: -_pes(sp, p["design"]))
    for i, result in ex.imap(_deep_job, [(sp.base, p["design"], seed) for p in todo]):
        h = todo[i]["design_hash"]
        if "error" not in result:
            store.put_deep(h, version, result)
        done[h] = result
    return [{"design_hash": p["design_hash"], "design": p["design"], **done[p["design_hash"]]} for p in ranked]


#: Units of the metrics, for column names.
UNITS = {"die_mm2": "die_mm2", "power_W": "power_W", "unit_cost_usd": "unit_cost_usd", "peak_tops": "peak_TOPS",
         "tpp": "tpp", "fleet_units": "fleet_units", "fleet_throughput": "fleet_throughput_units_per_s",
         "throughput": "throughput_units_per_s", "seconds": "seconds_s", "utilization": "utilization",
         "energy_per_unit_J": "energy_per_unit_J", "usd_per_million_units": "usd_per_million_units",
         "ttft_s": "ttft_s", "devices": "devices"}


def points_frame(points: list[dict], front: set[str] = frozenset()):
    """The stored points as a pandas DataFrame: the design, feasibility, the constraints
    that failed, the design's metrics and each workload's (``<workload>.<metric>``), units
    in the column names, and whether the point is on the Pareto front."""
    rows = []
    for p in points:
        r = p["result"]
        row = {"design_hash": p["design_hash"], **p["design"], "feasible": r["feasible"],
               "failed": ";".join(r["failed"]), "eccn": r.get("eccn"),
               **{UNITS[k]: r.get(k) for k in DESIGN_METRICS}}
        for w, m in r["workloads"].items():
            row.update({f"{w}.{UNITS[k]}": v for k, v in m.items()})
        row["pareto"] = p["design_hash"] in front
        rows.append(row)
    return data_frame(rows)


def explore(space: str | Path | dict, *, db: str | Path, search: str = "grid", trials: int = 64, seed: int = 0,
            jobs: int = 1, executor: str = "local", deep: int = 0, progress: bool = False):
    """:func:`run_explore` for notebooks: every point of the run as a DataFrame
    (:func:`points_frame`); the summary (Pareto front, feasible count, the binding
    constraint, the deep stage) in ``.attrs``."""
    res = run_explore(space, db=db, search=search, trials=trials, seed=seed, jobs=jobs, executor=executor, deep=deep,
                      progress=progress)
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


def gpu_reference(space: Space) -> dict[str, dict]:
    """The space's metrics on its reference GPUs (the compare model: same workloads, the
    chip's dtype, the fleet the space's budget buys), shaped like a design's results."""
    from ..chip.config import get_chip
    from ..report.compare import compare_row, gpu_device
    from ..report.evaluate import evaluate_gpu
    from ..workloads.catalog import get_workload

    dtype = get_chip(space.base).core.dtype
    names = list(dict.fromkeys([*space.gpus, *(b["gpu"] for b in space.constraints.get("beat") or [])]))
    out = {}
    for g in names:
        dev = gpu_device(g, dtype)
        res: dict[str, Any] = {"die_mm2": dev.die_mm2, "power_W": dev.tdp_W, "unit_cost_usd": dev.price_usd,
                               "peak_tops": dev.peak_tops, "tpp": dev.tpp, "eccn": dev.eccn, "workloads": {}}
        for w in space.workloads:
            if "serve" in w:
                try:
                    res["workloads"][w["name"]] = serving_metrics(g, w)
                except UserError:               # fits no tensor-parallel group of this GPU: no reference
                    res["workloads"][w["name"]] = {}
                continue
            wl = get_workload(w["name"], dtype=dtype, batch=w.get("batch"), seq_len=w.get("seq_len"))
            row = compare_row(dev, evaluate_gpu(g, wl))
            res["workloads"][w["name"]] = {k: row.get(k) for k in GEMM_METRICS}
        out[g] = with_fleet(res, space.budget_usd)
    return out


def plot_pareto(space: Space, points: list[dict], front: set[str], gpus: dict[str, dict] | None = None, ax=None):
    """Every point in each 2-D projection of the objectives (one panel per pair; grey:
    infeasible, blue: feasible, red: the Pareto front) with GPUs as labelled reference
    points. Returns the ``Figure`` (drawn into ``ax``, one axes per pair, when given)."""
    from matplotlib.figure import Figure

    objs = space.objectives
    pairs = list(itertools.combinations(range(len(objs)), 2)) or [(0, 0)]
    if ax is None:
        fig = Figure(figsize=(6.5 * len(pairs), 5))
        axes = list(np.atleast_1d(fig.subplots(1, len(pairs))))
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(pairs):
            raise UserError(f"ax: this space's objectives need {len(pairs)} axes, not {len(axes)}", parameter="ax")
        fig = axes[0].figure

    def value(result, o):
        try:
            v = result["workloads"][o.workload][o.metric] if o.workload else result[o.metric]
        except KeyError:
            return None
        return v if isinstance(v, (int, float)) and v > 0 else None

    for a, (i, j) in zip(axes, pairs):
        def xy(result, i=i, j=j):
            v = (value(result, objs[i]), value(result, objs[j]))
            return None if None in v else v

        for kind, color, pick in (("infeasible", "0.75", lambda p: not p["result"]["feasible"]),
                                  ("feasible", "tab:blue", lambda p: p["result"]["feasible"]),
                                  ("Pareto front", "tab:red", lambda p: p["design_hash"] in front)):
            pts = [v for p in points if pick(p) and (v := xy(p["result"])) is not None]
            if pts:
                a.scatter(*zip(*pts), s=14 if kind != "Pareto front" else 30, c=color, label=kind)
        for g, res in (gpus or {}).items():
            v = xy(res)
            if v is not None:
                a.scatter(*v, marker="*", s=160, c="k")
                a.annotate(g, v, textcoords="offset points", xytext=(5, 5))
        a.set_xlabel(f"{objs[i].label} ({objs[i].goal})")
        a.set_ylabel(f"{objs[j].label} ({objs[j].goal})")
        a.set_xscale("log")
        a.set_yscale("log")
        a.legend(loc="best", fontsize=8)
    fig.suptitle(f"{len(points)} designs, {len(front)} on the Pareto front")
    return fig


def export_map(points: list[dict], front: set[str], gpus: dict[str, dict], ax=None):
    """The Pareto points (at most 20, labelled by hash) and the GPUs on the ECCN 3A090 map
    (TPP against performance density, with the rule's thresholds). Returns the ``Figure``."""
    from ..report.figures import plot_export_map

    devices = [{"id": p["design_hash"][:6], "kind": "custom", "tpp": p["result"]["tpp"], "eccn": p["result"]["eccn"],
                "performance_density": p["result"]["tpp"] / p["result"]["die_mm2"]}
               for p in points if p["design_hash"] in front][:20]
    devices += [{"id": g, "kind": "gpu", "tpp": r["tpp"], "eccn": r["eccn"],
                 "performance_density": r["tpp"] / r["die_mm2"] if r["die_mm2"] else None} for g, r in gpus.items()]
    return plot_export_map({"devices": devices}, ax=ax)


def report_markdown(space: Space, res: dict, gpus: dict[str, dict]) -> str:
    """The run's report: the Pareto table, the best point per objective against each GPU,
    and the constraint that binds."""
    labels = [o.label for o in space.objectives]
    lines = [f"# Exploration of {space.source}", "",
             f"{res['points']} points ({res['search']}, seed {res['seed']}), {res['feasible']} feasible, "
             f"{len(res['pareto'])} on the Pareto front. Store: `{res['store']}`.", ""]
    if res["rejected_by"]:
        lines.append("Rejected by constraint: " + ", ".join(f"{k} {v}" for k, v in res["rejected_by"].items())
                     + (f"; nothing is feasible, and `{res['binding']}` rejects the most." if res["binding"] else "."))
        lines.append("")
    if res["pareto"]:
        lines += ["## Pareto front", "", "| design_hash | design | " + " | ".join(labels) + " |",
                  "|---|---|" + "---:|" * len(labels)]
        for p in res["pareto"]:
            lines.append(f"| {p['design_hash']} | {p['design']} | "
                         + " | ".join(f"{p['objectives'][k]:.4g}" for k in labels) + " |")
        lines += ["", "## Best point per objective against the GPUs", ""]
        for o in space.objectives:
            best = (max if o.goal == "max" else min)(res["pareto"], key=lambda p: p["objectives"][o.label])
            v = best["objectives"][o.label]
            refs = []
            for g, r in gpus.items():
                gv = r["workloads"].get(o.workload, {}).get(o.metric) if o.workload else r.get(o.metric)
                if gv:
                    refs.append(f"{g} {gv:.4g} ({v / gv:.2f}x)")
            lines.append(f"- {o.label} ({o.goal}): {v:.4g} at {best['design']}; " + (", ".join(refs) or "no GPU value"))
    if res.get("deep"):
        lines += ["", "## Deep stage: the core's RTL on Verilator, its array synthesised", "",
                  "| design_hash | GEMMs bit-exact | RTL cycles = model | array mm², synthesis | model error | s |",
                  "|---|---|---|---:|---:|---:|"]
        for d in res["deep"]:
            if "error" in d:
                lines.append(f"| {d['design_hash']} | failed: {d['error']} | | | | |")
            else:
                lines.append(f"| {d['design_hash']} | {'yes' if d['passed'] else 'NO'} | "
                             f"{'yes' if d['cycles_exact'] else 'NO'} {d['rtl_cycles']} | {d['synth_array_mm2']:.4g} | "
                             f"{d['area_error']:+.1%} | {d['verify_s'] + d['synth_s']:.0f} |")
    lines += ["", "![Pareto front](pareto.png)", "", "![ECCN 3A090 map](export_map.png)", ""]
    return "\n".join(lines)
