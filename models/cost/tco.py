"""Total cost of ownership: what one device costs over its life, all in, and the whole
deployment a budget buys.

One device of an option (a GPU in its HGX or PCIe server, or the custom chip on its board
in its server) costs, over the hardware's lifetime, in USD:

- ``accelerator_usd``: the GPU's street price, or the chip's manufacturing cost (no NRE:
  :func:`deploy` spreads that over the units a budget actually buys);
- ``system_usd``: its share of the server (host CPUs, memory, chassis, baseboard, power
  supplies), its board and power delivery (custom chip) and scale-up links;
- ``network_usd``: its scale-out NIC and its share of switch ports, optics and cables;
- ``facility_usd``: data-centre capacity for its peak IT power (owned build-out for the
  share of the building's life it uses, or colocation rent), plus racks;
- ``energy_usd``: electricity at its lifetime-average power (busy, idle and overheads)
  times PUE;
- ``maintenance_usd`` and ``operations_usd``: support as a yearly fraction of hardware
  capex, and staff per MW of IT power.

Every figure comes from ``data/tco.yaml`` (electricity price, PUE and lifetime from the
``operations`` of ``data/cost.yaml``) with its source and range; :func:`tco_figures` lists
them by stable dotted names, and every function takes draws of them as numpy arrays
(``figures={"facility.usd_per_W": draws, ...}``), so that a Monte Carlo of many draws is
one vectorised call. Every numeric argument may be a float or a numpy array; arrays
broadcast and results are arrays of the broadcast shape (floats when every input is one).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...checks import check_choice, check_int, check_real
from ...errors import UserError
from ..frames import data_frame
from ..gpu.specs import load_gpus
from ..specs import DATA_DIR, SpecError, load_yaml, need
from .pricing import cost_inputs

TCO_FILE = DATA_DIR / "tco.yaml"
#: Distribution shapes an uncertain figure may name (triangular when none is named).
SHAPES = ("fixed", "uniform", "triangular", "pert", "lognormal")
#: How the facility is paid for: built and owned (capex per W), or rented (colocation).
FACILITY_MODES = ("owned", "colo")
#: The per-device cost components, in the order they are stacked and summed.
COMPONENTS = ("accelerator_usd", "system_usd", "network_usd", "facility_usd", "energy_usd", "maintenance_usd",
              "operations_usd")
HOURS_PER_YEAR = 365 * 24          # as usd_per_million_tokens in pricing.py
#: The largest budget deploy() takes, USD (beyond it unit counts would overflow int64).
MAX_BUDGET_USD = 1e15
# cost.yaml `operations` figures the TCO reads (one copy), under the names it gives them
FROM_COST_YAML = {"electricity.usd_per_kWh": "usd_per_kWh", "facility.pue": "pue", "lifetime.years": "lifetime_years"}
SYSTEM_KEYS = ("devices_per_server", "server_usd", "power_overhead_W", "scale_up_usd")
CUSTOM_KEYS = ("board_usd", "power_delivery_usd_per_W")
FABRIC_KEYS = ("usd_per_device", "power_W")
SHARED_KEYS = ("facility.usd_per_W", "facility.lifetime_years", "facility.rack_usd_per_kW",
               "facility.colo_usd_per_kW_month", "power.overhead_avg_fraction", "maintenance.fraction_per_year",
               "operations.staff_per_MW", "operations.usd_per_staff_year")
# the lowest value a figure may take (draws included); fractions also have a ceiling of 1
_FLOOR = {"facility.pue": 1.0}
_POSITIVE = ("devices_per_server", "lifetime_years", "lifetime.years")
_FRACTIONS = ("power.overhead_avg_fraction",)

Num = float | npt.NDArray[np.float64]


@dataclass(frozen=True)
class TcoFigure:
    """One uncertain input: its most likely value, its low/high bounds (units in its name),
    the distribution shape, its source and confidence."""

    value: float
    low: float
    high: float
    source: str
    shape: str = "triangular"
    confidence: str = "low"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "source": self.source, "shape": self.shape,
                "confidence": self.confidence}


@dataclass(frozen=True)
class SystemSpec:
    """A server type: which devices it holds and its figures (``SYSTEM_KEYS``, plus
    ``CUSTOM_KEYS`` for the custom chip's systems), keyed by their short names."""

    id: str
    kind: str                       # "gpu" or "custom"
    description: str
    gpus: tuple[str, ...]
    default_fabric: str
    figures: dict[str, TcoFigure]


@dataclass(frozen=True)
class FabricSpec:
    """A scale-out network: cost and power per device (``FABRIC_KEYS``)."""

    id: str
    description: str
    figures: dict[str, TcoFigure]


@dataclass(frozen=True)
class TcoInputs:
    """Everything in ``data/tco.yaml``, checked, with cost.yaml's shared operations figures."""

    systems: dict[str, SystemSpec]
    fabrics: dict[str, FabricSpec]
    shared: dict[str, TcoFigure]

    def all_figures(self) -> dict[str, TcoFigure]:
        """Every figure by its dotted name (``system.<id>.<key>``, ``network.<fabric>.<key>``,
        and the shared names such as ``facility.usd_per_W``)."""
        out = {f"system.{s.id}.{k}": f for s in self.systems.values() for k, f in s.figures.items()}
        out.update({f"network.{n.id}.{k}": f for n in self.fabrics.values() for k, f in n.figures.items()})
        out.update(self.shared)
        return out


def _figure(path: Path, where: str, d: Any) -> TcoFigure:
    num = (int, float)
    shape = need(path, where, d, "shape", str, optional=True) or "triangular"
    if shape not in SHAPES:
        raise SpecError(path, f"{where}.shape", f"must be one of {', '.join(SHAPES)}, not {shape!r}")
    f = TcoFigure(float(need(path, where, d, "value", num)), float(need(path, where, d, "low", num)),
                  float(need(path, where, d, "high", num)), need(path, where, d, "source", str), shape,
                  need(path, where, d, "confidence", str))
    if not f.source.strip():
        raise SpecError(path, f"{where}.source", "must name a public source or say 'assumption: ...'")
    if not f.low <= f.value <= f.high:
        raise SpecError(path, where, f"needs low <= value <= high, not {f.low}, {f.value}, {f.high}")
    if shape == "fixed" and not f.low == f.value == f.high:
        raise SpecError(path, where, "a fixed figure needs low == value == high")
    return f


def _figures(path: Path, where: str, d: Any, keys: tuple[str, ...]) -> dict[str, TcoFigure]:
    return {k: _figure(path, f"{where}.{k}", need(path, where, d, k, dict)) for k in keys}


def _system(path: Path, sid: str, d: Any, fabrics: Mapping[str, Any], gpu_ids: set[str]) -> SystemSpec:
    where = f"systems.{sid}"
    kind = need(path, where, d, "kind", str)
    if kind not in ("gpu", "custom"):
        raise SpecError(path, f"{where}.kind", f"must be gpu or custom, not {kind!r}")
    gpus = tuple(need(path, where, d, "gpus", list))
    unknown = [g for g in gpus if g not in gpu_ids]
    if unknown:
        raise SpecError(path, f"{where}.gpus", f"unknown GPU ids {unknown} (gpus.yaml)")
    fabric = need(path, where, d, "default_fabric", str)
    if fabric not in fabrics:
        raise SpecError(path, f"{where}.default_fabric", f"no fabric {fabric!r}; known: {', '.join(fabrics)}")
    keys = SYSTEM_KEYS + (CUSTOM_KEYS if kind == "custom" else ())
    return SystemSpec(sid, kind, need(path, where, d, "description", str), gpus, fabric, _figures(path, where, d, keys))


@cache
def tco_inputs(path: str = str(TCO_FILE)) -> TcoInputs:
    """The TCO figures of ``path`` (default ``data/tco.yaml``), checked once and cached."""
    p = Path(path)
    d = load_yaml(p)
    fabrics_d = need(p, "", d, "fabrics", dict)
    fabrics = {fid: FabricSpec(fid, need(p, f"fabrics.{fid}", fd, "description", str),
                               _figures(p, f"fabrics.{fid}", fd, FABRIC_KEYS)) for fid, fd in fabrics_d.items()}
    gpu_ids = set(load_gpus())
    systems = {sid: _system(p, sid, sd, fabrics, gpu_ids) for sid, sd in need(p, "", d, "systems", dict).items()}
    seen: dict[str, str] = {}
    for s in systems.values():
        for g in s.gpus:
            if g in seen:
                raise SpecError(p, f"systems.{s.id}.gpus", f"{g} is already in {seen[g]}")
            seen[g] = s.id
    shared = _figures(p, "shared", need(p, "", d, "shared", dict), SHARED_KEYS)
    ops = cost_inputs().operations
    for name, key in FROM_COST_YAML.items():
        f = ops[key]
        shared[name] = TcoFigure(f.value, f.low, f.high, f"{f.source} (cost.yaml operations.{key})", "triangular",
                                 f.confidence)
    return TcoInputs(systems, fabrics, shared)


def system_for_gpu(gpu_id: str) -> str:
    """The system type (``hgx-h100-8gpu``, ``pcie-8gpu`` ...) a GPU id of gpus.yaml comes in."""
    for s in tco_inputs().systems.values():
        if gpu_id in s.gpus:
            return s.id
    known = sorted(g for s in tco_inputs().systems.values() for g in s.gpus)
    raise UserError(f"gpu: no system type for {gpu_id!r} in tco.yaml; known: {', '.join(known)}", parameter="gpu")


def custom_system(devices_per_replica: int) -> str:
    """The server the custom chip goes in: OAM modules with chip-to-chip links when a
    replica spans chips, else a PCIe card (``data/tco.yaml``)."""
    return "custom-oam-8" if check_int("devices_per_replica", devices_per_replica, hi=1 << 20) > 1 else "custom-pcie-8"


def _system_spec(system: str) -> SystemSpec:
    systems = tco_inputs().systems
    if system not in systems:
        raise UserError(f"system: unknown system {system!r}; choose one of {', '.join(systems)}", parameter="system")
    return systems[system]


def _fabric_id(spec: SystemSpec, fabric: str | None) -> str:
    if fabric is None:
        return spec.default_fabric
    return check_choice("fabric", fabric, tco_inputs().fabrics)


def figure_names(system: str, *, fabric: str | None = None, facility: str = "owned") -> tuple[str, ...]:
    """The dotted names of the figures :func:`per_device_tco` uses for this option."""
    spec = _system_spec(system)
    fab = _fabric_id(spec, fabric)
    check_choice("facility", facility, FACILITY_MODES)
    names = [f"system.{system}.{k}" for k in spec.figures]
    names += [f"network.{fab}.{k}" for k in FABRIC_KEYS]
    skip = "facility.colo_usd_per_kW_month" if facility == "owned" else "facility.lifetime_years"
    names += [n for n in SHARED_KEYS if n != skip]
    names += list(FROM_COST_YAML)
    if facility == "colo":
        names.remove("facility.usd_per_W")
    return tuple(names)


def tco_figures(system: str | None = None, *, fabric: str | None = None, facility: str = "owned") -> dict[str, dict]:
    """Every uncertain input as a row ``{value, low, high, source, shape, confidence}`` by its
    stable dotted name (``"facility.usd_per_W"``, ``"electricity.usd_per_kWh"``,
    ``"system.hgx-h100-8gpu.server_usd"``, ``"network.infiniband-400g.usd_per_device"`` ...):
    those one option uses (``system``, ``fabric``, ``facility``), or with ``system`` None all
    of them. Names shared between options (facility, electricity, PUE, lifetime,
    maintenance, operations) are one input, to be drawn once for every option."""
    every = tco_inputs().all_figures()
    names = list(every) if system is None else figure_names(system, fabric=fabric, facility=facility)
    return {n: every[n].to_dict() for n in names}


def _num(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False) -> Num:
    """A finite float, or a float array every element of which is finite and in bounds."""
    if not isinstance(value, np.ndarray | list | tuple):
        return check_real(name, value, lo=lo, hi=hi, lo_open=lo_open)
    try:
        a = np.asarray(value)
        if a.dtype == bool or a.dtype.kind not in "iuf":
            raise TypeError
        a = a.astype(float)
    except (TypeError, ValueError):
        raise UserError(f"{name}: must be a number or an array of numbers, not {value!r:.80}", parameter=name) from None
    if a.ndim == 0:
        return check_real(name, float(a), lo=lo, hi=hi, lo_open=lo_open)
    bad = ~np.isfinite(a)
    if lo is not None:
        bad |= (a <= lo) if lo_open else (a < lo)
    if hi is not None:
        bad |= a > hi
    if bad.any():
        bounds = ("> " if lo_open else ">= ") + f"{lo:g}" if lo is not None else ""
        bounds += (" and " if bounds and hi is not None else "") + (f"<= {hi:g}" if hi is not None else "")
        first = a[bad].flat[0]
        raise UserError(f"{name}: every element must be finite{' and ' + bounds if bounds else ''}; "
                        f"{int(bad.sum())} are not (first: {first:g})", parameter=name)
    return a


def _count(x: Any) -> int | npt.NDArray[np.int64]:
    a = np.asarray(x).astype(np.int64)
    return int(a) if a.ndim == 0 else a


def _filled(x: Any, shape: tuple[int, ...]) -> Num:
    """``x`` at the broadcast shape of every input (a float when that shape is ())."""
    return _out(np.broadcast_to(np.asarray(x, dtype=float), shape))


def _out(x: Any) -> Num:
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a


def _figure_bounds(name: str) -> dict[str, Any]:
    short = name.rsplit(".", 1)[-1]
    if name in _FRACTIONS:
        return {"lo": 0.0, "hi": 1.0}
    if name in _FLOOR:
        return {"lo": _FLOOR[name]}
    if name in _POSITIVE or short in _POSITIVE:
        return {"lo": 0.0, "lo_open": True}
    return {"lo": 0.0}


def _resolve(names: tuple[str, ...], figures: Mapping[str, Any] | None) -> dict[str, Num]:
    """Each named figure's value, or the caller's draw of it. Names of other options'
    figures are allowed (so one dict of draws serves every option) and ignored; names that
    are not in the TCO data are errors."""
    every = tco_inputs().all_figures()
    given = dict(figures or {})
    unknown = sorted(set(given) - set(every))
    if unknown:
        raise UserError(f"figures: unknown figure names {unknown}; tco_figures() lists them", parameter="figures")
    return {n: _num(f"figures[{n!r}]", given[n], **_figure_bounds(n)) if n in given else every[n].value
            for n in names}


def _broadcast(named: Mapping[str, Num]) -> None:
    shape: tuple[int, ...] = ()
    for name, v in named.items():
        try:
            shape = np.broadcast_shapes(shape, np.shape(v))
        except ValueError:
            raise UserError(f"{name}: shape {np.shape(v)} does not broadcast with the other arrays' {shape}",
                            parameter=name) from None


def _summary(x: Any, full: bool) -> Any:
    """A float or int as it is; an array as a list (``full``) or as mean and percentiles."""
    if not isinstance(x, np.ndarray):
        return x
    if full:
        return x.tolist()
    p5, p50, p95 = np.percentile(x, [5, 50, 95])
    return {"n": int(x.size), "mean": float(x.mean()), "p5": float(p5), "p50": float(p50), "p95": float(p95)}


def _frame_row(name: str, x: Num) -> dict[str, Any]:
    if not isinstance(x, np.ndarray):
        return {"item": name, "usd": x}
    s = _summary(x, False)
    return {"item": name, "usd": s["mean"], "p5_usd": s["p5"], "p50_usd": s["p50"], "p95_usd": s["p95"]}


@dataclass(frozen=True)
class TcoBreakdown:
    """What one device of an option costs over its lifetime, by component (USD per device,
    floats or arrays of draws). ``capex_usd`` = accelerator + system + network + racks +
    owned facility share; ``opex_usd`` = energy + maintenance + operations + colocation
    rent; ``total_usd`` = both. ``it_power_W`` is the peak IT power provisioned for it
    (device, its share of the server's and the network's power); ``facility_power_W`` that
    times PUE (what it takes from the grid at peak); ``mean_power_W`` its lifetime-average
    IT power."""

    system: str
    fabric: str
    facility: str
    accelerator_usd: Num
    system_usd: Num
    network_usd: Num
    facility_usd: Num
    energy_usd: Num
    maintenance_usd: Num
    operations_usd: Num
    capex_usd: Num
    opex_usd: Num
    total_usd: Num
    it_power_W: Num
    facility_power_W: Num
    mean_power_W: Num
    lifetime_years: Num
    utilization: Num
    figures: tuple[str, ...]

    def components(self) -> dict[str, Num]:
        """The cost components (``COMPONENTS``), which sum to ``total_usd``."""
        return {k: getattr(self, k) for k in COMPONENTS}

    @property
    def draws(self) -> int:
        """How many values each field holds (1 for floats)."""
        return int(np.size(self.total_usd))

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """Floats as floats; arrays as mean and 5/50/95th percentiles, or lists when ``full``."""
        out: dict[str, Any] = {"system": self.system, "fabric": self.fabric, "facility": self.facility}
        for k in (*COMPONENTS, "capex_usd", "opex_usd", "total_usd", "it_power_W", "facility_power_W",
                  "mean_power_W", "lifetime_years", "utilization"):
            out[k] = _summary(getattr(self, k), full)
        out["figures"] = list(self.figures)
        return out

    def to_frame(self) -> Any:
        """One row per component and the totals (``usd``; for arrays the mean and the
        5/50/95th percentiles), with each component's share of the total."""
        rows = [_frame_row(k, v) for k, v in {**self.components(), "capex_usd": self.capex_usd,
                                               "opex_usd": self.opex_usd, "total_usd": self.total_usd}.items()]
        total = float(np.mean(self.total_usd))
        for r in rows:
            r["share"] = r["usd"] / total if total else float("nan")
        return data_frame(rows)


def per_device_tco(*, system: str, accelerator_usd: Any, peak_power_W: Any, avg_power_W: Any, idle_power_W: Any,
                   utilization: Any, fabric: str | None = None, facility: str = "owned",
                   figures: Mapping[str, Any] | None = None) -> TcoBreakdown:
    """Lifetime cost of one device of an option, by component.

    Parameters
    ----------
    system : str
        Its server type in ``data/tco.yaml`` (``system_for_gpu(gpu_id)`` for a GPU;
        ``"custom-oam-8"`` or ``"custom-pcie-8"`` for the custom chip).
    accelerator_usd : float or array
        The device itself, USD: a GPU's street price, or the chip's manufacturing cost
        without NRE.
    peak_power_W : float or array
        The device's peak power (TDP), W: sizes the facility and the board's power delivery.
    avg_power_W, idle_power_W : float or array
        Its average power while serving and while idle, W (each <= ``peak_power_W``).
    utilization : float or array
        The fraction of its life spent serving, 0..1 (idle otherwise).
    fabric : str, optional
        The scale-out network (``data/tco.yaml`` fabrics); default: the system's.
    facility : {"owned", "colo"}
        Build and own the data centre (capex per W for the share of its life used) or rent
        colocation ($/kW-month over the lifetime).
    figures : mapping, optional
        Values or arrays of draws for any figure by its dotted name (:func:`tco_figures`);
        figures not given take their ``value``. Other options' names are ignored.
    """
    spec = _system_spec(system)
    fab = _fabric_id(spec, fabric)
    names = figure_names(system, fabric=fab, facility=facility)
    args = {"accelerator_usd": _num("accelerator_usd", accelerator_usd, lo=0.0),
            "peak_power_W": _num("peak_power_W", peak_power_W, lo=0.0, lo_open=True),
            "avg_power_W": _num("avg_power_W", avg_power_W, lo=0.0),
            "idle_power_W": _num("idle_power_W", idle_power_W, lo=0.0),
            "utilization": _num("utilization", utilization, lo=0.0, hi=1.0)}
    f = _resolve(names, figures)
    _broadcast({**args, **{f"figures[{n!r}]": v for n, v in f.items()}})
    peak = args["peak_power_W"]
    for name in ("avg_power_W", "idle_power_W"):
        if np.any(np.asarray(args[name]) > np.asarray(peak)):
            raise UserError(f"{name}: must not exceed peak_power_W", parameter=name)
    sys_f = {k: f[f"system.{system}.{k}"] for k in spec.figures}
    net = {k: f[f"network.{fab}.{k}"] for k in FABRIC_KEYS}
    per_server = 1.0 / sys_f["devices_per_server"]
    overhead_W = sys_f["power_overhead_W"] * per_server + net["power_W"]
    it_W = peak + overhead_W
    life = f["lifetime.years"]
    system_usd = sys_f["server_usd"] * per_server + sys_f["scale_up_usd"]
    if spec.kind == "custom":
        system_usd = system_usd + sys_f["board_usd"] + sys_f["power_delivery_usd_per_W"] * peak
    racks = f["facility.rack_usd_per_kW"] * it_W / 1e3
    building: Any = 0.0
    rent: Any = 0.0
    if facility == "owned":   # the share of the building's life the devices use
        building = f["facility.usd_per_W"] * it_W * np.minimum(1.0, life / f["facility.lifetime_years"])
    else:
        rent = f["facility.colo_usd_per_kW_month"] * it_W / 1e3 * 12 * life
    u = args["utilization"]
    mean_W = u * args["avg_power_W"] + (1 - u) * args["idle_power_W"] + overhead_W * f["power.overhead_avg_fraction"]
    energy = mean_W / 1e3 * f["facility.pue"] * HOURS_PER_YEAR * life * f["electricity.usd_per_kWh"]
    hardware = args["accelerator_usd"] + system_usd + net["usd_per_device"]
    maintenance = f["maintenance.fraction_per_year"] * hardware * life
    operations = f["operations.staff_per_MW"] * it_W / 1e6 * f["operations.usd_per_staff_year"] * life
    capex = hardware + racks + building
    opex = energy + maintenance + operations + rent
    shape = np.broadcast_shapes(*(np.shape(v) for v in (*args.values(), *f.values())))
    return TcoBreakdown(
        system, fab, facility, accelerator_usd=_filled(args["accelerator_usd"], shape),
        system_usd=_filled(system_usd, shape), network_usd=_filled(net["usd_per_device"], shape),
        facility_usd=_filled(racks + building + rent, shape), energy_usd=_filled(energy, shape),
        maintenance_usd=_filled(maintenance, shape), operations_usd=_filled(operations, shape),
        capex_usd=_filled(capex, shape), opex_usd=_filled(opex, shape), total_usd=_filled(capex + opex, shape),
        it_power_W=_filled(it_W, shape), facility_power_W=_filled(it_W * f["facility.pue"], shape),
        mean_power_W=_filled(mean_W, shape), lifetime_years=_filled(life, shape), utilization=_filled(u, shape),
        figures=names)


def gpu_per_device_tco(gpu_id: str, *, avg_power_W: Any, idle_power_W: Any, utilization: Any,
                       accelerator_usd: Any = None, fabric: str | None = None, facility: str = "owned",
                       figures: Mapping[str, Any] | None = None) -> TcoBreakdown:
    """:func:`per_device_tco` for a GPU of gpus.yaml: in the system it comes in, at its TDP
    as peak power, and at the midpoint of its public street price unless
    ``accelerator_usd`` is given (a GPU without a public price needs one)."""
    gpus = load_gpus()
    if gpu_id not in gpus:
        raise UserError(f"gpu: unknown GPU id {gpu_id!r}; choose one of {', '.join(gpus)}", parameter="gpu")
    gpu = gpus[gpu_id]
    if accelerator_usd is None:
        if gpu.price is None:
            raise UserError(f"accelerator_usd: {gpu_id} has no public price in gpus.yaml; pass one",
                            parameter="accelerator_usd")
        accelerator_usd = gpu.price.mid_usd
    return per_device_tco(system=system_for_gpu(gpu_id), accelerator_usd=accelerator_usd, peak_power_W=gpu.tdp_W,
                          avg_power_W=avg_power_W, idle_power_W=idle_power_W, utilization=utilization,
                          fabric=fabric, facility=facility, figures=figures)


def usd_per_million_tokens_tco(per_device: TcoBreakdown, *, tokens_per_s: Any, utilization: Any = None,
                               nre_per_unit_usd: Any = 0.0) -> Num:
    """Lifetime cost over lifetime tokens, USD per million tokens: (``total_usd`` + NRE per
    unit) / (``tokens_per_s`` per device while serving x ``utilization`` x lifetime).
    ``utilization`` defaults to the one the breakdown was computed at."""
    rate = _num("tokens_per_s", tokens_per_s, lo=0.0, lo_open=True)
    util = per_device.utilization if utilization is None else _num("utilization", utilization, lo=0.0, hi=1.0)
    nre = _num("nre_per_unit_usd", nre_per_unit_usd, lo=0.0)
    _broadcast({"tokens_per_s": rate, "utilization": util, "nre_per_unit_usd": nre,
                "per_device": per_device.total_usd})
    tokens = rate * util * per_device.lifetime_years * HOURS_PER_YEAR * 3600
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(np.asarray(tokens) > 0, (per_device.total_usd + nre) / np.asarray(tokens) * 1e6, np.inf))


