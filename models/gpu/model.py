"""Modelled GEMM time on Nvidia GPUs, calibrated on public measurements.

Model (per GEMM, per GPU, per dtype):

* **compute**: the output is cut into CTA tiles (``gpu_model.yaml``); each SM computes
  one tile at a time at 1/SM_count of the dense peak times a *compute efficiency* (and,
  outside the best-shape benchmarks, a *compute derate*), or as fast as its L2 feeds the
  tile's operands if that is slower, plus a fixed *per-tile cost*; tiles run in waves
  over the SMs, so a partial last wave costs a whole wave (wave quantisation) and partial
  edge tiles cost whole tiles. When there are too few tiles to fill the SMs the model may
  split K (split-K), paying the partial sums' traffic and a second launch. The best
  tile/split is chosen, as cuBLAS's heuristics try to. A library with a published rule
  (DeepGEMM) runs the tile its rule picks instead (:mod:`~systolab.models.gpu.libraries`),
  and a grouped MoE GEMM runs in its layout (:class:`~systolab.models.gpu.grouped.GroupedGemm`,
  :func:`estimate_grouped_gemm`).
* **memory**: compulsory traffic (A and B read once, C written once) at peak DRAM
  bandwidth times a *memory efficiency*, in proportion when too few tiles are in flight
  to draw it all.
* time = max(compute, memory) + a fixed cost per kernel.
* **layers** (:mod:`~systolab.models.gpu.runtime`): the *kernel* layer is what a library
  benchmark measures (calibrated efficiency, no compute derate, no fixed cost per kernel:
  its launches are queued back to back); the *runtime* layer adds a serving runtime's
  fixed cost per kernel and compute derate (the serving fit's, by default vLLM's).
* **order**: a GEMM of ``count`` products runs as ``count / parallel`` kernel calls one
  after another (the layers: a layer starts when the previous one has ended), each a
  batched call of ``parallel`` independent products (heads, sequences, experts) whose
  tiles share the waves. So waves and launches are counted per call, not over the whole
  workload at once.

The compute efficiency is fitted per GPU family and dtype class to the best-case
measurements in ``data/gemm_calibration.csv`` (large, compute-bound shapes; at most 1).
Families or dtype classes with no measurement borrow a fitted value, and the estimate says
so (``extrapolated``). The per-tile cost, L2 feed and DRAM share are fitted on public
skinny and small-K GEMMs (:mod:`~systolab.models.gpu.fit`); memory efficiency, compute
derate (clocks under the power limit) and the per-kernel cost on public serving runs
(:mod:`~systolab.models.serving.fit`); all are in ``data/gpu_fit.yaml``. Not modelled:
L2-resident reuse for small GEMMs (it can make them faster than DRAM allows), epilogue
fusion, and kernels other than GEMM (the serving model adds those).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from functools import cache
from typing import NamedTuple

from ...dtypes import operand_bytes
from ...errors import UserError
from ..specs import DATA_DIR, load_yaml, need
from ..workloads.gemm import Gemm
from .fit_file import fit_file, reads_fit
from .grouped import GroupedGemm
from .libraries import DEEPGEMM_CONTIGUOUS_ALIGN, deepgemm_block, deepgemm_multicast
from .runtime import check_layer, get_runtime
from .specs import GpuSpec, get_gpu, load_gpus

MODEL_FILE = DATA_DIR / "gpu_model.yaml"
#: The parameters gpu_fit.yaml holds (fitted by :mod:`~systolab.models.serving.fit`).
FIT_PARAMS = ("compute_derate", "memory_efficiency_HBM", "memory_efficiency_GDDR", "launch_overhead_s")
#: The GEMM-shape parameters gpu_fit.yaml holds (fitted by :mod:`~systolab.models.gpu.fit`).
SHAPE_PARAMS = ("tile_overhead_k", "operand_bytes_per_clock", "dram_sm_fraction")
CALIBRATION_FILE = DATA_DIR / "gemm_calibration.csv"
#: GEMM libraries the kernel layer reads, with the fit's keys of their tensor and bandwidth
#: efficiencies against the model's reference (cuBLAS-class kernels, the best-shape benchmarks):
#: DeepGEMM's are fitted on its H800 FP8 table (:mod:`~systolab.models.gpu.fit`).
LIBRARIES = {"cublas": None, "deepgemm": ("gemm_library_compute", "gemm_library_memory")}

#: Which peak a dtype runs at when the GPU has no rate of its own for it, in order.
FALLBACK = {
    "fp8_e4m3": ["fp8_e5m2", "bf16", "fp16"], "fp8_e5m2": ["fp8_e4m3", "bf16", "fp16"],
    "int8": ["fp16"], "uint8": ["int8", "fp16"], "int16": ["fp32"],
    "bf16": ["fp32"], "fp16": ["fp32"], "tf32": ["fp32"], "fp32": [],
    # FP4 has no fallback: a GPU without FP4 tensor cores cannot run it (models/serving/formats.py);
    # weight-only formats run their math at the activations' 16-bit rate
    "nvfp4": [], "mxfp4": [], "w4a16": ["bf16", "fp16"], "w8a16": ["bf16", "fp16"], "w8a16_fp8": ["bf16", "fp16"],
}
#: Calibration classes: dtypes that share tensor-core data paths share an efficiency.
DTYPE_CLASS = {"fp16": "half", "bf16": "half", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8",
               "int8": "int8", "uint8": "int8", "int16": "fp32", "tf32": "tf32", "fp32": "fp32",
               "nvfp4": "fp4", "mxfp4": "fp4", "w4a16": "half", "w8a16": "half", "w8a16_fp8": "half"}
#: When a class has no measurement, borrow the efficiency of these, in order.
CLASS_BORROW = {"half": [], "fp8": ["half"], "int8": ["fp8", "half"], "tf32": ["half"], "fp32": ["half"],
                "fp4": ["fp8", "half"]}


@dataclass(frozen=True)
class ModelAssumptions:
    mem_eff_hbm: float
    mem_eff_gddr: float
    launch_s: float
    tiles: tuple[tuple[int, int], ...]
    split_k: tuple[int, ...]
    min_k_per_split: int
    skinny_below: int
    basis: dict[str, str]
    compute_derate: float = 1.0      # sustained tensor throughput / the best-shape benchmark's
    tile_overhead_k: float = 0.0     # fixed cost of every output tile (pipeline fill, epilogue), as extra K
    operand_bytes_per_clock: float = 0.0   # operand bytes an SM draws from L2 per clock (0: unlimited)
    dram_sm_fraction: float = 0.0    # share of the SMs whose CTAs it takes to draw the DRAM's bandwidth


def fitted(path: str | None = None) -> dict[str, float]:
    """The fitted parameters of ``gpu_fit.yaml`` (:data:`FIT_PARAMS` and :data:`SHAPE_PARAMS`);
    by default of the copy the model reads (:func:`~systolab.models.gpu.fit_file.fit_file`)."""
    path = path or str(fit_file())
    d = load_yaml(path)
    return {k: float(need(path, "", d, k, (int, float), positive=True)) for k in FIT_PARAMS + SHAPE_PARAMS}


@reads_fit
@cache
def assumptions(path: str = str(MODEL_FILE), fit_path: str | None = None) -> ModelAssumptions:
    fit_path = fit_path or str(fit_file())
    d = load_yaml(path)
    tiles = need(path, "", d, "tiles", list)
    f = fitted(fit_path)
    return ModelAssumptions(
        mem_eff_hbm=f["memory_efficiency_HBM"],
        mem_eff_gddr=f["memory_efficiency_GDDR"],
        launch_s=f["launch_overhead_s"],
        tiles=tuple((int(a), int(b)) for a, b in tiles),
        split_k=tuple(int(s) for s in need(path, "", d, "split_k", list)),
        min_k_per_split=need(path, "", d, "min_k_per_split", int, positive=True),
        skinny_below=need(path, "", d, "skinny_tiles_below", int, positive=True),
        basis={"tiles": d.get("tiles_basis", ""), "fit": load_yaml(fit_path).get("basis", "")},
        compute_derate=f["compute_derate"],
        tile_overhead_k=f["tile_overhead_k"],
        operand_bytes_per_clock=f["operand_bytes_per_clock"],
        dram_sm_fraction=f["dram_sm_fraction"],
    )


@dataclass(frozen=True)
class GpuGemmEstimate:
    """Modelled time of one :class:`Gemm` (all its copies) on one GPU."""

    gpu: str
    gemm: Gemm
    seconds: float
    compute_s: float
    memory_s: float
    launch_s: float
    bound: str                # "compute", "memory" or "latency" (launch overhead dominates)
    peak_tflops: float        # dense peak of the dtype the GEMM ran at
    dtype_used: str           # the dtype whose peak was used (after fallback)
    compute_efficiency: float
    memory_efficiency: float
    wave_efficiency: float    # useful MACs / MACs the waves of tiles could have done
    tile: tuple[int, int]
    split_k: int
    waves: int
    bytes_moved: int
    extrapolated: bool
    notes: tuple[str, ...] = field(default=())
    launches: int = 1         # kernel launches: one per round (two with split-K)
    layer: str = "runtime"    # "kernel" (library benchmark) or "runtime" (serving runtime's costs added)
    runtime: str | None = None   # the runtime whose costs the runtime layer adds
    library: str = "cublas"      # the GEMM library whose kernels run (LIBRARIES)

    @property
    def tflops(self) -> float:
        return self.gemm.flops / self.seconds / 1e12

    @property
    def roofline_s(self) -> float:
        """Lower bound: all FLOPs at dense peak, compulsory bytes at peak bandwidth."""
        return max(self.gemm.flops / (self.peak_tflops * 1e12), self.gemm.min_bytes / self._peak_bw)

    _peak_bw: float = 0.0

    def to_dict(self) -> dict:
        g = self.gemm
        return {
            "gpu": self.gpu, "gemm": {"name": g.name, "M": g.M, "N": g.N, "K": g.K, "count": g.count,
                                      "parallel": g.parallel, "dtype": g.dtype},
            "seconds": self.seconds, "tflops": self.tflops, "bound": self.bound,
            "compute_s": self.compute_s, "memory_s": self.memory_s, "launch_s": self.launch_s,
            "peak_tflops": self.peak_tflops, "dtype_used": self.dtype_used,
            "compute_efficiency": self.compute_efficiency, "memory_efficiency": self.memory_efficiency,
            "wave_efficiency": self.wave_efficiency, "tile": list(self.tile), "split_k": self.split_k,
            "waves": self.waves, "launches": self.launches, "bytes": self.bytes_moved, "roofline_s": self.roofline_s,
            "extrapolated": self.extrapolated, "notes": list(self.notes),
            "layer": self.layer, "runtime": self.runtime, "library": self.library,
        }


def resolve_peak(gpu: GpuSpec, dtype: str) -> tuple[str, float, list[str]]:
    """The dtype whose peak a GEMM in ``dtype`` runs at on ``gpu``, and why."""
    if dtype not in FALLBACK:
        raise UserError(f"dtype: {dtype!r} is not modelled on GPUs; choose one of {', '.join(FALLBACK)}")
    peak = gpu.peak(dtype)
    if peak:
        return dtype, peak, []
    for alt in FALLBACK[dtype]:
        peak = gpu.peak(alt)
        if peak:
            return alt, peak, [f"{gpu.id} has no {dtype} rate; modelled at its {alt} rate (storage stays {dtype})"]
    raise UserError(f"dtype: {gpu.id} has no rate for {dtype} or a fallback ({', '.join(FALLBACK[dtype]) or 'none'})")


def _mem_eff(gpu: GpuSpec, a: ModelAssumptions) -> float:
    return a.mem_eff_gddr if gpu.memory_type.upper().startswith("GDDR") else a.mem_eff_hbm


@cache
def _family_clock_MHz(family: str) -> float:
    clocks = [g.boost_clock_MHz for g in load_gpus().values() if g.family == family and g.boost_clock_MHz]
    return max(clocks) if clocks else 1500.0


def _clock_MHz(gpu: GpuSpec) -> float:
    """The SM clock, MHz; where it is not published (H20), the fastest of its family's."""
    return gpu.boost_clock_MHz or _family_clock_MHz(gpu.family)


