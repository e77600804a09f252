"""A GEMM as the models see it, and explicit GEMM lists loaded from files."""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ...checks import MAX_DIM, is_int
from ...dtypes import OUTPUT_DTYPE, get_dtype, operand_bytes
from ...errors import UserError
from ...files import read_text

#: The most rows a workload file may hold: real ones hold tens to thousands; beyond this a
#: run would take minutes (each distinct GEMM is modelled, or mapped on a chip).
MAX_WORKLOAD_ROWS = 10_000


def check_rows(path: str | Path, text: str) -> None:
    """Refuse a workload file of more than :data:`MAX_WORKLOAD_ROWS` lines, naming ``workload``."""
    if (rows := text.count("\n")) > MAX_WORKLOAD_ROWS + 1:
        raise UserError(f"workload: {path} holds {rows:,} lines; a workload file holds at most "
                        f"{MAX_WORKLOAD_ROWS:,} GEMMs (give repeated GEMMs a count column)", parameter="workload")

#: Bytes per element in memory. Output of int8 GEMMs is int32; of fp8 GEMMs bf16.


@dataclass(frozen=True)
class Gemm:
    """``count`` products C[M, N] = A[M, K] @ B[K, N] in ``dtype``, run ``parallel`` at a
    time: ``parallel`` of them are independent of each other at one point of the workload
    (the attention heads of one layer) and may run as one batched call; the
    ``count / parallel`` rounds run one after another (the layers)."""

    M: int
    N: int
    K: int
    dtype: str = "bf16"
    count: int = 1
    name: str = "gemm"
    parallel: int = 1

    def __post_init__(self) -> None:
        for dim in ("M", "N", "K", "count", "parallel"):
            v = getattr(self, dim)
            if not is_int(v) or not 1 <= v <= MAX_DIM:
                raise UserError(f"{dim}: must be an integer in 1..{MAX_DIM}, not "
                                f"{v if not is_int(v) or abs(v) < 10**12 else 'a huge number'} (gemm {self.name!r})",
                                parameter=dim)
            object.__setattr__(self, dim, int(v))
        if self.count % self.parallel:
            raise UserError(f"parallel: must divide count ({self.count}), not {self.parallel} (gemm {self.name!r})",
                            parameter="parallel")
        get_dtype(self.dtype)

    @property
    def rounds(self) -> int:
        """Calls of ``parallel`` products one after another."""
        return self.count // self.parallel

    @property
    def flops(self) -> int:
        """Floating-point (or integer) operations, 2 per multiply-accumulate, all copies."""
        return 2 * self.M * self.N * self.K * self.count

    @property
    def min_bytes(self) -> int:
        """Compulsory off-chip traffic: read A and B once, write C once (all copies). A
        block-scaled or weight-only format's operands are read at their storage bytes,
        scales included (:func:`~systolab.dtypes.operand_bytes`), rounded up to a byte."""
        a, b = operand_bytes(self.dtype)
        o = OUTPUT_DTYPE[self.dtype].bytes
        if a.is_integer() and b.is_integer():           # whole bytes: exact integer arithmetic
            return (self.M * self.K * int(a) + self.K * self.N * int(b) + self.M * self.N * o) * self.count
        return math.ceil((self.M * self.K * a + self.K * self.N * b + self.M * self.N * o) * self.count)


def parse_gemm(text: str, *, dtype: str = "bf16", name: str | None = None) -> Gemm:
    """``"MxNxK"`` → :class:`Gemm`; a bad string raises a :class:`UserError` naming ``gemm``."""
    m = re.fullmatch(r"\s*(\d{1,12})\s*[xX]\s*(\d{1,12})\s*[xX]\s*(\d{1,12})\s*", text) if isinstance(text, str) else None
    if not m:
        raise UserError(f"gemm: expected MxNxK with positive integers (e.g. 4096x4096x4096), not {text!r}")
    M, N, K = (int(v) for v in m.groups())
    if not all(1 <= v <= MAX_DIM for v in (M, N, K)):
        raise UserError(f"gemm: every dimension must be in 1..{MAX_DIM}, not {text!r}")
    return Gemm(M, N, K, dtype, 1, name or f"{M}x{N}x{K}")


def load_gemm_list(path: str | Path, *, dtype: str) -> list[Gemm]:
    """GEMMs from a CSV file with a header ``name,M,N,K[,count][,dtype][,parallel]``."""
    path = Path(path)
    text = read_text(path, parameter="workload")
    check_rows(path, text)
    reader = csv.DictReader(text.splitlines())
    missing = {"M", "N", "K"} - set(reader.fieldnames or [])
    if missing:
        raise UserError(f"workload: {path} lacks column(s) {', '.join(sorted(missing))}")
    gemms = []
    for line, row in enumerate(reader, start=2):
        try:
            if None in row.values() or None in row:
                raise ValueError(f"expected {len(reader.fieldnames or [])} fields as the header has")
            gemms.append(Gemm(_dim("M", row["M"]), _dim("N", row["N"]), _dim("K", row["K"]), row.get("dtype") or dtype,
                              _dim("count", row.get("count") or "1"), row.get("name") or f"row{line}",
                              _dim("parallel", row.get("parallel") or "1")))
        except (ValueError, UserError) as exc:
            raise UserError(f"workload: {path} line {line}: {exc}") from None
    if not gemms:
        raise UserError(f"workload: {path} holds no GEMMs")
    return gemms


def _dim(name: str, text: str) -> int:
    t = text.strip()
    if not re.fullmatch(r"\d{1,12}", t):
        raise ValueError(f"{name} must be a positive integer, not {text!r}")
    return int(t)
