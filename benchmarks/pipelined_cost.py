"""What a pipelined float MAC costs a chip: area, power, TOPS/W and tokens/s per mm² at S stages.

    python benchmarks/pipelined_cost.py [DTYPE] [--stages 1 3 5]

The default chip (``sl.get_chip()``) derived to DTYPE (default fp8_e4m3) with ``mac_stages``
S and a 40 KiB A buffer at every S (it holds 5 row groups of 32 lanes), compared on
Llama-3-8B prefill against the H100 SXM (``compare``: the chip at its attainable clock).
One JSON line per S. Run at an earlier commit, the same script gives the model before it
counted the pipeline (benchmarks/README.md, "Pipelined floating-point MAC").
"""
from __future__ import annotations

import argparse
import json
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dtype", nargs="?", default="fp8_e4m3")
    ap.add_argument("--stages", type=int, nargs="+", default=[1, 3, 5])
    args = ap.parse_args()
    import systolab as sl
    from systolab.models.report.compare import compare
    from systolab.models.silicon.area import chip_area
    from systolab.models.silicon.energy import chip_power, mac_energy_pJ

    warnings.simplefilter("ignore")                   # the TimingWarning of a clock above fmax: compare handles it
    for S in args.stages:
        chip = sl.get_chip().derive(dtype=args.dtype, mac_stages=S, a_buffer_kib=40)
        c = compare(chip, workloads=("llama3-8b-prefill",), gpus=("h100-sxm",), serving=None, progress=lambda m: None)
        row = next(r for r in c.rows if r["kind"] != "gpu")
        a, p = chip_area(chip), chip_power(chip)
        print(json.dumps({
            "dtype": args.dtype, "mac_stages": S, "die_mm2": round(row["die_mm2"], 1),
            "core_array_mm2": round(a.core_array_mm2, 4), "tdp_W": round(row["tdp_W"], 1),
            "logic_W_at_stated_clock": round(p.logic_W, 1), "mac_pJ": round(mac_energy_pJ(chip.core, chip.node), 4),
            "peak_tops": round(row["peak_tops"]), "tops_per_W": round(row["tops_per_W"], 3),
            "tokens_per_s": round(row["throughput"]), "tokens_per_s_per_mm2": round(row["throughput_per_mm2"], 1)}),
            flush=True)


if __name__ == "__main__":
    main()
