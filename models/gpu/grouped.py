"""A grouped (MoE) GEMM as one kernel runs it: each group (expert) multiplies its own rows
(tokens) by its own weights, all of one N x K shape, in one of DeepGEMM's two layouts
(:mod:`~systolab.models.gpu.libraries`):

* ``contiguous`` (prefill, training): the groups' rows are concatenated, each group padded
  to the block M (128); one persistent kernel walks the blocks of the summed rows, so a
  group of 1 row costs a whole 128-row block;
* ``masked`` (decode under CUDA graphs, where the host does not know the counts): a fixed
  buffer of ``M_max`` rows per group and a per-group count; the kernel's tile is chosen
  for ``expected_m`` rows a group and its scheduler walks each group's actual blocks.

The model reads it with :func:`~systolab.models.gpu.model.estimate_grouped_gemm`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...checks import check_choice, check_int, check_iterable
from ...dtypes import OUTPUT_DTYPE, get_dtype, operand_bytes
from ...errors import UserError
from ..workloads.gemm import Gemm
from .libraries import LAYOUTS


@dataclass(frozen=True)
class GroupedGemm:
    """One grouped GEMM: group g computes C_g[m_g, N] = A_g[m_g, K] @ B_g[K, N].

    ``group_m``: rows of each group (tokens routed to each expert; 0 allowed, not all);
    ``layout``: ``contiguous`` or ``masked``; ``expected_m``: the masked layout's hint of
    rows per group that its tile is chosen for (default: the mean over the groups, rounded
    up)."""

    group_m: tuple[int, ...]
    N: int
    K: int
    dtype: str = "fp8_e4m3"
    layout: str = "contiguous"
    expected_m: int | None = None
    name: str = "grouped gemm"

    def __post_init__(self) -> None:
        rows = tuple(check_int("group_m", m, lo=0) for m in check_iterable("group_m", self.group_m, "a list of rows per group"))
        if not rows or not any(rows):
            raise UserError(f"group_m: needs at least one group with rows, not {list(rows)} (gemm {self.name!r})",
                            parameter="group_m")
        object.__setattr__(self, "group_m", rows)
        object.__setattr__(self, "N", check_int("N", self.N))
        object.__setattr__(self, "K", check_int("K", self.K))
        check_choice("layout", self.layout, LAYOUTS)
        get_dtype(self.dtype)
        if self.expected_m is not None:
            if self.layout != "masked":
                raise UserError("expected_m: a hint of the masked layout only, not of layout "
                                f"{self.layout!r}", parameter="expected_m")
            object.__setattr__(self, "expected_m", check_int("expected_m", self.expected_m))

    @classmethod
    def even(cls, gemm: Gemm, layout: str) -> GroupedGemm:
        """``gemm.parallel`` groups of ``gemm.M`` rows each (one call: ``gemm.rounds`` must be 1)."""
        if gemm.rounds != 1:
            raise UserError(f"count: a grouped layout runs one call of {gemm.parallel} groups, not {gemm.rounds} "
                            f"calls (gemm {gemm.name!r})", parameter="count")
        return cls((gemm.M,) * gemm.parallel, gemm.N, gemm.K, gemm.dtype, layout, None, gemm.name)

    @property
    def groups(self) -> int:
        return len(self.group_m)

    @property
    def active_groups(self) -> int:
        """Groups with rows: their weights are read."""
        return sum(1 for m in self.group_m if m)

    @property
    def rows(self) -> int:
        """Rows of all groups, padding left out."""
        return sum(self.group_m)

    @property
    def hint_m(self) -> int:
        """The rows a group is expected to hold, that the masked kernel's tile is chosen for."""
        return self.expected_m or math.ceil(self.rows / self.groups)

    @property
    def flops(self) -> int:
        """Useful operations, 2 per multiply-accumulate, padding and masked rows left out."""
        return 2 * self.rows * self.N * self.K

    def block_rows(self, block_m: int) -> tuple[int, ...]:
        """Rows each group's blocks span: its rows rounded up to ``block_m`` (the contiguous
        layout's padding to its alignment, the masked layout's last partial block)."""
        return tuple(math.ceil(m / block_m) * block_m for m in self.group_m)

    def m_blocks(self, block_m: int) -> int:
        """Output row blocks over all groups: the sum of each group's own."""
        return sum(math.ceil(m / block_m) for m in self.group_m)

    def bytes_moved(self, block_m: int) -> int:
        """Off-chip traffic at ``block_m``: every block's rows of A read and of C written,
        each active group's weights read once."""
        a, b = operand_bytes(self.dtype)
        o = OUTPUT_DTYPE[self.dtype].bytes
        rows = sum(self.block_rows(block_m))
        return math.ceil(rows * self.K * a + self.active_groups * self.K * self.N * b + rows * self.N * o)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "group_m": list(self.group_m), "N": self.N, "K": self.K, "dtype": self.dtype,
                "layout": self.layout, "expected_m": self.hint_m if self.layout == "masked" else None}

