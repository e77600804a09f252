"""The decision: build the chip or buy GPUs, for a buyer on a date, and how sure that is.

:func:`decide` composes the layers below it:

- **who may have what** (:mod:`~systolab.models.decision.options`): the GPUs the buyer may
  buy (or buy only with a licence, so marked) and whether they could have the chip built;
- **each option within the service targets** (:mod:`~systolab.models.decision.served`):
  its goodput point and its power by phase;
- **total cost, the deployment a budget buys, time to silicon and the incumbent's
  improvement** (:mod:`~systolab.models.decision.evaluate`), as one vectorised model;
- **uncertainty**: a seeded Monte Carlo of every uncertain input (correlated where one
  figure serves every option: one electricity price, one PUE, one utilisation), Sobol
  indices with SALib, a one-at-a-time tornado, and the break-even of the top input.

The headline measure is tokens delivered per $ over the horizon: the budget buys the whole
deployment (hardware, facility and lifetime opex; the chip's NRE first); the chip delivers
only after its time to silicon; GPUs from the decision date, improving with software.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...checks import check_int, check_positive, check_real, check_seed
from ...errors import UserError
from ..chip.config import ChipConfig
from ..cost.pricing import cost_inputs
from ..cost.tco import Deployment
from ..cost.timeline import Option as TimelineOption
from ..cost.timeline import break_even as timeline_break_even
from ..cost.timeline import timeline
from ..frames import data_frame
from ..gpu.specs import load_gpus
from ..legal.purchase import ANY_BUYER, Scenario, scenario
from ..report.chip import get_chip
from ..report.compare import DEFAULT_BUYER, DEFAULT_DATE, at_attainable_clock, default_chip_for
from ..serving.goodput import Targets
from ..serving.model import check_request
from .evaluate import Setting, decision_data, decision_inputs, decision_model, deployments_at_mode
from .options import Option, chip_option, gpu_option
from .sensitivity import BreakEven, SobolResult, Tornado, break_even, sobol, tornado
from .served import Served, serve_option
from .uncertainty import MonteCarlo, Uncertain, propagate

#: The measures summarised per option (each an output of the decision model, ``<measure>.<option>``).
MEASURES = ("usd_per_Mtok", "tokens_per_usd_h", "fleet_tokens_per_s", "units", "facility_MW")


@dataclass(frozen=True)
class OptionResult:
    """One option's answer: the legal view, the serving point and the Monte Carlo's
    distribution of each measure (:class:`~.uncertainty.OutputSummary`: mean, std, 5th/50th/95th
    percentiles and the count of draws with no finite value, e.g. no units bought)."""

    option: Option
    served: Served | None
    measures: dict[str, dict[str, float]]
    p_build_beats: float | None          # for a GPU: P(the chip delivers more tokens per $ over the horizon)
    deployment: Deployment | None        # the deployment the budget buys with every input at its mode

    def to_dict(self) -> dict[str, Any]:
        return {**self.option.to_dict(), "served": self.served.to_dict() if self.served else None,
                "measures": self.measures, "p_build_beats_this": self.p_build_beats,
                "deployment_at_mode": _deployment_dict(self.deployment)}


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` answers (see the module). ``options`` in the order weighed (GPUs,
    then the chip), then those not weighed; ``p_build_beats_buy`` per weighed GPU;
    ``sensitivity`` the Sobol indices of the chip's advantage over the best GPU (or of its
    $/M tokens when no GPU is weighed); ``break_evens`` the break-even of each of the top 5
    inputs (searched beyond their ranges), ``break_even`` the first that crosses (else the
    top one's), and
    ``break_even_date`` when the chip's cumulative tokens per $ first reach the best GPU's."""

    scenario: Scenario
    question: dict[str, Any]
    options: tuple[OptionResult, ...]
    p_build_beats_buy: dict[str, float]
    best_buy: str | None
    verdict: str
    sensitivity: SobolResult | None
    tornado: Tornado | None
    break_even: BreakEven | None
    break_even_date: dict[str, Any] | None
    break_evens: tuple[BreakEven, ...]
    inputs: tuple[Uncertain, ...]
    monte_carlo: MonteCarlo = field(repr=False)
    setting: Setting | None = field(default=None, repr=False)      # what the model held fixed (for re-runs)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.to_dict(), "question": self.question,
                "options": [o.to_dict() for o in self.options], "p_build_beats_buy": self.p_build_beats_buy,
                "best_buy": self.best_buy, "verdict": self.verdict,
                "sensitivity": self.sensitivity.to_dict() if self.sensitivity else None,
                "tornado": self.tornado.to_dict() if self.tornado else None,
                "break_even": self.break_even.to_dict() if self.break_even else None,
                "break_even_date": self.break_even_date, "break_evens": [b.to_dict() for b in self.break_evens],
                "inputs": [i.to_dict() for i in self.inputs], "notes": list(self.notes)}

    def to_frame(self) -> Any:
        """One row per option: its legal status and each measure's median and 90 % interval."""
        rows = []
        for o in self.options:
            row: dict[str, Any] = {"option": o.option.name, "side": o.option.side, "status": o.option.status,
                                   "weighed": o.option.weighed, "needs_licence": o.option.needs_licence,
                                   "p_build_beats_this": o.p_build_beats}
            for m, s in o.measures.items():
                row.update({f"{m}_p50": s["p50"], f"{m}_p5": s["p5"], f"{m}_p95": s["p95"]})
            rows.append(row)
        return data_frame(rows)


