"""The space of an exploration: what is varied, on which workloads, for which objectives.

A space (YAML, or the same as a dict)::

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
      buyer: china                    # the reference GPUs marked with what this buyer may buy then
      buildable: true                 # only designs this buyer could have built then (models/legal/build.py)
      physically_feasible: true       # only designs whose memory PHYs, package and power density fit
      die_mm2_max: 858                # the reticle limit
      power_W_max: 700
      beat: [{gpu: h20, workload: llama3-8b-decode, ratio: 1.0}]
    budget_usd: 7.0e+9                # what a fleet may cost (default: the cost model's $7B)
    gpus: [h100-sxm, h200, h20]       # GPUs drawn as reference points (default h100-sxm, h20)
    corrected: false                  # lifetime costs at the decision's measured area and power errors

Metrics of a design: ``die_mm2``, ``power_W``, ``unit_cost_usd``, ``peak_tops``, ``tpp``,
``fleet_units`` (chips the budget buys at the unit cost); per workload: ``throughput``
(units/s per device), ``seconds``, ``utilization``, ``energy_per_unit_J``,
``usd_per_million_units``, ``fleet_throughput`` (units/s of the budget's fleet).

A serving workload also has the lifetime cost of its deployment, as ``systolab fleet``
and ``systolab decide`` count it (:mod:`~systolab.models.explore.lifetime`):
``lifetime_cost_per_device_usd`` (one device over its lifetime: the device, its share of
server, network and facility, energy at the serving point's power, maintenance and
operations), ``tco_units`` (the devices the budget buys as whole deployments after the
chip's NRE) and ``usd_per_million_tokens_tco`` (a device's lifetime cost plus its share
of the NRE over the output tokens it serves in its lifetime at the cost model's
utilisation, USD per million tokens; the objective to rank serving designs by).
``usd_per_million_units`` stays the serving model's figure (NRE over the chip's
``volume_units``). With ``corrected: true`` the lifetime metrics price the die at the
decision's modal area error and the power at its modal power error
(``models/data/decision.yaml`` ``model_errors``); the constraints still judge the
model's area and power.

A workload is a built-in one (``name`` with its ``batch`` and ``seq_len``: each device
runs it alone, a fleet is whole devices) or an LLM *serving* scenario (``serve``: a model
of ``data/llm_models.yaml``, ``isl``, ``osl``, and ``batch`` or ``concurrency``; optional
``tp`` and ``name``, default ``<model>-serving``), timed by the serving model
(:func:`~systolab.models.serving.model.serve_auto`: the smallest tensor-parallel group that
holds the model and its KV cache, unless ``tp`` is given). A serving workload may carry
latency targets ``ttft_s`` and ``tpot_s`` (seconds): without ``batch`` and ``concurrency``
each device then serves at its goodput point (:func:`~systolab.models.serving.goodput.goodput`);
a device that misses them has zero throughput, the ``reason``, and the point fails the
target (``tpot_s[<workload>]``). Its ``throughput`` is output
tokens/s per device, ``seconds`` the time per output token, ``ttft_s`` the time to first
token, ``devices`` the group's size, and the fleet buys whole groups. The reference GPUs
serve it in their own serving format (fp8 where they have it, else bf16), as
``systolab fleet`` does.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ...checks import check_date, check_int, check_positive, check_real
from ...errors import UserError
from ...files import path_kind, read_text
from ..chip.config import get_chip
from ..cost.pricing import cost_inputs
from ..gpu.specs import get_gpu
from ..legal.export_control import check_allowed
from ..legal.purchase import scenario
from ..serving.goodput import Targets
from ..serving.model import check_parallelism, check_request
from ..specs import DATA_DIR
from ..workloads.catalog import BUILTINS, get_llm

#: Spaces usable by name (``systolab explore h20-beater``).
SPACES_DIR = DATA_DIR / "spaces"
DESIGN_METRICS = ("die_mm2", "power_W", "unit_cost_usd", "peak_tops", "tpp", "fleet_units")
GEMM_METRICS = ("throughput", "seconds", "utilization", "energy_per_unit_J", "usd_per_million_units",
                "fleet_throughput")
SERVING_METRICS = ("throughput", "seconds", "ttft_s", "devices", "energy_per_unit_J", "usd_per_million_units",
                   "fleet_throughput", "usd_per_million_tokens_tco", "lifetime_cost_per_device_usd", "tco_units")
WORKLOAD_METRICS = tuple(dict.fromkeys(GEMM_METRICS + SERVING_METRICS))
SERVING_KEYS = ("serve", "name", "isl", "osl", "batch", "concurrency", "tp", "ttft_s", "tpot_s")
SPACE_KEYS = ("base", "parameters", "workloads", "objectives", "constraints", "budget_usd", "gpus", "corrected")
#: GPUs drawn as reference points when the space names none (those ``beat`` names are added).
REFERENCE_GPUS = ("h100-sxm", "h20")
CONSTRAINT_KEYS = ("export_class", "rule_date", "buyer", "buildable", "physically_feasible", "die_mm2_max",
                   "power_W_max", "beat")
#: The largest grid a space may span (points; at tens of milliseconds a point, hours of work);
#: a larger one is refused before any is built (random and lhs sample any space).
MAX_GRID_POINTS = 100_000


def space_error(where: str, field: str, message: str) -> UserError:
    return UserError(f"space: {where}: {field}: {message}", parameter="space")


def space_checked(where: str, field: str, check, *args, **kwargs):
    """``check(*args, **kwargs)`` (a shared check of :mod:`systolab.checks`, the same the
    command-line flags go through), its :class:`UserError` as a :func:`space_error`."""
    try:
        return check(*args, **kwargs)
    except UserError as exc:
        raise space_error(where, field, str(exc).split(": ", 1)[-1]) from None


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
    corrected: bool = False         # lifetime costs at the decision's modal area and power errors

    def grid_size(self) -> int:
        """Points of :meth:`grid`, counted without building it."""
        return math.prod(len(p["values"]) if "values" in p else _steps(p) for p in self.parameters.values())

    def grid(self) -> list[dict]:
        """Every combination, parameters in file order, values in ascending order; a grid
        of more than :data:`MAX_GRID_POINTS` points is refused before any is built."""
        for name, p in self.parameters.items():
            if "values" not in p and p.get("step") is None:
                raise space_error(self.source, f"parameters.{name}", "a continuous range has no grid: give step or values")
        if (size := self.grid_size()) > MAX_GRID_POINTS:
            raise space_error(self.source, "parameters", f"the grid spans {size:.3g} points, more than "
                                                         f"{MAX_GRID_POINTS:,}: narrow it, or sample it (random, lhs)")
        axes = []
        for p in self.parameters.values():
            if "values" in p:
                axes.append(p["values"])
            else:
                vals = [p["min"] + i * p["step"] for i in range(_steps(p))]
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
            n = _steps(p)
            v = p["min"] + min(int(u * n), n - 1) * p["step"]
        else:
            v = p["min"] + u * (p["max"] - p["min"])
        return int(round(v)) if p["int"] else round(v, 9)


def load_space(space: str | Path | dict) -> Space:
    """A space from a YAML file, a bundled space's name (``models/data/spaces``) or a
    dict; every error names the file and the field."""
    if isinstance(space, dict):
        data, source = space, "<dict>"
    else:
        bundled = SPACES_DIR / f"{space}.yaml"
        source = str(space)
        if path_kind(space, parameter="space") is None and bundled.is_file():
            source = f"models/data/spaces/{space}.yaml"     # where it lives in the project, not the install
            space = bundled
        try:
            data = yaml.safe_load(read_text(space, parameter="space"))
        except yaml.YAMLError as exc:
            raise space_error(source, "(file)", f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise space_error(source, "(file)", "expected a mapping with parameters, workloads and objectives")
    for key in data:
        if key not in SPACE_KEYS:
            raise space_error(source, str(key), f"unknown key; expected {', '.join(SPACE_KEYS)}")
    base = data.get("base")
    try:
        chip = get_chip(base)
    except UserError as exc:
        raise space_error(source, "base", str(exc).split(": ", 1)[-1]) from None
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise space_error(source, "parameters", "give at least one parameter to vary (a list or a {min, max} range)")
    parsed: dict[str, dict] = {}
    for name, spec in params.items():
        where = f"parameters.{name}"
        parsed[name] = _parse_range(source, where, spec)
        # every value a list gives, and both ends of a range, as the chip takes them
        ends = parsed[name]["values"] if "values" in parsed[name] else [spec["min"], spec["max"]]
        for i, value in enumerate(ends):
            at = f"{where}[{i}]" if "values" in parsed[name] else f"{where}.{('min', 'max')[i]}"
            try:
                chip.derive(**{name: value})
            except UserError as exc:
                raise space_error(source, at, str(exc).split(": ", 1)[-1]) from None
            except (TypeError, ValueError) as exc:
                raise space_error(source, at, str(exc)) from None
    workloads = data.get("workloads")
    if not isinstance(workloads, list) or not workloads:
        raise space_error(source, "workloads", "give at least one workload, e.g. {name: llama3-8b-decode, batch: 1}")
    wls = []
    for i, w in enumerate(workloads):
        w = {"name": w} if isinstance(w, str) else w
        if isinstance(w, dict) and "serve" in w:
            wls.append(_serving_workload(source, f"workloads[{i}]", w))
            continue
        if not isinstance(w, dict) or not isinstance(w.get("name"), str) or w["name"] not in BUILTINS \
                or set(map(str, w)) - {"name", "batch", "seq_len"}:
            raise space_error(source, f"workloads[{i}]", f"expected {{name, batch, seq_len}} with a built-in name "
                                                  f"({', '.join(BUILTINS)}) or a serving scenario {{serve, isl, "
                                                  f"osl, batch or concurrency}}, not {w!r}")
        wls.append(dict(w))
    names = [w["name"] for w in wls]
    if len(set(names)) < len(names):
        raise space_error(source, "workloads", f"two workloads share a name ({', '.join(names)}); give serving ones a name")
    kinds = {w["name"]: SERVING_METRICS if "serve" in w else GEMM_METRICS for w in wls}
    objectives = data.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise space_error(source, "objectives", "give at least one objective, e.g. {metric: die_mm2, goal: min}")
    objs = []
    for i, o in enumerate(objectives):
        where = f"objectives[{i}]"
        if not isinstance(o, dict) or set(o) - {"metric", "goal", "workload"}:
            raise space_error(source, where, "expected {metric, goal, workload}")
        metric, goal, wl = o.get("metric"), o.get("goal"), o.get("workload")
        if metric not in DESIGN_METRICS + WORKLOAD_METRICS:
            raise space_error(source, f"{where}.metric", f"unknown metric {metric!r}; choose one of "
                                                  f"{', '.join(DESIGN_METRICS + WORKLOAD_METRICS)}")
        if goal not in ("max", "min"):
            raise space_error(source, f"{where}.goal", f"must be max or min, not {goal!r}")
        if metric in WORKLOAD_METRICS and wl not in names:
            raise space_error(source, f"{where}.workload", f"must name one of the space's workloads ({', '.join(names)}), "
                                                    f"not {wl!r}")
        if metric in WORKLOAD_METRICS and metric not in kinds[wl]:
            raise space_error(source, f"{where}.metric", f"{wl} has no {metric}; its metrics are {', '.join(kinds[wl])}")
        if metric in DESIGN_METRICS and wl is not None:
            raise space_error(source, f"{where}.workload", f"{metric} is a property of the design, not of a workload")
        objs.append(Objective(metric, goal, wl))
    constraints = _constraints(source, data.get("constraints") or {}, names)
    budget = space_checked(source, "budget_usd", check_positive, "budget_usd",
                           data.get("budget_usd", cost_inputs().default_budget_usd))
    gpus = data.get("gpus", list(REFERENCE_GPUS))
    if not isinstance(gpus, list) or not gpus:
        raise space_error(source, "gpus", "expected a list of GPU ids")
    for i, g in enumerate(gpus):
        _check_gpu(source, f"gpus[{i}]", g)
    corrected = data.get("corrected", False)
    if not isinstance(corrected, bool):
        raise space_error(source, "corrected", f"must be true or false, not {corrected!r}")
    return Space(source, base, parsed, tuple(wls), tuple(objs), dict(constraints), float(budget), tuple(gpus),
                 corrected)


def _constraints(source: str, constraints: Any, names: list[str]) -> dict:
    """A space's constraints, checked (each error names its field)."""
    if not isinstance(constraints, dict):
        raise space_error(source, "constraints", "expected a mapping")
    for key, value in constraints.items():
        if key not in CONSTRAINT_KEYS:
            raise space_error(source, f"constraints.{key}", f"unknown constraint; expected {', '.join(CONSTRAINT_KEYS)}")
        if key in ("die_mm2_max", "power_W_max"):
            space_checked(source, f"constraints.{key}", check_positive, key, value)
    if "rule_date" in constraints:
        space_checked(source, "constraints.rule_date", check_date, "rule_date", constraints["rule_date"])
    if "export_class" in constraints:
        value = constraints["export_class"]
        if not isinstance(value, str):
            raise space_error(source, "constraints.export_class", f"must be a class name such as none or 3A090.a, "
                                                                  f"not {value!r}")
        space_checked(source, "constraints.export_class", check_allowed, (value,))
    if "buyer" in constraints:          # the reference GPUs are marked with what this buyer may buy then
        if "rule_date" not in constraints:
            raise space_error(source, "constraints.buyer", "needs constraints.rule_date, the decision date")
        try:
            scenario(constraints["buyer"], str(constraints["rule_date"]))
        except UserError as exc:
            raise space_error(source, f"constraints.{exc.parameter or 'buyer'}", str(exc).split(": ", 1)[-1]) from None
    for key in ("buildable", "physically_feasible"):
        if key in constraints and not isinstance(constraints[key], bool):
            raise space_error(source, f"constraints.{key}", f"must be true or false, not {constraints[key]!r}")
    if constraints.get("buildable") and "buyer" not in constraints:
        raise space_error(source, "constraints.buildable", "needs constraints.buyer (and rule_date): buildable for whom")
    beat = constraints.get("beat") or []
    if not isinstance(beat, list):
        raise space_error(source, "constraints.beat", "expected a list of {gpu, workload, ratio}")
    for i, b in enumerate(beat):
        if not isinstance(b, dict) or set(b) != {"gpu", "workload", "ratio"} or b["workload"] not in names:
            raise space_error(source, f"constraints.beat[{i}]", "expected {gpu, workload (one of the space's), ratio}")
        space_checked(source, f"constraints.beat[{i}].ratio", check_positive, "ratio", b["ratio"])
        _check_gpu(source, f"constraints.beat[{i}].gpu", b["gpu"])
    return constraints


