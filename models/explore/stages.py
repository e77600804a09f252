"""The stages of an exploration's point: the analytic stage that evaluates a design, the
judge of its constraints, the Pareto front, and the deep stage run on the front.

Every number of the analytic stage comes from the models that ``systolab compare`` uses
(the chip model through the mapper, area, power, cost, export); the fleet metrics follow
from them and the budget when the points are read, so changing the budget re-evaluates
nothing.

**The Pareto front** is computed exactly from the stored feasible points (no point of the
front is dominated by another feasible point in every objective).

**The deep stage** checks a point's hardware (its RTL on a simulator, its synthesised
area); the models do not run simulators, so the caller injects it: a module-level
function (it is pickled to the executor's workers) of ``(base chip name or None, design
dict, seed)`` that returns a dict or a result with ``to_dict()``
(:func:`systolab.flows.deep.deep_check` is the project's).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ConfigError, SimulationError, UserError
from ..chip.config import ReticleWarning
from ..cost.pricing import usd_per_million_tokens
from ..legal.build import buildability
from ..legal.purchase import scenario
from ..report.chip import as_chip, get_chip
from ..report.compare import at_attainable_clock
from ..report.evaluate import evaluate_gpu
from ..serving.goodput import Targets, goodput
from ..serving.model import serve_auto
from ..silicon.feasibility import chip_feasibility
from ..silicon.timing import TimingWarning
from ..workloads.catalog import get_workload
from .lifetime import lifetime_metrics, lifetime_record
from .space import Space
from .store import Store

#: The deep stage: ``(base chip name or None, design dict, seed)`` to its result (a dict,
#: or an object with ``to_dict()``); a tool that fails raises UserError or SimulationError.
DeepStage = Callable[[tuple], Any]


def serving_metrics(device, w: dict) -> dict:
    """A serving workload's metrics on ``device`` (a chip or a GPU id, in its own format).

    With latency targets (``ttft_s``, ``tpot_s``) the metrics also hold ``concurrency``
    (the load served), ``meets_targets`` and ``reason``; without ``batch`` and
    ``concurrency`` the load is the goodput point's. A device that misses the targets has
    zero throughput (no energy or cost per token) and the latencies of the point nearest
    to them. A priced device's served point also holds ``lifetime``
    (:func:`~.lifetime.lifetime_record`), which :func:`with_fleet` turns into the lifetime
    cost per million tokens at the space's budget."""
    targets = Targets(w.get("ttft_s"), w.get("tpot_s"))
    if targets.given and w.get("batch") is None and w.get("concurrency") is None:
        g = goodput(device, w["serve"], tp=w.get("tp"), isl=w["isl"], osl=w["osl"], ttft_s=targets.ttft_s,
                    tpot_s=targets.tpot_s)
        r, reason = g.chosen, g.reason
    else:
        r = serve_auto(device, w["serve"], tp=w.get("tp"), isl=w["isl"], osl=w["osl"], batch=w.get("batch"),
                       concurrency=w.get("concurrency"))
        reason = targets.reason(r)
    out: dict[str, Any] = {
        "throughput": r.output_tokens_per_s, "seconds": r.tpot_s, "ttft_s": r.ttft_s, "devices": r.devices,
        "energy_per_unit_J": r.energy_per_token_J, "usd_per_million_units": r.usd_per_million_tokens}
    if targets.given:
        out.update(concurrency=r.sequences, meets_targets=reason is None, reason=reason)
        if reason is not None:                       # no capacity
            out.update(throughput=0.0, energy_per_unit_J=None, usd_per_million_units=None)
    if out["throughput"]:
        out["lifetime"] = lifetime_record(device, r)
    return out


def missed_targets(space: Space, metrics: dict) -> list[str]:
    """The latency targets each serving workload misses, as ``<target>[<workload>]``."""
    out = []
    for w in space.workloads:
        m = metrics["workloads"].get(w["name"], {})
        if m.get("meets_targets") is False:
            missed = Targets(w.get("ttft_s"), w.get("tpot_s")).missed(m["ttft_s"], m["seconds"])
            out += [f"{t}[{w['name']}]" for t in missed]
    return out


