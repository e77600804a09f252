"""GPU GEMM model: error on every public calibration point, and behaviour from GEMV to
large prefill GEMMs on every GPU.

    python benchmarks/gpu_calibration.py

Prints (1) each calibration point's measured and modelled TFLOPS with the in-sample
error (efficiency fitted per GPU family and dtype class) and the leave-one-out error
(efficiency fitted without that point), and (2) modelled TFLOPS for M = 1 ... 32768 with
N = K = 8192 in bf16 on every GPU, and (3) the GEMM-shape terms' fit and held-out error
on DeepGEMM's and TileLang's H800 FP8 tables (systolab.models.gpu.fit). Record the output in
benchmarks/README.md.

Reads the GPU fit the model reads (your copy of gpu_fit.yaml when it is newer than the
shipped one, else the shipped one: systolab.models.gpu.fit_file) and writes nothing; the
fits themselves run with `benchmarks/serving.py fit`.
"""
from __future__ import annotations

import statistics
import time

from systolab.models.gpu import fit as gemm_fit
from systolab.models.gpu.model import calibration, calibration_report, estimate_gemm
from systolab.models.gpu.specs import load_gpus
from systolab.models.workloads.gemm import Gemm


def main() -> None:
    t0 = time.perf_counter()
    rows = calibration_report()
    print(f"{'device':14} {'dtype':9} {'shape':18} {'measured':>9} {'model':>8} {'err%':>6} {'loo':>8} {'loo%':>6}")
    for r in rows:
        loo = "-" if r["loo_model_tflops"] is None else f"{r['loo_model_tflops']:.1f}"
        loo_e = "-" if r["loo_error_pct"] is None else f"{r['loo_error_pct']:+.1f}"
        print(f"{r['device']:14} {r['dtype']:9} {r['shape']:18} {r['measured_tflops']:9.1f} "
              f"{r['model_tflops']:8.1f} {r['error_pct']:+6.1f} {loo:>8} {loo_e:>6}")
    errs = [abs(r["error_pct"]) for r in rows]
    loos = [abs(r["loo_error_pct"]) for r in rows if r["loo_error_pct"] is not None]
    print(f"mean |error| {statistics.mean(errs):.2f} % (max {max(errs):.2f} %); "
          f"leave-one-out mean |error| {statistics.mean(loos):.2f} % (max {max(loos):.2f} %)")
    print("fitted compute efficiency:", {f"{f}/{c}": round(e, 3) for (f, c), e in calibration().efficiency.items()})

    ms = [1, 16, 128, 1024, 8192, 32768]
    print("\nbf16, N = K = 8192: modelled TFLOPS (bound)")
    print(f"{'gpu':16}" + "".join(f"{'M=' + str(m):>17}" for m in ms))
    for gid in load_gpus():
        cells = []
        for m in ms:
            e = estimate_gemm(gid, Gemm(m, 8192, 8192, "bf16"))
            cells.append(f"{e.tflops:9.1f} {e.bound[:3]}{'*' if e.extrapolated else ' '}")
        print(f"{gid:16}" + "".join(f"{c:>17}" for c in cells))
    print("* extrapolated (no calibration for this family/dtype, a fallback dtype, or few output tiles)")

    shape = gemm_fit.report()
    print("\nGEMM shapes (models/data/gemm_heldout.csv: DeepGEMM's and TileLang's H800 FP8 tables; `fit` rows set "
          "the shape terms; each row read in its library and grouped layout)")
    print(f"{'table':28} {'role':9} {'groups':>6} {'M':>6} {'N':>6} {'K':>6} {'measured':>9} {'model':>8} {'err%':>6}")
    for r in shape:
        print(f"{r['table']:28} {r['role']:9} {r['groups']:>6} {r['M']:>6} {r['N']:>6} {r['K']:>6} "
              f"{r['measured_tflops']:9.1f} {r['model_tflops']:8.1f} {r['error_pct']:+6.1f}")
    for role, s in gemm_fit.summary(shape).items():
        print(f"{role}: n={s['n']}, median |error| {s['median_abs_error_pct']:.1f} %, worst {s['worst_abs_error_pct']:.1f} %")
    print(f"\n{time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
