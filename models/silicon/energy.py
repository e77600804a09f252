"""Energy and power of GEMMs on the systolic array.

Energy = issued MACs x E_mac + SRAM bytes x E_sram + DRAM bytes x E_dram, with 45 nm
figures (Horowitz, ISSCC 2014) scaled to the node (``data/energy.yaml``,
``data/nodes.yaml``) and E_dram the memory kind's (``data/memory_kinds.yaml``). Average
power at a clock adds leakage and an overhead fraction.

Activity counts come from the accelerator core's cycle model (:func:`core_activity`,
``models/core/perf.py``): the cycles and MACs the core's counters report, every operand the
array takes (edge padding included), DRAM bytes as the core moves them (operands re-read
per tile) and the SRAM traffic of its buffers. :func:`activity_energy` turns any such
activity into joules, for one core or for a chip of many.
"""
from __future__ import annotations

import math
from dataclasses import astuple, dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...checks import check_chip, check_core, check_int, check_positive, check_real
from ...config import AcceleratorConfig
from ...errors import UserError
from ..core.perf import MemorySystem, core_counters, core_cycles
from ..specs import DATA_DIR, load_yaml, need
from ..workloads.gemm import Gemm
from .area import chip_area, die_data, load_fit
from .memory import get_memory_kind, list_memory_kinds
from .nodes import Node, get_node

if TYPE_CHECKING:          # typing only: the chip's configuration imports the nodes of this package
    from ..chip.config import ChipConfig

ENERGY_FILE = DATA_DIR / "energy.yaml"


@cache
def energy_data(path: str = str(ENERGY_FILE)) -> dict:
    p = Path(path)
    d = load_yaml(p)
    for key in ("mac_pJ_45nm", "sram_pJ_per_byte_45nm"):
        need(p, "", d, key, (dict, list))
    for key in ("int32_add_pJ_45nm", "pe_overhead_factor", "leakage_fraction_of_peak_dynamic", "overhead_fraction"):
        need(p, "", d, key, (int, float))
    need(p, "", d, "flip_flop_basis", str)
    lane = need(p, "", d, "vector_lane", dict)
    for key in ("fma_pJ_45nm", "nand2_equivalent", "overhead_factor"):
        need(p, "vector_lane", lane, key, (int, float), positive=True)
    return d


@dataclass(frozen=True)
class Activity:
    """What a GEMM (or a workload) makes the cores do."""

    cycles: int
    macs_useful: int
    macs_issued: int        # including padding of edge tiles
    sram_bytes: int         # the cores' own buffers
    dram_bytes: int
    global_sram_bytes: int = 0   # a chip's global SRAM (its slices)

    def __add__(self, other: Activity) -> Activity:
        return Activity(*(a + b for a, b in zip(astuple(self), astuple(other))))


def gemm_activity(config: AcceleratorConfig, M: int, N: int, K: int, *, cycles: int, bytes_read: int,
                  bytes_written: int, count: int = 1) -> Activity:
    """Activity of ``count`` copies of an M x N x K GEMM on cores of ``config`` that took
    ``cycles`` each and moved ``bytes_read`` / ``bytes_written`` over DRAM: every operand
    the array takes (edge padding included), and SRAM traffic: every byte read is written
    into a buffer and read out once, plus the weight-stationary partial sums that go to the
    accumulator buffer and back. The one place that counts a GEMM's activity, for a core
    (:func:`core_activity`) and for a chip (whatever the split over cores: it moves no
    tile boundaries)."""
    issued = core_counters(config, M, N, K)["busy_cycles"] * config.rows * config.cols
    return Activity(cycles * count, M * N * K * count, issued * count,
                    core_sram_bytes(config, M, N, K, bytes_read) * count, (bytes_read + bytes_written) * count)


def core_sram_bytes(config: AcceleratorConfig, M: int, N: int, K: int, bytes_read: int) -> int:
    """Bytes through a core's own buffers for an M x N x K GEMM whose operands arrived as
    ``bytes_read`` on its port: each is written into a buffer and read out once, and a
    weight-stationary core's partial sums go to its accumulator buffer and back."""
    sram = 2 * bytes_read
    if config.dataflow == "ws":
        partial_rows = M * math.ceil(N / config.cols) * (math.ceil(K / config.rows) - 1)
        sram += 2 * partial_rows * config.cols * config.acc_bytes
    return sram


