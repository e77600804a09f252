"""Tokens delivered over a horizon, tokens per dollar and the break-even date.

Each option (a GPU fleet bought now, the custom chip when it arrives) goes live on a date,
serves at a rate that grows by a fraction per year from then on (software for GPUs on
fixed hardware; the chip's own software maturing), and costs a total in USD. The tokens it
has delivered by time ``T`` (years from the decision) are, with ``k = ln(1 + gain)``,

    N(T) = rate * S * (exp(k * (T - d)) - 1) / k    for T > d, else 0    (k -> 0: rate * S * (T - d))

where ``d`` is the go-live delay in years and ``S`` the seconds in a year: the rate
compounds continuously at ``gain`` per year. Every function takes floats or numpy arrays
(of Monte Carlo draws) that broadcast together, with no Python loop per draw.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from ...checks import check_kind, check_real, is_real
from ...errors import UserError
from ..frames import data_frame
from ..plotting import new_axes
from .schedule import DAYS_PER_MONTH, add_months, check_start, schedule_inputs

SECONDS_PER_YEAR = 365.25 * 86400
DEFAULT_HORIZON_YEARS = 4.0
KINDS = ("gpu", "chip")


def as_values(name: str, value: Any, *, lo: float | None = None, lo_open: bool = False) -> float | np.ndarray:
    """``value`` as a float or a float array, every element finite and within ``lo``;
    anything else raises :class:`UserError` naming ``name``."""
    if is_real(value):
        return check_real(name, value, lo=lo, lo_open=lo_open)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name}: must be a number or an array of numbers, not {value!r}", parameter=name) from None
    if arr.ndim == 0:
        return check_real(name, float(arr), lo=lo, lo_open=lo_open)
    bad = ~np.isfinite(arr)
    if lo is not None:
        bad |= (arr <= lo) if lo_open else (arr < lo)
    if bad.any():
        first = arr[bad].flat[0]
        need = f" and {'>' if lo_open else '>='} {lo:g}" if lo is not None else ""
        raise UserError(f"{name}: every element must be finite{need}; {int(bad.sum())} are not (first {first:g})",
                        parameter=name)
    return arr


def _growth_integral(k: ArrayLike, span: ArrayLike) -> np.ndarray:
    """(exp(k span) - 1) / k, equal to ``span`` where k = 0 (years)."""
    k = np.asarray(k, dtype=float)
    small = np.abs(k) < 1e-12
    safe_k = np.where(small, 1.0, k)
    return np.where(small, span, np.expm1(safe_k * span) / safe_k)


def tokens_over_horizon(rate_tokens_per_s: ArrayLike, start_delay_years: ArrayLike, horizon_years: ArrayLike,
                        annual_gain: ArrayLike = 0.0) -> float | np.ndarray:
    """Tokens an option delivers from the decision to ``horizon_years`` when it goes live
    ``start_delay_years`` after the decision at ``rate_tokens_per_s`` and its rate then
    grows by ``annual_gain`` (a fraction, 0.2 = +20 %) per year, compounded continuously:
    rate * S * (exp(k (H - d)) - 1) / k with k = ln(1 + gain), S seconds per year, and 0
    when d >= H. Arrays broadcast elementwise; a float comes back for all-float input."""
    rate = as_values("rate_tokens_per_s", rate_tokens_per_s, lo=0.0)
    delay = as_values("start_delay_years", start_delay_years)
    horizon = as_values("horizon_years", horizon_years, lo=0.0, lo_open=True)
    gain = as_values("annual_gain", annual_gain, lo=-1.0, lo_open=True)
    span = np.clip(np.asarray(horizon) - np.maximum(delay, 0.0), 0.0, None)
    out = rate * SECONDS_PER_YEAR * _growth_integral(np.log1p(gain), span)
    return float(out) if np.ndim(out) == 0 else out


def incumbent_multiplier(years: ArrayLike, *, software_gain_per_year: ArrayLike | None = None,
                         generation_gain: ArrayLike | None = None, generation_cadence_years: ArrayLike | None = None,
                         stepwise: bool = True) -> float | np.ndarray:
    """How much more throughput per dollar the best GPU bought ``years`` after the
    decision offers than one bought at it: software (1 + gain)^years times
    ``generation_gain`` per new generation, one every ``generation_cadence_years``
    (whole generations when ``stepwise``, else spread smoothly). An argument left None
    takes its value in ``data/schedule.yaml`` (``incumbent``). Arrays broadcast."""
    data = schedule_inputs().incumbent
    pick = lambda name, given: data[name].value if given is None else given  # noqa: E731
    t = np.maximum(as_values("years", years), 0.0)
    g = as_values("software_gain_per_year", pick("software_gain_per_year", software_gain_per_year), lo=-1.0, lo_open=True)
    gen = as_values("generation_gain", pick("generation_gain", generation_gain), lo=0.0, lo_open=True)
    cadence = as_values("generation_cadence_years", pick("generation_cadence_years", generation_cadence_years), lo=0.0, lo_open=True)
    generations = np.floor(t / cadence + 1e-9) if stepwise else t / cadence
    out = np.power(1 + g, t) * np.power(gen, generations)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class Option:
    """One way to serve: ``name``; ``kind`` ("gpu" or "chip"); the date it can go live
    (``available``; a date before the decision means at the decision) plus
    ``delay_months`` (draws of schedule slip or delivery lead time; may be an array);
    ``tokens_per_s`` of the whole fleet when it goes live; ``annual_gain`` of that rate
    per year from then (fraction); ``cost_usd``, its total cost over the horizon. Numbers
    may be numpy arrays of draws that broadcast together. Checked at construction."""

    name: str
    available: dt.date | str
    tokens_per_s: ArrayLike
    cost_usd: ArrayLike
    annual_gain: ArrayLike = 0.0
    delay_months: ArrayLike = 0.0
    kind: str = "gpu"

    def __post_init__(self) -> None:
        # checked and converted once, here: an error names the field (and the option)
        if self.kind not in KINDS:
            raise UserError(f"kind: must be one of {', '.join(KINDS)}, not {self.kind!r} (option {self.name!r})", parameter="kind")
        fields = {"name": str(self.name), "available": check_start("available", self.available),
                  "tokens_per_s": as_values("tokens_per_s", self.tokens_per_s, lo=0.0),
                  "cost_usd": as_values("cost_usd", self.cost_usd, lo=0.0, lo_open=True),
                  "annual_gain": as_values("annual_gain", self.annual_gain, lo=-1.0, lo_open=True),
                  "delay_months": as_values("delay_months", self.delay_months)}
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def delay_years(self, start: dt.date):
        """Years from ``start`` to go-live: the later of ``available`` and ``start``, plus
        ``delay_months`` (never before ``start``)."""
        available = max(cast(dt.date, self.available), start)     # a date since __post_init__
        return np.maximum((available - start).days / 365.25 + np.asarray(self.delay_months, dtype=float) / 12, 0.0)


def _horizon(horizon_years: Any) -> float:
    return check_real("horizon_years", horizon_years, lo=0.0, lo_open=True, hi=100.0)


def month_grid(horizon_years: float) -> np.ndarray:
    """Years from the decision at each month end, 0 first and the horizon last."""
    n = math.ceil(round(horizon_years * 12, 9))
    return np.minimum(np.arange(n + 1) / 12, horizon_years)


def delivered_tokens(option: Option, *, start: dt.date | str, horizon_years: float = DEFAULT_HORIZON_YEARS) -> np.ndarray:
    """Cumulative tokens ``option`` has delivered at each month end from ``start`` to the
    horizon: shape (draws..., months + 1), the first column 0."""
    day = check_start("start", start)
    if not isinstance(option, Option):
        raise UserError(f"option: must be an Option, not {option!r}", parameter="option")
    opt = option
    years = month_grid(_horizon(horizon_years))
    delay = np.asarray(opt.delay_years(day))[..., None]
    rate = np.asarray(opt.tokens_per_s, dtype=float)[..., None]
    gain = np.asarray(opt.annual_gain, dtype=float)[..., None]
    span = np.clip(years - delay, 0.0, None)
    return rate * SECONDS_PER_YEAR * _growth_integral(np.log1p(gain), span)


def _summary(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=float)
    if x.size == 1:
        return {"value": float(x.reshape(-1)[0])}
    return {"mean": float(x.mean()), "p05": float(np.quantile(x, 0.05)), "p50": float(np.median(x)),
            "p95": float(np.quantile(x, 0.95))}


@dataclass(frozen=True)
class Timeline:
    """Cumulative tokens of each option at each month end (``cumulative_tokens[name]``:
    shape (draws..., months + 1)), its cost (USD) and go-live delay (years), over
    ``horizon_years`` from ``start``."""

    start: dt.date
    horizon_years: float
    dates: tuple[dt.date, ...]
    options: tuple[Option, ...]
    cumulative_tokens: dict[str, np.ndarray]
    cost_usd: dict[str, Any]
    delay_years: dict[str, Any]

    def tokens_per_usd(self, name: str) -> np.ndarray:
        """Cumulative tokens per dollar of ``name`` at each month end."""
        return self.cumulative_tokens[name] / np.asarray(self.cost_usd[name], dtype=float)[..., None]

    def horizon_tokens_per_usd(self) -> dict[str, Any]:
        """Each option's tokens over the whole horizon per dollar (float or array of draws)."""
        return {o.name: _scalar_or_array(self.tokens_per_usd(o.name)[..., -1]) for o in self.options}

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "horizon_years": self.horizon_years,
                "end": self.dates[-1].isoformat(),
                "options": [{"name": o.name, "kind": o.kind, "available": str(o.available),
                             "go_live_delay_years": _summary(self.delay_years[o.name]),
                             "tokens": _summary(self.cumulative_tokens[o.name][..., -1]),
                             "cost_usd": _summary(np.asarray(self.cost_usd[o.name])),
                             "tokens_per_usd": _summary(self.tokens_per_usd(o.name)[..., -1])} for o in self.options]}

    def to_frame(self):
        """One row per option and month end: cumulative tokens and tokens per dollar
        (the mean over draws, with the 5th and 95th percentiles when there are draws)."""
        rows = []
        for o in self.options:
            tokens, per_usd = self.cumulative_tokens[o.name], self.tokens_per_usd(o.name)
            flat_t, flat_u = tokens.reshape(-1, tokens.shape[-1]), per_usd.reshape(-1, per_usd.shape[-1])
            for m, day in enumerate(self.dates):
                row: dict[str, Any] = {"option": o.name, "kind": o.kind, "month": m, "date": day,
                                       "tokens": float(flat_t[:, m].mean()), "tokens_per_usd": float(flat_u[:, m].mean())}
                if flat_u.shape[0] > 1:
                    row |= {"tokens_per_usd_p05": float(np.quantile(flat_u[:, m], 0.05)),
                            "tokens_per_usd_p95": float(np.quantile(flat_u[:, m], 0.95))}
                rows.append(row)
        return data_frame(rows)