def _check_gpu(source: str, where: str, gpu: Any) -> None:
    if not isinstance(gpu, str):
        raise space_error(source, where, f"must be a GPU id, not {gpu!r}")
    space_checked(source, where, get_gpu, gpu)


def _serving_workload(source: str, where: str, w: dict) -> dict:
    """A serving scenario of a space, checked by the serving model's own checks."""
    if unknown := set(w) - set(SERVING_KEYS):
        raise space_error(source, f"{where}.{sorted(map(str, unknown))[0]}", f"unknown key; a serving workload takes "
                                                                      f"{', '.join(SERVING_KEYS)}")
    try:
        # latency targets without a load: each device serves at its goodput point
        by_goodput = Targets.checked(w.get("ttft_s"), w.get("tpot_s")).given and w.get("batch") is None
        check_request(w["serve"], isl=w.get("isl"), osl=w.get("osl"), batch=w.get("batch"),
                      concurrency=1 if by_goodput and w.get("concurrency") is None else w.get("concurrency"))
        if w.get("tp") is not None:
            check_int("tp", w["tp"])
    except UserError as exc:
        field = "serve" if exc.parameter == "model" else exc.parameter or "serve"
        raise space_error(source, f"{where}.{field}", str(exc).split(": ", 1)[-1]) from None
    if w.get("tp") is not None:         # it must split the model's heads, FFN and hidden size (as serve --tp)
        space_checked(source, f"{where}.tp", check_parallelism, get_llm(w["serve"]), w["tp"], 1)
    name = w.get("name", f"{w['serve']}-serving")
    if not isinstance(name, str) or not name:
        raise space_error(source, f"{where}.name", f"must be a non-empty string, not {name!r}")
    return {**w, "name": name}


