"""GPU model layers: what `systolab gpu --gemm` reads in the kernel layer (its default) and
in the runtime layer (vLLM's fitted launch cost and serving derate: its reading before the
split), against public GEMM measurements.

    python benchmarks/gpu_layers.py

Prints (1) every best-shape benchmark of models/data/gemm_calibration.csv (cuBLAS through
torch) and every GEMM of models/data/gemm_heldout.csv (DeepGEMM's H800 FP8 table and
TileLang's H800 FP8 sweep; its `heldout` rows never enter a fit) read through `estimate_gemm`: after, the kernel layer with
the row's library and grouped layout (`gpu --gemm`, with `--library deepgemm` for DeepGEMM's
rows; `estimate_grouped_gemm` for its grouped rows); before, the
runtime layer with cuBLAS-class kernels (what `gpu --gemm` printed before the split); and
the kernel layer with cuBLAS-class kernels for DeepGEMM's rows; with the median |error| of
each. (2) Large A100 fp16 GEMMs in both layers against the best public A100 measurement the
project holds (stas00/ml-engineering MAMF, A100 SXM bf16, 271.2 TFLOPS). Writes nothing.
"""
from __future__ import annotations

import csv
import statistics
import time

from systolab.models.gpu.fit import gemm_measurements
from systolab.models.gpu.grouped import GroupedGemm
from systolab.models.gpu.model import CALIBRATION_FILE, estimate_gemm, estimate_grouped_gemm
from systolab.models.workloads.gemm import Gemm

A100_BEST_TFLOPS = 271.2   # stas00/ml-engineering compute/accelerator/README.md, MAMF table, A100 SXM bf16


def rows() -> list[tuple[str, str, Gemm, float, str, GroupedGemm | None]]:
    """(set, gpu id, GEMM, measured TFLOPS, library, grouped GEMM or None) of every public GEMM
    measurement the project holds; the set of a gemm_heldout.csv row is its table and role."""
    out: list[tuple[str, str, Gemm, float, str, GroupedGemm | None]] = []
    with open(CALIBRATION_FILE, newline="") as fh:
        for r in csv.DictReader(fh):
            g = Gemm(int(r["M"]), int(r["N"]), int(r["K"]), r["dtype"], 1, r["device"])
            out.append(("calibration", r["model_gpu_id"], g, float(r["achieved_tflops"]), "cublas", None))
    for m in gemm_measurements():
        out.append((f"{m.table} {'fit' if m.fit else 'heldout'}", m.gpu_id, m.gemm, m.tflops, m.library, m.grouped))
    return out


def main() -> None:
    t0 = time.perf_counter()
    errs: dict[tuple[str, str], list[float]] = {}
    print(f"{'set':36} {'gpu':15} {'dtype':9} {'groups':>6} {'shape':18} {'measured':>9} {'kernel':>8} {'err%':>6} "
          f"{'runtime':>8} {'err%':>6} {'cublas':>8} {'err%':>6}")
    for name, gpu, g, measured, library, grouped in rows():
        if grouped is None:
            k = estimate_gemm(gpu, g, layer="kernel", library=library).tflops
        else:     # in its layout (DeepGEMM's contiguous or masked kernel)
            k = estimate_grouped_gemm(gpu, grouped, library=library).tflops
        r = estimate_gemm(gpu, g, layer="runtime").tflops
        c = estimate_gemm(gpu, g, layer="kernel").tflops
        ek, er, ec = (100 * (x / measured - 1) for x in (k, r, c))
        for layer, e in (("kernel (after)", ek), ("runtime (before)", er), ("kernel, cublas", ec)):
            errs.setdefault((name, layer), []).append(abs(e))
        print(f"{name:36} {gpu:15} {g.dtype:9} {g.parallel:>6} {f'{g.M}x{g.N}x{g.K}':18} {measured:9.1f} {k:8.1f} "
              f"{ek:+6.1f} {r:8.1f} {er:+6.1f} {c:8.1f} {ec:+6.1f}")
    print()
    for (name, layer), e in errs.items():
        if name == "calibration" and layer == "kernel, cublas":
            continue
        print(f"{name:36} {layer:16} n={len(e):3} median |error| {statistics.median(e):5.1f} %, worst {max(e):5.1f} %")
    print(f"\nlarge A100 fp16 GEMMs against the best public A100 measurement ({A100_BEST_TFLOPS} TFLOPS)")
    for n in (4096, 8192, 16384):
        k = estimate_gemm("a100-sxm4-80gb", Gemm(n, n, n, "fp16"), layer="kernel").tflops
        r = estimate_gemm("a100-sxm4-80gb", Gemm(n, n, n, "fp16"), layer="runtime").tflops
        print(f"{n}^3: kernel {k:6.1f} TFLOPS ({100 * (k / A100_BEST_TFLOPS - 1):+5.1f} %), "
              f"runtime {r:6.1f} TFLOPS ({100 * (r / A100_BEST_TFLOPS - 1):+5.1f} %)")
    print(f"\n{time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