def _deployment_dict(dep: Deployment | None) -> dict[str, Any] | None:
    if dep is None:
        return None
    d = dep.to_dict()
    return {k: d[k] for k in ("units", "replicas", "nre_per_unit_usd", "total_per_unit_usd", "lines", "it_power_MW",
                              "facility_power_MW", "limited_by", "reason")}


def _resolve_chip(chip: str | ChipConfig | None, sc: Scenario) -> ChipConfig:
    if chip is None:
        return default_chip_for(None if sc.buyer == ANY_BUYER else sc)
    return get_chip(chip)


def _options(sc: Scenario, chip: ChipConfig, gpus: tuple[str, ...] | None) -> tuple[list[Option], Option]:
    ids = gpus if gpus is not None else tuple(load_gpus())
    if not ids:
        raise UserError("gpus: name at least one GPU", parameter="gpus")
    known = load_gpus()
    for g in ids:
        if g not in known:
            raise UserError(f"gpus: unknown GPU id {g!r}; choose from {', '.join(known)}", parameter="gpus")
    return [gpu_option(g, sc) for g in dict.fromkeys(ids)], chip_option(chip, sc)


def decide(*, buyer: str = DEFAULT_BUYER, date: str | dt.date = DEFAULT_DATE, chip: str | ChipConfig | None = None,
           gpus: tuple[str, ...] | None = None, model: str | None = None, isl: int | None = None,
           osl: int | None = None, ttft_s: float | None = None, tpot_s: float | None = None,
           budget_usd: float | None = None, power_cap_MW: float | None = None, horizon_years: float | None = None,
           draws: int | None = None, seed: int | None = None, sobol_base: int | None = None,
           overrides: Mapping[str, Any] | None = None, progress: Any = None) -> Decision:
    """Decide between building ``chip`` (default: the default chip the buyer could have
    built) and buying ``gpus`` (default: every GPU with a public price) for ``buyer`` on
    ``date``, serving ``model`` with ``isl`` prompt and ``osl`` output tokens per request
    within ``ttft_s``/``tpot_s`` (seconds; defaults from ``data/decision.yaml``: MLPerf's
    Llama-2-70B server targets), with ``budget_usd`` (whole deployments over their lifetime),
    an optional ``power_cap_MW`` of facility power, over ``horizon_years``; ``draws`` Monte
    Carlo draws from ``seed``. ``overrides`` replaces uncertain inputs by name (the names
    the report's input table lists): a number fixes one, ``(low, mode, high)`` or a
    ``{value, low, high, shape, source}`` row redraws it, e.g. ``{"memory.HBM.usd_per_GB":
    (12, 15, 25)}``. ``progress`` (a callable taking a stage name) is told each stage as it
    starts."""
    d = decision_data()
    dflt = d["defaults"]
    sc = scenario(buyer, date)
    tell = progress or (lambda stage: None)
    targets = Targets.checked(ttft_s if ttft_s is not None else d["targets"]["ttft_s"]["value"],
                              tpot_s if tpot_s is not None else d["targets"]["tpot_s"]["value"])
    ttft, tpot = targets.ttft_s, targets.tpot_s
    budget = check_positive("budget_usd", budget_usd if budget_usd is not None else cost_inputs().default_budget_usd)
    cap = None if power_cap_MW is None else check_positive("power_cap_MW", power_cap_MW)
    horizon = check_real("horizon_years", horizon_years if horizon_years is not None else dflt["horizon_years"],
                         lo=0.0, lo_open=True, hi=30.0)
    n = check_int("draws", draws if draws is not None else dflt["draws"], lo=100, hi=1_000_000)
    seed = check_seed("seed", seed if seed is not None else dflt["seed"])
    base = check_int("sobol_base", sobol_base if sobol_base is not None else dflt["sobol_base"], lo=16, hi=1 << 16)
    if base & (base - 1):
        raise UserError(f"sobol_base: must be a power of 2 (Sobol' sequences balance only then), not {base}",
                        parameter="sobol_base")
    # the question checked once: a bad model or length is the question's error, not a device's
    model = model if model is not None else dflt["model"]
    isl = isl if isl is not None else dflt["isl"]
    osl = osl if osl is not None else dflt["osl"]
    check_request(model, isl=isl, osl=osl, batch=1, concurrency=None)
    # a float chip runs at its attainable clock (its MAC's fmax), and the report says so
    chip_cfg, clock_note = at_attainable_clock(_resolve_chip(chip, sc))
    gpu_opts, chip_opt = _options(sc, chip_cfg, gpus)

    tell("serving each option within the targets")
    served: dict[str, Served] = {}
    for o in [*gpu_opts, chip_opt]:
        if o.weighed:
            served[o.name] = serve_option(o, chip_cfg if o.side == "build" else o.name, model=model, isl=isl,
                                          osl=osl, ttft_s=ttft, tpot_s=tpot)
    live = {k: v for k, v in served.items() if v.tokens_per_s > 0}
    setting = Setting(budget, horizon, cap, tuple(live[o.name] for o in gpu_opts if o.name in live),
                      live.get(chip_opt.name), chip_cfg if chip_opt.name in live else None)
    if not setting.gpus and setting.chip is None:
        raise UserError("gpus: no option both is open to this buyer on this date and meets the targets; "
                        + "; ".join(f"{k}: {v.reason}" for k, v in served.items()), parameter="gpus")

    tell("Monte Carlo")
    inputs = with_overrides(decision_inputs(setting), overrides)
    fn = decision_model(setting)
    mc = propagate(fn, inputs, n, seed)
    return _compose(sc, setting, gpu_opts, chip_opt, served, inputs, fn, mc, tell,
                    {"model": model, "isl": isl, "osl": osl, "ttft_s": ttft, "tpot_s": tpot, "budget_usd": budget,
                     "power_cap_MW": cap, "horizon_years": horizon, "draws": n, "seed": seed, "sobol_base": base,
                     "chip": chip_cfg.name, "node": chip_cfg.node, "clock_note": clock_note})