def _steps(p: dict) -> int:
    """Values of a stepped range (beyond 10**15, counted as 10**15: no grid is that large)."""
    n = (p["max"] - p["min"]) / p["step"]
    return int(math.floor(n + 1e-9)) + 1 if n < 1e15 else 10**15


def _parse_range(source: str, where: str, spec) -> dict:
    if isinstance(spec, list):
        if not spec:
            raise space_error(source, where, "an empty list of values")
        if any(not isinstance(v, (int, float, str)) for v in spec):
            raise space_error(source, where, f"values must be numbers or names, not {spec!r}")
        return {"values": sorted(spec, key=lambda v: (str(type(v)), v)), "int": False}
    if not isinstance(spec, dict) or set(spec) - {"min", "max", "step"} or not {"min", "max"} <= set(spec):
        raise space_error(source, where, "expected a list of values or {min, max[, step]}")
    lo, hi, step = spec["min"], spec["max"], spec.get("step")
    for key in ("min", "max", "step"):
        if spec.get(key) is not None:                  # a number, finite (not .inf or .nan)
            space_checked(source, f"{where}.{key}", check_real, key, spec[key])
    nums = [v for v in (lo, hi, step) if v is not None]
    if hi < lo or (step is not None and step <= 0):
        raise space_error(source, where, f"an empty range (min {lo}, max {hi}, step {step})")
    return {"min": lo, "max": hi, "step": step, "int": all(isinstance(v, int) for v in nums)}


__all__ = ["CONSTRAINT_KEYS", "DESIGN_METRICS", "GEMM_METRICS", "Objective", "REFERENCE_GPUS", "SERVING_METRICS",
           "SPACES_DIR", "Space", "WORKLOAD_METRICS", "load_space", "space_error", "MAX_GRID_POINTS", "space_checked"]