class Rates(NamedTuple):
    """One SM's rates for a GEMM in one dtype under assumptions ``a`` (:func:`rates`)."""

    per_sm: float     # tensor FLOP/s at the calibrated efficiency and the derate
    feed: float       # operand bytes/s it draws from L2 (inf: unlimited)
    half: float       # 16-bit tensor FLOP/s at peak (the fixed per-tile cost's rate)
    elem_a: float     # storage bytes of an A element, scales included
    elem_b: float     # of a B element
    bw: float         # sustained DRAM bandwidth of the GPU, B/s


def rates(gpu: GpuSpec, dtype: str, peak_tflops: float, eff: float, a: ModelAssumptions) -> Rates:
    """The rates :func:`tiling_cost` reads, for a GEMM in ``dtype`` run at ``peak_tflops``."""
    sms = gpu.sm_count
    # an SM's L2 feed, bytes/s: so many bytes per clock (the L2 is not throttled with the
    # tensor cores of export SKUs such as the H20)
    feed = a.operand_bytes_per_clock * _clock_MHz(gpu) * 1e6 if a.operand_bytes_per_clock else math.inf
    half = (gpu.peak("bf16") or gpu.peak("fp16") or peak_tflops) * 1e12 / sms
    elem_a, elem_b = operand_bytes(dtype)
    return Rates(peak_tflops * 1e12 * eff / sms * a.compute_derate, feed, half, elem_a, elem_b,
                 gpu.mem_bw_GBps * 1e9 * _mem_eff(gpu, a))