@dataclass(frozen=True)
class Deployment:
    """The whole deployment a budget buys for one option (floats, or arrays of draws).

    ``lines`` are the deployment's costs over the lifetime, USD: each component of
    ``per_device`` times ``units``, ``nre_usd`` (the fixed cost) and ``unspent_usd``; they
    sum to ``budget_usd`` exactly (to rounding). ``units`` are whole replicas of
    ``devices_per_replica`` devices; ``limited_by`` says what bound them: ``"budget"`` or
    ``"power"`` (the cap on facility power, i.e. IT power x PUE). ``reason`` explains a
    deployment of zero units."""

    budget_usd: Num
    fixed_usd: Num
    devices_per_replica: int
    power_cap_MW: Num | None
    units: int | npt.NDArray[np.int64]
    replicas: int | npt.NDArray[np.int64]
    nre_per_unit_usd: Num
    total_per_unit_usd: Num
    lines: dict[str, Num]
    it_power_MW: Num
    facility_power_MW: Num
    limited_by: str | npt.NDArray[np.str_]
    reason: str
    per_device: TcoBreakdown

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """Floats as floats; arrays as mean and 5/50/95th percentiles, or lists when ``full``."""
        limited = self.limited_by if isinstance(self.limited_by, str) else (
            self.limited_by.tolist() if full else {str(k): int(v) for k, v in zip(*np.unique(self.limited_by,
                                                                                             return_counts=True))})
        return {"budget_usd": _summary(self.budget_usd, full), "fixed_usd": _summary(self.fixed_usd, full),
                "devices_per_replica": self.devices_per_replica,
                "power_cap_MW": None if self.power_cap_MW is None else _summary(self.power_cap_MW, full),
                "units": _summary(self.units, full), "replicas": _summary(self.replicas, full),
                "nre_per_unit_usd": _summary(self.nre_per_unit_usd, full),
                "total_per_unit_usd": _summary(self.total_per_unit_usd, full),
                "lines": {k: _summary(v, full) for k, v in self.lines.items()},
                "it_power_MW": _summary(self.it_power_MW, full),
                "facility_power_MW": _summary(self.facility_power_MW, full),
                "limited_by": limited, "reason": self.reason, "per_device": self.per_device.to_dict(full=full)}

    def to_frame(self) -> Any:
        """One row per line of the budget (components, NRE, unspent) and the budget, with
        each line's share of the budget."""
        rows = [_frame_row(k, v) for k, v in {**self.lines, "budget_usd": self.budget_usd}.items()]
        budget = float(np.mean(self.budget_usd))
        for r in rows:
            r["share"] = r["usd"] / budget
        return data_frame(rows)