def evaluate_point(space: Space, design: dict) -> dict:
    """The metrics of one design on the space's workloads (what the store keeps; the
    constraints are judged when the points are read, :func:`judge`). A design the chip
    model refuses, or one whose memory cannot hold a workload, is marked ``invalid``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReticleWarning)
        try:
            chip = get_chip(space.base).derive(**design)
        except (UserError, ConfigError) as exc:     # a combination the chip model refuses
            return {"invalid": "design", "error": str(exc), "workloads": {}}
        warnings.simplefilter("ignore", TimingWarning)    # the note below says it instead
        stated = chip.clock_mhz
        attained, clock_note = at_attainable_clock(chip)  # a float chip runs at its attainable clock, as in compare
        chip = as_chip(attained)
    s = chip.summary()
    out: dict[str, Any] = {"die_mm2": s["die_mm2"], "power_W": s["tdp_W"], "unit_cost_usd": s["unit_cost_usd"],
                           "peak_tops": s["peak_tops"], "tpp": s["tpp"],
                           "eccn": chip.export_class(rule_date=space.constraints.get("rule_date")).eccn,
                           "physical_limits_failed": [c.name for c in chip_feasibility(chip).checks if not c.ok],
                           "workloads": {}}
    if clock_note:
        out.update(clock_mhz=chip.clock_mhz, stated_clock_mhz=stated, clock_note=clock_note)
    if "buyer" in space.constraints:
        sc = scenario(space.constraints["buyer"], str(space.constraints["rule_date"]))
        out["build_status"] = buildability(chip, sc, options=False).status
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
    or ``design`` / ``capacity`` for an invalid design; ``no_value[<objective>]`` for a
    point that breaks none but has no value to rank it by, such as a lifetime cost when
    the budget buys no unit after the NRE) and ``feasible``."""
    c = space.constraints
    if "invalid" in metrics:
        failed = [metrics["invalid"]]
    else:
        metrics = with_fleet(metrics, space.budget_usd, corrected=space.corrected)
        failed = [k for k, bad in (("export_class", "export_class" in c and metrics["eccn"] != c["export_class"]),
                                   ("die_mm2_max", "die_mm2_max" in c and metrics["die_mm2"] > c["die_mm2_max"]),
                                   ("power_W_max", "power_W_max" in c and metrics["power_W"] > c["power_W_max"]),
                                   ("buildable", bool(c.get("buildable")) and metrics.get("build_status") != "yes"),
                                   ("physically_feasible",
                                    bool(c.get("physically_feasible")) and bool(metrics.get("physical_limits_failed"))))
                  if bad]
        failed += [f"beat[{i}]" for i, (b, t) in enumerate(zip(c.get("beat") or [], targets))
                   if metrics["workloads"][b["workload"]]["throughput"] < t]
        failed += missed_targets(space, metrics)
        if not failed:      # e.g. a budget that buys no unit after the NRE: nothing to rank the point by
            failed += [f"no_value[{o.label}]" for o, v in zip(space.objectives, objective_values(space, metrics))
                       if v is None]
    return {**metrics, "failed": failed, "feasible": not failed}


def with_fleet(metrics: dict, budget_usd: float, *, corrected: bool = False) -> dict:
    """``metrics`` with what ``budget_usd`` buys: ``fleet_units`` (whole devices at the unit
    cost) and each workload's ``fleet_throughput`` (its whole groups of ``devices``, one
    for a built-in workload); ``None`` without a unit cost or a throughput. A serving
    workload's ``lifetime`` record becomes its lifetime metrics
    (:func:`~.lifetime.lifetime_metrics`: ``usd_per_million_tokens_tco``,
    ``lifetime_cost_per_device_usd``, ``tco_units``; with ``corrected``, at the decision's
    modal area and power errors)."""
    units = math.floor(budget_usd / metrics["unit_cost_usd"]) if metrics.get("unit_cost_usd") else None

    def fleet(m: dict) -> float | None:
        if units is None or m.get("throughput") is None:
            return None
        group = m.get("devices") or 1
        return units // group * group * m["throughput"]

    def lifetime(m: dict) -> dict:
        if "ttft_s" not in m:                         # a built-in workload (or none served): no lifetime cost
            return {}
        return lifetime_metrics(m.get("lifetime"), m.get("throughput"), budget_usd, corrected=corrected)

    return {**metrics, "fleet_units": units,
            "workloads": {w: {**{k: v for k, v in m.items() if k != "lifetime"}, "fleet_throughput": fleet(m),
                              **lifetime(m)}
                          for w, m in metrics["workloads"].items()}}


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


def evaluate_job(job: tuple[Space, dict]) -> dict:
    """:func:`evaluate_point` of ``(space, design)``: the analytic stage as an executor's job."""
    space, design = job
    return evaluate_point(space, design)


def deep_job(job: tuple[DeepStage, tuple]) -> dict:
    """The deep stage ``stage`` of one point, ``job`` = (stage, its job), as a dict; a tool
    that fails is reported, not stored (a rerun tries again)."""
    stage, point = job
    try:
        result = stage(point)
    except (UserError, SimulationError) as exc:
        return {"error": str(exc)}
    return result if isinstance(result, dict) else result.to_dict()


def array_pes(space: Space, design: dict) -> int:
    """Processing elements of one core of the design's chip."""
    core = get_chip(space.base).derive(**design).core
    return core.rows * core.cols


def run_deep(sp: Space, store: Store, version: str, front: list[dict], k: int, seed: int, ex,
             stage: DeepStage) -> list[dict]:
    """The deep stage ``stage`` of the front's first ``k`` points (best first objective
    first), those not yet in the store's ``deep`` table run on the executor, each stored
    as it returns."""
    first = sp.objectives[0]
    ranked = sorted(front, key=lambda p: objective_values(sp, p["result"])[0] * (-1 if first.goal == "max" else 1))[:k]
    done = {p["design_hash"]: r for p in ranked if (r := store.deep(p["design_hash"])) is not None}
    todo = [p for p in ranked if p["design_hash"] not in done]
    # the largest arrays first, so that the last job to finish is a short one
    todo.sort(key=lambda p: -array_pes(sp, p["design"]))
    for i, result in ex.imap(deep_job, [(stage, (sp.base, p["design"], seed)) for p in todo]):
        h = todo[i]["design_hash"]
        if "error" not in result:
            store.put_deep(h, version, result)
        done[h] = result
    return [{"design_hash": p["design_hash"], "design": p["design"], **done[p["design_hash"]]} for p in ranked]


__all__ = ["DeepStage", "array_pes", "deep_job", "evaluate_job", "evaluate_point", "gpu_targets", "judge",
           "missed_targets", "objective_values", "pareto", "run_deep", "serving_metrics", "with_fleet"]
