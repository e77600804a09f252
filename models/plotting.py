"""Figures without pyplot state, shared by every plot of the models."""
from __future__ import annotations

from ..errors import UserError


def new_grid(ax, figsize: tuple[float, float], nrows: int, ncols: int):
    """(figure, axes as a list of rows): the caller's ``nrows * ncols`` axes (in rows), or a
    new figure's, each panel with its own y axis."""
    if ax is not None:
        flat = [a for row in ax for a in (row if hasattr(row, "__iter__") else [row])]    # rows or a flat list
        if len(flat) != nrows * ncols:
            raise UserError(f"ax: this plot needs {nrows * ncols} axes ({ncols} per row), not {len(flat)}")
        return flat[0].figure, [flat[r * ncols:(r + 1) * ncols] for r in range(nrows)]
    fig, _ = new_axes(None, figsize)
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [list(row) for row in axes]


def new_axes(ax, figsize: tuple[float, float], ncols: int = 1):
    """(figure, axes): the caller's axes, or a new figure's (no pyplot state: safe in
    scripts, threads and notebooks, where a returned Figure shows inline)."""
    if ax is not None:
        axes = list(ax) if ncols > 1 else [ax]
        if len(axes) != ncols:
            raise UserError(f"ax: this plot needs {ncols} axes, not {len(axes)}")
        return axes[0].figure, (axes if ncols > 1 else axes[0])
    from matplotlib.figure import Figure  # noqa: PLC0415  lazy: matplotlib takes about 0.4 s to import; most callers never plot

    fig = Figure(figsize=figsize)
    axes = fig.subplots(1, ncols, sharey=ncols > 1)
    return fig, (list(axes) if ncols > 1 else axes)
