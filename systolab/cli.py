"""The ``systolab`` command line.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. User
mistakes exit non-zero with one line naming the parameter (and, with ``--json``, an
``{"error": ..., "parameter": ...}`` object); they never show a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from .config import AcceleratorConfig
from .errors import ConfigError, SimulationError, UserError

DESIGN_FIELDS = ("rows", "cols", "dataflow", "dtype", "acc_bits", "overflow", "beat_bytes", "a_buffer_kib",
                 "b_buffer_kib", "acc_buffer_kib")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UserError(message)


def _add_design_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("design")
    g.add_argument("--config", metavar="FILE", help="TOML/YAML file with the design fields (flags override it)")
    g.add_argument("--rows", type=int, help="array rows, 1..64 (default 4)")
    g.add_argument("--cols", type=int, help="array columns, 1..64 (default 4)")
    g.add_argument("--dataflow", help="os (output-stationary) or ws (weight-stationary); default os")
    g.add_argument("--dtype", help="int8, uint8 or int16 (default int8)")
    g.add_argument("--acc-bits", type=int, dest="acc_bits", help="accumulator width in bits (default 32)")
    g.add_argument("--overflow", help="wrap or saturate (default wrap)")
    g.add_argument("--beat-bytes", type=int, dest="beat_bytes", help="memory data beat in bytes (default 16)")
    for buf, default in (("a", 8), ("b", 8), ("acc", 16)):
        g.add_argument(f"--{buf}-buffer-kib", type=float, dest=f"{buf}_buffer_kib",
                       help=f"{buf.upper()} buffer SRAM in KiB (default {default})")


def design_from_args(args: argparse.Namespace) -> AcceleratorConfig:
    """The design named by ``--config`` and the design flags (flags win)."""
    base = AcceleratorConfig.from_file(args.config).to_dict() if args.config else {}
    flags = {f: getattr(args, f) for f in DESIGN_FIELDS if getattr(args, f) is not None}
    return AcceleratorConfig.from_dict({**base, **flags}, source="command line")


def _emit(args: argparse.Namespace, payload: dict, human: Callable[[dict], str]) -> None:
    if args.json:
        print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(human(payload))


# -- commands --------------------------------------------------------------------------------
def cmd_rtl(args: argparse.Namespace) -> int:
    from .hdl import generate_verilog

    config = design_from_args(args)
    out = generate_verilog(config, args.out)
    payload = {"verilog": str(out.verilog), "manifest": str(out.manifest), "top": out.top,
               "params": out.params, "ports": out.ports}
    _emit(args, payload, lambda p: (
        f"wrote {p['verilog']} (top {p['top']}) and {p['manifest']}\n"
        + "\n".join(f"  {q['direction']:6} {q['width']:6}  {q['name']}" for q in p["ports"])))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import numpy as np

    from .models.gemm import parse_gemm
    from .sim.stimulus import campaign, check_fits, random_product
    from .sim.verify import verify_products

    config = design_from_args(args)
    if args.gemms < 0:
        raise UserError(f"gemms: must be >= 0, not {args.gemms}")
    if not 0.0 <= args.stall_prob < 1.0:
        raise UserError(f"stall-prob: must be in [0, 1), not {args.stall_prob}")
    if args.unit == "core":
        return _verify_core(args, config)
    if args.gemm:
        g = parse_gemm(args.gemm)
        m, n, k = g.M, g.N, g.K
        try:
            check_fits(config, m, n, k)
        except ValueError as exc:
            raise UserError(f"gemm: {exc}") from None
        rng = np.random.default_rng(args.seed)
        products = [random_product(rng, config, f"gemm_{m}x{n}x{k}", m, n, k)]
    else:
        products = campaign(config, count=args.gemms, seed=args.seed, corners=not args.no_corners)
        if not products:
            raise UserError("gemms: nothing to run (0 random products and --no-corners)")
    report = verify_products(config, products, seed=args.seed, simulator=args.sim,
                             stall_prob=args.stall_prob, waves=args.waves)
    payload = {"design": config.to_dict(), **report.to_dict()}

    def human(p: dict) -> str:
        lines = [f"{config.name}: {p['gemms']} products on {p['simulator']} (seed {p['seed']}, "
                 f"{p['seconds']} s): {'PASSED' if p['passed'] else 'FAILED'}, {p['mismatches']} mismatching elements"]
        for label, shape, cyc in zip(p["labels"], p["shapes"], p["cycles"]):
            lines.append(f"  {label:16} {'x'.join(map(str, shape)):>10}  {cyc:6} cycles")
        lines += [f"  {m}" for m in p["messages"]]
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0 if report.passed else 1


def _gemms_from_args(args: argparse.Namespace, dtype: str):
    """(GEMMs, workload or None) from exactly one of --gemm and --workload."""
    from .models.gemm import parse_gemm
    from .models.workloads import get_workload

    if bool(args.gemm) == bool(args.workload):
        raise UserError("gemm: give exactly one of --gemm MxNxK or --workload NAME_OR_FILE")
    if args.gemm:
        return [parse_gemm(args.gemm, dtype=dtype)], None
    workload = get_workload(args.workload, batch=args.batch, seq_len=args.seq_len, dtype=dtype)
    return list(workload.gemms), workload


def cmd_gpu(args: argparse.Namespace) -> int:
    from .models.gpu import estimate_workload
    from .models.gpu_specs import get_gpu

    gpu = get_gpu(args.gpu)
    gemms, workload = _gemms_from_args(args, args.dtype)
    est = estimate_workload(gpu, gemms)
    per = [e.to_dict() for e in est.gemms]
    notes = sorted({n for e in est.gemms for n in e.notes})
    payload = {"gpu": gpu.id, "name": gpu.name, "dtype": args.dtype, "seconds": est.seconds, "tflops": est.tflops,
               "bound": est.bound, "flops": est.flops, "extrapolated": any(e.extrapolated for e in est.gemms),
               "gemms": per, "notes": notes}
    if workload is not None:
        payload["workload"] = workload.to_dict()
        payload[f"{workload.unit}s_per_second"] = workload.units_per_run / est.seconds
    if len(per) == 1:  # the efficiency terms of a single GEMM at the top level
        for key in ("compute_s", "memory_s", "launch_s", "compute_efficiency", "memory_efficiency",
                    "wave_efficiency", "tile", "split_k", "waves", "peak_tflops", "dtype_used", "roofline_s"):
            payload[key] = per[0][key]

    def human(p: dict) -> str:
        lines = [f"{p['name']} ({p['gpu']}), {p['dtype']}: {p['seconds'] * 1e6:.1f} us, {p['tflops']:.1f} TFLOPS, "
                 f"{p['bound']}-bound{' (extrapolated)' if p['extrapolated'] else ''}"]
        for g in p["gemms"]:
            d = g["gemm"]
            lines.append(f"  {d['name']:20} {d['M']}x{d['N']}x{d['K']} x{d['count']}: {g['seconds'] * 1e6:10.1f} us "
                         f"{g['tflops']:8.1f} TFLOPS {g['bound']:8} tile {g['tile']} split-k {g['split_k']}")
        lines += [f"  note: {n}" for n in p["notes"]]
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from .models.perf import workload_perf

    config = design_from_args(args)
    for flag, v in (("cores", args.cores), ("latency", args.latency)):
        if v < 1:
            raise UserError(f"{flag}: must be >= 1, not {v}")
    for flag, v in (("clock-mhz", args.clock_mhz), ("bytes-per-cycle", args.bytes_per_cycle)):
        if not v > 0:
            raise UserError(f"{flag}: must be > 0, not {v}")
    gemms, workload = _gemms_from_args(args, config.dtype)
    clock = args.clock_mhz * 1e6
    perf = workload_perf(config, gemms, cores=args.cores, clock_hz=clock, dram_bytes_per_s=args.bytes_per_cycle * clock,
                         dram_latency_ns=args.latency / clock * 1e9)
    payload = {"design": config.to_dict(), "cores": args.cores, "clock_mhz": args.clock_mhz,
               "bytes_per_cycle": args.bytes_per_cycle, "latency_cycles": args.latency, **perf.to_dict(),
               "model": "models/perf.py (cycle model of the core's schedule; error vs RTL: systolab validate)"}
    if workload is not None:
        payload["workload"] = workload.to_dict()
        payload[f"{workload.unit}s_per_second"] = workload.units_per_run / perf.seconds

    def human(p: dict) -> str:
        lines = [f"{config.name} x {p['cores']} core(s) at {p['clock_mhz']:g} MHz, {p['bytes_per_cycle']:g} B/cycle: "
                 f"{p['cycles']} cycles, {p['seconds'] * 1e6:.1f} us, utilisation {p['utilization']:.3f}, "
                 f"{p['bound']}-bound"]
        for g in p["gemms"][:40]:
            lines.append(f"  {g['name']:20} {g['M']}x{g['N']}x{g['K']} x{g['count']}: {g['cycles']:12} cycles "
                         f"util {g['utilization']:.3f} {g['bound']:8} split {g['split']}")
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .sim.runner import resolve_simulator
    from .sim.validate import default_cases, validate

    if not 1 <= args.shapes <= 10_000:
        raise UserError(f"shapes: must be in 1..10000, not {args.shapes}")
    if args.jobs < 1:
        raise UserError(f"jobs: must be >= 1, not {args.jobs}")
    sim = resolve_simulator(args.sim)
    report = validate(default_cases(shapes_per_case=args.shapes, seed=args.seed), simulator=sim, seed=args.seed,
                      jobs=args.jobs)

    def human(p: dict) -> str:
        lines = [f"{p['shapes']} GEMMs on {p['configurations']} configurations ({p['simulator']}): "
                 f"{p['exact_cycles']} cycle-exact, max |error| {p['max_abs_cycle_error']} cycles "
                 f"({p['max_rel_cycle_error']:.2%}); other counters max |error| "
                 + ", ".join(f"{k} {v}" for k, v in p["max_abs_error"].items() if k != "cycles")]
        for label, c in p["cases"].items():
            lines.append(f"  {label:42} {c['exact']}/{c['shapes']} exact, max |error| {c['max_abs_cycle_error']}")
        return "\n".join(lines)

    _emit(args, report, human)
    return 0 if report["all_passed"] else 1


def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .models.chip import fit_cores, get_chip
    from .models.compare import DEFAULT_GPUS, DEFAULT_WORKLOADS, compare
    from .models.report import write_report

    chip = get_chip(args.chip)
    for flag, v in (("fit-die-mm2", args.fit_die_mm2), ("fit-power-w", args.fit_power_w)):
        if v is not None and not v > 0:
            raise UserError(f"{flag}: must be > 0, not {v}")
    if args.fit_die_mm2 is not None or args.fit_power_w is not None:
        chip = fit_cores(chip, die_mm2=args.fit_die_mm2, power_W=args.fit_power_w)
    gpus = tuple(g.strip() for g in args.gpus.split(",") if g.strip()) if args.gpus else DEFAULT_GPUS
    workloads = tuple(args.workload) if args.workload else DEFAULT_WORKLOADS
    result = compare(chip, workloads=workloads, gpus=gpus, batch=args.batch, seq_len=args.seq_len)
    files = write_report(result, Path(args.out))
    payload = {k: result[k] for k in ("chip", "devices", "workloads", "rows", "iso", "model_errors", "assumptions")}
    payload["files"] = files

    def human(p: dict) -> str:
        lines = [f"{chip.name}: {len(p['devices'])} devices x {len(p['workloads'])} workloads -> {p['files']['report']}"]
        for r in p["rows"]:
            lines.append(f"  {r['workload']:20} {r['device']:16} {r['throughput']:14.4g} {r['unit']}s/s "
                         f"{r['bound']:8} util {r['utilization']:.3f}  {r['eccn']}")
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0


def cmd_export_control(args: argparse.Namespace) -> int:
    from .models import export_control as ec
    from .models.gpu_specs import get_gpu

    custom = [args.rows, args.cols, args.clock_mhz, args.die_area_mm2]
    if args.gpu and any(v is not None for v in custom):
        raise UserError("gpu: give either --gpu ID or a custom chip (--rows --cols --dtype --clock-mhz --die-area-mm2), not both")
    if args.gpu:
        gpu = get_gpu(args.gpu)
        result = ec.classify_gpu(gpu, rule_date=args.rule_date)
        payload = {"device": gpu.id, "name": gpu.name, **result.to_dict()}
    else:
        for flag, v in (("rows", args.rows), ("cols", args.cols), ("clock-mhz", args.clock_mhz),
                        ("die-area-mm2", args.die_area_mm2)):
            if v is None:
                raise UserError(f"{flag}: required for a custom chip (or give --gpu ID)")
        dtype = args.dtype or "int8"
        result = ec.classify_custom(rows=args.rows, cols=args.cols, dtype=dtype, clock_mhz=args.clock_mhz,
                                    die_area_mm2=args.die_area_mm2, cores=args.cores,
                                    data_center=not args.not_data_center, io_bidir_GBps=args.io_bidir_gbps,
                                    dram_bw_GBps=args.dram_bw_gbps, rule_date=args.rule_date)
        payload = {"device": f"custom {args.cores}x{args.rows}x{args.cols} {dtype} @ {args.clock_mhz:g} MHz",
                   **result.to_dict()}
        # Designing around the rule: how far this design could grow and stay unclassified.
        payload["headroom"] = {
            "largest_square_array_outside_3A090": ec.largest_square_array(
                dtype=dtype, clock_mhz=args.clock_mhz, die_area_mm2=args.die_area_mm2, cores=args.cores,
                rule_date=args.rule_date),
            "max_clock_mhz_outside_3A090": ec.max_clock_mhz(
                rows=args.rows, cols=args.cols, dtype=dtype, die_area_mm2=args.die_area_mm2, cores=args.cores,
                rule_date=args.rule_date),
            "max_tpp_outside_3A090": ec.max_tpp(die_area_mm2=args.die_area_mm2, rule_date=args.rule_date),
        }

    def human(p: dict) -> str:
        pd = "unknown" if p["performance_density"] is None else f"{p['performance_density']:.2f}"
        lines = [f"{p['device']}: ECCN {p['eccn']} under {p['rule_set']} ({p['citation']})",
                 f"  TPP {p['tpp']:.0f}, performance density {pd}"]
        lines += [f"  {d}" for d in p["decided_by"]]
        if p.get("licence_policy"):
            lines.append(f"  {p['licence_policy']}")
        for k, v in (p.get("headroom") or {}).items():
            lines.append(f"  {k}: {v}")
        lines += [f"  note: {n}" for n in p["notes"]]
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0


def cmd_area(args: argparse.Namespace) -> int:
    from .models import area as area_model
    from .models.energy import gemm_energy
    from .models.gemm import parse_gemm
    from .models.nodes import get_node
    from .models.synthesis import synthesize

    config = design_from_args(args)
    node = get_node(args.node)
    synth = synthesize(config)
    model = area_model.model_area(config, node=node.name)
    synth_mm2 = area_model.synth_area_mm2(synth.transistors, node.name)
    payload = {
        "design": config.to_dict(), "node": node.name,
        "synth_area_mm2": synth_mm2, "model_area_mm2": model.mm2,
        "model_error_pct": 100 * (model.mm2 - synth_mm2) / synth_mm2,
        "synth_transistors": synth.transistors, "model_transistors": model.transistors,
        "nand2_equivalent": synth.nand2_equivalent,
        "breakdown": synth.breakdown(),
        "cells_by_type": {"pe": synth.pe.cells_by_type, "top_level": synth.top.cells_by_type},
        "flip_flops": synth.pe_count * synth.pe.flip_flops + synth.top.flip_flops,
        "logic_depth_gates": {"pe": synth.pe.logic_depth, "top_level": synth.top.logic_depth},
        "assumed_clock_MHz": node.default_clock_MHz.value,
        "clock_source": node.default_clock_MHz.source,
        "assumptions": list(model.assumptions),
    }
    if args.liberty:
        lib = synthesize(config, liberty=args.liberty)
        payload["liberty"] = {"file": str(args.liberty), "area_um2": lib.area_um2,
                              "area_mm2": lib.area_um2 / 1e6,
                              "note": "at the library's own process, not scaled to --node"}
    if args.gemm:
        g = parse_gemm(args.gemm, dtype=config.dtype)
        e = gemm_energy(config, g, node=node.name)
        payload["energy"] = {"gemm": args.gemm, "joules": e.joules, "seconds": e.seconds,
                             "average_watts": e.average_watts, "tops_per_watt": e.tops_per_watt,
                             "assumptions": list(e.assumptions)}

    def human(p: dict) -> str:
        b = p["breakdown"]
        lines = [f"{config.name} at {p['node']}: synthesis {p['synth_area_mm2']:.4f} mm2, "
                 f"model {p['model_area_mm2']:.4f} mm2 ({p['model_error_pct']:+.2f} %)",
                 f"  {p['synth_transistors']} transistors, {p['nand2_equivalent']:.0f} NAND2-eq, "
                 f"{p['flip_flops']} flip-flops; PEs {b['pe_share']:.1%} of the area",
                 f"  logic depth (gates): PE {p['logic_depth_gates']['pe']}, top {p['logic_depth_gates']['top_level']}; "
                 f"assumed clock {p['assumed_clock_MHz']:g} MHz"]
        if "liberty" in p:
            lines.append(f"  liberty {p['liberty']['file']}: {p['liberty']['area_um2']:.0f} um2")
        if "energy" in p:
            e = p["energy"]
            lines.append(f"  {e['gemm']}: {e['joules'] * 1e6:.2f} uJ in {e['seconds'] * 1e6:.1f} us, "
                         f"{e['average_watts']:.3f} W, {e['tops_per_watt']:.2f} TOPS/W")
        lines += [f"  assumption: {a}" for a in p["assumptions"]]
        return "\n".join(lines)

    _emit(args, payload, human)
    return 0


def _verify_core(args: argparse.Namespace, config: AcceleratorConfig) -> int:
    """Whole GEMMs through the accelerator core (buffers, memory port, tiled controller),
    checked bit-exactly; cycles and utilisation from its counters."""
    import time

    import numpy as np

    from .models.gemm import parse_gemm
    from .sim.core_bench import core_shapes, run_gemms
    from .sim.golden import golden_matmul
    from .sim.runner import resolve_simulator, run_core_hdl

    sim = resolve_simulator(args.sim)
    if args.gemm:
        g = parse_gemm(args.gemm)
        shapes = [(g.M, g.N, g.K)]
    else:
        shapes = core_shapes(config, count=args.gemms, seed=args.seed, corners=not args.no_corners)
        if not shapes:
            raise UserError("gemms: nothing to run (0 random products and --no-corners)")
    rng = np.random.default_rng(args.seed)
    dt = config.input_dtype
    products = [(rng.integers(dt.min_int, dt.max_int, (M, K), endpoint=True),
                 rng.integers(dt.min_int, dt.max_int, (K, N), endpoint=True)) for M, N, K in shapes]
    params = dict(latency=args.latency, bytes_per_cycle=args.bytes_per_cycle, stall_prob=args.stall_prob,
                  seed=args.seed)
    if args.latency < 1:
        raise UserError(f"latency: must be >= 1, not {args.latency}")
    if not args.bytes_per_cycle > 0:
        raise UserError(f"bytes-per-cycle: must be > 0, not {args.bytes_per_cycle}")
    t0 = time.perf_counter()
    if sim == "amaranth":
        runs = run_gemms(config, products, **params)
        outs, violations = [(r.c, r.counters) for r in runs], runs[0].violations if runs else []
    else:
        out = run_core_hdl(config, products, sim, **params)
        outs = [(np.array(c, dtype=object), cnt) for c, cnt in zip(out["c"], out["counters"])]
        violations = out["violations"]
    messages, mismatches = [], 0
    for (a, b), (c, _) in zip(products, outs):
        expected = golden_matmul(a, b, config)
        wrong = np.argwhere(np.array(c, dtype=object) != expected.astype(object))
        mismatches += len(wrong)
        messages += [f"{a.shape[0]}x{b.shape[1]}x{a.shape[1]}: C[{r},{q}] expected {expected[r, q]}, got {c[r, q]} "
                     f"(seed {args.seed}; rerun with --sim amaranth for a VCD)" for r, q in wrong[:5]]
    messages += violations[:10]
    counters = [cnt for _, cnt in outs]
    utils = [cnt["macs"] / (config.rows * config.cols * cnt["cycles"]) for cnt in counters]
    payload = {"design": config.to_dict(), "unit": "core", "passed": not mismatches and not violations,
               "gemms": len(shapes), "mismatches": int(mismatches), "seed": args.seed, "simulator": sim,
               "cycles": [cnt["cycles"] for cnt in counters], "utilization": utils[0] if len(utils) == 1 else utils,
               "counters": counters[0] if len(counters) == 1 else counters, "shapes": [list(sh) for sh in shapes],
               "k_chunk": config.k_chunk, "tile_m": config.tile_m,
               "memory": {k: v for k, v in params.items() if k != "seed"}, "messages": messages,
               "seconds": round(time.perf_counter() - t0, 3)}

    def human(p: dict) -> str:
        lines = [f"{config.name} core, {p['gemms']} GEMM(s) on {p['simulator']} (seed {p['seed']}): "
                 f"{'PASSED' if p['passed'] else 'FAILED'}, {p['mismatches']} mismatching elements"]
        for shape, cnt, util in zip(shapes, counters, utils):
            lines.append(f"  {'x'.join(map(str, shape)):>12}  {cnt['cycles']:8} cycles, utilisation {util:.3f}, "
                         f"busy {cnt['busy_cycles']}, memory stalls {cnt['stall_cycles']}, {cnt['macs']} MACs, "
                         f"{cnt['bytes_read']} B read, {cnt['bytes_written']} B written")
        return "\n".join(lines + [f"  {m}" for m in p["messages"]])

    _emit(args, payload, human)
    return 0 if payload["passed"] else 1


# -- entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="systolab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("rtl", help="write the design's Verilog and a manifest of parameters and ports")
    _add_design_flags(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_rtl)

    p = sub.add_parser("verify", help="random and corner-case products through the RTL, checked bit-exactly")
    _add_design_flags(p)
    p.add_argument("--gemm", metavar="MxNxK", help="one product of this shape (random values)")
    p.add_argument("--gemms", type=int, default=8, metavar="N", help="random products (default 8), plus corner cases")
    p.add_argument("--no-corners", action="store_true", help="skip the corner-case products")
    p.add_argument("--seed", type=int, default=1, help="seed for values and stalls (default 1)")
    p.add_argument("--sim", default="auto", help="verilator, icarus, amaranth or auto (default: verilator, else icarus)")
    p.add_argument("--stall-prob", type=float, default=0.2, dest="stall_prob",
                   help="chance of a gap/back-pressure per beat on every stream (default 0.2)")
    p.add_argument("--waves", action="store_true", help="dump a waveform and report where")
    p.add_argument("--unit", choices=("core", "array"), default="core",
                   help="core: whole GEMMs from memory through buffers and controller (default); "
                        "array: products that fit one pass of the bare systolic array")
    core = p.add_argument_group("external memory of the core")
    core.add_argument("--latency", type=int, default=10, help="memory latency in cycles (default 10)")
    core.add_argument("--bytes-per-cycle", type=float, default=16.0, dest="bytes_per_cycle",
                      help="memory bandwidth (default 16)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("perf", help="modelled cycles, time, utilisation and bound of a GEMM or workload")
    _add_design_flags(p)
    p.add_argument("--gemm", metavar="MxNxK", help="one GEMM")
    p.add_argument("--workload", metavar="NAME_OR_FILE", help="a built-in workload or a GEMM/SCALE-Sim CSV")
    p.add_argument("--batch", type=int, help="batch of a built-in workload")
    p.add_argument("--seq-len", type=int, dest="seq_len", help="sequence length of a built-in workload")
    p.add_argument("--cores", type=int, default=1, help="identical cores sharing the memory bandwidth (default 1)")
    p.add_argument("--clock-mhz", type=float, default=1000.0, dest="clock_mhz", help="clock (default 1000)")
    p.add_argument("--latency", type=int, default=10, help="memory latency in cycles (default 10)")
    p.add_argument("--bytes-per-cycle", type=float, default=16.0, dest="bytes_per_cycle",
                   help="memory bandwidth of the whole chip per cycle (default 16)")
    p.set_defaults(func=cmd_perf)

    p = sub.add_parser("validate", help="the cycle model against the RTL's counters over a shape grid")
    p.add_argument("--shapes", type=int, default=50, help="shapes per configuration (default 50; 4 configurations)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random shapes and values (default 0)")
    p.add_argument("--sim", default="auto", help="verilator, icarus, amaranth or auto (default)")
    p.add_argument("--jobs", type=int, default=2, help="configurations simulated in parallel (default 2)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compare", help="the main job: a custom chip of systolab cores against Nvidia GPUs")
    p.add_argument("chip", nargs="?", help="chip name in models/data/chips.yaml or a chips YAML file (default chip)")
    p.add_argument("--workload", action="append", metavar="W",
                   help="built-in workload or CSV, repeatable (default: llama3-8b-prefill, llama3-8b-decode, dlrm)")
    p.add_argument("--gpus", metavar="IDS", help="comma-separated GPU ids (default h100-sxm,h200-sxm,h20,a100-sxm4-80gb,b200)")
    p.add_argument("--batch", type=int, help="batch of the built-in workloads")
    p.add_argument("--seq-len", type=int, dest="seq_len", help="sequence length of the LLM workloads")
    p.add_argument("--fit-die-mm2", type=float, dest="fit_die_mm2", help="resize the chip to the most cores in this die area")
    p.add_argument("--fit-power-w", type=float, dest="fit_power_w", help="... and/or under this TDP")
    p.add_argument("--out", default="out/compare", metavar="DIR", help="output folder (default out/compare)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("area", help="silicon area from synthesis and from the analytic model; energy of a GEMM")
    _add_design_flags(p)
    p.add_argument("--node", default="n7", help="process node: n28, n16, n7 (default), n5, n4, n3")
    p.add_argument("--liberty", metavar="FILE", help="also map to this Liberty standard-cell library (um2)")
    p.add_argument("--gemm", metavar="MxNxK", help="also report energy, power and TOPS/W of this GEMM")
    p.set_defaults(func=cmd_area)

    p = sub.add_parser("gpu", help="modelled GEMM time on an Nvidia GPU")
    p.add_argument("--gpu", required=True, metavar="ID", help="GPU id, e.g. h100-sxm (see models/data/gpus.yaml)")
    p.add_argument("--gemm", metavar="MxNxK", help="one GEMM")
    p.add_argument("--workload", metavar="NAME_OR_FILE",
                   help="built-in (llama3-8b-prefill, llama3-8b-decode, llama3-70b-*, mixtral-8x7b-*, bert-base, "
                        "dlrm, resnet50), a SCALE-Sim topology CSV, or a GEMM list CSV (name,M,N,K[,count][,dtype])")
    p.add_argument("--batch", type=int, help="built-in workloads: batch size")
    p.add_argument("--seq-len", type=int, dest="seq_len", help="built-in LLM/BERT workloads: sequence length")
    p.add_argument("--dtype", default="bf16", help="bf16 (default), fp16, fp8_e4m3, fp8_e5m2, int8, tf32, fp32")
    p.set_defaults(func=cmd_gpu)

    p = sub.add_parser("export-control", help="ECCN 3A090 view of a GPU or a custom chip")
    p.add_argument("--gpu", metavar="ID", help="classify this GPU")
    p.add_argument("--rows", type=int, help="custom chip: array rows")
    p.add_argument("--cols", type=int, help="custom chip: array columns")
    p.add_argument("--dtype", help="custom chip: MAC dtype (default int8)")
    p.add_argument("--clock-mhz", type=float, dest="clock_mhz", help="custom chip: clock in MHz")
    p.add_argument("--cores", type=int, default=1, help="custom chip: number of arrays (default 1)")
    p.add_argument("--die-area-mm2", type=float, dest="die_area_mm2", help="custom chip: applicable die area")
    p.add_argument("--io-bidir-gbps", type=float, dest="io_bidir_gbps", help="custom chip: aggregate I/O (Oct-2022 rule)")
    p.add_argument("--dram-bw-gbps", type=float, dest="dram_bw_gbps", help="custom chip: DRAM bandwidth (2026 licence policy)")
    p.add_argument("--not-data-center", action="store_true", dest="not_data_center",
                   help="custom chip: not designed or marketed for data centers")
    p.add_argument("--rule-date", dest="rule_date", metavar="YYYY-MM-DD", help="rule set in force on this date (default: latest)")
    p.set_defaults(func=cmd_export_control)

    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        field = exc.field if isinstance(exc, ConfigError) else None
        if want_json:
            print(json.dumps({"error": str(exc), "parameter": field}))
        print(f"systolab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("systolab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `systolab verify | head`
        sys.stderr.close()
        return 0
    except SimulationError as exc:  # a tool failed: say where its log is, no traceback
        if want_json:
            print(json.dumps({"error": str(exc), "parameter": None}))
        print(f"systolab: simulation failed: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