def _scalar_or_array(x: np.ndarray) -> Any:
    return float(x) if np.ndim(x) == 0 else x


def timeline(options: Sequence[Option], *, start: dt.date | str, horizon_years: float = DEFAULT_HORIZON_YEARS) -> Timeline:
    """Each option's cumulative tokens at every month end from ``start`` (the decision
    date) over ``horizon_years`` (default 4), vectorised over draws."""
    day = check_start("start", start)
    horizon = _horizon(horizon_years)
    if not options:
        raise UserError("options: give at least one option", parameter="options")
    checked = tuple(options)
    if not all(isinstance(o, Option) for o in checked):
        raise UserError("options: each must be an Option", parameter="options")
    names = [o.name for o in checked]
    if len(set(names)) != len(names):
        raise UserError(f"options: names must differ, not {names}", parameter="options")
    years = month_grid(horizon)
    dates = tuple(add_months(day, 12 * y) for y in years)
    cum = {o.name: delivered_tokens(o, start=day, horizon_years=horizon) for o in checked}
    return Timeline(day, horizon, dates, checked, cum, {o.name: o.cost_usd for o in checked},
                    {o.name: _scalar_or_array(o.delay_years(day)) for o in checked})


@dataclass(frozen=True)
class BreakEven:
    """When the chip's cumulative tokens per dollar first reach the best GPU's.

    ``months``: months from the decision to the first month end at which it does, per
    draw (NaN: not within the horizon); ``date``: that date (for draws, the median
    draw's, or None when fewer than half break even); ``reached_fraction``: the share of
    draws that break even; ``against``: the GPU option that was best at the horizon (the
    most frequent one for draws); ``reason``: why there is no break-even, when there is
    none."""

    chip: str
    against: str
    months: Any
    date: dt.date | None
    reached_fraction: float
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        m = np.asarray(self.months, dtype=float)
        months = (None if np.isnan(m) else float(m)) if m.ndim == 0 else _summary(m[~np.isnan(m)]) if (~np.isnan(m)).any() else None
        return {"chip": self.chip, "against": self.against, "date": self.date.isoformat() if self.date else None,
                "months": months, "reached_fraction": self.reached_fraction, "reason": self.reason}