def with_overrides(inputs: list[Uncertain], overrides: Mapping[str, Any] | None) -> list[Uncertain]:
    """``inputs`` with those named in ``overrides`` replaced (see :func:`decide`); an unknown
    name or a bad value is a :class:`UserError` naming ``overrides``."""
    if not overrides:
        return inputs
    if not isinstance(overrides, Mapping):
        raise UserError(f"overrides: expected a mapping of input name -> value, not {type(overrides).__name__}",
                        parameter="overrides")
    by_name = {i.name: i for i in inputs}
    out = dict(by_name)
    for name, value in overrides.items():
        old = by_name.get(name)
        if old is None:
            near = [n for n in by_name if str(name).split(".")[-1] in n][:5]
            raise UserError(f"overrides: no uncertain input named {name!r} in this decision"
                            + (f" (did you mean {', '.join(near)}?)" if near else "; the report's input table "
                               "lists them"), parameter="overrides")
        try:
            if isinstance(value, Mapping):
                row = {"source": "given by the caller", "unit": old.unit, **value}
                new = Uncertain.from_row(name, row, kind=old.kind)
            elif isinstance(value, (tuple, list)) and len(value) == 3:
                lo, mode, hi = value
                new = Uncertain(name, lo, mode, hi, "triangular", "given by the caller", old.unit, old.group, old.kind)
            else:
                new = Uncertain(name, value, value, value, "fixed", "given by the caller", old.unit, old.group,
                                old.kind)
        except UserError as exc:
            raise UserError(f"overrides: {exc}", parameter="overrides") from None
        out[name] = new
    return list(out.values())


