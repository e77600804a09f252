"""``systolab gpu``: modelled time of a GEMM or workload on an Nvidia GPU."""
from __future__ import annotations

import argparse

from ..models.gpu.formats import check_gpu_dtype, format_notes
from ..models.gpu.model import LIBRARIES, estimate_workload
from ..models.gpu.runtime import LAYERS
from ..models.gpu.specs import get_gpu
from ..models.workloads.catalog import check_fits
from .common import emit, gemms_from_args, lines_of


def add_parser(sub, parents) -> None:
    p = sub.add_parser("gpu", parents=[parents.workload, parents.json], help="modelled GEMM time on an Nvidia GPU")
    p.add_argument("--gpu", required=True, metavar="ID", help="GPU id, e.g. h100-sxm (see models/data/gpus.yaml)")
    p.add_argument("--dtype", default="bf16", help="bf16 (default), fp16, fp8_e4m3, fp8_e5m2, int8, tf32, fp32; "
                   "nvfp4 (= fp4) and mxfp4 on Blackwell; weight-only w4a16, w8a16, w8a16_fp8 (math in bf16)")
    p.add_argument("--layer", choices=LAYERS, default=None,
                   help="kernel (default): what a library benchmark measures, no launch overhead or serving "
                        "derate; runtime: with a serving runtime's costs, as `serve` composes GEMMs")
    p.add_argument("--runtime", default=None, metavar="NAME",
                   help="serving runtime of the runtime layer (models/data/runtimes.yaml; default vllm); "
                        "implies --layer runtime")
    p.add_argument("--library", choices=list(LIBRARIES), default="cublas",
                   help="GEMM library: cublas (default, the best-shape benchmarks' kernels) or deepgemm (its "
                        "fitted efficiencies)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    gpu = get_gpu(args.gpu)
    args.dtype = check_gpu_dtype(gpu, args.dtype)     # FP4 needs FP4 tensor cores; fp4 is nvfp4
    gemms, workload = gemms_from_args(args, args.dtype)
    if workload is not None:
        workload.check_fits(gpu.memory_GB, gpu.id)
    else:                           # one GEMM: its operands and result, through the same check
        check_fits(gemms[0].min_bytes, gpu.memory_GB, gpu.id, what=f"{gemms[0].name} (its operands and result)",
                   parameter="gemm")
    layer = args.layer or ("runtime" if args.runtime else "kernel")
    est = estimate_workload(gpu, gemms, layer=layer, runtime=args.runtime, library=args.library)
    per = [e.to_dict() for e in est.gemms]
    notes = est.notes + list(format_notes(args.dtype))     # what an FP4 or weight-only GEMM assumes
    payload = {"gpu": gpu.id, "name": gpu.name, "dtype": args.dtype, "layer": est.layer, "runtime": est.runtime,
               "library": args.library,
               "seconds": est.seconds, "tflops": est.tflops,
               "bound": est.bound, "flops": est.flops, "extrapolated": est.extrapolated, "gemms": per, "notes": notes,
               "workload": workload.to_dict() if workload is not None else None,
               "units_per_second": est.units_per_second(workload.units_per_run) if workload is not None else None,
               "unit": workload.unit if workload is not None else None}

    def human(p: dict) -> str:
        reading = ("kernel layer: library GEMM, no launch overhead or serving derate" if p["layer"] == "kernel"
                   else f"runtime layer: {p['runtime']}'s launch overhead and serving derate")
        return lines_of(f"{p['name']} ({p['gpu']}), {p['dtype']}: {p['seconds'] * 1e6:.1f} us, {p['tflops']:.1f} "
                        f"TFLOPS, {p['bound']}-bound{' (extrapolated)' if p['extrapolated'] else ''} [{reading}]",
                        p["gemms"],
                        lambda g: f"  {g['gemm']['name']:20} {g['gemm']['M']}x{g['gemm']['N']}x{g['gemm']['K']} "
                                  f"x{g['gemm']['count']}: {g['seconds'] * 1e6:10.1f} us {g['tflops']:8.1f} TFLOPS "
                                  f"{g['bound']:8} tile {g['tile']} split-k {g['split_k']}",
                        tail=[f"  note: {n}" for n in p["notes"]])

    emit(args, payload, human)
    return 0