def _pick_chip(tl: Timeline, chip: str | None) -> tuple[str, list[str]]:
    names = [o.name for o in tl.options]
    if chip is None:
        chips = [o.name for o in tl.options if o.kind == "chip"]
        if len(chips) != 1:
            raise UserError(f"chip: name the chip option; the timeline has {len(chips)} of kind 'chip'", parameter="chip")
        chip = chips[0]
    if chip not in names:
        raise UserError(f"chip: {chip!r} is not an option of the timeline ({', '.join(names)})", parameter="chip")
    gpus = [o.name for o in tl.options if o.name != chip and o.kind == "gpu"]
    if not gpus:
        raise UserError("options: break_even needs at least one GPU option beside the chip", parameter="options")
    return chip, gpus


def break_even(tl: Timeline, chip: str | None = None) -> BreakEven:
    """The first month end at which ``chip``'s cumulative tokens per dollar reach the best
    GPU option's (the best at that month), per draw, or None within the horizon with the
    reason. ``chip`` defaults to the timeline's one option of kind "chip"."""
    check_kind("tl", tl, ("tokens_per_usd", "dates", "options"), "a Timeline (timeline(...))")
    chip, gpus = _pick_chip(tl, chip)
    mine = tl.tokens_per_usd(chip)
    theirs = np.stack(np.broadcast_arrays(*(tl.tokens_per_usd(g) for g in gpus)))
    best = theirs.max(axis=0)
    mine, best = np.broadcast_arrays(mine, best)
    reached = (mine >= best) & (mine > 0)
    any_reached = reached.any(axis=-1)
    months = np.where(any_reached, reached.argmax(axis=-1).astype(float), np.nan)
    final_best = theirs[..., -1].argmax(axis=0)
    against = gpus[int(np.bincount(np.ravel(final_best), minlength=len(gpus)).argmax())]
    fraction = float(np.mean(any_reached))
    # the median draw, counting a draw that never breaks even as later than any that does
    median = float(np.quantile(np.where(np.isnan(months), np.inf, months), 0.5, method="inverted_cdf"))
    date = tl.dates[int(median)] if math.isfinite(median) else None
    reason = None if fraction == 1.0 else _no_break_even_reason(tl, chip, against, np.asarray(~any_reached))
    return BreakEven(chip, against, _scalar_or_array(months), date, fraction, reason)


