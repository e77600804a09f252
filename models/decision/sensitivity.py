"""Which inputs move an output, and where an input flips the decision.

- :func:`sobol`: global variance-based sensitivity with SALib (Saltelli's sampling scheme
  on a scrambled Sobol' sequence; SALib's estimators: Saltelli et al. 2010 for the
  first-order ``S1``, Jansen 1999 for the total-order ``ST``), with bootstrap confidence
  intervals, per input or group (a group is one variable). The variables are taken as
  independent: stated correlations do not apply here (docs/uncertainty.md).
- :func:`tornado`: one input (or group) at a time at its low and high, the rest at their mode.
- :func:`break_even`: the value of one input, the rest at their mode, where an output
  crosses a threshold (``scipy.optimize.brentq``), and the sentence that says so.

Every model ``fn`` is vectorised: ``fn({input: array}) -> {output: array}``, called once
per batch of points.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from SALib.analyze import sobol as salib_analyze
from SALib.sample import sobol as salib_sample
from scipy.optimize import brentq

from ...checks import check_callable, check_int, check_real, check_seed
from ...errors import UserError
from .uncertainty import Model, Uncertain, evaluate, variables


def _output(fn: Model, values: Mapping[str, np.ndarray], n: int, output: str, *, chunk: int | None = None,
            progress: bool = False) -> np.ndarray:
    outs = evaluate(fn, values, n, chunk=chunk, progress=progress, desc="Sobol' points")
    if output not in outs:
        raise UserError(f"output: the model has no output {output!r}; it has {', '.join(outs)}", parameter="output")
    return outs[output]


def _at_quantiles(inputs: Sequence[Uncertain], quantiles: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Every input's values: varying ones at their variable's quantiles, fixed ones at their mode."""
    return {i.name: i.ppf(quantiles[i.key]) if i.key in quantiles and i.varies else np.full(n, i.mode) for i in inputs}


@dataclass(frozen=True)
class SobolIndex:
    """One variable's Sobol' indices (shares of the output's variance, 0..1) and the
    half-widths of their 95 % bootstrap confidence intervals. ``inputs``: the inputs it
    moves (several for a group)."""

    name: str
    inputs: tuple[str, ...]
    S1: float
    S1_conf: float
    ST: float
    ST_conf: float

    def to_dict(self) -> dict:
        return {"name": self.name, "inputs": list(self.inputs), "S1": self.S1, "S1_conf": self.S1_conf,
                "ST": self.ST, "ST_conf": self.ST_conf}


@dataclass(frozen=True)
class SobolResult:
    """Sobol' indices of ``output`` for every variable, largest total-order index first."""

    output: str
    indices: tuple[SobolIndex, ...]
    n_base: int
    n_evaluations: int
    seed: int
    variance: float

    def top(self, k: int = 5) -> tuple[SobolIndex, ...]:
        """The ``k`` variables with the largest total-order index."""
        return self.indices[:check_int("k", k)]

    def __getitem__(self, name: str) -> SobolIndex:
        for s in self.indices:
            if s.name == name:
                return s
        raise UserError(f"name: no variable {name!r} in the Sobol' result", parameter="name")

    def to_dict(self) -> dict:
        return {"output": self.output, "n_base": self.n_base, "n_evaluations": self.n_evaluations, "seed": self.seed,
                "variance": self.variance, "indices": [s.to_dict() for s in self.indices]}

    def to_frame(self) -> pd.DataFrame:
        """One row per variable: name, inputs, S1, S1_conf, ST, ST_conf."""
        return pd.DataFrame([{**s.to_dict(), "inputs": ", ".join(s.inputs)} for s in self.indices])


