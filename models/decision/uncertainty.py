"""Uncertain inputs, seeded Monte Carlo with correlations, and its outputs.

An :class:`Uncertain` is one input of a decision (a price, a power, a lifetime) or one of
the models' own measured errors, with a low / mode / high range, a shape and a source: the
project's YAML schema ``{value, low, high, source, shape?, unit?, group?}`` (value = mode).

:func:`sample` draws all inputs at once from one seeded generator (numpy ``PCG64``):
inputs that share a ``group`` are one quantity seen from several places (one HBM $/GB
across devices, one electricity price) and take the same quantile in every draw; stated
rank correlations between groups or inputs are imposed with a Gaussian copula.
:func:`propagate` draws, calls a vectorised model once for all draws, and returns a
:class:`MonteCarlo` with each output's mean, percentiles and 90 % interval, and the
probability of any event over the outputs (P(build beats buy)). Units are the inputs'
and outputs' own (``unit`` on each input; the model's output names carry theirs).
"""
from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.stats import qmc
from tqdm import tqdm

from ...checks import check_choice, check_int, check_real, check_seed, is_real
from ...errors import UserError
from ..specs import SHAPES  # the distribution shapes an input may take (``fixed`` always draws the mode)

#: ``input``: a figure of the world; ``model_error``: a model's measured error, a factor around 1.
KINDS = ("input", "model_error")
#: Sampling methods: independent draws, or Latin hypercube (scipy.stats.qmc).
METHODS = ("random", "lhs")
#: z of the 95th percentile of the standard normal: a lognormal's low and high sit this many
#: log-standard deviations below and above its median.
Z95 = float(stats.norm.ppf(0.95))
#: Quantiles at which a PERT input's exact inverse CDF is tabulated (cosine-spaced: denser
#: near 0 and 1, where the beta's inverse is steepest).
PERT_TABLE_POINTS = 4097
PERT_NODES = 0.5 * (1 - np.cos(np.pi * np.linspace(0.0, 1.0, PERT_TABLE_POINTS)))
PERT_NODES[0], PERT_NODES[-1] = 0.0, 1.0

Model = Callable[[dict[str, np.ndarray]], Mapping[str, Any]]