def core_activity(config: AcceleratorConfig, gemm: Gemm, memory: MemorySystem | None = None) -> Activity:
    """Activity of ``gemm`` on the accelerator core, from the cycle model of its controller
    (``models/core/perf.py``): cycles and DRAM traffic as the core really moves it (operands
    re-read per tile, C written once); see :func:`gemm_activity`."""
    memory = memory or MemorySystem(10, config.beat_bytes)
    c = core_counters(config, gemm.M, gemm.N, gemm.K)
    return gemm_activity(config, gemm.M, gemm.N, gemm.K, cycles=core_cycles(config, gemm.M, gemm.N, gemm.K, memory),
                         bytes_read=c["bytes_read"], bytes_written=c["bytes_written"], count=gemm.count)


@dataclass(frozen=True)
class EnergyEstimate:
    joules: float
    mac_joules: float
    sram_joules: float
    dram_joules: float
    seconds: float
    average_watts: float
    tops_per_watt: float
    activity: Activity
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["activity"] = dict(self.activity.__dict__)
        d["assumptions"] = list(self.assumptions)
        return d


def flip_flop_pJ(node: Node | str) -> float:
    """Energy of one flip-flop clocked for one cycle at ``node``, pJ: the int8 MAC's
    register and clocking share (``pe_overhead_factor`` - 1 of its multiply and 32-bit add,
    Horowitz ISSCC 2014 at 45 nm) over the flip-flops of the int8 output-stationary PE that
    holds them (synthesised: ``data/area_fit.yaml: pipelined_pe.anchor_flip_flops``),
    scaled to the node (``data/energy.yaml: flip_flop_basis``)."""
    d = energy_data()
    anchor_ff = load_fit().anchor_flip_flops
    if anchor_ff is None:
        raise UserError("mac_stages: the area fit holds no flip-flop anchor; rerun benchmarks/area_fit.py --write",
                        parameter="mac_stages")
    share_pJ = (d["pe_overhead_factor"] - 1) * (d["mac_pJ_45nm"]["int8"]["mult"] + d["int32_add_pJ_45nm"])
    return share_pJ / anchor_ff * get_node(node).energy_scale_vs_45nm.value


def pipeline_register_pJ(config: AcceleratorConfig, node: Node | str) -> float:
    """Energy per MAC (per PE and cycle) of the flip-flops a pipelined float MAC adds
    (``mac_stages`` - 1 register layers and, output-stationary, the extra accumulators
    and results; synthesised counts, ``data/area_fit.yaml``), each clocked every cycle
    (no clock gating, as in the RTL), at :func:`flip_flop_pJ`, pJ; 0 at one stage."""
    if config.mac_stages == 1:
        return 0.0
    return load_fit().pe_growth(config)[1] * flip_flop_pJ(node)


def mac_energy_pJ(config: AcceleratorConfig, node: Node | str) -> float:
    """Energy of one MAC in a PE at ``node`` (multiply + accumulate + PE overhead), pJ.

    Floating point: the int8 MAC with a 32-bit accumulator (Horowitz's figures) scaled by
    the synthesised one-stage PE's size against that int8 PE of the same dataflow
    (``float_mac`` in data/energy.yaml: switched capacitance taken as proportional to gate
    count), plus, for a pipelined MAC, its extra flip-flops clocked every cycle
    (:func:`pipeline_register_pJ`)."""
    d = energy_data()
    if config.is_float:
        fit = load_fit()
        anchor = config.replace(dtype="int8", acc_bits=32, overflow="wrap", subnormals="keep", mac_stages=1)
        ratio = fit.pe_transistors(config.replace(mac_stages=1)) / fit.pe_transistors(anchor)
        return mac_energy_pJ(anchor, node) * ratio + pipeline_register_pJ(config, node)
    mac = d["mac_pJ_45nm"].get(config.dtype)
    if mac is None:
        raise UserError(f"dtype: no MAC energy for {config.dtype!r}")
    add = d["int32_add_pJ_45nm"] * config.acc_bits / 32
    return (mac["mult"] + add) * d["pe_overhead_factor"] * get_node(node).energy_scale_vs_45nm.value