def _compose(sc: Scenario, s: Setting, gpu_opts: list[Option], chip_opt: Option, served: dict[str, Served],
             inputs: list[Uncertain], fn: Any, mc: MonteCarlo, tell: Any, question: dict[str, Any]) -> Decision:
    chip_name = s.chip.option.name if s.chip else None
    p_beats = {g.option.name: float(np.mean(mc[f"advantage.{g.option.name}"] > 0)) for g in s.gpus} if chip_name else {}
    modes = {i.name: np.array([i.mode]) for i in inputs}
    at_mode = fn(modes)
    # the GPU the chip is measured against: the best open without a licence, else the best with one
    pool = [g for g in s.gpus if not g.option.needs_licence] or list(s.gpus)
    best = max(pool, key=lambda g: float(at_mode[f"tokens_per_usd_h.{g.option.name}"][0])).option.name \
        if pool else None
    sens = torn = be = None
    bes: list[BreakEven] = []
    if chip_name:
        output = f"advantage.{best}" if best else f"usd_per_Mtok.{chip_name}"
        tell("sensitivity (Sobol, SALib)")
        sens = sobol(fn, inputs, output, n_base=question["sobol_base"], seed=question["seed"])
        torn = tornado(fn, inputs, output)
        if best:
            bes = _break_evens(fn, inputs, sens, output)
            be = next((b for b in bes if b.value is not None), bes[0] if bes else None)
    be_date = _break_even_date(sc, s, mc, chip_name) if chip_name and s.gpus else None
    deps = deployments_at_mode(s, inputs)
    results = []
    for o in [*gpu_opts, chip_opt]:
        measures = {m: mc.summary(f"{m}.{o.name}").to_dict() for m in MEASURES if f"{m}.{o.name}" in mc.outputs}
        results.append(OptionResult(o, served.get(o.name), measures, p_beats.get(o.name), deps.get(o.name)))
    strength = {g.option.name: float(at_mode[f"tokens_per_usd_h.{g.option.name}"][0]) for g in s.gpus}
    verdict = _verdict(sc, chip_opt, chip_name, p_beats, best, served, gpu_opts, s, strength)
    notes = _notes(gpu_opts, chip_opt) + ((question["clock_note"],) if question.get("clock_note") else ())
    return Decision(sc, question, tuple(results), p_beats, best, verdict, sens, torn, be, be_date, tuple(bes),
                    tuple(inputs), mc, s, notes)