@dataclass(frozen=True)
class Uncertain:
    """One uncertain input: ``low <= mode <= high`` in ``unit``, drawn with ``shape``.

    Shapes (``ppf`` maps a quantile ``q`` in [0, 1] to a value):

    - ``fixed``: always ``mode`` (low and high are only reported);
    - ``uniform``: flat on [low, high] (mode is reported, not used);
    - ``triangular``: ``ppf(0) = low``, ``ppf(1) = high``, density peak at ``mode``;
    - ``pert``: a beta on [low, high] with its peak at ``mode`` and mean
      ``(low + 4 mode + high) / 6`` (shape parameters ``1 + 4 (mode - low) / (high - low)``
      and ``1 + 4 (high - mode) / (high - low)``). Its ``ppf`` interpolates a table of
      ``PERT_TABLE_POINTS`` exact beta quantiles (built on first use, denser in the tails):
      the exact inverse costs 2 us a value, a third of a 10,000-draw run of 40 inputs;
      the table is within 1.3e-4 of (high - low) everywhere and 1.6e-5 inside the
      0.01 %..99.99 % quantiles (tests/test_uncertainty.py checks it);
    - ``lognormal``: median ``mode``, log-standard deviation ``ln(high / low) / (2 z95)``,
      so the 5th-95th percentile span has the stated log-width; low and high are exactly
      the 5th and 95th percentiles when mode is their geometric mean ``sqrt(low high)``.
      Unbounded: draws can fall outside [low, high] (10 % of them).

    ``group``: inputs sharing a group take one quantile per draw (perfectly rank-correlated).
    ``kind``: ``"input"`` or ``"model_error"`` (a multiplicative factor around 1 with the
    model's measured spread).
    """

    name: str
    low: float
    mode: float
    high: float
    shape: str = "triangular"
    source: str = ""
    unit: str = ""
    group: str | None = None
    kind: str = "input"
    _dist: Any = field(init=False, repr=False, compare=False, default=None)
    _table: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"name: an uncertain input needs a non-empty name, not {self.name!r}", parameter="name")
        if self.shape not in SHAPES:
            raise UserError(f"shape: unknown distribution shape {self.shape!r} for {self.name}; "
                            f"one of {', '.join(SHAPES)}", parameter="shape")
        check_choice("kind", self.kind, KINDS)
        if self.group is not None and (not isinstance(self.group, str) or not self.group):
            raise UserError(f"group: {self.name}'s group must be a non-empty name or None, not {self.group!r}",
                            parameter="group")
        values = [check_real(self.name, v) for v in (self.low, self.mode, self.high)]
        for attr, v in zip(("low", "mode", "high"), values):
            object.__setattr__(self, attr, v)
        if not self.low <= self.mode <= self.high:
            raise UserError(f"{self.name}: needs low <= mode <= high, not {self.low:g}, {self.mode:g}, {self.high:g}",
                            parameter=self.name)
        if self.shape != "fixed" and self.low == self.high:
            raise UserError(f"{self.name}: empty range [{self.low:g}, {self.high:g}] for a {self.shape} distribution; "
                            "give low < high, or shape 'fixed'", parameter=self.name)
        if self.shape == "lognormal" and self.low <= 0:
            raise UserError(f"{self.name}: a lognormal needs low > 0, not {self.low:g}", parameter=self.name)
        object.__setattr__(self, "_dist", self._frozen())

    def _frozen(self):
        """The scipy.stats distribution behind ``ppf`` and ``cdf`` (None for fixed)."""
        lo, width = self.low, self.high - self.low
        if self.shape == "uniform":
            return stats.uniform(loc=lo, scale=width)
        if self.shape == "triangular":
            return stats.triang((self.mode - lo) / width, loc=lo, scale=width)
        if self.shape == "pert":
            return stats.beta(1 + 4 * (self.mode - lo) / width, 1 + 4 * (self.high - self.mode) / width,
                              loc=lo, scale=width)
        if self.shape == "lognormal":
            return stats.lognorm(math.log(self.high / self.low) / (2 * Z95), scale=self.mode)
        return None

    @property
    def key(self) -> str:
        """The sampled variable this input belongs to: its group, or its own name."""
        return self.group or self.name

    @property
    def varies(self) -> bool:
        return self.shape != "fixed"

    def ppf(self, q: Any) -> np.ndarray:
        """The inverse CDF: the value (in ``unit``) at each quantile of ``q`` (in [0, 1])."""
        q = np.asarray(q, dtype=float)
        if not np.all((q >= 0) & (q <= 1)):
            raise UserError(f"q: quantiles must lie in [0, 1] (input {self.name})", parameter="q")
        if self._dist is None:
            return np.full(q.shape, self.mode)
        if self.shape == "pert":
            if self._table is None:
                object.__setattr__(self, "_table", self._dist.ppf(PERT_NODES))
            return np.interp(q, PERT_NODES, self._table)
        return np.asarray(self._dist.ppf(q), dtype=float)

    def cdf(self, x: Any) -> np.ndarray:
        """The quantile of each value of ``x`` (for ``fixed``: 0 below the mode, 1 from it)."""
        x = np.asarray(x, dtype=float)
        if self._dist is None:
            return (x >= self.mode).astype(float)
        return np.asarray(self._dist.cdf(x), dtype=float)

    def mean(self) -> float:
        return self.mode if self._dist is None else float(self._dist.mean())

    @classmethod
    def from_row(cls, name: str, row: Mapping[str, Any] | float, *, kind: str = "input",
                 point_as_fixed: bool = False) -> Uncertain:
        """An input from the YAML schema ``{value, low, high, source, shape?, unit?, group?}``
        (``value`` is the mode; ``shape`` defaults to triangular; other fields such as
        ``confidence`` are ignored). A plain number is a fixed input. An empty range is an
        error unless ``point_as_fixed`` and the row states no shape: then low = value = high
        reads as fixed (files written before shapes existed, such as ``cost.yaml``)."""
        if is_real(row) and not isinstance(row, Mapping):
            return cls(name, float(row), float(row), float(row), "fixed", kind=kind)
        if not isinstance(row, Mapping):
            raise UserError(f"{name}: expected {{value, low, high, source}}, not {row!r}", parameter=name)
        missing = [k for k in ("value", "low", "high", "source") if row.get(k) is None]
        if missing:
            raise UserError(f"{name}: missing {', '.join(missing)}", parameter=name)
        if not isinstance(row["source"], str) or not row["source"].strip():
            raise UserError(f"{name}: source must say where the figure comes from, not {row['source']!r}", parameter=name)
        shape = row.get("shape") or "triangular"
        if point_as_fixed and row.get("shape") is None and row["low"] == row["value"] == row["high"]:
            shape = "fixed"
        return cls(name, row["low"], row["value"], row["high"], shape, row["source"], str(row.get("unit") or ""),
                   row.get("group"), kind)

    @classmethod
    def model_error(cls, name: str, low: float, high: float, source: str, *, shape: str = "lognormal") -> Uncertain:
        """A model's measured error as a multiplicative factor with mode 1 (e.g. 0.8..1.25
        for a model within -20 %/+25 % of measurement)."""
        return cls(name, low, 1.0, high, shape, source, "factor", None, "model_error")

    def to_dict(self) -> dict:
        return {"name": self.name, "low": self.low, "mode": self.mode, "high": self.high, "shape": self.shape,
                "source": self.source, "unit": self.unit, "group": self.group, "kind": self.kind}