def sram_energy_pJ_per_byte(buffer_KiB: float, node: Node | str) -> float:
    """Energy of one byte read from (or written to) an SRAM of ``buffer_KiB`` at ``node``, pJ.

    Horowitz's 45 nm points (8 KB, 32 KB, 1 MB; ``data/energy.yaml``) joined by straight
    lines on log-log axes (energy per access grows as a power of the array's size, the
    wires' length with its side), held flat below the smallest and above the largest;
    scaled to the node. A 128 KiB buffer thus costs 4.8 pJ/B at 45 nm, not the 1 MB
    array's 12.5."""
    rows = energy_data()["sram_pJ_per_byte_45nm"]
    scale = get_node(node).energy_scale_vs_45nm.value
    if buffer_KiB <= rows[0]["max_KiB"]:
        return rows[0]["value"] * scale
    for lo, hi in zip(rows, rows[1:]):
        if buffer_KiB <= hi["max_KiB"]:
            t = math.log(buffer_KiB / lo["max_KiB"]) / math.log(hi["max_KiB"] / lo["max_KiB"])
            return lo["value"] * (hi["value"] / lo["value"]) ** t * scale
    return rows[-1]["value"] * scale


def activity_energy(config: AcceleratorConfig, act: Activity, *, node: Node | str, clock_MHz: float | None = None,
                    dram: str = "HBM", cores: int = 1, global_slice_KiB: float = 0.0) -> EnergyEstimate:
    """Joules, average watts and TOPS/W of ``act`` on ``cores`` cores of ``config`` at
    ``node``: issued MACs, SRAM bytes (the cores' buffers at the energy of their size, the
    global SRAM's at the energy of a ``global_slice_KiB`` slice) and DRAM bytes at their
    per-op energies, the overhead fraction on top, and the leakage of all ``cores`` arrays
    over ``act.cycles``."""
    buffer_KiB = config.buffer_kib
    d = energy_data()
    n = get_node(node)
    clock = check_positive("clock_MHz", clock_MHz) if clock_MHz is not None else n.default_clock_MHz.value
    if dram not in list_memory_kinds():
        raise UserError(f"dram: choose one of {', '.join(list_memory_kinds())}, not {dram!r}")
    dram_pJ = get_memory_kind(dram).pJ_per_bit
    e_mac = act.macs_issued * mac_energy_pJ(config, n) * 1e-12
    e_sram = act.sram_bytes * sram_energy_pJ_per_byte(buffer_KiB, n) * 1e-12
    if act.global_sram_bytes:
        e_sram += act.global_sram_bytes * sram_energy_pJ_per_byte(global_slice_KiB, n) * 1e-12
    e_dram = act.dram_bytes * (dram_pJ.value * 8) * 1e-12     # pJ/bit x 8 = pJ per byte
    seconds = act.cycles / (clock * 1e6)
    dynamic = (e_mac + e_sram + e_dram) * (1 + d["overhead_fraction"])
    leakage_W = chip_power_W(config, cores=cores, node=n, clock_MHz=clock)["leakage_W"]
    joules = dynamic + leakage_W * seconds
    notes: tuple[str, ...] = (
        f"45 nm energies from Horowitz ISSCC 2014 scaled by {n.energy_scale_vs_45nm.value} to {n.name} "
        f"({n.energy_scale_vs_45nm.source})",
        f"clock {clock:g} MHz ({'given' if clock_MHz is not None else n.default_clock_MHz.source})",
        d["pe_overhead_basis"], " ".join(d["power_basis"].split()),
        f"{dram} energy: {dram_pJ.source}")
    if config.mac_stages > 1:
        notes += (" ".join(d["flip_flop_basis"].split()),)
    return EnergyEstimate(joules, e_mac, e_sram, e_dram, seconds, joules / seconds,
                          2 * act.macs_useful / joules / 1e12, act, notes)


def gemm_energy(config: AcceleratorConfig, gemm: Gemm, *, node: Node | str, clock_MHz: float | None = None,
                dram: str = "HBM") -> EnergyEstimate:
    """Joules, average watts and TOPS/W of ``gemm`` on one core at ``node``."""
    check_core("config", config)
    e = activity_energy(config, core_activity(config, gemm), node=node, clock_MHz=clock_MHz, dram=dram)
    return replace(e, assumptions=e.assumptions + (
        "activity from the core's cycle model (models/core/perf.py) at its full port rate, latency 10",))


def workload_energy(config: AcceleratorConfig, gemms: list[Gemm], **kwargs) -> tuple[float, float]:
    """(joules, seconds) summed over a workload's GEMMs."""
    check_core("config", config)
    if not gemms:
        raise UserError("workload: holds no GEMMs")
    parts = [gemm_energy(config, g, **kwargs) for g in gemms]
    return sum(p.joules for p in parts), sum(p.seconds for p in parts)


