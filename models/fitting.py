"""Deterministic minimisation for the models' fits: coordinate search in log space."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

GOLDEN = (math.sqrt(5) - 1) / 2


def coordinate_search(loss: Callable[[np.ndarray], float], start: np.ndarray,
                      bounds: Sequence[tuple[float, float]], *, passes: int, steps: int) -> np.ndarray:
    """Parameters within ``bounds`` that minimise ``loss``: ``passes`` sweeps over the
    parameters, each a golden-section search of ``steps`` steps on one parameter in log
    space (the others held), kept only where it lowers the loss. Deterministic; the loss
    need not be smooth (the models' max() terms are not)."""
    x = np.log(np.clip(start, [b[0] for b in bounds], [b[1] for b in bounds]))
    for _ in range(passes):
        for k, (lo, hi) in enumerate(bounds):
            def f(v: float, k: int = k) -> float:
                y = x.copy()
                y[k] = v
                return loss(np.exp(y))

            a, b = math.log(lo), math.log(hi)
            c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
            fc, fd = f(c), f(d)
            for _ in range(steps):
                if fc < fd:
                    b, d, fd = d, c, fc
                    c = b - GOLDEN * (b - a)
                    fc = f(c)
                else:
                    a, c, fc = c, d, fd
                    d = a + GOLDEN * (b - a)
                    fd = f(d)
            best = (a + b) / 2
            if f(best) < f(x[k]):
                x[k] = best
    return np.exp(x)
