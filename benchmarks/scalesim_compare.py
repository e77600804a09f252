"""systolab's cycle model beside SCALE-Sim on the same GEMMs: runtime and cycle counts.

    python benchmarks/scalesim_compare.py [--venv DIR]

SCALE-Sim (pip ``scalesim``) needs numpy < 2, so it runs in its own virtual environment
(created under ``build/scalesim-venv`` on first use, or given with ``--venv``) as a
subprocess; each GEMM is timed end to end there (its own process start excluded by timing
inside the subprocess). systolab's model is timed in this process. Both describe an
output-stationary array of the same size; SCALE-Sim's idealised model assumes operands are
always in SRAM (CALC bandwidth), systolab's counts the core's real schedule with the
memory at 64 B/cycle and latency 10. The cycle counts therefore differ by design; the
runtime ratio answers "how much faster is the same question".
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEMMS = [(64, 64, 64, 4), (256, 256, 256, 16), (128, 512, 256, 16), (512, 512, 512, 16)]

CONFIG = """[general]
run_name = systolab_cmp
[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = 1024
filtersramszkB = 1024
ofmapsramszkB = 1024
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = os
ReadRequestBuffer = 32
WriteRequestBuffer = 32
Bandwidth = 10
[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2
[sparsity]
SparsitySupport = false
"""

RUNNER = textwrap.dedent("""
    import csv, glob, io, json, sys, time, contextlib
    from scalesim.scale_sim import scalesim
    cfg, topo, layout, out = sys.argv[1:5]
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                     input_type_gemm=True)
        s.run_scale(top_path=out)
    secs = time.perf_counter() - t
    rep = glob.glob(out + "/**/COMPUTE_REPORT.csv", recursive=True)[0]
    rows = list(csv.reader(open(rep)))
    print(json.dumps({"seconds": secs, "cycles": int(float(rows[1][1]))}))
""")


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "numpy<2", "scalesim"], check=True)
    return py


def run_scalesim(py: Path, M: int, N: int, K: int, array: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "scale.cfg").write_text(CONFIG.format(rows=array, cols=array))
        (t / "gemm.csv").write_text(f"Layer, M, N, K,\ng0, {M}, {N}, {K},\n")
        (t / "layout.csv").write_text("Layer, a, b, c, d, e, f, g, h,\ng0, 1, 1, 1, 1, 1, 1, 1, 1,\n")
        (t / "run.py").write_text(RUNNER)
        r = subprocess.run([str(py), str(t / "run.py"), str(t / "scale.cfg"), str(t / "gemm.csv"),
                            str(t / "layout.csv"), str(t / "out")], capture_output=True, text=True, timeout=3600)
        if r.returncode:
            raise RuntimeError(f"SCALE-Sim failed: {r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    from systolab import AcceleratorConfig
    from systolab.models.core.perf import MemorySystem, core_perf

    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", type=Path, default=ROOT / "build" / "scalesim-venv")
    args = ap.parse_args()
    py = ensure_venv(args.venv)
    print(f"{'GEMM':>14} {'array':>6} {'scalesim_s':>10} {'scalesim_cyc':>12} {'systolab_s':>10} "
          f"{'systolab_cyc':>12} {'speedup':>9}")
    for M, N, K, a in GEMMS:
        ss = run_scalesim(py, M, N, K, a)
        cfg = AcceleratorConfig(rows=a, cols=a, beat_bytes=64, a_buffer_kib=64, b_buffer_kib=64)
        reps = 200
        t = time.perf_counter()
        for _ in range(reps):
            p = core_perf(cfg, M, N, K, MemorySystem(10, 64))
        ours = (time.perf_counter() - t) / reps
        print(f"{f'{M}x{N}x{K}':>14} {f'{a}x{a}':>6} {ss['seconds']:10.2f} {ss['cycles']:12d} {ours:10.6f} "
              f"{p.cycles:12d} {ss['seconds'] / ours:9.0f}", flush=True)


if __name__ == "__main__":
    main()