def chip_power_W(config: AcceleratorConfig, *, cores: int, node: Node | str, clock_MHz: float | None = None,
                 activity: float = 1.0) -> dict:
    """Power of ``cores`` arrays at ``activity`` (fraction of cycles doing MACs), with
    leakage and the stated overhead (SRAM and DRAM traffic excluded: see gemm_energy)."""
    d = energy_data()
    n = get_node(node)
    cores = check_int("cores", cores, hi=1 << 24)
    check_real("activity", activity, lo=0.0, hi=1.0)
    clock = check_positive("clock_MHz", clock_MHz) if clock_MHz is not None else n.default_clock_MHz.value
    peak = cores * config.rows * config.cols * mac_energy_pJ(config, n) * 1e-12 * clock * 1e6
    dynamic = peak * activity * (1 + d["overhead_fraction"])
    leakage = d["leakage_fraction_of_peak_dynamic"] * peak
    return {"dynamic_W": dynamic, "leakage_W": leakage, "total_W": dynamic + leakage, "clock_MHz": clock,
            "basis": " ".join(d["power_basis"].split())}


# -- a chip's design power ---------------------------------------------------------------------
@dataclass(frozen=True)
class ChipPower:
    """A chip's design power, W: all cores busy at the clock with their SRAM traffic, DRAM
    at full bandwidth, the vector unit and the control processors at full activity, on
    top of the static floor; ``basis`` the assumptions behind the logic's share.

    ``static_W`` is the idle floor beyond the arrays' modelled leakage (``leakage_W``):
    the die's area times the idle power per mm² of data-centre accelerators
    (``data/die.yaml: idle_W_per_die_mm2``), less that leakage."""

    tdp_W: float
    logic_W: float              # the cores' arrays: dynamic and leakage
    leakage_W: float
    dram_W: float
    vector_W: float
    basis: str
    sram_W: float = 0.0         # the cores' SRAM traffic at full rate (design_sram_W)
    scalar_W: float = 0.0       # control processors
    static_W: float = 0.0       # the idle floor beyond the arrays' leakage

    def to_dict(self) -> dict[str, Any]:
        return {"tdp_W": self.tdp_W, "logic_W": self.logic_W, "leakage_W": self.leakage_W, "dram_W": self.dram_W,
                "vector_W": self.vector_W, "sram_W": self.sram_W, "scalar_W": self.scalar_W,
                "static_W": self.static_W, "basis": self.basis}


def vector_pJ_per_op(chip: ChipConfig) -> float:
    """Energy of one element operation on ``chip``'s vector unit, pJ (at its node)."""
    check_chip("chip", chip)
    v = energy_data()["vector_lane"]
    return v["fma_pJ_45nm"] * v["overhead_factor"] * get_node(chip.node).energy_scale_vs_45nm.value


def design_sram_W(chip: ChipConfig) -> float:
    """SRAM access power of ``chip`` with every core busy at the clock, W.

    Per core and cycle, as :func:`gemm_activity` counts a GEMM's SRAM traffic: the operands
    the array takes (``rows`` A elements, and for an output-stationary core ``cols`` B
    elements too; a weight-stationary core's weights stay put) are read from the global
    SRAM slice, written into their buffer and read out again; a weight-stationary core also
    reads and writes a row of ``cols`` partial sums in its accumulator buffer. Each buffer
    is priced at its own size (``a_buffer_kib``, ``b_buffer_kib``, ``acc_buffer_kib``: they
    are separate memories), the global read at the slice's (``data/energy.yaml``, scaled
    to the node), with the same overhead fraction as the arrays'."""
    check_chip("chip", chip)
    core, node = chip.core, chip.node
    a = core.rows * core.input_bytes
    pJ = 2 * a * sram_energy_pJ_per_byte(core.a_buffer_kib, node)
    if core.dataflow == "ws":
        pJ += 2 * core.cols * core.acc_bytes * sram_energy_pJ_per_byte(core.acc_buffer_kib, node)
        operands = a
    else:
        b = core.cols * core.input_bytes
        pJ += 2 * b * sram_energy_pJ_per_byte(core.b_buffer_kib, node)
        operands = a + b
    pJ += operands * sram_energy_pJ_per_byte(chip.slice_bytes / 1024, node)
    return chip.cores * pJ * 1e-12 * chip.clock_hz * (1 + energy_data()["overhead_fraction"])


