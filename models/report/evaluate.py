"""One workload on one device, custom chip or GPU, read the same way: the result a
notebook works with and the row ``systolab compare`` is built from.

:func:`evaluate_chip` and :func:`evaluate_gpu` take the same :class:`Workload` (its GEMMs
in its dtype) and return the same :class:`Evaluation`. The workload's dtype must be one
the device computes in: a chip of int8 cores runs an int8 workload; a GPU runs the
workload's dtype at its tensor rate (or says which rate it falls back to).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import UserError
from ..chip.config import ChipConfig
from ..chip.workload import chip_workload_perf
from ..frames import data_frame
from ..gpu.model import estimate_workload, resolve_peak
from ..gpu.specs import GpuSpec, get_gpu
from ..silicon.energy import Activity, activity_energy, core_sram_bytes
from ..workloads.catalog import Workload


@dataclass(frozen=True)
class Evaluation:
    """A workload on a device.

    Attributes
    ----------
    device, kind : str
        Device id and ``"custom"`` or ``"gpu"``.
    workload, dtype, unit : str
        The workload, its dtype and its unit of work (``token``, ``sample``, ``run``): what
        :attr:`throughput` (``units_per_second`` in :meth:`to_dict`) counts.
    units_per_run : int
        Units one run delivers.
    seconds : float
        Time of one run, s.
    utilization : float
        Achieved over peak operations per second in the dtype, 0..1.
    bound : str
        What limits the run as a whole: ``compute``, ``memory`` (DRAM bandwidth),
        ``sram`` (a custom chip's cores starved by their SRAM ports) or ``latency``
        (pipeline fill, memory latency, kernel launches).
    energy_J : float
        Energy of one run, J.
    flops : int
        Operations of one run (2 per multiply-accumulate).
    peak_tops : float
        The device's dense peak in the dtype it ran at, TOPS (10^12 operations/s).
    dram_bytes : int
        Off-chip bytes read and written in one run (modelled).
    dram_peak_GBps : float
        The device's DRAM bandwidth, GB/s (:attr:`dram_bandwidth_utilization` divides by it).
    model : str
        The models behind the numbers.
    notes : tuple of str
        Assumptions and uncertain inputs that qualify the result.
    gemms : tuple of dict
        Per GEMM (all its copies): ``name``, ``M``, ``N``, ``K``, ``count``, ``seconds``,
        ``utilization``, ``bound``.
    """

    device: str
    kind: str
    workload: str
    dtype: str
    unit: str
    units_per_run: int
    seconds: float
    utilization: float
    bound: str
    energy_J: float
    flops: int
    peak_tops: float
    dram_bytes: int
    model: str
    notes: tuple[str, ...] = field(default=())
    gemms: tuple[dict, ...] = field(default=())
    dram_peak_GBps: float = 0.0

    @property
    def dram_bandwidth_utilization(self) -> float:
        """Off-chip bytes moved over what the device's DRAM could move in the time, 0..1."""
        return self.dram_GBps / self.dram_peak_GBps if self.dram_peak_GBps else float("nan")

    @property
    def throughput(self) -> float:
        """Units of work per second."""
        return self.units_per_run / self.seconds

    @property
    def avg_power_W(self) -> float:
        return self.energy_J / self.seconds

    @property
    def energy_per_unit_J(self) -> float:
        return self.energy_J / self.units_per_run

    @property
    def achieved_tops(self) -> float:
        return self.flops / self.seconds / 1e12

    @property
    def dram_GBps(self) -> float:
        """Average off-chip bandwidth used, GB/s."""
        return self.dram_bytes / self.seconds / 1e9

    def to_dict(self) -> dict[str, Any]:
        """Every field and derived figure; ``units_per_second`` is :attr:`throughput`, in
        units of :attr:`unit` (the keys are the same whatever the workload)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(notes=list(self.notes), gemms=[dict(g) for g in self.gemms], throughput=self.throughput,
                 avg_power_W=self.avg_power_W, energy_per_unit_J=self.energy_per_unit_J,
                 achieved_tops=self.achieved_tops, dram_GBps=self.dram_GBps,
                 dram_bandwidth_utilization=self.dram_bandwidth_utilization, units_per_second=self.throughput)
        return d

    def to_frame(self) -> Any:
        """The per-GEMM table as a pandas DataFrame (seconds of all copies; units in the
        column names)."""
        df = data_frame([dict(g) for g in self.gemms])
        return df.rename(columns={"seconds": "seconds_s"})

    def _repr_html_(self) -> str:
        return (f"<b>{self.workload}</b> on <b>{self.device}</b> ({self.dtype}): {self.throughput:,.4g} "
                f"{self.unit}s/s, {self.seconds * 1e3:,.4g} ms per run, {self.bound}-bound, utilisation "
                f"{self.utilization:.1%}, {self.energy_per_unit_J:.3g} J per {self.unit}, "
                f"{self.avg_power_W:,.0f} W average" + self.to_frame().to_html(max_rows=20))


def _check_workload(workload: Any) -> Workload:
    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a Workload (see get_workload), not {type(workload).__name__}")
    return workload


def evaluate_chip(chip: ChipConfig, workload: Workload) -> Evaluation:
    """``workload`` on the custom ``chip``: time from the chip's cycle model (equal to the
    chip RTL's counters; each GEMM mapped by the mapper, the GEMMs one after another),
    energy from the activity model, checked against the chip's DRAM capacity."""
    workload = _check_workload(workload)
    if workload.dtype != chip.core.dtype:
        raise UserError(f"dtype: {workload.name} is {workload.dtype} but {chip.name}'s cores compute "
                        f"{chip.core.dtype}; get the workload with dtype={chip.core.dtype!r}", parameter="dtype")
    workload.check_fits(chip.dram.GB, chip.name)
    perf = chip_workload_perf(chip, workload.gemms)
    act = Activity(0, 0, 0, 0, 0)
    rows = []
    for g in perf.gemms:
        # the cores' own buffers as for a lone core (the operands they read from their slices;
        # weight-stationary partial sums as for the whole GEMM on one core), the global SRAM apart
        core_sram = core_sram_bytes(chip.core, g["M"], g["N"], g["K"], g["core_bytes_read"] // g["count"])
        act = act + Activity(g["cycles"], g["M"] * g["N"] * g["K"] * g["count"], g["macs_issued"],
                             core_sram * g["count"], g["bytes_read"] + g["bytes_written"], g["sram_bytes"])
        rows.append({k: g[k] for k in ("name", "M", "N", "K", "count", "parallel", "blocking", "seconds",
                                       "utilization", "dram_bandwidth_utilization", "bound")})
    energy = activity_energy(chip.core, act, node=chip.node, clock_MHz=chip.clock_mhz, dram=chip.dram.kind,
                             cores=chip.cores, global_slice_KiB=chip.slice_bytes / 1024)
    return Evaluation(chip.name, "custom", workload.name, workload.dtype, workload.unit, workload.units_per_run,
                      perf.seconds, perf.utilization, perf.bound, energy.joules, workload.flops, chip.peak_tops,
                      perf.bytes_moved, "time: models/chip/perf.py (cycle model of the chip's RTL, mappings from "
                      "models/chip/mapper.py); energy: models/silicon/energy.py",
                      tuple(workload.assumptions) + tuple(energy.assumptions) + (
                          "one GEMM (descriptor) at a time: no overlap of one GEMM's last write-back with the "
                          "next one's first load",), tuple(rows), dram_peak_GBps=chip.dram.GBps)


def evaluate_gpu(gpu: str | GpuSpec, workload: Workload) -> Evaluation:
    """``workload`` on an Nvidia GPU (a :class:`GpuSpec` or id) in the workload's dtype:
    time from the calibrated GEMM model, energy = TDP x time (an upper bound), checked
    against the GPU's memory capacity."""
    workload = _check_workload(workload)
    spec = get_gpu(gpu)
    workload.check_fits(spec.memory_GB, spec.id)
    est = estimate_workload(spec, list(workload.gemms))
    dtype_used, peak, notes = resolve_peak(spec, workload.gemms[0].dtype)
    rows = tuple({"name": e.gemm.name, "M": e.gemm.M, "N": e.gemm.N, "K": e.gemm.K, "count": e.gemm.count,
                  "seconds": e.seconds, "utilization": e.tflops / e.peak_tflops, "bound": e.bound} for e in est.gemms)
    gemm_notes = sorted({n for e in est.gemms for n in e.notes})
    return Evaluation(spec.id, "gpu", workload.name, workload.dtype, workload.unit, workload.units_per_run,
                      est.seconds, est.tflops / peak, est.bound, spec.tdp_W * est.seconds, workload.flops, peak,
                      sum(e.bytes_moved for e in est.gemms),
                      "time: models/gpu/model.py (GEMM model calibrated on public measurements); energy = TDP x time",
                      tuple(workload.assumptions) + tuple(notes) + tuple(gemm_notes), rows,
                      dram_peak_GBps=spec.mem_bw_GBps)