def tiling_cost(sms: int, r: Rates, a: ModelAssumptions, tile: tuple[int, int], split: int, tiles: int,
                K: int, nbytes: int, *, rounds: int = 1, multicast: int = 1) -> tuple[float, float, int]:
    """(compute_s, memory_s, waves) of ``rounds`` kernel calls one after another, each of
    ``tiles`` output tiles of ``tile`` (rows x columns) with K cut into ``split`` slices,
    moving ``nbytes`` off chip in all. ``multicast`` CTAs share each load of an A tile (TMA
    multicast). The calls are alike, so their max(compute, memory) add up to the totals'."""
    tm, tn = tile
    waves = math.ceil(tiles * split / sms) * rounds
    k_per = math.ceil(K / split)
    # a tile's time: its MACs at the SM's rate or its operands at the SM's L2 feed,
    # whichever is longer, plus its fixed prologue/epilogue cost: tile_overhead_k more of K
    # at the SM's 16-bit rate (faster SMs pay less)
    tile_s = max(2 * tm * tn * k_per / r.per_sm, (tm * r.elem_a / multicast + tn * r.elem_b) * k_per / r.feed)
    compute = waves * (tile_s + 2 * tm * tn * a.tile_overhead_k / r.half)
    # too few CTAs in flight cannot draw the DRAM's full bandwidth
    memory = nbytes / (r.bw * min(1.0, tiles * split / (sms * a.dram_sm_fraction or 1)))
    return compute, memory, waves