#: The fields that make a YAML table an uncertain figure.
FIGURE_FIELDS = frozenset({"value", "low", "high"})


def uncertain_inputs(tree: Mapping[str, Any], prefix: str = "", *, kind: str = "input",
                     point_as_fixed: bool = False) -> tuple[Uncertain, ...]:
    """Every uncertain figure ``{value, low, high, source, shape?, ...}`` in a YAML tree,
    named by its dotted path under ``prefix`` (``systems.hgx-h100-8gpu.server_usd``);
    other keys and lists are passed over. Raises :class:`UserError` naming a bad figure.
    ``point_as_fixed``: as for :meth:`Uncertain.from_row`."""
    if not isinstance(tree, Mapping):
        raise UserError(f"tree: expected a mapping, not {type(tree).__name__}", parameter="tree")
    found: list[Uncertain] = []
    for key, v in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(v, Mapping) and set(v) >= FIGURE_FIELDS:
            found.append(Uncertain.from_row(name, v, kind=kind, point_as_fixed=point_as_fixed))
        elif isinstance(v, Mapping):
            found += uncertain_inputs(v, name, kind=kind, point_as_fixed=point_as_fixed)
    return tuple(found)


def variables(inputs: Sequence[Uncertain]) -> dict[str, tuple[Uncertain, ...]]:
    """The sampled variables in first-seen order: group (or ungrouped input name) -> its
    varying inputs. Fixed inputs are no variable; every name must be unique."""
    if isinstance(inputs, (str, bytes, Uncertain)) or not isinstance(inputs, Sequence) or not inputs:
        raise UserError("inputs: expected a non-empty sequence of Uncertain", parameter="inputs")
    seen: set[str] = set()
    out: dict[str, list[Uncertain]] = {}
    for inp in inputs:
        if not isinstance(inp, Uncertain):
            raise UserError(f"inputs: expected Uncertain items, not {type(inp).__name__}", parameter="inputs")
        if inp.name in seen:
            raise UserError(f"inputs: {inp.name} appears twice", parameter="inputs")
        seen.add(inp.name)
        if inp.varies:
            out.setdefault(inp.key, []).append(inp)
    groups = {i.group for i in inputs if i.group}
    clash = sorted(i.name for i in inputs if i.name in groups and i.group != i.name)
    if clash:
        raise UserError(f"inputs: {', '.join(clash)} is both an input's name and another input's group", parameter="inputs")
    return {k: tuple(v) for k, v in out.items()}


def correlation_matrix(keys: Sequence[str], inputs: Sequence[Uncertain],
                       correlations: Mapping[tuple[str, str], float] | None) -> np.ndarray | None:
    """The Gaussian copula's correlation matrix over ``keys`` from stated pairwise Spearman
    rank correlations (keyed by group or input name; an input stands for its group), or
    None when nothing is stated. Refuses a matrix that is not positive definite."""
    if not correlations:
        return None
    if not isinstance(correlations, Mapping):
        raise UserError("correlations: expected a mapping {(a, b): rank correlation}", parameter="correlations")
    index = {k: i for i, k in enumerate(keys)}
    index.update({i.name: index[i.key] for i in inputs if i.key in index})
    fixed = {i.name for i in inputs if not i.varies}
    r = np.eye(len(keys))
    for pair, rho in correlations.items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise UserError(f"correlations: keys must be (a, b) pairs, not {pair!r}", parameter="correlations")
        for end in pair:
            if end not in index:
                why = "is fixed" if end in fixed else "is no input or group"
                raise UserError(f"correlations: {end!r} {why}", parameter="correlations")
        a, b = index[pair[0]], index[pair[1]]
        if a == b:
            raise UserError(f"correlations: {pair[0]} and {pair[1]} are one variable (the same input or group)",
                            parameter="correlations")
        rho = check_real("correlations", rho, lo=-1.0, hi=1.0)
        pearson = 2 * math.sin(math.pi * rho / 6)      # Spearman -> normal copula (exact for a Gaussian)
        if r[a, b] != 0 and not math.isclose(r[a, b], pearson):
            raise UserError(f"correlations: {pair[0]} and {pair[1]} are given two different correlations",
                            parameter="correlations")
        r[a, b] = r[b, a] = pearson
    if np.linalg.eigvalsh(r).min() <= 1e-10:
        raise UserError("correlations: the stated correlations are not positive definite (no joint distribution has "
                        "them); lower the largest ones", parameter="correlations")
    return r