def sobol(fn: Model, inputs: Sequence[Uncertain], output: str, *, n_base: int = 1024, seed: int = 0,
          num_resamples: int = 100, chunk: int | None = None, progress: bool = False) -> SobolResult:
    """Sobol' indices of ``output`` with SALib: ``n_base * (k + 2)`` model points for ``k``
    variables (groups count once, fixed inputs not at all), one vectorised call of ``fn`` (or one per ``chunk``).

    ``n_base`` must be a power of 2 (Sobol' sequences are balanced only then). The same
    ``seed`` gives the same indices (SALib's scrambling and bootstrap take it). ``chunk``
    and ``progress`` as for :func:`~.uncertainty.propagate`.
    """
    n_base = check_int("n_base", n_base, lo=2, hi=2**24)
    if n_base & (n_base - 1):
        raise UserError(f"n_base: must be a power of 2 (a Sobol' sequence is balanced only then), not {n_base}",
                        parameter="n_base")
    seed = check_seed("seed", seed)
    num_resamples = check_int("num_resamples", num_resamples, lo=2, hi=10_000)
    groups = variables(inputs)
    if not groups:
        raise UserError("inputs: every input is fixed; nothing varies", parameter="inputs")
    keys = list(groups)
    problem = {"num_vars": len(keys), "names": keys, "bounds": [[0.0, 1.0]] * len(keys)}
    u = salib_sample.sample(problem, n_base, calc_second_order=False, scramble=True, seed=seed)
    n = len(u)
    y = _output(fn, _at_quantiles(inputs, {k: u[:, j] for j, k in enumerate(keys)}, n), n, output, chunk=chunk,
                progress=progress)
    if not np.all(np.isfinite(y)):
        raise UserError(f"output: {output!r} is not finite at {n - np.count_nonzero(np.isfinite(y))} of {n} points; "
                        "Sobol' indices need a finite output", parameter="output")
    variance = float(np.var(y))
    if np.ptp(y) <= np.finfo(float).eps * max(1.0, float(np.max(np.abs(y)))):   # nothing moves the output
        zeros = tuple(SobolIndex(k, tuple(i.name for i in groups[k]), 0.0, 0.0, 0.0, 0.0) for k in keys)
        return SobolResult(output, zeros, n_base, n, seed, variance)
    # SALib 1.5-1.6 seeds its bootstrap only `if seed:`, so seed 0 would leave the
    # confidence intervals random: it gets seed + 1 (any seed works the same way)
    si = salib_analyze.analyze(problem, y, calc_second_order=False, num_resamples=num_resamples, conf_level=0.95,
                               print_to_console=False, seed=seed + 1)
    found = [SobolIndex(k, tuple(i.name for i in groups[k]), float(si["S1"][j]), float(si["S1_conf"][j]),
                        float(si["ST"][j]), float(si["ST_conf"][j])) for j, k in enumerate(keys)]
    found.sort(key=lambda s: (-s.ST, -s.S1, s.name))
    return SobolResult(output, tuple(found), n_base, n, seed, variance)


@dataclass(frozen=True)
class TornadoBar:
    """The output with one variable at its low and at its high (the rest at their mode).
    ``low``/``high``: the input's own bounds (None for a group of several inputs)."""

    name: str
    inputs: tuple[str, ...]
    low: float | None
    high: float | None
    output_at_low: float
    output_at_high: float

    @property
    def swing(self) -> float:
        return abs(self.output_at_high - self.output_at_low)

    def to_dict(self) -> dict:
        return {"name": self.name, "inputs": list(self.inputs), "low": self.low, "high": self.high,
                "output_at_low": self.output_at_low, "output_at_high": self.output_at_high, "swing": self.swing}


@dataclass(frozen=True)
class Tornado:
    """One-at-a-time sensitivity of ``output``: ``base`` with every input at its mode, and
    one bar per variable, largest swing first."""

    output: str
    base: float
    bars: tuple[TornadoBar, ...]

    def to_dict(self) -> dict:
        return {"output": self.output, "base": self.base, "bars": [b.to_dict() for b in self.bars]}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{**b.to_dict(), "inputs": ", ".join(b.inputs)} for b in self.bars])


def tornado(fn: Model, inputs: Sequence[Uncertain], output: str) -> Tornado:
    """Each variable (an input, or a group moved together) at its low and at its high, the
    others at their mode: ``1 + 2k`` points in one vectorised call. Bars sorted by swing."""
    groups = variables(inputs)
    keys = list(groups)
    n = 1 + 2 * len(keys)
    values = {i.name: np.full(n, i.mode) for i in inputs}
    for j, k in enumerate(keys):
        for i in groups[k]:
            values[i.name][1 + 2 * j] = i.low
            values[i.name][2 + 2 * j] = i.high
    y = _output(fn, values, n, output)
    bars = []
    for j, k in enumerate(keys):
        members = groups[k]
        one = members[0] if len(members) == 1 else None
        bars.append(TornadoBar(k, tuple(i.name for i in members), one.low if one else None, one.high if one else None,
                               float(y[1 + 2 * j]), float(y[2 + 2 * j])))
    bars.sort(key=lambda b: (-b.swing if math.isfinite(b.swing) else -math.inf, b.name))
    return Tornado(output, float(y[0]), tuple(bars))


@dataclass(frozen=True)
class BreakEven:
    """Where ``output`` crosses ``threshold`` as one input moves (the rest at their mode).

    ``value``: the input's value at the first crossing in ``searched`` (None when there is
    none: ``reason`` says why); ``in_range``: whether it lies within the input's own
    [low, high]; ``output_at_low``/``output_at_high``: the output at the ends of ``searched``.
    ``text``: the plain sentence ("building wins unless HBM $/GB is above 18.2 USD/GB").
    """

    input: str
    output: str
    threshold: float
    value: float | None
    searched: tuple[float, float]
    in_range: bool
    output_at_low: float
    output_at_high: float
    crossings: int
    text: str
    reason: str | None

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "threshold": self.threshold, "value": self.value,
                "searched": list(self.searched), "in_range": self.in_range, "output_at_low": self.output_at_low,
                "output_at_high": self.output_at_high, "crossings": self.crossings, "text": self.text,
                "reason": self.reason}


