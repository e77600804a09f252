"""The serving model's accuracy against public serving measurements, and its fit.

1. ``fit``: refused, writing nothing, when the model as the code now stands does worse on sources it
   never saw (leave-one-source-out, ``benchmarks/validation.py``) than the fit recorded in
   ``gpu_fit.yaml`` for the same measurements; else fit the GPU model's parameters (three shared,
   a per-kernel cost per runtime) to the measurements of
   ``models/data/serving_measurements.csv`` and store them in ``gpu_fit.yaml`` (repeated until they settle;
   see ``systolab.models.serving.fit``): your copy (in ``$SYSTOLAB_DATA_DIR``, else
   ``$XDG_DATA_HOME/systolab`` or ``~/.local/share/systolab``), or with ``--write`` the repository's
   ``models/data/gpu_fit.yaml`` (only from a git checkout).
2. ``loo``: every measurement against the stored fit (in-sample) and against a fit to all
   the other measurements (leave-one-out), with the median and worst |error| per metric;
   ``--record`` records the leave-one-out summary in your copy of ``gpu_fit.yaml``,
   ``--write`` in the repository's, where the compare report cites it (a refit clears it).
3. ``tp``: Llama-3-70B decode with tensor parallelism on 2, 4 and 8 devices of each kind
   (the GPUs of ``systolab compare`` and the default chip): tokens/s per device, TPOT and
   the largest batch the KV cache allows.

The model (and the compare report) reads your copy of ``gpu_fit.yaml`` when it exists and is
newer than the shipped one, else the shipped one.

Usage: ``.venv/bin/python benchmarks/serving.py [fit [--write]|loo [--record|--write]|tp]``
"""
from __future__ import annotations

import argparse
import time

from systolab.errors import UserError
from systolab.models.chip.config import get_chip
from systolab.models.gpu.fit_file import fit_target
from systolab.models.report.compare import DEFAULT_GPUS
from systolab.models.serving import fit as sf
from systolab.models.serving.model import serve
from systolab.models.validation import check_accepted


def do_fit(write: bool = False) -> None:
    fit_target(write)           # outside a checkout, --write fails now, not after the fits
    t0 = time.perf_counter()
    # the acceptance rule: the fit as the code now stands must not do worse on sources it never
    # saw than the fit recorded for the same measurements (else nothing is written)
    held_out = sf.leave_one_source_out()
    check_accepted(held_out.to_dict(), sf.stored_loso())
    theta, rows = sf.refit(write=write)
    names = ["compute_derate", "mem_eff_hbm", "mem_eff_gddr", *[f"launch_s[{r}]" for r in sf.runtimes()]]
    print(f"fitted in {time.perf_counter() - t0:.1f} s:", dict(zip(names, theta.round(9).tolist())))
    print(sf.summary(rows))
    held_out = sf.leave_one_source_out(theta)
    sf.store_loso(held_out, write=write, check=False)
    print(f"leave-one-source-out: median |error| {held_out.median_abs_error_pct:.1f} %, 90th percentile "
          f"{held_out.p90_abs_error_pct:.1f} %, bias {held_out.bias_pct:+.1f} % (benchmarks/validation.py)")
    print(f"written to {fit_target(write)}")


def do_loo(record: bool = False, write: bool = False) -> None:
    if write:
        fit_target(write)       # outside a checkout, --write fails now, not after the fits
    t0 = time.perf_counter()
    rows = sf.report(loo=True)
    print(f"{'measurement':32} {'measured':>10} {'model':>10} {'err %':>7} {'LOO':>10} {'LOO err %':>9}")
    for r in rows:
        print(f"{r['id']:32} {r['measured']:>10.4g} {r['model_value']:>10.4g} {r['error_pct']:>7.1f} "
              f"{r['loo_value']:>10.4g} {r['loo_error_pct']:>9.1f}")
    for metric, s in sf.summary(rows).items():
        print(f"{metric}: n={s['n']}, median |error| {s['median_abs_error_pct']:.1f} % (LOO "
              f"{s['median_abs_loo_error_pct']:.1f} %), worst {s['worst_abs_error_pct']:.1f} % (LOO "
              f"{s['worst_abs_loo_error_pct']:.1f} %, {s['worst_loo_case']})")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if record or write:
        path = sf.store_loo(rows, write=write)
        print(f"leave-one-out errors written to {path} (the compare report cites them)")


def do_tp() -> None:
    devices = list(DEFAULT_GPUS) + [get_chip().name]
    print(f"{'device':16} {'tp':>3} {'tok/s/device':>12} {'TPOT ms':>8} {'TTFT ms':>8} {'max batch':>9}")
    for dev in devices:
        for tp in (2, 4, 8):
            try:
                r = serve(dev, "llama3-70b", isl=2048, osl=256, batch=32, tp=tp)
            except UserError as exc:
                print(f"{dev:16} {tp:>3} {exc}")
                continue
            print(f"{dev:16} {tp:>3} {r.output_tokens_per_s:>12,.0f} {r.tpot_s * 1e3:>8.2f} {r.ttft_s * 1e3:>8.1f} "
                  f"{r.max_batch:>9,}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="loo", choices=["fit", "loo", "tp"])
    p.add_argument("--record", action="store_true", help="loo: record the leave-one-out errors in your gpu_fit.yaml")
    p.add_argument("--write", action="store_true",
                   help="fit, loo: write the repository's models/data/gpu_fit.yaml instead of your copy "
                        "(only from a git checkout)")
    a = p.parse_args()
    if a.write and a.what == "tp":
        p.error("--write: only fit and loo write their result")
    if a.record and a.what != "loo":
        p.error("--record: only loo records its result (fit always stores its own)")
    try:
        {"fit": lambda: do_fit(a.write), "loo": lambda: do_loo(a.record, a.write), "tp": do_tp}[a.what]()
    except UserError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
