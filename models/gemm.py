"""A GEMM as the models see it, and explicit GEMM lists loaded from files."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..dtypes import get_dtype
from ..errors import UserError

#: Bytes per element in memory. Output of int8 GEMMs is int32; of fp8 GEMMs bf16.
STORAGE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1,
                 "fp16": 2, "bf16": 2, "tf32": 4, "fp32": 4}
OUTPUT_DTYPE = {"int8": "int32", "uint8": "int32", "int16": "int32", "fp8_e4m3": "bf16", "fp8_e5m2": "bf16",
                "fp16": "fp16", "bf16": "bf16", "tf32": "fp32", "fp32": "fp32"}
OUTPUT_BYTES = {"int32": 4, "bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class Gemm:
    """``count`` independent products C[M, N] = A[M, K] @ B[K, N] in ``dtype``."""

    M: int
    N: int
    K: int
    dtype: str = "bf16"
    count: int = 1
    name: str = "gemm"

    def __post_init__(self) -> None:
        for dim in ("M", "N", "K", "count"):
            v = getattr(self, dim)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UserError(f"{dim}: must be a positive integer, not {v!r} (gemm {self.name!r})")
        get_dtype(self.dtype)

    @property
    def flops(self) -> int:
        """Floating-point (or integer) operations, 2 per multiply-accumulate, all copies."""
        return 2 * self.M * self.N * self.K * self.count

    @property
    def min_bytes(self) -> int:
        """Compulsory off-chip traffic: read A and B once, write C once (all copies)."""
        i = STORAGE_BYTES[self.dtype]
        o = OUTPUT_BYTES[OUTPUT_DTYPE[self.dtype]]
        return ((self.M * self.K + self.K * self.N) * i + self.M * self.N * o) * self.count


def parse_gemm(text: str, *, dtype: str = "bf16", name: str | None = None) -> Gemm:
    """``"MxNxK"`` → :class:`Gemm`; a bad string raises a :class:`UserError` naming ``gemm``."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise UserError(f"gemm: expected MxNxK with positive integers (e.g. 4096x4096x4096), not {text!r}")
    M, N, K = (int(v) for v in m.groups())
    if min(M, N, K) < 1:
        raise UserError(f"gemm: every dimension must be >= 1, not {text!r}")
    return Gemm(M, N, K, dtype, 1, name or f"{M}x{N}x{K}")


def load_gemm_list(path: str | Path, *, dtype: str = "bf16") -> list[Gemm]:
    """GEMMs from a CSV file with a header ``name,M,N,K[,count][,dtype]``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"workload: no such file: {path}")
    gemms = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"M", "N", "K"} - set(reader.fieldnames or [])
        if missing:
            raise UserError(f"workload: {path} lacks column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                gemms.append(Gemm(int(row["M"]), int(row["N"]), int(row["K"]), row.get("dtype") or dtype,
                                  int(row.get("count") or 1), row.get("name") or f"row{line}"))
            except (ValueError, UserError) as exc:
                raise UserError(f"workload: {path} line {line}: {exc}") from None
    if not gemms:
        raise UserError(f"workload: {path} holds no GEMMs")
    return gemms
