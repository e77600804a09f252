"""How a matrix product maps onto the array's streams, shared by every testbench.

The payload layouts are read from the generated component's signature, so packing and
unpacking can never drift from the hardware.
"""
from __future__ import annotations

import numpy as np
from amaranth.lib import data

from ..config import AcceleratorConfig
from ..hdl import array_signature
from .stimulus import Product, check_fits


class ArrayProtocol:
    """Beats for one product on the array described by ``config``, and decoding of results.

    Output-stationary: one operand beat per k (A column k padded to ``rows``, B row k
    padded to ``cols``), ``last`` on k = K-1; ``rows`` result beats come back, of which the
    first M rows and N columns are the product. With ``mac_stages`` S > 1, S beats per k,
    one per row group of ``rows`` rows of A, and S x ``rows`` result beats.

    Weight-stationary: ``rows`` weight beats (B padded with zero rows to ``rows``), then
    one operand beat per row m of A (padded to ``rows``) with its initial partial sums,
    ``last`` on m = M-1; M result beats come back, of which the first N columns count.
    """

    def __init__(self, config: AcceleratorConfig):
        self.config = config
        members = array_signature(config).members
        self.operand_layout: data.Layout = members["operands"].signature.members["payload"].shape
        self.result_layout: data.Layout = members["results"].signature.members["payload"].shape
        self.weight_layout: data.Layout | None = (
            members["weights"].signature.members["payload"].shape if "weights" in members else None
        )

    @staticmethod
    def _pad(values: np.ndarray, length: int) -> list[int]:
        out = [int(v) for v in values]
        return out + [0] * (length - len(out))

    def _pack(self, layout: data.Layout, value: object) -> int:
        return layout.const(value).as_value().value

    def weight_beats(self, product: Product) -> list[int]:
        """Packed weight beats (weight-stationary only; empty for output-stationary)."""
        if self.weight_layout is None:
            return []
        cfg = self.config
        rows = [self._pad(product.b[k], cfg.cols) if k < product.b.shape[0] else [0] * cfg.cols
                for k in range(cfg.rows)]
        return [self._pack(self.weight_layout, r) for r in rows]

    def operand_beats(self, product: Product) -> list[int]:
        """Packed operand beats for ``product``."""
        cfg = self.config
        m, n, k = product.shape
        check_fits(cfg, m, n, k)
        beats = []
        if cfg.dataflow == "os":
            for kk in range(k):    # a pipelined MAC's row groups round-robin (hdl/array.py)
                for g in range(cfg.mac_stages):
                    beats.append(self._pack(self.operand_layout, {
                        "a": self._pad(product.a[g * cfg.rows:(g + 1) * cfg.rows, kk], cfg.rows),
                        "b": self._pad(product.b[kk, :], cfg.cols),
                        "last": int(kk == k - 1),
                    }))
        else:
            init = product.init if product.init is not None else np.zeros((m, n), np.int64)
            for mm in range(m):
                beats.append(self._pack(self.operand_layout, {
                    "a": self._pad(product.a[mm, :], cfg.rows),
                    "psum": self._pad(init[mm, :], cfg.cols),
                    "last": int(mm == m - 1),
                }))
        return beats

    def result_beats(self, product: Product) -> int:
        """How many result beats ``product`` produces."""
        return self.config.tile_m if self.config.dataflow == "os" else product.shape[0]

    def decode_result(self, bits: int) -> tuple[list[int], bool]:
        view = self.result_layout.from_bits(bits)
        return [int(v) for v in view.c], bool(view.last)

    def assemble(self, product: Product, rows: list[list[int]]) -> np.ndarray:
        """The (M, N) product out of its decoded result rows."""
        m, n, _ = product.shape
        return np.array([r[:n] for r in rows[:m]], dtype=object).reshape(m, n)