def raw_estimate(gpu: GpuSpec, gemm: Gemm, peak_tflops: float, eff: float, a: ModelAssumptions,
                 library: str = "cublas"):
    """Best (time, compute, memory, launch, tile, split, waves, wave_eff, bytes, launches)
    over tilings. The GEMM runs as ``gemm.rounds`` kernel calls one after another (the
    layers), each a batched call of ``gemm.parallel`` products whose tiles share waves.
    ``library="deepgemm"``: the one tile DeepGEMM's rule picks, no split-K
    (:mod:`~systolab.models.gpu.libraries`; its ``parallel`` products are the groups of a
    masked-layout call, all full)."""
    sms = gpu.sm_count
    r = rates(gpu, gemm.dtype, peak_tflops, eff, a)
    if library == "deepgemm":
        tile = deepgemm_block(gemm.M, gemm.N, gemm.parallel, sms)
        plans = [(tile, 1, deepgemm_multicast(gemm.M, gemm.N, tile[1], gemm.parallel, sms))]
    else:
        skinny_ok = min(gemm.M, gemm.N) < a.skinny_below
        plans = [((tm, tn), s, 1) for tm, tn in a.tiles if skinny_ok or min(tm, tn) >= a.skinny_below
                 for s in a.split_k if s == 1 or gemm.K / s >= a.min_k_per_split]
    best = None
    for (tm, tn), s, multicast in plans:
        tiles = math.ceil(gemm.M / tm) * math.ceil(gemm.N / tn) * gemm.parallel
        extra = 2 * s * gemm.M * gemm.N * 4 * gemm.count if s > 1 else 0     # split-K's partial sums
        nbytes = gemm.min_bytes + extra
        compute, memory, waves = tiling_cost(sms, r, a, (tm, tn), s, tiles, gemm.K, nbytes, rounds=gemm.rounds,
                                             multicast=multicast)
        launches = gemm.rounds * (2 if s > 1 else 1)
        launch = a.launch_s * launches
        total = max(compute, memory) + launch
        wave_eff = gemm.flops / (waves * sms * 2 * tm * tn * math.ceil(gemm.K / s))
        cand = (total, compute, memory, launch, (tm, tn), s, waves, wave_eff, nbytes, launches)
        if best is None or cand[0] < best[0]:
            best = cand
    return best


