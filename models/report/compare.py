"""Build versus buy: a custom chip of systolab cores against Nvidia GPUs on the same workloads.

One row per device x workload: time, throughput (tokens/s or samples/s), utilisation,
bound, energy, TOPS/mm², TOPS/W, cost per unit of work and export class, with the model
that produced each number and that model's measured error (:func:`model_errors`). Iso
views (per mm², per W, per $) divide the same throughput by die area, power and price.

The assumptions that qualify every row are :data:`ASSUMPTIONS` (also written into the
report).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from ...dtypes import get_dtype
from ...errors import UserError
from ..chip.config import ChipConfig, get_chip
from ..cost.pricing import chip_unit_cost, gpu_price, usd_per_million_tokens
from ..frames import data_frame
from ..gpu.fit_file import fit_file
from ..gpu.model import calibration_report, resolve_peak
from ..gpu.specs import get_gpu
from ..legal.build import Buildability, buildability
from ..legal.export_control import classify_gpu
from ..legal.purchase import Purchasability, Scenario, purchasability
from ..records import recorded
from ..serving.fleet import Fleet, fleet
from ..silicon.area import chip_area, load_fit
from ..silicon.energy import chip_power
from ..silicon.nodes import reticle_limit_mm2
from ..silicon.timing import PATH_NAMES, check_timing
from ..specs import load_yaml
from ..workloads.catalog import NO_SEQ_LEN, Workload, get_workload
from .chip import chip_summary
from .evaluate import Evaluation, evaluate_chip, evaluate_gpu
from .sizing import match_gpu

DEFAULT_GPUS = ("h100-sxm", "h200-sxm", "h20", "a100-sxm4-80gb", "b200")
DEFAULT_WORKLOADS = ("llama3-8b-prefill", "llama3-8b-decode", "dlrm")
#: The iso views: the chip resized to each GPU's die area, TDP or price.
ISO_VIEWS = ("area", "power", "price")
#: The serving scenario of the report's serving section (and of ``systolab fleet``'s examples).
DEFAULT_SERVING = {"model": "llama3-70b", "isl": 2048, "osl": 256, "concurrency": 64}
ASSUMPTIONS = [
    "every device runs the workload in the chip's dtype (int8 for the int8 chips; the GPU model uses each "
    "GPU's tensor rate in that dtype, or states its fallback)",
    "both sides read a workload alike: layers run one after another, and within a layer the independent products "
    "of a GEMM (heads, sequences, experts) run as one batched call (GPU: one launch, tiles sharing waves; chip: one "
    "descriptor spread over the cores); before 2026-11-29 the GPU model put all layers' tiles in one wave schedule "
    "with one launch, which made batch-1 decode 1.4-1.75x too fast (H100, H200, H20); no batching across requests; non-GEMM work "
    "(softmax, norms, embeddings) is left out on every device alike",
    "GPU energy = board TDP x time (GPUs run near TDP under GEMM load; an upper bound for memory-bound phases); "
    "custom-chip energy from the activity-based energy model",
    "cost per unit of work = amortised capex + energy at the cost model's PUE, electricity price, lifetime and "
    "utilisation (ranges from data/cost.yaml)",
    "the custom chip runs each GEMM as blocks through its global SRAM, mapped by the mapper's fast search "
    "(models/chip/mapper.py; within 2 % of the exhaustive optimum, benchmarks/README.md) and timed by the chip's cycle "
    "model, which equals the chip RTL's counters; DRAM reads "
    "and writes share its bandwidth; one GEMM runs at a time (no overlap of one GEMM's write-back with the next's "
    "loads)",
    "every workload's resident data (weights, KV cache, activations) must fit each device's memory",
]


@dataclass(frozen=True)
class Device:
    """A device of the comparison as its rows cite it: peak TOPS in the comparison's dtype,
    die mm², TDP W, unit price USD (and range), DRAM GB/s, export class."""

    id: str
    kind: str                   # "custom" or "gpu"
    name: str
    peak_tops: float
    die_mm2: float | None
    tdp_W: float
    price_usd: float | None
    price_range_usd: tuple[float, float] | None
    dram_GBps: float
    eccn: str
    tpp: float
    performance_density: float | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: The scenario ``systolab compare`` (and so ``make demo``) answers by default: a buyer in
#: China on this decision date (``--buyer any`` for the unconstrained view).
DEFAULT_BUYER = "china"
DEFAULT_DATE = "2026-12-01"
#: Chips the default falls back to, in order, when the chips file's default could not be
#: built for the buyer: the first that could.
LEGAL_DEFAULT_CHIPS = ("sl-cn-n7-lp5x",)


def default_chip_for(scenario: Scenario | None) -> ChipConfig:
    """The default chip, or where the buyer could not have it built on the date, the first of
    :data:`LEGAL_DEFAULT_CHIPS` they could (the default chip when none could)."""
    chip = get_chip(None)
    if scenario is None or buildability(chip, scenario, options=False).can_build:
        return chip
    for name in LEGAL_DEFAULT_CHIPS:
        candidate = get_chip(name)
        if buildability(candidate, scenario, options=False).can_build:
            return candidate
    return chip


def at_attainable_clock(chip: ChipConfig) -> tuple[ChipConfig, str | None]:
    """A floating-point chip at the lower of its clock and its estimated fmax
    (:func:`~systolab.models.silicon.timing.check_timing`, which warns when the clock is above
    it), with the note that says so; an integer chip, and one that meets its clock, unchanged
    (note None)."""
    if get_dtype(chip.core.dtype).kind != "float":
        return chip, None
    t = check_timing(chip)
    if t.meets(chip.clock_mhz):
        return chip, None
    clock = float(int(t.fmax_mhz))              # whole MHz, rounded down: at or below fmax
    note = (f"the {chip.core.dtype} chip runs at {clock:g} MHz, its attainable clock, not its stated "
            f"{chip.clock_mhz:g} MHz: its critical path ({t.critical_path.location}: "
            f"{PATH_NAMES.get(t.critical_path.location, t.critical_path.location)}, "
            f"{t.critical_path.depth_gates} gates) allows fmax {t.fmax_mhz:.0f} MHz "
            f"(range {t.fmax_low_mhz:.0f}-{t.fmax_high_mhz:.0f}) at {t.node}; an estimate from synthesis depth "
            "(models/silicon/timing.py, docs/timing.md)")
    return chip.derive(name=chip.name, clock_mhz=clock), note


def custom_device(chip: ChipConfig) -> Device:
    s = chip_summary(chip)
    return Device(chip.name, "custom", f"{chip.name} ({chip.cores}x {chip.core.name}, {chip.node.upper()})",
                  s["peak_tops"], s["die_mm2"], s["tdp_W"], s["unit_cost_usd"], tuple(s["unit_cost_range_usd"]),
                  s["dram_GBps"], s["eccn"], s["tpp"], s["performance_density"],
                  (f"price = manufacturing cost + NRE over {chip.volume_units:,} units (cost model)",))


def gpu_device(gpu_id: str, dtype: str = "int8") -> Device:
    gpu = get_gpu(gpu_id)
    _, peak, notes = resolve_peak(gpu, dtype)
    ec = classify_gpu(gpu)
    price = gpu_price(gpu)
    return Device(gpu.id, "gpu", gpu.name, peak, gpu.die_area_mm2, gpu.tdp_W, price.usd if price else None,
                  (price.low_usd, price.high_usd) if price else None, gpu.mem_bw_GBps, ec.eccn, ec.tpp,
                  ec.performance_density, tuple(notes) + tuple(gpu.flags("die_area_mm2", "peak_dense_tflops")))


def compare_row(device: Device, ev: Evaluation) -> dict[str, Any]:
    """One compare row from an :class:`~systolab.models.report.evaluate.Evaluation`, with the
    per-mm², per-W and per-$ views and the cost per unit of work."""
    row: dict[str, Any] = {"device": device.id, "kind": device.kind, "device_name": device.name, **ev.to_dict(),
           "die_mm2": device.die_mm2, "tdp_W": device.tdp_W,
           "tops_per_mm2": device.peak_tops / device.die_mm2 if device.die_mm2 else None,
           "tops_per_W": device.peak_tops / device.tdp_W,
           "throughput_per_mm2": ev.throughput / device.die_mm2 if device.die_mm2 else None,
           "throughput_per_W": ev.throughput / device.tdp_W,
           "price_usd": device.price_usd, "price_range_usd": device.price_range_usd,
           "throughput_per_kusd": ev.throughput / device.price_usd * 1e3 if device.price_usd else None,
           "eccn": device.eccn, "tpp": device.tpp, "performance_density": device.performance_density,
           "usd_per_million_units": None, "usd_per_million_units_range": None}
    row["peak_tops"] = device.peak_tops
    if device.price_usd:
        c = usd_per_million_tokens(unit_capex_usd=device.price_usd, power_W=device.tdp_W, tokens_per_s=ev.throughput)
        row["usd_per_million_units"] = c.usd
        row["usd_per_million_units_range"] = [c.low_usd, c.high_usd]
    return row


def _serving_fit_text() -> str:
    d = load_yaml(fit_file())
    s = d.get("in_sample", {}).get("output_tokens_per_s_per_gpu", {})
    g = d.get("gemm_errors", {}).get("held out", {})
    shape = (f"; GEMM-shape terms (per-tile cost, DRAM share of few tiles) on {g['n']} public skinny and small-K "
             f"GEMMs left out of their fit: median |error| {g['median_abs_error_pct']:.1f} %, worst "
             f"{g['worst_abs_error_pct']:.1f} % (models/gpu/fit.py)") if g else ""
    loo = d.get("leave_one_out") or {}
    names = {"output_tokens_per_s_per_gpu": "output tokens/s", "ttft_s": "time to first token"}
    held = " and ".join(f"{v['median_abs_loo_error_pct']:.1f} % on {names.get(m, m)} ({v['n']} runs; worst "
                        f"{v['worst_abs_loo_error_pct']:.1f} %, {v['worst_loo_case']})" for m, v in loo.items())
    held = (f"leave-one-out median |error| {held}" if held else
            "leave-one-out error not recorded for this fit (python benchmarks/serving.py loo --write)")
    return (f"{d['measurements']} measurements (H100, H200, A100, L40S; Llama-2, Llama-3, Mixtral; TensorRT-LLM, "
            f"LMDeploy, vLLM), in-sample median |error| "
            f"{s.get('median_abs_error_pct', float('nan')):.1f} % on tokens/s, {held}{shape}")


def validation_text(kind: str) -> str:
    """The recorded run of ``systolab validate`` (``kind``: ``core`` or ``chip``) in words,
    from the validation record (:func:`~systolab.models.records.record_file`): the report
    cites what was measured, with its date and command."""

    r = recorded(kind)
    flag = " --chip" if kind == "chip" else ""
    if r is None:
        return f"not recorded (run `systolab validate{flag} --record`)"
    off = [k for k, v in r["max_abs_error"].items() if k != "cycles" and v]
    cases = "; ".join(f"{label}: {exact}" for label, exact in r["cases"].items())
    return (f"{r['exact_cycles']} of {r['shapes']} GEMMs cycle-exact (max |error| {r['max_abs_cycle_error']} cycles), "
            + (f"{', '.join(off)} off" if off else "every other counter equal")
            + f"{'' if r['all_passed'] else ', results NOT all correct'} on {r['configurations']} "
            f"{'chips' if kind == 'chip' else 'configurations'} ({cases}) ({r['simulator']}, {r['date']}: {r['command']})")


def model_errors() -> dict[str, str]:
    """Each model's measured error, as the report cites it (computed live where cheap)."""
    cal = calibration_report()
    fit = load_fit()
    held = [abs(h["error_pct"]) for h in fit.residuals["held_out"]]
    return {
        "custom_time": f"chip cycle model (models/chip/perf.py) vs the chip RTL's counters: {validation_text('chip')}; "
                       f"core model vs the core RTL: {validation_text('core')}. Chips of hundreds of cores are "
                       "modelled, not simulated: the RTL is the same generator, verified on 1 to 4 cores",
        "custom_area": f"array area fit vs Yosys synthesis: held-out max {max(held):.2f} % up to 16x16 "
                       f"(benchmarks/area_fit.py); 64x64 extrapolates; SRAM macros from node bit-cell areas; "
                       f"NoC/I/O/PHY shares are assumptions",
        "custom_energy": "activity x per-op energies (Horowitz 45 nm scaled to the node): not measured against silicon; "
                         "floating-point MACs are the int8 MAC scaled by the synthesised PE size, 2.4x below Horowitz's "
                         "own FP units for fp16 (data/energy.yaml: float_mac)",
        "gpu_time": f"calibrated GEMM model vs {len(cal)} public measurements: mean |error| "
                    f"{sum(abs(r['error_pct']) for r in cal) / len(cal):.1f} %, max {max(abs(r['error_pct']) for r in cal):.1f} %, "
                    f"leave-one-out mean {sum(abs(r['loo_error_pct']) for r in cal if r['loo_error_pct'] is not None) / len(cal):.1f} % "
                    "(benchmarks/gpu_calibration.py), best-shape GEMMs; the serving derate, memory efficiency and "
                    f"per-kernel cost are fitted on public serving measurements: {_serving_fit_text()}",
        "gpu_energy": "TDP x time (assumption, an upper bound)",
        "cost": "die cost from wafer cost, yield and dies/wafer; HBM, packaging and NRE are assumptions with ranges "
                "(data/cost.yaml); GPU prices are press estimates",
        "export": "ECCN 3A090 thresholds from the rule text (data/export_rules.yaml); TPP = dense TOPS x bit length",
    }


