"""Build versus buy: a custom chip of systolab cores against Nvidia GPUs on the same workloads.

One row per device x workload: time, throughput (tokens/s or samples/s), utilisation,
bound, energy, TOPS/mm², TOPS/W, cost per unit of work and export class, with the model
that produced each number and that model's measured error (:func:`model_errors`). Iso
views (per mm², per W, per $) divide the same throughput by die area, power and price.

Assumptions that qualify every row (also written into the report):

* every device runs the workload in ``int8`` (the custom cores are int8; the GPU model
  uses each GPU's int8 tensor rate, or states its fallback);
* GEMMs run one after another (no overlap between layers, no batching across requests);
  non-GEMM work (softmax, norms, embeddings) is left out on every device alike;
* GPU energy = board TDP x time (GPUs run near TDP under GEMM load; an upper bound for
  memory-bound phases); custom-chip energy from the activity-based energy model;
* cost per unit of work = amortised capex + energy at the cost model's PUE, electricity
  price, lifetime and utilisation (ranges from ``data/cost.yaml``);
* the custom chip's DRAM bandwidth is shared by the cores that get work, at its average
  rate, and charged for reads only (C writes are not, as in the core's memory model).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from ..errors import UserError

DEFAULT_GPUS = ("h100-sxm", "h200-sxm", "h20", "a100-sxm4-80gb", "b200")
DEFAULT_WORKLOADS = ("llama3-8b-prefill", "llama3-8b-decode", "dlrm")
DTYPE = "int8"


@dataclass(frozen=True)
class Device:
    id: str
    kind: str                   # "custom" or "gpu"
    name: str
    peak_tops: float
    die_mm2: float | None
    tdp_W: float
    price_usd: float | None
    price_range_usd: tuple[float, float] | None
    dram_GBps: float
    eccn: str
    tpp: float
    performance_density: float | None
    notes: tuple[str, ...]


def custom_device(chip) -> Device:
    s = chip.summary()
    return Device(chip.name, "custom", f"{chip.name} ({chip.cores}x {chip.core.name}, {chip.node.upper()})",
                  s["peak_tops"], s["die_mm2"], s["tdp_W"], s["unit_cost_usd"], tuple(s["unit_cost_range_usd"]),
                  s["dram_GBps"], s["eccn"], s["tpp"], s["performance_density"],
                  (f"price = manufacturing cost + NRE over {chip.volume_units:,} units (cost model)",))


def gpu_device(gpu_id: str) -> Device:
    from .cost import gpu_price
    from .export_control import classify_gpu
    from .gpu import resolve_peak
    from .gpu_specs import get_gpu

    gpu = get_gpu(gpu_id)
    _, peak, notes = resolve_peak(gpu, DTYPE)
    ec = classify_gpu(gpu)
    price = gpu_price(gpu)
    return Device(gpu.id, "gpu", gpu.name, peak, gpu.die_area_mm2, gpu.tdp_W, price.usd if price else None,
                  (price.low_usd, price.high_usd) if price else None, gpu.mem_bw_GBps, ec.eccn, ec.tpp,
                  ec.performance_density, tuple(notes) + tuple(gpu.flags("die_area_mm2", "peak_dense_tflops")))


def _custom_energy_J(chip, perf) -> float:
    """The energy model on the chip's activity: the workload's issued MACs, its DRAM bytes,
    each read byte written into and read out of SRAM once, leakage of all cores."""
    from .energy import Activity, activity_energy

    act = Activity(perf.cycles, perf.macs, perf.macs_issued, 2 * perf.bytes_read, perf.bytes_moved)
    return activity_energy(chip.core, act, node=chip.node, clock_MHz=chip.clock_mhz, dram=chip.dram.kind,
                           buffer_KiB=chip.core.a_buffer_kib + chip.core.b_buffer_kib, cores=chip.cores).joules


def _row(device: Device, workload, seconds: float, utilization: float, bound: str, energy_J: float,
         per_gemm: list[dict], model: str) -> dict:
    from .cost import usd_per_million_tokens

    throughput = workload.units_per_run / seconds
    avg_W = energy_J / seconds
    row = {"device": device.id, "kind": device.kind, "device_name": device.name, "workload": workload.name,
           "unit": workload.unit, "seconds": seconds, "throughput": throughput,
           f"{workload.unit}s_per_second": throughput, "utilization": utilization, "bound": bound,
           "energy_J": energy_J, "avg_power_W": avg_W, "energy_per_unit_J": energy_J / workload.units_per_run,
           "peak_tops": device.peak_tops, "achieved_tops": workload.flops / seconds / 1e12,
           "die_mm2": device.die_mm2, "tdp_W": device.tdp_W,
           "tops_per_mm2": device.peak_tops / device.die_mm2 if device.die_mm2 else None,
           "tops_per_W": device.peak_tops / device.tdp_W,
           "throughput_per_mm2": throughput / device.die_mm2 if device.die_mm2 else None,
           "throughput_per_W": throughput / device.tdp_W,
           "price_usd": device.price_usd, "price_range_usd": device.price_range_usd,
           "throughput_per_kusd": throughput / device.price_usd * 1e3 if device.price_usd else None,
           "eccn": device.eccn, "tpp": device.tpp, "performance_density": device.performance_density,
           "model": model, "gemms": per_gemm}
    if device.price_usd:
        c = usd_per_million_tokens(unit_capex_usd=device.price_usd, power_W=device.tdp_W, tokens_per_s=throughput)
        row["usd_per_million_units"] = c.usd
        row["usd_per_million_units_range"] = [c.low_usd, c.high_usd]
    else:
        row["usd_per_million_units"] = None
        row["usd_per_million_units_range"] = None
    return row


def model_errors() -> dict:
    """Each model's measured error, as the report cites it (computed live where cheap)."""
    from .area import load_fit
    from .gpu import calibration_report

    cal = calibration_report()
    fit = load_fit()
    held = [abs(h["error_pct"]) for h in fit.residuals["held_out"]]
    return {
        "custom_time": "cycle model of the core (models/perf.py) vs the RTL's counters: 300 of 300 GEMMs "
                       "cycle-exact on 6 configurations (systolab validate, Verilator, 2026-11-28); the chip level "
                       "(cores sharing DRAM at their average rate, the split of a GEMM over cores) is not validated "
                       "against RTL",
        "custom_area": f"array area fit vs Yosys synthesis: held-out max {max(held):.2f} % up to 16x16 "
                       f"(benchmarks/area_fit.py); 64x64 extrapolates; SRAM macros from node bit-cell areas; "
                       f"NoC/I/O/PHY shares are assumptions",
        "custom_energy": "activity x per-op energies (Horowitz 45 nm scaled to the node): not measured against silicon",
        "gpu_time": f"calibrated GEMM model vs {len(cal)} public measurements: mean |error| "
                    f"{sum(abs(r['error_pct']) for r in cal) / len(cal):.1f} %, max {max(abs(r['error_pct']) for r in cal):.1f} %, "
                    f"leave-one-out mean {sum(abs(r['loo_error_pct']) for r in cal if r['loo_error_pct'] is not None) / len(cal):.1f} % "
                    "(benchmarks/gpu_calibration.py); memory-bound efficiency and launch overhead are assumptions",
        "gpu_energy": "TDP x time (assumption, an upper bound)",
        "cost": "die cost from wafer cost, yield and dies/wafer; HBM, packaging and NRE are assumptions with ranges "
                "(data/cost.yaml); GPU prices are press estimates",
        "export": "ECCN 3A090 thresholds from the rule text (data/export_rules.yaml); TPP = dense TOPS x bit length",
    }