def grouped_raw_estimate(gpu: GpuSpec, gg: GroupedGemm, peak_tflops: float, eff: float, a: ModelAssumptions,
                         library: str = "deepgemm"):
    """:func:`raw_estimate` of a grouped GEMM, one kernel call. DeepGEMM: the block its rule
    picks for the layout (contiguous: for the summed rows, each group padded to 128;
    masked: for ``expected_m`` rows a group), over each group's own blocks. cuBLAS-class
    kernels (a CUTLASS-style grouped GEMM): the best tile over each group's own blocks."""
    sms = gpu.sm_count
    r = rates(gpu, gg.dtype, peak_tflops, eff, a)
    if library == "deepgemm" and gg.layout == "contiguous":
        m_sum = sum(gg.block_rows(DEEPGEMM_CONTIGUOUS_ALIGN))
        tile = deepgemm_block(m_sum, gg.N, 1, sms, contiguous=True)
        plans = [(tile, deepgemm_multicast(m_sum, gg.N, tile[1], 1, sms))]
    elif library == "deepgemm":
        tile = deepgemm_block(gg.hint_m, gg.N, gg.groups, sms)
        plans = [(tile, deepgemm_multicast(gg.hint_m, gg.N, tile[1], gg.groups, sms))]
    else:
        skinny_ok = min(max(gg.group_m), gg.N) < a.skinny_below
        plans = [((tm, tn), 1) for tm, tn in a.tiles if skinny_ok or min(tm, tn) >= a.skinny_below]
    best = None
    for (tm, tn), multicast in plans:
        tiles = gg.m_blocks(tm) * math.ceil(gg.N / tn)
        nbytes = gg.bytes_moved(tm)
        compute, memory, waves = tiling_cost(sms, r, a, (tm, tn), 1, tiles, gg.K, nbytes, multicast=multicast)
        total = max(compute, memory) + a.launch_s
        wave_eff = gg.flops / (waves * sms * 2 * tm * tn * gg.K)
        cand = (total, compute, memory, a.launch_s, (tm, tn), 1, waves, wave_eff, nbytes, 1)
        if best is None or cand[0] < best[0]:
            best = cand
    return best


# -- calibration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationPoint:
    device: str
    gpu_id: str
    dtype: str
    M: int
    N: int
    K: int
    measured_tflops: float
    peak_tflops: float
    fitted_efficiency: float   # efficiency that reproduces this point exactly
    source: str
    notes: str


@dataclass(frozen=True)
class Calibration:
    points: tuple[CalibrationPoint, ...]
    efficiency: dict[tuple[str, str], float]   # (family, dtype class) -> fitted mean

    def lookup(self, family: str, dclass: str) -> tuple[float, bool, str]:
        """(efficiency, extrapolated, how) for a family and dtype class."""
        if (family, dclass) in self.efficiency:
            return self.efficiency[(family, dclass)], False, f"fitted on {family} {dclass} measurements"
        for alt in CLASS_BORROW[dclass]:
            if (family, alt) in self.efficiency:
                return self.efficiency[(family, alt)], True, f"{family} {dclass}: no measurement; {family} {alt} efficiency used"
        for alt in [dclass] + CLASS_BORROW[dclass]:
            vals = [e for (f, c), e in sorted(self.efficiency.items()) if c == alt]
            if vals:
                return sum(vals) / len(vals), True, f"{family} {dclass}: no measurement; mean {alt} efficiency of other families used"
        vals = list(self.efficiency.values())
        return sum(vals) / len(vals), True, "no measurement; mean of all fitted efficiencies used"


def _fit_point(gpu: GpuSpec, gemm: Gemm, peak: float, measured_tflops: float, a: ModelAssumptions) -> float:
    """Efficiency at which the model's time equals the measured one (bisection)."""
    target = gemm.flops / (measured_tflops * 1e12)
    lo, hi = 1e-3, 1.0          # an efficiency above 1 would beat the peak
    for _ in range(80):
        mid = (lo + hi) / 2
        if raw_estimate(gpu, gemm, peak, mid, a)[0] > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def layer_assumptions(layer: str = "runtime", runtime: str | None = None) -> ModelAssumptions:
    """The assumptions of one layer of the model: ``kernel`` (:func:`benchmark_assumptions`)
    or ``runtime`` with ``runtime``'s fixed cost per kernel and compute derate (the
    default runtime's when None: exactly :func:`assumptions`)."""
    check_layer(layer)
    if layer == "kernel":
        if runtime is not None:
            raise UserError("runtime: a runtime applies to the runtime layer only, not to layer 'kernel'",
                            parameter="runtime")
        return benchmark_assumptions()
    if runtime is None:
        return assumptions()
    rt = get_runtime(runtime)
    return replace(assumptions(), launch_s=rt.launch_overhead_s, compute_derate=rt.compute_derate)


def library_efficiencies(library: str = "cublas") -> tuple[float, float]:
    """(tensor, bandwidth) efficiency of a GEMM ``library`` against the model's reference
    (:data:`LIBRARIES`; 1 and 1 for cuBLAS), from the fit the model reads."""
    if library not in LIBRARIES:
        raise UserError(f"library: must be one of {', '.join(LIBRARIES)}, not {library!r}", parameter="library")
    keys = LIBRARIES[library]
    if keys is None:
        return 1.0, 1.0
    d = load_yaml(fit_file())
    return float(d.get(keys[0], 1.0)), float(d.get(keys[1], 1.0))


