"""Figures of the cost models: the TCO of each option, component by component."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import UserError
from ..plotting import new_axes
from .tco import COMPONENTS, Deployment, TcoBreakdown

_LABELS = {"accelerator_usd": "accelerators", "system_usd": "servers and boards", "network_usd": "network",
           "facility_usd": "facility and racks", "energy_usd": "energy", "maintenance_usd": "maintenance",
           "operations_usd": "operations", "nre_usd": "NRE", "unspent_usd": "unspent"}


def _parts(item: TcoBreakdown | Deployment) -> dict[str, float]:
    """Each stacked part in USD (the mean where the item holds draws)."""
    if isinstance(item, Deployment):
        return {k: float(np.mean(v)) for k, v in item.lines.items()}
    if isinstance(item, TcoBreakdown):
        return {k: float(np.mean(v)) for k, v in item.components().items()}
    raise UserError(f"options: each value must be a TcoBreakdown or a Deployment, not {type(item).__name__}",
                    parameter="options")


def waterfall(options: Mapping[str, TcoBreakdown | Deployment], *, ax: Any = None) -> Any:
    """A stacked bar per option of its cost components: per device over its lifetime
    (:class:`TcoBreakdown`, USD) or the whole deployment a budget buys
    (:class:`Deployment`, million USD, NRE and the unspent rest included, so that each bar
    reaches the budget). Options that hold draws show their means. Returns the Figure."""
    if not isinstance(options, Mapping) or not options:
        raise UserError("options: give at least one option, as {name: TcoBreakdown or Deployment}",
                        parameter="options")
    parts = {str(name): _parts(item) for name, item in options.items()}
    deployments = [isinstance(item, Deployment) for item in options.values()]
    if any(deployments) and not all(deployments):
        raise UserError("options: mix of per-device breakdowns and deployments; plot them apart", parameter="options")
    scale, unit = (1e6, "million USD, whole deployment") if all(deployments) else (1.0, "USD per device, lifetime")
    fig, ax = new_axes(ax, (10.0, 1.6 + 0.5 * len(parts)))
    keys = [k for k in (*COMPONENTS, "nre_usd", "unspent_usd") if any(k in p for p in parts.values())]
    names = list(parts)
    left = np.zeros(len(names))
    colors = {k: f"C{i}" for i, k in enumerate(keys)}
    for k in keys:
        widths = np.array([parts[n].get(k, 0.0) for n in names]) / scale
        ax.barh(names, widths, left=left, label=_LABELS.get(k, k), color="none" if k == "unspent_usd" else colors[k],
                edgecolor="0.5" if k == "unspent_usd" else None, hatch="//" if k == "unspent_usd" else None)
        left += widths
    for i, total in enumerate(left):
        ax.annotate(f"{total:,.0f}", (total, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xlim(0, max(float(left.max()), 1e-9) * 1.15)     # room for the totals
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title("Total cost of ownership by component")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