def scalar_core_W(chip: ChipConfig) -> float:
    """Dynamic power of one control processor at ``chip``'s clock and node, W: the published
    core's mW/GHz (``data/die.yaml: scalar_core``) scaled by the node's energy factor over
    that of the core's node."""
    check_chip("chip", chip)
    d = die_data()
    scale = get_node(chip.node).energy_scale_vs_45nm.value / get_node(d.scalar_core_node).energy_scale_vs_45nm.value
    return d.scalar_core_mW_per_GHz.value * 1e-3 * chip.clock_mhz / 1e3 * scale


def chip_power(chip: ChipConfig, *, scalar_cores: int = 0) -> ChipPower:
    """Design power of ``chip``: all cores busy at the clock with their SRAM traffic
    (:func:`design_sram_W`), DRAM at full bandwidth, the vector unit's lanes and
    ``scalar_cores`` control processors (:func:`scalar_core_W`) at the clock, and the
    static floor of its die (:class:`ChipPower`)."""
    check_chip("chip", chip)
    scalar_cores = check_int("scalar_cores", scalar_cores, lo=0, hi=1 << 20)
    logic = chip_power_W(chip.core, cores=chip.cores, node=chip.node, clock_MHz=chip.clock_mhz)
    dram_pj = get_memory_kind(chip.dram.kind).pJ_per_bit.value * 8      # pJ per byte
    dram = chip.dram.GBps * 1e9 * dram_pj * 1e-12
    vector = chip.lanes * chip.clock_hz * vector_pJ_per_op(chip) * 1e-12
    sram = design_sram_W(chip)
    scalar = scalar_cores * scalar_core_W(chip)
    floor = die_data().idle_W_per_die_mm2.value * chip_area(chip, scalar_cores=scalar_cores).die_mm2
    static = max(0.0, floor - logic["leakage_W"])
    return ChipPower(logic["total_W"] + dram + vector + sram + scalar + static, logic["total_W"], logic["leakage_W"],
                     dram, vector, logic["basis"], sram, scalar, static)


# -- a chip's power while serving ---------------------------------------------------------------
#: What a chip idles at. The static floor (measured idle power of data-centre accelerators)
#: already holds the clock tree, PLLs, DRAM refresh and PHYs, so nothing is added on top.
CHIP_IDLE_BASIS = ("idle = the larger of the arrays' leakage and the die's area x the measured idle power per mm2 "
                   "of data-centre GPUs (data/die.yaml: idle_W_per_die_mm2)")


def chip_idle_W(chip: ChipConfig) -> float:
    """Power of ``chip`` switched on with no work, W: its static floor (the arrays' leakage,
    or the die's idle power per mm² where that is larger; :class:`ChipPower`)."""
    p = chip_power(chip)
    return p.leakage_W + p.static_W


def chip_step_power_W(chip: ChipConfig, *, seconds: float, macs_issued: float, dram_bytes: float,
                      sram_bytes: float = 0.0, vector_ops: float = 0.0) -> float:
    """Mean power of ``chip`` over a step of ``seconds``, W: the activity energy of the
    step (issued MACs at :func:`mac_energy_pJ`, DRAM bytes at the memory kind's pJ/bit,
    SRAM bytes at the cores' buffer energy, vector element operations at
    :func:`vector_pJ_per_op`; the overhead fraction on top) over its time, plus leakage and
    the idle floor, at most the design power."""
    seconds = check_positive("seconds", seconds)
    for name, v in (("macs_issued", macs_issued), ("dram_bytes", dram_bytes), ("sram_bytes", sram_bytes),
                    ("vector_ops", vector_ops)):
        check_real(name, v, lo=0.0)
    d = energy_data()
    n = get_node(chip.node)
    dram_pJ = get_memory_kind(chip.dram.kind).pJ_per_bit.value * 8
    pJ = (macs_issued * mac_energy_pJ(chip.core, n) + dram_bytes * dram_pJ
          + sram_bytes * sram_energy_pJ_per_byte(chip.core.buffer_kib, n) + vector_ops * vector_pJ_per_op(chip))
    design = chip_power(chip)
    watts = pJ * 1e-12 * (1 + d["overhead_fraction"]) / seconds + chip_idle_W(chip)
    return min(watts, design.tdp_W)
