"""The Nvidia GPU spec database (``models/data/gpus.yaml``), loaded through a schema."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ...dtypes import DTYPES, FP4_DTYPES
from ...errors import UserError
from ..specs import DATA_DIR, SpecError, load_yaml, need

GPU_FILE = DATA_DIR / "gpus.yaml"
FAMILIES = ("volta", "ampere", "ada", "hopper", "blackwell")
CONFIDENCE = ("high", "medium", "low")


@dataclass(frozen=True)
class PriceRange:
    """A GPU's street price range in USD where one is public, with its source and confidence."""

    low_usd: float
    high_usd: float
    source: str
    confidence: str

    @property
    def mid_usd(self) -> float:
        return (self.low_usd + self.high_usd) / 2


@dataclass(frozen=True)
class GpuSpec:
    """One GPU. Peak rates are dense TFLOPS (TOPS for integers) per dtype id."""

    id: str
    name: str
    family: str
    architecture: str
    process_node: str
    data_center: bool
    launch_year: int
    sm_count: int
    die_area_mm2: float | None
    transistors_B: float | None
    memory_type: str
    memory_GB: float
    mem_bw_GBps: float
    l2_MB: float | None
    tdp_W: float
    nvlink_bidir_GBps: float
    pcie_bidir_GBps: float
    peak_dense_tflops: dict[str, float]
    source: str
    confidence: str
    uncertain: dict[str, str] = field(default_factory=dict)
    price: PriceRange | None = None
    boost_clock_MHz: float | None = None
    notes: str = ""
    peak_sources: dict[str, str] = field(default_factory=dict)   # dtype -> the source of that peak, where own

    @property
    def fp4_dtypes(self) -> tuple[str, ...]:
        """The block-scaled FP4 formats this GPU's tensor cores run natively (Blackwell)."""
        return tuple(d for d in FP4_DTYPES if self.peak(d))

    @property
    def io_bidir_GBps(self) -> float:
        """Aggregate bidirectional chip I/O (NVLink + PCIe), as the Oct-2022 rule counts it."""
        return self.nvlink_bidir_GBps + self.pcie_bidir_GBps

    def peak(self, dtype: str) -> float | None:
        return self.peak_dense_tflops.get(dtype)

    def flags(self, *fields: str) -> list[str]:
        """Uncertainty notes for the named fields (prefix match: ``peak_dense_tflops``)."""
        out = []
        for key, why in self.uncertain.items():
            if not fields or any(key == f or key.startswith(f + ".") or f.startswith(key) for f in fields):
                out.append(f"{self.id} {key}: {why}")
        return out


def _parse(gid: str, d: Any, path: Path) -> GpuSpec:
    w = f"gpus.{gid}"
    num = (int, float)
    peaks = need(path, w, d, "peak_dense_tflops", dict)
    for dt in peaks:
        if dt not in DTYPES:
            raise SpecError(path, f"{w}.peak_dense_tflops.{dt}", f"unknown dtype; known: {', '.join(DTYPES)}")
        need(path, f"{w}.peak_dense_tflops", peaks, dt, num, positive=True)
    family = need(path, w, d, "family", str)
    if family not in FAMILIES:
        raise SpecError(path, f"{w}.family", f"must be one of {', '.join(FAMILIES)}, not {family!r}")
    sources = dict(need(path, w, d, "peak_sources", dict, optional=True) or {})
    for dt in sources:
        if dt not in peaks:
            raise SpecError(path, f"{w}.peak_sources.{dt}", "names no peak of peak_dense_tflops")
        need(path, f"{w}.peak_sources", sources, dt, str)
    conf = need(path, w, d, "confidence", str)
    if conf not in CONFIDENCE:
        raise SpecError(path, f"{w}.confidence", f"must be one of {', '.join(CONFIDENCE)}, not {conf!r}")
    price = None
    p = need(path, w, d, "price_usd", dict, optional=True)
    if p is not None:
        price = PriceRange(need(path, f"{w}.price_usd", p, "low", num, positive=True),
                           need(path, f"{w}.price_usd", p, "high", num, positive=True),
                           need(path, f"{w}.price_usd", p, "source", str),
                           need(path, f"{w}.price_usd", p, "confidence", str))
    return GpuSpec(
        id=gid,
        name=need(path, w, d, "name", str),
        family=family,
        architecture=need(path, w, d, "architecture", str),
        process_node=need(path, w, d, "process_node", str),
        data_center=need(path, w, d, "data_center", bool),
        launch_year=need(path, w, d, "launch_year", int),
        sm_count=need(path, w, d, "sm_count", int, positive=True),
        die_area_mm2=need(path, w, d, "die_area_mm2", num, positive=True, optional=True),
        transistors_B=need(path, w, d, "transistors_B", num, positive=True, optional=True),
        memory_type=need(path, w, d, "memory_type", str),
        memory_GB=need(path, w, d, "memory_GB", num, positive=True),
        mem_bw_GBps=need(path, w, d, "mem_bw_GBps", num, positive=True),
        l2_MB=need(path, w, d, "l2_MB", num, positive=True, optional=True),
        tdp_W=need(path, w, d, "tdp_W", num, positive=True),
        nvlink_bidir_GBps=need(path, w, d, "nvlink_bidir_GBps", num),
        pcie_bidir_GBps=need(path, w, d, "pcie_bidir_GBps", num),
        peak_dense_tflops=dict(peaks),
        source=need(path, w, d, "source", str),
        confidence=conf,
        uncertain=dict(need(path, w, d, "uncertain", dict, optional=True) or {}),
        price=price,
        boost_clock_MHz=need(path, w, d, "boost_clock_MHz", num, positive=True, optional=True),
        notes=need(path, w, d, "notes", str, optional=True) or "",
        peak_sources=sources,
    )


def load_gpus(path: str | Path = GPU_FILE) -> dict[str, GpuSpec]:
    """All GPUs in ``path``, keyed by id; a malformed file raises :class:`SpecError`."""
    return dict(_parsed(str(path)))


def is_gpu(device: object) -> bool:
    """Whether ``device`` names a GPU: a :class:`GpuSpec` or an id of the GPU file."""
    return isinstance(device, GpuSpec) or (isinstance(device, str) and device in load_gpus())


@cache
def _parsed(path_text: str) -> dict[str, GpuSpec]:
    # parsed once per file: serving searches look GPUs up thousands of times
    path = Path(path_text)
    data = load_yaml(path)
    gpus = need(path, "", data, "gpus", dict)
    return {gid: _parse(gid, d, path) for gid, d in gpus.items()}


def list_gpus() -> list[str]:
    """Ids of the GPUs in ``data/gpus.yaml``."""
    return list(load_gpus())


def get_gpu(gpu_id: GpuSpec | str, *, path: str | Path = GPU_FILE) -> GpuSpec:
    """A GPU by id (``h100-sxm``, ``h20`` ...); an unknown id names the known ones. A
    :class:`GpuSpec` passes through, so that a caller resolves an id once and hands the
    spec on."""
    if isinstance(gpu_id, GpuSpec):
        return gpu_id
    gpus = load_gpus(path)
    if gpu_id not in gpus:
        raise UserError(f"gpu: unknown GPU id {gpu_id!r}; choose one of {', '.join(gpus)}")
    return gpus[gpu_id]
