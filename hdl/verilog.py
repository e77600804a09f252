"""Verilog generation with a manifest of parameters and ports."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from .. import config as config_module
from .. import dtypes as dtypes_module
from ..blocking import REJECT
from ..config import AcceleratorConfig
from ..errors import UserError
from ..files import atomic_write_text
from .accelerator import AcceleratorCore
from .array import build_array
from .chip import ChipTop
from .dma import descriptor_layout

TOP_NAME = "systolab_top"     # the bare systolic array
CORE_TOP = "systolab_core"    # the accelerator core: array, buffers, memory port, controller
CHIP_TOP = "systolab_chip"    # the chip: cores, SRAM slices, DMA channels, blocked-GEMM controller
#: What :func:`generate_verilog` can write, and the top module of each.
UNITS = {"core": CORE_TOP, "array": TOP_NAME}


@dataclass(frozen=True)
class VerilogOutput:
    """What :func:`generate_verilog` wrote."""

    verilog: Path
    manifest: Path
    top: str
    unit: str
    params: dict
    ports: list

    def to_dict(self) -> dict:
        return {"verilog": str(self.verilog), "manifest": str(self.manifest), "top": self.top, "unit": self.unit,
                "params": self.params, "ports": self.ports}


def _ports(component: wiring.Component) -> list[dict]:
    ports = []
    for path, member, value in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": Value.cast(value).shape().width,
        })
    return ports


def build_unit(config: AcceleratorConfig, unit: str = "core") -> wiring.Component:
    """The component for ``unit``: ``"core"`` (:class:`AcceleratorCore`) or ``"array"``."""
    if unit not in UNITS:
        raise UserError(f"unit: must be one of {', '.join(UNITS)}, not {unit!r}")
    if unit == "array":
        return build_array(config)
    return AcceleratorCore(config)


def verilog_text(config: AcceleratorConfig, unit: str = "core") -> str:
    """The Verilog of ``unit`` for ``config`` (top module :data:`UNITS` [unit])."""
    return verilog.convert(build_unit(config, unit), name=UNITS[unit], emit_src=False)


def generate_verilog(config: AcceleratorConfig, out_dir: str | Path, *, unit: str = "core") -> VerilogOutput:
    """Write ``<top>.v`` and ``manifest.json`` for ``config`` into ``out_dir``.

    ``unit="core"`` (default) writes the accelerator core (``systolab_core``: array,
    buffers, memory port, tiled-GEMM controller and counters); ``unit="array"`` the bare
    systolic array (``systolab_top``). Each file is written atomically and only when its
    text changes, so simulator builds keyed on file times stay valid. Ports are named by
    Amaranth's convention (``cmd__payload``, ``mem__rd_data__valid`` ...), plus ``clk`` and
    ``rst`` (synchronous, active high).
    """
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    out_dir = Path(out_dir)
    top = build_unit(config, unit)
    text = verilog.convert(top, name=UNITS[unit], emit_src=False)
    vpath = out_dir / f"{UNITS[unit]}.v"
    if not vpath.exists() or vpath.read_text() != text:
        atomic_write_text(vpath, text)
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}] + _ports(top)
    params = {**config.to_dict(), "config_hash": config.config_hash, "k_chunk": config.k_chunk,
              "tile_m": config.tile_m}
    manifest = {"top": UNITS[unit], "unit": unit, "verilog": vpath.name, "params": params, "ports": ports}
    mpath = out_dir / "manifest.json"
    mtext = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if not mpath.exists() or mpath.read_text() != mtext:
        atomic_write_text(mpath, mtext)
    return VerilogOutput(verilog=vpath, manifest=mpath, top=UNITS[unit], unit=unit, params=params, ports=ports)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        atomic_write_text(path, text)


def chip_verilog_text(chip) -> str:
    """The Verilog of the chip (a :class:`~systolab.models.chip.config.ChipConfig`; top module
    :data:`CHIP_TOP`)."""
    return verilog.convert(ChipTop(chip), name=CHIP_TOP, emit_src=False)


def generate_chip_verilog(chip, out_dir: str | Path) -> VerilogOutput:
    """Write ``systolab_chip.v`` and ``manifest.json`` for ``chip`` into ``out_dir`` (each
    atomically, only when changed). The manifest holds the chip's fields and the values
    derived from them that the RTL uses (slice words, queue depth, DRAM latency in
    cycles), every port, the descriptor's fields (bit offset and width, for software that
    packs it) and the controller's reject codes. Elaboration time grows with the cores:
    chips of hundreds of cores are modelled (``models/chip/perf.py``), not generated."""
    out_dir = Path(out_dir)
    top = ChipTop(chip)
    vpath = out_dir / f"{CHIP_TOP}.v"
    _write_if_changed(vpath, verilog.convert(top, name=CHIP_TOP, emit_src=False))
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}] + _ports(top)
    layout = descriptor_layout()
    params = {**chip.to_dict(), "config_hash": chip.config_hash, "operand_words": chip.operand_words,
              "acc_words": chip.acc_words, "slice_bytes": chip.slice_bytes, "slice_queue_depth": chip.slice_queue_depth,
              "dram_latency_cycles": chip.dram_latency_cycles, "channel_bytes_per_cycle": chip.channel_bytes_per_cycle,
              "descriptor": {name: {"offset": layout[name].offset, "width": layout[name].width}
                             for name, _ in layout},
              "reject_codes": {str(k): v for k, v in REJECT.items()}}
    manifest = {"top": CHIP_TOP, "unit": "chip", "verilog": vpath.name, "params": params, "ports": ports}
    mpath = out_dir / "manifest.json"
    _write_if_changed(mpath, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return VerilogOutput(verilog=vpath, manifest=mpath, top=CHIP_TOP, unit="chip", params=params, ports=ports)


def hdl_fingerprint(config) -> str:
    """Hash of everything the generated Verilog depends on: configuration, generator
    sources, the modules that derive the hardware's parameters (``config.py``: k_chunk,
    tile_m; ``dtypes.py``) and the Amaranth version (hashlib, so stable across processes).
    ``config`` is an :class:`AcceleratorConfig` or a chip (anything with
    ``canonical_json()``)."""
    h = hashlib.sha256(config.canonical_json().encode())
    h.update(amaranth.__version__.encode())
    sources = sorted(Path(__file__).parent.glob("*.py"))
    sources += [Path(config_module.__file__), Path(dtypes_module.__file__)]
    for src in sources:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()