#: Points of the scan that finds the sign changes before ``brentq`` refines one.
SCAN_POINTS = 257


def _moved(inputs: Sequence[Uncertain], target: Uncertain, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every input's values as ``target`` takes ``x``: the other members of its group at the
    same quantile (clipped to the ends of their range), the rest at their mode."""
    q = np.clip(target.cdf(x), 0.0, 1.0) if target.group else None
    out = {}
    for i in inputs:
        if i is target:
            out[i.name] = np.asarray(x, dtype=float)
        elif q is not None and i.group == target.group and i.varies:
            out[i.name] = i.ppf(q)
        else:
            out[i.name] = np.full(len(x), i.mode)
    return out


def break_even(fn: Model, inputs: Sequence[Uncertain], name: str, output: str, *, threshold: float = 0.0,
               search: tuple[float, float] | None = None, wins_when: str = "above", who: str = "building",
               label: str | None = None) -> BreakEven:
    """The value of input ``name`` at which ``output`` crosses ``threshold``, the others at
    their mode (members of its group follow it at the same quantile).

    The search covers the input's [low, high], or ``search=(lo, hi)`` (a wider bracket
    to look beyond the stated range). ``who`` wins where ``output`` is ``wins_when``
    (``"above"`` or ``"below"``) the threshold: with the output ``buy_usd - build_usd``,
    ``who="building"``, ``wins_when="above"`` reads "building wins unless HBM $/GB is above X".
    """
    check_callable("fn", fn, "a function of {input: array} returning {output: array}")
    variables(inputs)                   # checks the inputs
    by_name = {i.name: i for i in inputs}
    if name not in by_name:
        raise UserError(f"name: no input {name!r}", parameter="name")
    target = by_name[name]
    if not target.varies:
        raise UserError(f"name: {name} is fixed; a break-even needs an input that varies", parameter="name")
    threshold = check_real("threshold", threshold)
    if wins_when not in ("above", "below"):
        raise UserError(f"wins_when: must be 'above' or 'below', not {wins_when!r}", parameter="wins_when")
    lo, hi = (target.low, target.high) if search is None else _bracket(search)
    grid = np.linspace(lo, hi, SCAN_POINTS)
    y = _output(fn, _moved(inputs, target, grid), SCAN_POINTS, output) - threshold
    if not np.all(np.isfinite(y)):
        raise UserError(f"output: {output!r} is not finite for some {name} in [{lo:g}, {hi:g}]", parameter="output")
    sign = np.sign(y)
    flips = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    roots = np.flatnonzero(sign == 0)
    at_low, at_high = float(y[0] + threshold), float(y[-1] + threshold)
    label = label or name
    unit = f" {target.unit}" if target.unit else ""
    if len(flips) == 0 and len(roots) == 0:
        wins = (y[0] > 0) == (wins_when == "above")
        reason = f"{who} {'wins' if wins else 'loses'} for every {label} in [{lo:.4g}, {hi:.4g}]{unit}"
        return BreakEven(name, output, threshold, None, (lo, hi), False, at_low, at_high, 0, reason, reason)
    if len(roots) and (not len(flips) or roots[0] <= flips[0]):
        x = float(grid[roots[0]])
    else:
        j = int(flips[0])
        f = lambda v: float(_output(fn, _moved(inputs, target, np.array([v])), 1, output)[0]) - threshold
        x = float(brentq(f, grid[j], grid[j + 1], xtol=1e-12 * max(1.0, abs(grid[j])), rtol=1e-12))
    rising = y[-1] > y[0] if len(flips) == 0 else y[flips[0] + 1] > y[flips[0]]
    # the side of x where `who` wins: above x when the output rises through a win-above threshold
    wins_above_x = rising == (wins_when == "above")
    text = f"{who} wins unless {label} is {'below' if wins_above_x else 'above'} {x:.4g}{unit}"
    count = len(flips) + len(roots)
    if count > 1:
        text += f" (the output crosses {count} times in [{lo:.4g}, {hi:.4g}]; this is the first)"
    return BreakEven(name, output, threshold, x, (lo, hi), target.low <= x <= target.high, at_low, at_high, count,
                     text, None)


def _bracket(search: tuple[float, float]) -> tuple[float, float]:
    if not (isinstance(search, (tuple, list)) and len(search) == 2):
        raise UserError(f"search: expected (low, high), not {search!r}", parameter="search")
    lo, hi = (check_real("search", v) for v in search)
    if not lo < hi:
        raise UserError(f"search: needs low < high, not ({lo:g}, {hi:g})", parameter="search")
    return lo, hi
