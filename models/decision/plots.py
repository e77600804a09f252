"""Charts of the decision's uncertainty: tornado, Sobol' indices, output distributions.

Each takes ``ax=None`` (or the caller's axes) and returns the matplotlib ``Figure``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...checks import check_choice, check_int
from ...errors import UserError
from ..plotting import new_axes
from .sensitivity import SobolResult, Tornado
from .uncertainty import MonteCarlo


def _top(n_items: int, top: int | None) -> int:
    return n_items if top is None else min(n_items, check_int("top", top))


def plot_tornado(result: Tornado, *, top: int | None = 10, ax: Any = None, unit: str = "") -> Any:
    """Horizontal bars from the output at each variable's low to its high (the rest at their
    mode), largest swing on top, about the base case (all at mode). ``unit``: the output's,
    for the axis label."""
    if not isinstance(result, Tornado):
        raise UserError(f"result: expected a Tornado, not {type(result).__name__}", parameter="result")
    bars = result.bars[:_top(len(result.bars), top)][::-1]
    fig, ax = new_axes(ax, (8, 0.45 * len(bars) + 1.8))
    y = np.arange(len(bars))
    for j, b in enumerate(bars):
        ax.barh(j, b.output_at_low - result.base, left=result.base, color="tab:blue", alpha=0.8,
                label="input at its low" if j == 0 else None)
        ax.barh(j, b.output_at_high - result.base, left=result.base, color="tab:orange", alpha=0.8,
                label="input at its high" if j == 0 else None)
    ax.axvline(result.base, color="k", lw=1, label=f"all at their mode: {result.base:.4g}")
    ax.set_yticks(y, [b.name for b in bars], fontsize=8)
    ax.set(xlabel=f"{result.output}{f' ({unit})' if unit else ''}",
           title=f"Tornado: {result.output}\none input at a time at its low and its high")
    if bars:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_sobol(result: SobolResult, *, top: int | None = 10, ax: Any = None) -> Any:
    """First-order (S1) and total-order (ST) Sobol' indices per variable with their 95 %
    confidence intervals, largest ST on top (shares of the output's variance, 0..1)."""
    if not isinstance(result, SobolResult):
        raise UserError(f"result: expected a SobolResult, not {type(result).__name__}", parameter="result")
    rows = result.indices[:_top(len(result.indices), top)][::-1]
    fig, ax = new_axes(ax, (8, 0.45 * len(rows) + 1.8))
    y = np.arange(len(rows))
    ax.barh(y + 0.2, [s.ST for s in rows], 0.4, xerr=[s.ST_conf for s in rows], label="total order (ST)",
            color="tab:red", alpha=0.8, capsize=2)
    ax.barh(y - 0.2, [s.S1 for s in rows], 0.4, xerr=[s.S1_conf for s in rows], label="first order (S1)",
            color="tab:gray", alpha=0.8, capsize=2)
    ax.set_yticks(y, [s.name for s in rows], fontsize=8)
    ax.set(xlabel="share of the output's variance", xlim=(min(0.0, *(s.S1 - s.S1_conf for s in rows)) if rows else 0, None),
           title=f"Sobol' indices of {result.output} ({result.n_evaluations} model points)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_distributions(mc: MonteCarlo, outputs: Sequence[str], *, kind: str = "hist", ax: Any = None,
                       unit: str = "", log: bool = False) -> Any:
    """Each output's distribution over the draws (``kind="hist"``: histograms; ``"ecdf"``:
    cumulative) with its 90 % interval (p5..p95) marked; e.g. $/M tokens per option.
    ``unit`` labels the axis; ``log`` puts the values on a log scale."""
    if not isinstance(mc, MonteCarlo):
        raise UserError(f"mc: expected a MonteCarlo, not {type(mc).__name__}", parameter="mc")
    check_choice("kind", kind, ("hist", "ecdf"))
    if isinstance(outputs, str) or not outputs:
        raise UserError("outputs: expected a non-empty list of output names", parameter="outputs")
    data = {name: mc[name] for name in outputs}
    finite = {k: v[np.isfinite(v)] for k, v in data.items()}
    everything = np.concatenate(list(finite.values()))
    if everything.size == 0:
        raise UserError("outputs: no finite value to plot", parameter="outputs")
    fig, ax = new_axes(ax, (8, 4.5))
    lo, hi = float(everything.min()), float(everything.max())
    if log and lo > 0:
        bins = np.geomspace(lo, hi if hi > lo else lo * 1.01, 60)
    else:
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 60)
    for j, (name, v) in enumerate(finite.items()):
        color = f"C{j % 10}"
        p5, p95 = mc.interval(name, 0.90)
        label = f"{name}: 90 % in [{p5:.3g}, {p95:.3g}]"
        if kind == "hist":
            ax.hist(v, bins=bins, histtype="stepfilled", alpha=0.35, color=color, label=label)
        else:
            ax.step(np.sort(v), np.arange(1, v.size + 1) / data[name].size, where="post", color=color, label=label)
        for edge in (p5, p95):
            ax.axvline(edge, color=color, ls="--", lw=1)
    if log and lo > 0:
        ax.set_xscale("log")
    ax.set(xlabel=unit or "value", ylabel="draws" if kind == "hist" else "share of draws <= value",
           title=f"Distributions over {mc.n} draws (dashed: 5th and 95th percentiles)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