def _break_evens(fn: Any, inputs: list[Uncertain], sens: SobolResult, output: str) -> list[BreakEven]:
    """The break-even of each of the top 5 inputs by total-order index (the others at their
    mode), searched over its range widened fourfold (a quantile stays in [0, 1]; a positive
    input stays positive): where building and buying deliver the same."""
    by_name = {i.name: i for i in inputs}
    out = []
    for idx in sens.top(5):
        inp = by_name.get(idx.inputs[0])
        if inp is None or not inp.varies:
            continue
        if inp.unit == "quantile":
            search = (0.0, 1.0)
        else:
            lo, hi = inp.low / 4 if inp.low > 0 else inp.low - 1.5 * (inp.high - inp.low), inp.high * 4 \
                if inp.high > 0 else inp.high + 1.5 * (inp.high - inp.low)
            search = (lo, hi)
        out.append(break_even(fn, inputs, inp.name, output, threshold=0.0, who="building", search=search))
    return out


def _break_even_date(sc: Scenario, s: Setting, mc: MonteCarlo, chip: str) -> dict[str, Any]:
    """When the chip's cumulative tokens per $ first reach the best GPU's, over the draws."""
    opts = [TimelineOption(g.option.name, sc.date, mc[f"fleet_tokens_per_s.{g.option.name}"] *
                           mc.samples["operations.utilization"], s.budget_usd,
                           mc.samples["incumbent.software_gain_per_year"], 0.0, "gpu") for g in s.gpus]
    opts.append(TimelineOption(chip, sc.date, mc[f"fleet_tokens_per_s.{chip}"] * mc.samples["operations.utilization"],
                               s.budget_usd, mc.samples["error.chip_software_gain_per_year"],
                               mc[f"delay_years.{chip}"] * 12, "chip"))
    be = timeline_break_even(timeline(opts, start=sc.date, horizon_years=s.horizon_years), chip)
    return be.to_dict()


def _verdict(sc: Scenario, chip_opt: Option, chip: str | None, p: dict[str, float], best: str | None,
             served: dict[str, Served], gpu_opts: list[Option], s: Setting, strength: dict[str, float]) -> str:
    """The answer in words: first among what the buyer may have without a licence, then,
    marked as such, against the GPUs a licence would open (the strongest: most tokens per $
    over the horizon, ``strength``, at the inputs' modes)."""
    who = f"a buyer in {sc.buyer} on {sc.date}" if sc.buyer != ANY_BUYER else f"any buyer on {sc.date}"
    live = {g.option.name for g in s.gpus}
    free = [o.name for o in gpu_opts if o.name in live and not o.needs_licence]
    licensed = [o.name for o in gpu_opts if o.name in live and o.needs_licence]
    if chip is None:
        why = (chip_opt.why[0] if chip_opt.why else chip_opt.status) if not chip_opt.weighed else \
            (served[chip_opt.name].reason or "")
        head = f"Building {chip_opt.name} is not an option for {who} ({why})."
        return f"{head} Buy {best}." if best else head
    parts = []
    if free:
        b = max(free, key=lambda g: strength[g])
        parts.append(f"{'Build' if p[b] >= 0.5 else 'Buy'}: building {chip} delivers more tokens per $ over the "
                     f"horizon than buying {b} with probability {p[b]:.0%} (no licence needed for either).")
    else:
        parts.append(f"Without a licence, building {chip} is the only option weighed that is open to {who}: no GPU "
                     "with a public price that meets the targets may be bought without one.")
    if licensed:
        b = max(licensed, key=lambda g: strength[g])
        parts.append(f"If a licence were granted ({', '.join(licensed)}: case-by-case or licence required), "
                     f"building would beat buying {b}, the strongest of them, with probability {p[b]:.0%}.")
    return " ".join(parts)


def _notes(gpu_opts: list[Option], chip_opt: Option) -> tuple[str, ...]:
    out = [f"{o.name}: not weighed: {'; '.join(o.why[-1:])}" for o in gpu_opts if not o.weighed]
    if not chip_opt.weighed:
        out.append(f"{chip_opt.name}: not weighed: {chip_opt.status.replace('_', ' ')}")
    return tuple(out)
