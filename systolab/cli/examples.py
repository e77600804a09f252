"""Examples shown at the end of every command's ``--help`` (each one is parsed by the
tests, so none goes stale)."""
from __future__ import annotations

import argparse
from collections.abc import Mapping

EXAMPLES: dict[str, tuple[str, ...]] = {
    "rtl": ("systolab rtl --rows 4 --cols 4 --dataflow os --out out/rtl",
            "systolab rtl --chip sl-small --out out/chip --json"),
    "verify": ("systolab verify --rows 4 --cols 4 --dataflow os --gemm 37x23x19 --seed 3",
               "systolab verify --chip sl-tiny --gemms 4 --seed 1 --json"),
    "perf": ("systolab perf --rows 16 --cols 16 --gemm 1024x1024x1024",
             "systolab perf --chip sl-n4-os32 --workload llama3-8b-decode --json"),
    "map": ("systolab map --chip sl-tiny --gemm 40x36x100 --search exhaustive",
            "systolab map --chip sl-n4-os32 --workload llama3-70b-prefill --json"),
    "validate": ("systolab validate --shapes 5", "systolab validate --chip --json"),
    "compare": ("systolab compare --out out/compare",
                "systolab compare sl-n4-os32 --buyer any --workload llama3-8b-decode --gpus h20,h100-sxm --out out/c"),
    "decide": ("systolab decide --out out/decision",
               "systolab decide --buyer allied --tpot-s 0.1 --gpus h20,h100-sxm,h200-sxm --out out/allied",
               "systolab decide --buyer any --chip sl-n4-os32 --budget-usd 2e9 --power-cap-mw 50 "
               "--set memory.HBM.usd_per_GB=12:15:25 --out out/any"),
    "explore": ("systolab explore h20-beater --search lhs --trials 64 --seed 0 --out out/h20",
                "systolab explore my_space.yaml --search grid --jobs 2 --json"),
    "serve": ("systolab serve --device h200-sxm --model llama3-70b --isl 2048 --osl 256 --concurrency 64 --tp 2",
              "systolab serve --device sl-n4-os32 --model llama3-8b --isl 1024 --osl 256 --batch 32 --dtype int8"),
    "fleet": ("systolab fleet --budget-usd 7e9 --model llama3-70b --isl 2048 --osl 256 --concurrency 64",),
    "area": ("systolab area --rows 8 --cols 8 --dataflow os --dtype int8 --node n7",),
    "gpu": ("systolab gpu --gpu h100-sxm --gemm 8192x8192x8192 --dtype bf16",
            "systolab gpu --gpu h20 --workload llama3-8b-decode --batch 16 --seq-len 4096"),
    "export-control": ("systolab export-control --gpu h20 --json",
                       "systolab export-control --rows 256 --cols 256 --dtype int8 --clock-mhz 700 "
                       "--die-area-mm2 331 --rule-date 2024-01-01"),
    "legal": ("systolab legal --gpu h20 --buyer china --date 2025-05-01",
              "systolab legal --chip sl-n4-os32 --buyer any --date 2026-12-01"),
    "list": ("systolab list", "systolab list gpus --json"),
}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but an epilog of examples keeps its lines."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_examples(commands: Mapping[str, argparse.ArgumentParser]) -> None:
    """Give every command's parser its examples as the epilog of its ``--help``."""
    for name, parser in commands.items():
        if name in EXAMPLES:
            parser.epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name])
            parser.formatter_class = HelpFormatter