def deploy(*, budget_usd: Any, per_device: TcoBreakdown, fixed_usd: Any = 0.0, devices_per_replica: int = 1,
           power_cap_MW: Any = None) -> Deployment:
    """The deployment ``budget_usd`` buys: whole replicas of ``devices_per_replica``
    devices, each device at its lifetime cost ``per_device.total_usd`` (so the budget pays
    for hardware, facility and lifetime opex alike), after the fixed cost ``fixed_usd``
    (the custom chip's NRE), and at most what ``power_cap_MW`` of facility power (IT power
    x PUE, at peak) can run. NRE is spread over the units actually bought. Zero affordable
    units is an answer (with ``reason``), not an error."""
    budget = _num("budget_usd", budget_usd, lo=0.0, lo_open=True, hi=MAX_BUDGET_USD)
    fixed = _num("fixed_usd", fixed_usd, lo=0.0)
    per_replica = check_int("devices_per_replica", devices_per_replica, hi=1 << 20)
    cap = None if power_cap_MW is None else _num("power_cap_MW", power_cap_MW, lo=0.0, lo_open=True)
    named = {"budget_usd": budget, "fixed_usd": fixed, "per_device": per_device.total_usd}
    _broadcast({**named, **({} if cap is None else {"power_cap_MW": cap})})
    if not np.all(np.asarray(per_device.total_usd) > 0):
        raise UserError("per_device: total_usd must be > 0 (a device that costs nothing has no deployment size)",
                        parameter="per_device")
    if np.any(np.asarray(fixed) > np.asarray(budget)):
        raise UserError("fixed_usd: the fixed cost exceeds budget_usd", parameter="fixed_usd")
    replica_usd = np.asarray(per_device.total_usd) * per_replica
    left = np.asarray(budget) - np.asarray(fixed)
    by_budget = np.floor(left / replica_usd)
    by_budget = np.where((by_budget + 1) * replica_usd <= left, by_budget + 1, by_budget)   # floor's rounding
    if cap is None:
        replicas, limited = by_budget, np.full(np.shape(by_budget), "budget")
    else:
        by_power = np.floor(np.asarray(cap) * 1e6 / (np.asarray(per_device.facility_power_W) * per_replica))
        replicas = np.minimum(by_budget, by_power)
        limited = np.where(by_power < by_budget, "power", "budget")
    units = replicas * per_replica
    lines = {k: _out(np.asarray(v) * units) for k, v in per_device.components().items()}
    lines["nre_usd"] = _out(np.broadcast_to(fixed, np.shape(units)))
    spent = sum((np.asarray(v) for v in lines.values()), start=np.zeros(np.shape(units)))
    lines["unspent_usd"] = _out(np.asarray(budget) - spent)
    with np.errstate(divide="ignore", invalid="ignore"):
        nre_unit = np.where(units > 0, np.asarray(fixed) / units, np.nan)
    return Deployment(_out(np.broadcast_to(budget, np.shape(units))), _out(np.broadcast_to(fixed, np.shape(units))),
                      per_replica, cap, _count(units), _count(replicas), _out(nre_unit),
                      _out(np.asarray(per_device.total_usd) + nre_unit), lines,
                      _out(np.asarray(per_device.it_power_W) * units / 1e6),
                      _out(np.asarray(per_device.facility_power_W) * units / 1e6),
                      str(limited) if np.ndim(limited) == 0 else limited,
                      _zero_reason(units, limited, per_replica), per_device)


def _zero_reason(units: Any, limited: Any, per_replica: int) -> str:
    zero = np.asarray(units) == 0
    if not zero.any():
        return ""
    by_power = bool((zero & (np.asarray(limited) == "power")).any())
    count = "" if zero.ndim == 0 else f" in {int(zero.sum())} of {zero.size} draws"
    what = "the power cap runs" if by_power else "the budget left after fixed costs buys"
    return f"no units{count}: {what} no whole replica of {per_replica} device(s)"