@dataclass(frozen=True, eq=False)
class Samples:
    """Draws of every input: ``values[name]`` is a read-only array of ``n`` values in the
    input's unit; ``quantiles`` holds the uniform draw of each variable (group or input)."""

    inputs: tuple[Uncertain, ...]
    values: Mapping[str, np.ndarray]
    quantiles: Mapping[str, np.ndarray]
    n: int
    seed: int
    method: str

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise UserError(f"name: no input {name!r}", parameter="name")
        return self.values[name]

    def to_frame(self) -> pd.DataFrame:
        """One row per draw, one column per input."""
        return pd.DataFrame(dict(self.values))

    def to_dict(self) -> dict:
        return {"n": self.n, "seed": self.seed, "method": self.method, "inputs": [i.to_dict() for i in self.inputs]}


def _uniforms(k: int, n: int, seed: int, method: str, corr: np.ndarray | None) -> np.ndarray:
    """(n, k) quantiles in [0, 1): independent, or through the Gaussian copula of ``corr``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    if method == "lhs":
        u = qmc.LatinHypercube(d=k, rng=rng).random(n)
        if corr is None:
            return u
        z = special.ndtri(u)
    else:
        if corr is None:
            return rng.random((n, k))
        z = rng.standard_normal((n, k))
    return special.ndtr(z @ np.linalg.cholesky(corr).T)      # the normal CDF, without scipy.stats' checks


def sample(inputs: Sequence[Uncertain], n: int, seed: int, *,
           correlations: Mapping[tuple[str, str], float] | None = None, method: str = "random") -> Samples:
    """``n`` reproducible draws of every input (numpy ``Generator(PCG64(seed))``).

    Inputs sharing a group take one quantile per draw; ``correlations`` states Spearman rank
    correlations between pairs of groups or inputs (``{("power.usd_per_kWh", "memory.hbm"):
    0.5}``), imposed through a Gaussian copula. ``method="lhs"``: a Latin hypercube (with
    correlations the copula is applied to its stratified normals: margins stay exact).
    The same seed gives identical arrays.
    """
    n = check_int("n", n, lo=1, hi=10**8)
    seed = check_seed("seed", seed)
    check_choice("method", method, METHODS)
    groups = variables(inputs)
    keys = list(groups)
    corr = correlation_matrix(keys, inputs, correlations)
    u = _uniforms(len(keys), n, seed, method, corr) if keys else np.empty((n, 0))
    quantiles = {k: _frozen_array(u[:, j]) for j, k in enumerate(keys)}
    values = {i.name: _frozen_array(i.ppf(quantiles[i.key]) if i.varies else np.full(n, i.mode)) for i in inputs}
    return Samples(tuple(inputs), types.MappingProxyType(values), types.MappingProxyType(quantiles), n, seed, method)


def _frozen_array(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=float)
    a.setflags(write=False)
    return a


def _call(fn: Model, values: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    out = fn(dict(values))
    if not isinstance(out, Mapping) or not out:
        raise UserError(f"fn: must return a non-empty mapping of output name -> array, not {type(out).__name__}",
                        parameter="fn")
    arrays = {}
    for name, v in out.items():
        a = np.asarray(v, dtype=float)
        if a.ndim == 0:
            a = np.full(n, float(a))
        if a.shape != (n,):
            raise UserError(f"fn: output {name!r} has shape {a.shape}, expected ({n},)", parameter="fn")
        arrays[str(name)] = a
    return arrays


def evaluate(fn: Model, values: Mapping[str, np.ndarray], n: int, *, chunk: int | None = None,
             progress: bool = False, desc: str = "draws") -> dict[str, np.ndarray]:
    """Run the vectorised model on ``n`` points and check what it returns: each output an
    array of ``n`` values (a scalar is broadcast). ``chunk``: at most this many points per
    call (bounds the model's memory); ``progress``: a progress bar on stderr (tqdm)."""
    if not callable(fn):
        raise UserError("fn: expected a function of {input: array} returning {output: array}", parameter="fn")
    chunk = n if chunk is None else check_int("chunk", chunk)
    parts: list[dict[str, np.ndarray]] = []
    with tqdm(total=n, desc=desc, unit="point", disable=not progress) as bar:
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            parts.append(_call(fn, {k: v[start:stop] for k, v in values.items()}, stop - start))
            if set(parts[-1]) != set(parts[0]):
                raise UserError(f"fn: returned outputs {sorted(parts[-1])} for draws {start}.., "
                                f"{sorted(parts[0])} before", parameter="fn")
            bar.update(stop - start)
    if len(parts) == 1:
        return {k: _frozen_array(v) for k, v in parts[0].items()}
    return {k: _frozen_array(np.concatenate([p[k] for p in parts])) for k in parts[0]}


@dataclass(frozen=True)
class OutputSummary:
    """One output's distribution over the draws (in the output's unit). ``nonfinite``
    counts draws that were inf or NaN (a device with no capacity); percentiles include them."""

    name: str
    mean: float
    std: float
    p5: float
    p50: float
    p95: float
    nonfinite: int

    @property
    def interval90(self) -> tuple[float, float]:
        return (self.p5, self.p95)

    def to_dict(self) -> dict:
        return {"name": self.name, "mean": self.mean, "std": self.std, "p5": self.p5, "p50": self.p50,
                "p95": self.p95, "nonfinite": self.nonfinite}


def summarize(name: str, a: np.ndarray) -> OutputSummary:
    finite = np.isfinite(a)
    p5, p50, p95 = np.percentile(a, (5, 50, 95), method="inverted_cdf") if a.size else (math.nan,) * 3
    return OutputSummary(name, float(np.mean(a)), float(np.std(a)), float(p5), float(p50), float(p95),
                         int(a.size - np.count_nonzero(finite)))


@dataclass(frozen=True, eq=False)
class MonteCarlo:
    """The draws of the inputs and the model's outputs for each draw."""

    samples: Samples
    outputs: Mapping[str, np.ndarray]

    @property
    def n(self) -> int:
        return self.samples.n

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.outputs:
            raise UserError(f"output: no output {name!r}; there are {', '.join(self.outputs)}", parameter="output")
        return self.outputs[name]

    def summary(self, name: str) -> OutputSummary:
        return summarize(name, self[name])

    def mean(self, name: str) -> float:
        return self.summary(name).mean

    def percentile(self, name: str, q: float) -> float:
        """The ``q``-th percentile (0..100) of an output."""
        q = check_real("q", q, lo=0.0, hi=100.0)
        return float(np.percentile(self[name], q, method="inverted_cdf"))

    def interval(self, name: str, level: float = 0.90) -> tuple[float, float]:
        """The central interval holding ``level`` of the draws (0.90: p5..p95)."""
        level = check_real("level", level, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        tail = 50 * (1 - level)
        return (self.percentile(name, tail), self.percentile(name, 100 - tail))

    def probability(self, event: Callable[[Mapping[str, np.ndarray]], Any]) -> float:
        """The share of draws where ``event(outputs)`` (a boolean array over draws) holds;
        ``event`` sees the outputs and the inputs by name."""
        hit = np.asarray(event({**self.samples.values, **self.outputs}), dtype=bool)
        if hit.shape != (self.n,):
            raise UserError(f"event: must return {self.n} booleans, not shape {hit.shape}", parameter="event")
        return float(np.count_nonzero(hit)) / self.n

    def p_less(self, a: str, b: str) -> float:
        """P(output ``a`` < output ``b``), e.g. P(build $/M tokens < buy $/M tokens)."""
        return float(np.count_nonzero(self[a] < self[b])) / self.n

    def to_dict(self) -> dict:
        return {**self.samples.to_dict(), "outputs": {k: self.summary(k).to_dict() for k in self.outputs}}

    def to_frame(self) -> pd.DataFrame:
        """One row per output: mean, std, p5, p50, p95."""
        return pd.DataFrame([self.summary(k).to_dict() for k in self.outputs])


def propagate(fn: Model, inputs: Sequence[Uncertain], n: int, seed: int, *,
              correlations: Mapping[tuple[str, str], float] | None = None, method: str = "random",
              chunk: int | None = None, progress: bool = False) -> MonteCarlo:
    """Draw ``n`` samples of ``inputs`` (see :func:`sample`) and run the vectorised model
    ``fn({input: array}) -> {output: array}`` on all of them: in one call, or in calls of
    at most ``chunk`` draws (the outputs are the same), with a progress bar if ``progress``."""
    s = sample(inputs, n, seed, correlations=correlations, method=method)
    return MonteCarlo(s, types.MappingProxyType(evaluate(fn, s.values, n, chunk=chunk, progress=progress)))