def _no_break_even_reason(tl: Timeline, chip: str, against: str, missed: np.ndarray) -> str:
    """Why ``chip`` does not break even, over the draws that miss (``missed``)."""
    delay = np.broadcast_to(np.asarray(tl.delay_years[chip], dtype=float), missed.shape)[missed]
    mine = float(np.mean(np.broadcast_to(tl.tokens_per_usd(chip)[..., -1], missed.shape)[missed]))
    theirs = float(np.mean(np.broadcast_to(tl.tokens_per_usd(against)[..., -1], missed.shape)[missed]))
    late = float(np.mean(delay >= tl.horizon_years))
    where = f"in {missed.mean():.1%} of draws, " if missed.size > 1 else ""
    if late == 1.0:
        return (f"{where}{chip} goes live after the {tl.horizon_years:g}-year horizon ({tl.dates[-1].isoformat()}): "
                "it delivers no tokens")
    share = f" ({late:.0%} of them go live after the horizon)" if late > 0 and missed.size > 1 else ""
    return (f"{where}{chip} delivers {mine:.3g} tokens per $ by {tl.dates[-1].isoformat()} against {theirs:.3g} for "
            f"{against}{' (means over those draws)' if missed.size > 1 else ''}: its later start is not made up within "
            f"the horizon{share}")


def plot_tokens_per_usd(tl: Timeline, *, ax=None):
    """Cumulative tokens per dollar of each option by date (the mean over draws), with the
    break-even date marked when there is a chip and a GPU option. Returns the ``Figure``."""
    fig, ax = new_axes(ax, (8, 4.5))
    months = np.arange(len(tl.dates))
    for o in tl.options:
        per_usd = tl.tokens_per_usd(o.name)
        ax.plot(months, per_usd.reshape(-1, per_usd.shape[-1]).mean(axis=0), label=f"{o.name} ({o.kind})",
                linestyle="-" if o.kind == "chip" else "--")
    kinds = {o.kind for o in tl.options}
    if kinds == set(KINDS) and sum(o.kind == "chip" for o in tl.options) == 1:
        be = break_even(tl)
        if be.date is not None:
            ax.axvline((be.date - tl.start).days / DAYS_PER_MONTH, color="tab:red", linewidth=1)
            ax.annotate(f"break-even {be.date.isoformat()}", ((be.date - tl.start).days / DAYS_PER_MONTH, 0),
                        xytext=(4, 4), textcoords="offset points", fontsize=8, color="tab:red")
    ticks = months[::6]
    ax.set_xticks(ticks)
    ax.set_xticklabels([tl.dates[m].strftime("%Y-%m") for m in ticks], rotation=45, ha="right")
    ax.set_ylabel("cumulative tokens per $")
    ax.set_title(f"Tokens per dollar over {tl.horizon_years:g} years from {tl.start.isoformat()}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