def iso_views(chip: ChipConfig, workloads: list[Workload], gpu_rows: list[dict[str, Any]],
              views: tuple[str, ...] = ("area", "power", "price")) -> list[dict[str, Any]]:
    """The chip resized (its number of cores) to each GPU's die area, TDP and/or price,
    never past the reticle limit, and its throughput on each workload relative to that
    GPU's. A budget too small for even one core, or a GPU without the figure, is reported
    instead of a number; ``binds`` says whether the GPU's figure or the reticle stopped
    the resizing."""
    out: list[dict[str, Any]] = []
    for by in views:
        for gpu in dict.fromkeys(r["device"] for r in gpu_rows):
            try:
                sized = match_gpu(chip, gpu, by=by)
            except UserError as exc:
                out.append({"view": f"iso-{by}", "gpu": gpu, "note": str(exc)})
                continue
            die = chip_area(sized).die_mm2
            binds = "reticle" if chip_area(sized.with_cores(sized.cores + 1)).die_mm2 > reticle_limit_mm2() else by
            for wl in workloads:
                mine = evaluate_chip(sized, wl).throughput
                theirs = next(r["throughput"] for r in gpu_rows if r["device"] == gpu and r["workload"] == wl.name)
                out.append({"view": f"iso-{by}", "gpu": gpu, "workload": wl.name, "cores": sized.cores,
                            "die_mm2": die, "tdp_W": chip_power(sized).tdp_W,
                            "unit_cost_usd": chip_unit_cost(sized).usd, "throughput": mine,
                            "gpu_throughput": theirs, "ratio": mine / theirs, "binds": binds})
    return out