def benchmark_assumptions() -> ModelAssumptions:
    """The assumptions the best-shape GEMM benchmarks are read with: no serving derate and
    no fixed cost per kernel (they time one GEMM shape run back to back, over and over,
    with its launches queued ahead of it)."""
    return replace(assumptions(), compute_derate=1.0, launch_s=0.0)


@reads_fit
@cache
def calibration(path: str = str(CALIBRATION_FILE)) -> Calibration:
    """The per-family compute efficiencies, fitted on the best-shape GEMM benchmarks."""
    return calibrate(benchmark_assumptions(), path)


def calibrate(a: ModelAssumptions, path: str = str(CALIBRATION_FILE)) -> Calibration:
    """:func:`calibration` under the assumptions ``a`` (the GEMM-shape fit varies them)."""
    gpus = load_gpus()
    points = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            gpu = gpus[row["model_gpu_id"]]
            gemm = Gemm(int(row["M"]), int(row["N"]), int(row["K"]), row["dtype"], 1, row["device"])
            peak = float(row["peak_tflops"])
            measured = float(row["achieved_tflops"])
            points.append(CalibrationPoint(row["device"], gpu.id, row["dtype"], gemm.M, gemm.N, gemm.K,
                                           measured, peak, _fit_point(gpu, gemm, peak, measured, a),
                                           row["source"], row["notes"]))
    groups: dict[tuple[str, str], list[float]] = {}
    for p in points:
        groups.setdefault((gpus[p.gpu_id].family, DTYPE_CLASS[p.dtype]), []).append(p.fitted_efficiency)
    eff = {k: sum(v) / len(v) for k, v in sorted(groups.items())}
    return Calibration(tuple(points), eff)


def calibration_report() -> list[dict]:
    """Error of the model on every calibration point: in-sample (family mean) and
    leave-one-out (efficiency fitted without this point, from its dtype class elsewhere)."""
    cal = calibration()
    gpus = load_gpus()
    a = benchmark_assumptions()
    rows = []
    for i, p in enumerate(cal.points):
        gpu = gpus[p.gpu_id]
        gemm = Gemm(p.M, p.N, p.K, p.dtype, 1, p.device)
        eff, _, _ = cal.lookup(gpu.family, DTYPE_CLASS[p.dtype])
        pred = gemm.flops / raw_estimate(gpu, gemm, p.peak_tflops, eff, a)[0] / 1e12
        others = [q for j, q in enumerate(cal.points) if j != i and DTYPE_CLASS[q.dtype] == DTYPE_CLASS[p.dtype]]
        same_family = [q.fitted_efficiency for q in others if gpus[q.gpu_id].family == gpu.family]
        pool = same_family or [q.fitted_efficiency for q in others]
        loo = None
        if pool:
            loo_eff = sum(pool) / len(pool)
            loo = gemm.flops / raw_estimate(gpu, gemm, p.peak_tflops, loo_eff, a)[0] / 1e12
        rows.append({
            "device": p.device, "gpu_id": p.gpu_id, "dtype": p.dtype, "shape": f"{p.M}x{p.N}x{p.K}",
            "measured_tflops": p.measured_tflops, "model_tflops": round(pred, 1),
            "error_pct": round(100 * (pred - p.measured_tflops) / p.measured_tflops, 2),
            "loo_model_tflops": None if loo is None else round(loo, 1),
            "loo_error_pct": None if loo is None else round(100 * (loo - p.measured_tflops) / p.measured_tflops, 2),
            "fitted_efficiency": round(p.fitted_efficiency, 4),
        })
    return rows


def gemm_terms(gpu: GpuSpec, gemm: Gemm) -> tuple[float, int, int]:
    """(math_s, bytes, launches) of ``gemm`` at the tiling the model picks: math_s is the
    waves' tensor time at the calibrated efficiency before the serving derate (which the
    serving fit varies, :mod:`~systolab.models.serving.fit`)."""
    a = assumptions()
    dtype_used, peak, _ = resolve_peak(gpu, gemm.dtype)
    eff = calibration().lookup(gpu.family, DTYPE_CLASS[dtype_used])[0]
    _, compute, _, _, _, _, _, _, nbytes, launches = raw_estimate(gpu, gemm, peak, eff, a)
    return compute * a.compute_derate, nbytes, launches


def memory_efficiency(gpu: GpuSpec) -> float:
    """Fraction of peak DRAM bandwidth a streaming kernel sustains on ``gpu``."""
    return _mem_eff(gpu, assumptions())


