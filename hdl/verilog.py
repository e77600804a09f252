"""Verilog generation with a manifest of parameters and ports."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from ..config import AcceleratorConfig
from .array import build_array

TOP_NAME = "systolab_top"


@dataclass(frozen=True)
class VerilogOutput:
    """What :func:`generate_verilog` wrote."""

    verilog: Path
    manifest: Path
    top: str
    params: dict
    ports: list


def _ports(component: wiring.Component) -> list[dict]:
    ports = []
    for path, member, value in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": Value.cast(value).shape().width,
        })
    return ports


def generate_verilog(config: AcceleratorConfig, out_dir: str | Path) -> VerilogOutput:
    """Write ``<top>.v`` and ``manifest.json`` for ``config`` into ``out_dir``.

    The Verilog file is rewritten only when its text changes, so simulator builds keyed on
    file times stay valid. The top module is named ``systolab_top``; ports are named by
    Amaranth's convention (``operands__payload``, ``results__valid`` ...), plus ``clk``
    and ``rst`` (synchronous, active high).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = build_array(config)
    text = verilog.convert(top, name=TOP_NAME, emit_src=False)
    vpath = out_dir / f"{TOP_NAME}.v"
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}] + _ports(top)
    params = {**config.to_dict(), "config_hash": config.config_hash}
    manifest = {"top": TOP_NAME, "verilog": vpath.name, "params": params, "ports": ports}
    mpath = out_dir / "manifest.json"
    mpath.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return VerilogOutput(verilog=vpath, manifest=mpath, top=TOP_NAME, params=params, ports=ports)