@dataclass(frozen=True)
class ServingSection:
    """The comparison's serving section: the LLM-serving ``scenario`` (model, lengths,
    batching) and the :class:`~systolab.models.serving.fleet.Fleet` a budget buys of each device."""

    scenario: dict[str, Any]
    fleet: Fleet

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": dict(self.scenario), "rows": [r.to_dict() for r in self.fleet.rows]}


@dataclass(frozen=True)
class Comparison:
    """The chip against GPUs on workloads (what :func:`compare` returns and ``systolab
    compare`` writes as summary.json).

    Attributes
    ----------
    chip : dict
        The chip's summary (:func:`~systolab.models.report.chip.chip_summary`).
    devices : tuple of Device
        The chip first, then the GPUs.
    dtype : str
        The dtype every device runs the workloads in.
    workloads : tuple of Workload
    rows : tuple of dict
        One per workload x device (:func:`compare_row`): time s, ``throughput`` and
        ``units_per_second`` in units of ``unit`` (``token``, ``sample``, ``run``), energy,
        the per-mm², per-W and per-k$ views, cost per million units, export class.
    iso : tuple of dict
        The iso-area, iso-power and iso-price views asked for (:func:`iso_views`).
    serving : ServingSection or None
    model_errors : dict
        Each model's measured error (:func:`model_errors`).
    assumptions : tuple of str
    """

    chip: dict[str, Any]
    devices: tuple[Device, ...]
    dtype: str
    workloads: tuple[Workload, ...]
    rows: tuple[dict[str, Any], ...]
    iso: tuple[dict[str, Any], ...]
    serving: ServingSection | None
    model_errors: dict[str, str]
    assumptions: tuple[str, ...]
    scenario: Scenario | None = None
    legal: tuple[Purchasability, ...] = ()
    build: Buildability | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"chip": self.chip, "devices": [d.to_dict() for d in self.devices], "dtype": self.dtype,
               "workloads": [w.to_dict() for w in self.workloads], "rows": [dict(r) for r in self.rows],
               "iso": [dict(r) for r in self.iso], "serving": self.serving.to_dict() if self.serving else None,
               "model_errors": dict(self.model_errors), "assumptions": list(self.assumptions)}
        if self.scenario is not None:        # only with a buyer and date: the unconstrained report is unchanged
            out["scenario"] = self.scenario.to_dict()
            out["legal"] = [p.to_dict() for p in self.legal]
            out["build"] = self.build.to_dict() if self.build else None
        return out

    def to_frame(self) -> Any:
        """The rows (workload x device) as a pandas DataFrame, without the per-GEMM tables."""
        return data_frame([{k: v for k, v in r.items() if k != "gemms"} for r in self.rows])


