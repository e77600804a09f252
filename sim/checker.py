"""Scoreboard: compares what the hardware produced with the golden model."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import AcceleratorConfig
from .golden import golden_matmul, show_value
from .stimulus import Product


@dataclass(frozen=True)
class Mismatch:
    """One wrong output element."""

    product: int
    label: str
    row: int
    col: int
    expected: int
    got: int | None

    def to_dict(self) -> dict:
        return {"product": self.product, "label": self.label, "row": self.row, "col": self.col,
                "expected": self.expected, "got": self.got}


class Scoreboard:
    """Holds the expected result of every product and checks what arrives.

    Parameters
    ----------
    config : AcceleratorConfig
    products : list of Product
    seed : int
        Reported in every failure message so the run can be repeated.
    waveform : str, optional
        Where the waveform of this run is (or would be, with ``--waves``).
    """

    def __init__(self, config: AcceleratorConfig, products: list[Product], *, seed: int,
                 waveform: str | None = None):
        self.config = config
        self.products = products
        self.seed = seed
        self.waveform = waveform
        self.expected = [golden_matmul(p.a, p.b, config, p.init) for p in products]
        self.mismatches: list[Mismatch] = []

    def check(self, index: int, got: np.ndarray | None) -> list[Mismatch]:
        """Compare product ``index``; ``got`` None means its results never arrived."""
        exp = self.expected[index]
        label = self.products[index].label
        found = []
        for (r, c), e in np.ndenumerate(exp):
            g = None if got is None else int(got[r, c])
            if g != int(e):
                found.append(Mismatch(index, label, r, c, int(e), g))
        self.mismatches.extend(found)
        return found

    def describe(self, mm: Mismatch) -> str:
        got = "nothing" if mm.got is None else show_value(mm.got, self.config)
        where = f"; waveform: {self.waveform}" if self.waveform else "; rerun with --waves for a waveform"
        return (f"product {mm.product} ({mm.label}, MxNxK={'x'.join(map(str, self.products[mm.product].shape))}) "
                f"C[{mm.row},{mm.col}]: expected {show_value(mm.expected, self.config)}, got {got} "
                f"(seed {self.seed}{where})")

    @property
    def passed(self) -> bool:
        return not self.mismatches