# -- public API ----------------------------------------------------------------------------
def _reading(gpu: GpuSpec, dtype: str, layer: str, runtime: str | None, library: str):
    """(assumptions, runtime, dtype used, peak, efficiency, extrapolated, notes) of one reading
    of a GEMM in ``dtype``: the layer's assumptions with ``library``'s efficiencies."""
    a = layer_assumptions(layer, runtime)
    lib_c, lib_m = library_efficiencies(library)
    if library != "cublas":
        a = replace(a, compute_derate=a.compute_derate * lib_c, mem_eff_hbm=a.mem_eff_hbm * lib_m,
                    mem_eff_gddr=a.mem_eff_gddr * lib_m)
    if layer == "runtime":
        runtime = get_runtime(runtime).name
    dtype_used, peak, notes = resolve_peak(gpu, dtype)
    eff, extrapolated, how = calibration().lookup(gpu.family, DTYPE_CLASS[dtype_used])
    notes = notes + [f"compute efficiency {eff:.3f}: {how}"]
    if library != "cublas":
        notes.append(f"{library} kernels: {lib_c:.3f} of the reference tensor rate, {lib_m:.3f} of its bandwidth "
                     "(fitted on its published table), run at the tile its published rule picks")
    if library == "deepgemm" and (gpu.family != "hopper" or DTYPE_CLASS[dtype_used] != "fp8"):
        notes.append("DeepGEMM's kernels (at the commit of its published table) are Hopper FP8 only: "
                     f"{gpu.id} {dtype_used} read as if they ran (extrapolation)")
        extrapolated = True
    notes += gpu.flags(f"peak_dense_tflops.{dtype_used}", "sm_count", "mem_bw_GBps")
    return a, runtime, dtype_used, peak, eff, extrapolated, notes


def _bound(compute: float, memory: float, launch: float) -> str:
    return "latency" if launch > max(compute, memory) else ("compute" if compute >= memory else "memory")


def estimate_gemm(gpu: GpuSpec | str, gemm: Gemm, *, layer: str = "runtime",
                  runtime: str | None = None, library: str = "cublas") -> GpuGemmEstimate:
    """Modelled time of ``gemm`` on ``gpu`` (a :class:`GpuSpec` or GPU id), in seconds.

    ``layer="kernel"``: what a library benchmark measures (calibrated efficiency, no fixed
    cost per kernel, no serving derate; what ``systolab gpu`` reports by default).
    ``layer="runtime"`` (the library default, as the serving model reads GEMMs): with the
    fixed cost per kernel and compute derate of ``runtime`` (a name in
    ``data/runtimes.yaml``; the fitted default, vLLM, when None). ``library``: the GEMM
    library whose kernels run (:data:`LIBRARIES`; cuBLAS-class by default; DeepGEMM runs
    the tile its published rule picks, :mod:`~systolab.models.gpu.libraries`, and reads a
    batched GEMM as its masked grouped layout with every group full)."""
    gpu = get_gpu(gpu)
    if not isinstance(gemm, Gemm):
        raise TypeError(f"gemm must be a Gemm, not {type(gemm).__name__}")
    a, runtime, dtype_used, peak, eff, extrapolated, notes = _reading(gpu, gemm.dtype, layer, runtime, library)
    total, compute, memory, launch, tile, split, waves, wave_eff, nbytes, launches = raw_estimate(gpu, gemm, peak,
                                                                                                 eff, a, library)
    if gemm.M * gemm.N * gemm.parallel < gpu.sm_count * 64 * 64:
        notes.append("few output tiles: the model's split-K choice stands in for cuBLAS's small-GEMM kernels (extrapolation)")
        extrapolated = True
    est = GpuGemmEstimate(gpu.id, gemm, total, compute, memory, launch, _bound(compute, memory, launch), peak,
                          dtype_used, eff, _mem_eff(gpu, a), wave_eff, tile, split, waves, nbytes, extrapolated,
                          tuple(notes), launches=launches, layer=layer, runtime=runtime, library=library,
                          _peak_bw=gpu.mem_bw_GBps * 1e9)
    return est