def compare(chip: str | ChipConfig | None, *, workloads: tuple[str, ...] = DEFAULT_WORKLOADS,
            gpus: tuple[str, ...] = DEFAULT_GPUS, batch: int | None = None, seq_len: int | None = None,
            iso: tuple[str, ...] = (), serving: dict[str, Any] | None = DEFAULT_SERVING,
            budget_usd: float | None = None, progress: Callable[[str], Any] | None = None,
            scenario: Scenario | None = None) -> Comparison:
    """Every device on every workload, all in the chip's dtype: a :class:`Comparison` with
    ``rows`` (device x workload), ``devices``, ``workloads``, ``iso`` (the views named in
    ``iso``: any of ``area``, ``power``, ``price``; none by default), ``serving`` (the
    LLM-serving scenario ``serving`` on every device in its own serving dtype, with the
    fleet ``budget_usd`` buys, default $7B; ``None`` skips it), ``model_errors`` and
    ``assumptions``. ``seq_len`` applies to the workloads that have a sequence length (an
    error when none of them does). With a :class:`~systolab.models.legal.purchase.Scenario`
    (a buyer and a date), every GPU row also says whether that buyer may buy it
    (``purchasability``), ``legal`` holds each GPU's answer with its rule and citation, and
    ``build`` whether the buyer could have the chip built (:func:`~systolab.models.legal.build.buildability`).
    A floating-point chip runs at its attainable clock (:func:`at_attainable_clock`), and the
    first assumption says so."""
    chip, clock_note = at_attainable_clock(get_chip(chip))
    if scenario is not None and not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a Scenario (from systolab.models.legal.purchase.scenario), not {type(scenario).__name__}")
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if isinstance(workloads, str) or not workloads:
        raise UserError("workload: give at least one, as a list of names or files")
    if isinstance(gpus, str) or not gpus:
        raise UserError("gpus: give at least one GPU id to compare against, as a list")
    if len(set(gpus)) != len(gpus):
        raise UserError("gpus: listed twice")
    for view in iso:
        if view not in ISO_VIEWS:
            raise UserError(f"iso: unknown view {view!r}; choose from {', '.join(ISO_VIEWS)}")
    for g in gpus:                       # names a bad id before any work
        try:
            get_gpu(g)
        except UserError as exc:
            raise UserError(f"gpus: {str(exc).split(': ', 1)[-1]}", parameter="gpus") from None
    if seq_len is not None and all(w in NO_SEQ_LEN for w in workloads):
        raise UserError(f"seq-len: none of {', '.join(workloads)} has a sequence length")
    dtype = chip.core.dtype
    wls = [get_workload(w, batch=batch, seq_len=seq_len if w not in NO_SEQ_LEN else None, dtype=dtype)
           for w in workloads]
    devices = [custom_device(chip)] + [gpu_device(g, dtype) for g in gpus]
    if clock_note is not None:
        devices[0] = replace(devices[0], notes=devices[0].notes + (clock_note,))
    legal = tuple(purchasability(g, scenario) for g in gpus) if scenario is not None else ()
    build = buildability(chip, scenario) if scenario is not None else None
    status = {p.device: p.status for p in legal}
    rows = []
    for wl in wls:
        say(f"compare: {wl.name} ({len(wl.gemms)} GEMMs) on {chip.name}")
        rows.append(compare_row(devices[0], evaluate_chip(chip, wl)))
        for dev in devices[1:]:
            say(f"compare: {wl.name} on {dev.id}")
            row = compare_row(dev, evaluate_gpu(dev.id, wl))
            rows.append(row | {"purchasability": status[dev.id]} if status else row)
    iso_rows: list[dict[str, Any]] = []
    if iso:
        say(f"compare: iso views ({', '.join(iso)})")
        iso_rows = iso_views(chip, wls, [r for r in rows if r["kind"] == "gpu"], tuple(iso))
    serving_section = None
    if serving is not None:
        say(f"compare: serving {serving.get('model')} on {len(devices)} devices")
        serving_section = ServingSection(dict(serving), fleet([chip, *gpus], budget_usd=budget_usd, **serving))
    return Comparison(chip_summary(chip), tuple(devices), dtype, tuple(wls), tuple(rows), tuple(iso_rows),
                      serving_section, model_errors(), ((clock_note,) if clock_note else ()) + tuple(ASSUMPTIONS),
                      scenario, legal, build)
