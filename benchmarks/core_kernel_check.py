"""The compiled core cycle model (``models/core/kernel.py``) against the Python recurrence
it replaced (``models/perf.py`` as of commit 1bc7477, before the models moved into subpackages, read from git): cycles on random
cores, memories and shapes, and the time a shape of each.

    python benchmarks/core_kernel_check.py [--cores 300] [--seed 0]

Each random core (dataflow, dtype, array size, beat width, buffers) gets a random memory
(latency, bandwidth, whole or fractional beats) and 30 random shapes. Prints the seed,
the number of shapes, the mismatches (listing the first few) and both models' time per
shape. Needs the repository's git history.
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = "1bc7477"


def reference_module():
    """The old ``models/perf.py``, loaded inside the package so that its relative imports work."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{REFERENCE}:models/perf.py"], cwd=root, check=True, capture_output=True,
                            text=True).stdout
    path = Path(tempfile.mkdtemp()) / "perf_reference.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("systolab.models.perf_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from systolab import AcceleratorConfig
    from systolab.errors import ConfigError
    from systolab.models.core.perf import MemorySystem, core_cycles_many

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ref = reference_module()
    rng = random.Random(args.seed)
    core_cycles_many(AcceleratorConfig(), [1], [1], [1])          # compiled (or loaded) before the clock starts
    shapes_n, bad, t_ref, t_new = 0, [], 0.0, 0.0
    for _ in range(args.cores):
        size = lambda: rng.choice([1, 2, 3, 4, 8, 16, 32, 64, rng.randint(1, 64)])  # noqa: E731
        kib = rng.choice([0.5, 1, 2, 4, 8, 32])
        try:
            cfg = AcceleratorConfig(rows=size(), cols=size(), dataflow=rng.choice(["os", "ws"]),
                                    dtype=rng.choice(["int8", "int16", "bf16"]), beat_bytes=rng.choice([4, 8, 16, 32, 64]),
                                    a_buffer_kib=kib, b_buffer_kib=kib, acc_buffer_kib=4 * kib)
        except ConfigError:
            continue                                   # buffers too small for this array: draw again
        latency, bandwidth = rng.choice([1, 2, 5, 10, 40, 100]), rng.choice([1.0, 2.0, 3.0, 4.0, 7.5, 16.0, 64.0])
        whole = rng.random() < 0.7
        shapes = [tuple(rng.choice([rng.randint(1, 20), rng.randint(1, 300), rng.randint(1, 3000)]) for _ in range(3))
                  for _ in range(30)]
        t = time.perf_counter()
        old = [ref.core_cycles(cfg, *s, ref.MemorySystem(latency, bandwidth), whole_beats=whole) for s in shapes]
        t_ref += time.perf_counter() - t
        t = time.perf_counter()
        new = core_cycles_many(cfg, *zip(*shapes), MemorySystem(latency, bandwidth), whole_beats=whole).tolist()
        t_new += time.perf_counter() - t
        shapes_n += len(shapes)
        bad += [(cfg.name, latency, bandwidth, whole, s, a, b) for s, a, b in zip(shapes, old, new) if a != b]
    print(f"seed {args.seed}: {shapes_n:,} shapes on {args.cores} random cores, {len(bad)} mismatches; "
          f"Python recurrence ({REFERENCE}) {t_ref / shapes_n * 1e6:.1f} us a shape, compiled {t_new / shapes_n * 1e6:.2f} us")
    for row in bad[:10]:
        print("  mismatch:", row)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