def iso_views(chip, workloads, gpu_rows: list[dict]) -> list[dict]:
    """The chip resized (its number of cores) to each GPU's die area, TDP and price, and its
    throughput on each workload relative to that GPU's. A budget too small for even one
    core, or a GPU without the figure, is reported instead of a number."""
    from .chip import match_gpu

    out = []
    for by in ("area", "power", "price"):
        for gpu in dict.fromkeys(r["device"] for r in gpu_rows):
            try:
                sized = match_gpu(chip, gpu, by=by)
            except UserError as exc:
                out.append({"view": f"iso-{by}", "gpu": gpu, "note": str(exc)})
                continue
            for wl in workloads:
                mine = wl.units_per_run / sized.workload_perf(wl.gemms).seconds
                theirs = next(r["throughput"] for r in gpu_rows if r["device"] == gpu and r["workload"] == wl.name)
                out.append({"view": f"iso-{by}", "gpu": gpu, "workload": wl.name, "cores": sized.cores,
                            "die_mm2": sized.area()["die_mm2"], "tdp_W": sized.power_W()["tdp_W"],
                            "unit_cost_usd": sized.unit_cost()["usd"], "throughput": mine,
                            "gpu_throughput": theirs, "ratio": mine / theirs})
    return out


def compare(chip, *, workloads: tuple[str, ...] = DEFAULT_WORKLOADS, gpus: tuple[str, ...] = DEFAULT_GPUS,
            batch: int | None = None, seq_len: int | None = None, progress=None) -> dict:
    """Every device on every workload; returns ``rows`` (device x workload), ``devices``,
    ``workloads``, ``model_errors`` and ``assumptions``."""
    from .gpu import estimate_workload
    from .gpu_specs import get_gpu
    from .workloads import get_workload

    progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not workloads:
        raise UserError("workload: give at least one")
    if not gpus:
        raise UserError("gpus: give at least one GPU id to compare against")
    if len(set(gpus)) != len(gpus):
        raise UserError("gpus: listed twice")
    for g in gpus:
        get_gpu(g)                       # names a bad id before any work
    wls = [get_workload(w, batch=batch, seq_len=seq_len if w not in ("dlrm", "resnet50") else None, dtype=DTYPE)
           for w in workloads]
    devices = [custom_device(chip)] + [gpu_device(g) for g in gpus]
    rows = []
    for wl in wls:
        progress(f"compare: {wl.name} ({len(wl.gemms)} GEMMs) on {chip.name}")
        perf = chip.workload_perf(wl.gemms)
        per = [{"name": g["name"], "M": g["M"], "N": g["N"], "K": g["K"], "count": g["count"],
                "seconds": g["seconds"] * g["count"], "bound": g["bound"]} for g in perf.gemms]
        rows.append(_row(devices[0], wl, perf.seconds, perf.utilization, perf.bound, _custom_energy_J(chip, perf), per,
                         "models/perf.py on the core's schedule; models/energy.py"))
        rows[-1]["dram_read_GBps"] = perf.bytes_read / perf.seconds / 1e9
        for dev in devices[1:]:
            progress(f"compare: {wl.name} on {dev.id}")
            est = estimate_workload(dev.id, list(wl.gemms))
            util = est.tflops / dev.peak_tops
            per = [{"name": e.gemm.name, "M": e.gemm.M, "N": e.gemm.N, "K": e.gemm.K, "count": e.gemm.count,
                    "seconds": e.seconds, "bound": e.bound} for e in est.gemms]
            rows.append(_row(dev, wl, est.seconds, util, est.bound, dev.tdp_W * est.seconds, per,
                             "models/gpu.py (calibrated GEMM model); energy = TDP x time"))
    progress("compare: iso-area, iso-power and iso-cost resizing")
    iso = iso_views(chip, wls, [r for r in rows if r["kind"] == "gpu"])
    return {"chip": chip.summary(), "devices": [d.__dict__ for d in devices],
            "workloads": [w.to_dict() for w in wls], "rows": rows, "iso": iso, "model_errors": model_errors(),
            "assumptions": [line.strip("* ").strip() for line in __doc__.split("qualify every row")[1].split("\n* ")
                            if line.strip()][1:]}
