"""The GPU power model's error against public measurements of board power by phase:
in sample (fitted to every row) and held out (refitted without each source, predicting its
rows). Prints the per-row table and the median and mean |error|.

    .venv/bin/python benchmarks/gpu_power_error.py           # print
    .venv/bin/python benchmarks/gpu_power_error.py --write   # also store the fitted coefficients
"""
from __future__ import annotations

import argparse
import re

from systolab.files import atomic_write_text
from systolab.models.gpu.power import POWER_FIT_FILE
from systolab.models.serving.power_fit import power_fit_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the fitted coefficients in data/gpu_power_fit.yaml")
    args = ap.parse_args()
    r = power_fit_report()
    cols = ["id", "phase", "batch", "compute_activity", "memory_activity", "measured_W", "predicted_W", "held_out_W"]
    print(r.to_frame()[cols].round(3).to_string(index=False))
    p = r.params
    print(f"\nidle {p.idle_fraction:.3f} x TDP, compute_coeff {p.compute_coeff:.4f}, memory_coeff {p.memory_coeff:.4f}")
    print(f"in sample: median |error| {r.in_sample_median_abs_error:.1%}, mean {r.in_sample_mean_abs_error:.1%}")
    print(f"held out (leave one source out): median |error| {r.held_out_median_abs_error:.1%}, "
          f"mean {r.held_out_mean_abs_error:.1%}")
    print("held out, median |error| by source: "
          + ", ".join(f"{s} {e:.1%}" for s, e in r.held_out_by_source.items()))
    if args.write:
        text = POWER_FIT_FILE.read_text()
        text = re.sub(r"compute_coeff: [0-9.e-]+", f"compute_coeff: {p.compute_coeff:.4f}", text)
        text = re.sub(r"memory_coeff: [0-9.e-]+", f"memory_coeff: {p.memory_coeff:.4f}", text)
        atomic_write_text(POWER_FIT_FILE, text)
        print(f"wrote {POWER_FIT_FILE}")


if __name__ == "__main__":
    main()
