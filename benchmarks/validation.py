"""Leave-one-source-out validation of the GPU model: serving and GEMM kernels.

1. Serving: each source of ``models/data/serving_measurements.csv`` (a framework version,
   benchmark round or vendor table; ``source`` column, cited in ``serving.yaml``) is held out
   in turn, the serving parameters are fitted to all the other sources
   (``systolab.models.serving.fit.leave_one_source_out``) and the held-out rows predicted.
   Prints each source's n, median |error| and bias, then every row's median and 90th
   percentile |error| and bias, and the worst rows.
2. GEMM kernel layer: the rows of ``gemm_heldout.csv`` left out of the shape fit, by table
   (``systolab.models.gpu.fit.heldout_summary``).

``--record`` records the serving summary in your copy of ``gpu_fit.yaml``, ``--write`` in the
repository's; either refuses (and writes nothing) when the held-out error is worse than the
one recorded for the same measurements (``systolab.models.validation.check_accepted``).

Usage: ``.venv/bin/python benchmarks/validation.py [--record|--write] [--worst N]``
"""
from __future__ import annotations

import argparse
import time

from systolab.errors import UserError
from systolab.models.gpu import fit as gemm_fit
from systolab.models.gpu.fit_file import fit_target
from systolab.models.serving import fit as sf
from systolab.models.validation import HeldOutSummary


def show(title: str, s: HeldOutSummary, worst: int) -> None:
    print(f"\n{title}")
    print(f"{'source':30} {'n':>4} {'median |err| %':>15} {'bias %':>8}")
    for src in s.sources:
        print(f"{src.source:30} {src.n:>4} {src.median_abs_error_pct:>15.1f} {src.bias_pct:>8.1f}")
    print(f"{'all':30} {s.n:>4} {s.median_abs_error_pct:>15.1f} {s.bias_pct:>8.1f}   "
          f"90th percentile |err| {s.p90_abs_error_pct:.1f} %")
    for r in sorted(s.rows, key=lambda r: -abs(r["error_pct"]))[:worst]:
        print(f"  {r['id']:40} measured {r['measured']:>10.4g} predicted {r['predicted']:>10.4g} "
              f"{r['error_pct']:>+7.1f} %")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", action="store_true", help="record the serving summary in your gpu_fit.yaml")
    p.add_argument("--write", action="store_true", help="record it in the repository's models/data/gpu_fit.yaml")
    p.add_argument("--worst", type=int, default=10, help="rows with the largest held-out error to list")
    a = p.parse_args()
    try:
        if a.write:
            fit_target(a.write)     # outside a checkout, --write fails now
        t0 = time.perf_counter()
        s = sf.leave_one_source_out()
        show(f"serving, leave-one-source-out ({len(sf.sources())} sources, {time.perf_counter() - t0:.0f} s)",
             s, a.worst)
        show("GEMM kernel layer, shapes left out of the fit (by table)", gemm_fit.heldout_summary(), a.worst)
        if a.record or a.write:
            print(f"\nrecorded in {sf.store_loso(s, write=a.write)}")
    except UserError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