@dataclass(frozen=True)
class GroupedGemmEstimate:
    """Modelled time of one :class:`~systolab.models.gpu.grouped.GroupedGemm` (one kernel
    call) on one GPU: seconds, the tile the library ran, its waves of blocks over the SMs."""

    gpu: str
    grouped: GroupedGemm
    seconds: float
    compute_s: float
    memory_s: float
    launch_s: float
    bound: str                # "compute", "memory" or "latency"
    tile: tuple[int, int]     # (block M, block N)
    blocks: int               # output blocks over all groups (padding and partial blocks included)
    waves: int                # ceil(blocks / SMs)
    wave_efficiency: float    # useful MACs / MACs the waves of blocks could have done
    bytes_moved: int          # off-chip bytes, B
    layer: str
    runtime: str | None
    library: str
    extrapolated: bool
    notes: tuple[str, ...] = ()

    @property
    def tflops(self) -> float:
        """Useful TFLOPS (padding and masked rows not counted), as DeepGEMM's benchmark counts."""
        return self.grouped.flops / self.seconds / 1e12

    def to_dict(self) -> dict:
        return {"gpu": self.gpu, "grouped_gemm": self.grouped.to_dict(), "seconds": self.seconds,
                "tflops": self.tflops, "bound": self.bound, "compute_s": self.compute_s, "memory_s": self.memory_s,
                "launch_s": self.launch_s, "tile": list(self.tile), "blocks": self.blocks, "waves": self.waves,
                "wave_efficiency": self.wave_efficiency, "bytes": self.bytes_moved, "layer": self.layer,
                "runtime": self.runtime, "library": self.library, "extrapolated": self.extrapolated,
                "notes": list(self.notes)}


def estimate_grouped_gemm(gpu: GpuSpec | str, grouped: GroupedGemm, *, layer: str = "kernel",
                          runtime: str | None = None, library: str = "deepgemm") -> GroupedGemmEstimate:
    """Modelled time of one grouped (MoE) GEMM call on ``gpu``, in seconds, in ``layer``
    (see :func:`estimate_gemm`; the kernel layer by default, as DeepGEMM's table measures).
    ``library="deepgemm"`` (default): its layouts as its source computes them: contiguous,
    each group padded to 128 rows and the tile picked for the summed rows; masked, the tile
    picked for ``expected_m`` rows a group and the work each group's actual blocks
    (:mod:`~systolab.models.gpu.libraries`). ``cublas``: a CUTLASS-style grouped GEMM, the
    best tile over each group's own blocks."""
    gpu = get_gpu(gpu)
    if not isinstance(grouped, GroupedGemm):
        raise TypeError(f"grouped must be a GroupedGemm, not {type(grouped).__name__}")
    a, runtime, _, peak, eff, extrapolated, notes = _reading(gpu, grouped.dtype, layer, runtime, library)
    total, compute, memory, launch, tile, _, waves, wave_eff, nbytes, _ = grouped_raw_estimate(gpu, grouped, peak, eff,
                                                                                             a, library)
    blocks = grouped.m_blocks(tile[0]) * math.ceil(grouped.N / tile[1])
    return GroupedGemmEstimate(gpu.id, grouped, total, compute, memory, launch, _bound(compute, memory, launch), tile,
                               blocks, waves, wave_eff, nbytes, layer, runtime, library, extrapolated, tuple(notes))


@dataclass(frozen=True)
class GpuWorkloadEstimate:
    gpu: str
    gemms: tuple[GpuGemmEstimate, ...]
    layer: str = "runtime"         # the model layer every GEMM was read in (see estimate_gemm)
    runtime: str | None = None     # the runtime of the runtime layer

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.gemms)

    @property
    def flops(self) -> int:
        return sum(e.gemm.flops for e in self.gemms)

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12

    @property
    def bound(self) -> str:
        """The bound that accounts for the most time."""
        by: dict[str, float] = {}
        for e in self.gemms:
            by[e.bound] = by.get(e.bound, 0.0) + e.seconds
        return max(sorted(by), key=lambda k: by[k])

    @property
    def extrapolated(self) -> bool:
        """Whether any GEMM lies outside the shapes the model was calibrated on."""
        return any(e.extrapolated for e in self.gemms)

    @property
    def notes(self) -> list[str]:
        """The GEMMs' notes, each once, sorted."""
        return sorted({n for e in self.gemms for n in e.notes})

    def units_per_second(self, units_per_run: float) -> float:
        """Units of work (tokens, samples, runs) a second, at ``units_per_run`` a workload run."""
        return units_per_run / self.seconds


def estimate_workload(gpu: GpuSpec | str, gemms: list[Gemm], *, layer: str = "runtime",
                      runtime: str | None = None, library: str = "cublas") -> GpuWorkloadEstimate:
    """Workload time on a GPU, s: the sum over its GEMMs (kernels run one after another),
    each read in ``layer`` under ``runtime`` (see :func:`estimate_gemm`)."""
    if not gemms:
        raise UserError("workload: holds no GEMMs")
    spec = get_gpu(gpu)
    ests = tuple(estimate_gemm(spec, g, layer=layer, runtime=runtime, library=library) for g in gemms)
    return GpuWorkloadEstimate(spec.id, ests, layer, ests[0].runtime)
