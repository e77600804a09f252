"""Fleets: what a budget buys of each device kind for one serving scenario, and what the
fleet serves, under latency targets where they are given.

Without targets each device serves the scenario's batch or concurrency at the smallest
tensor-parallel size that holds it. With targets (``ttft_s``, ``tpot_s``) and no batch or
concurrency, each device serves at its goodput point (:func:`~.goodput.goodput`); with
both, at the given batch or concurrency. Either way a device that misses the targets is
no capacity: its row keeps its latencies but has zero tokens/s, zero units and the
reason in ``note``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...checks import check_int, check_positive, check_real
from ...errors import UserError
from ..cost.pricing import cost_inputs
from ..cost.tco import MAX_BUDGET_USD, deploy
from ..frames import data_frame
from ..gpu.runtime import get_runtime
from ..gpu.specs import is_gpu
from ..workloads.catalog import DecoderShape
from .batching import BatchingOptions
from .goodput import Targets, goodput
from .model import (
    ChipServing,
    GpuServing,
    ServingResult,
    check_parallelism,
    check_request,
    device_prices,
    get_device,
    lifetime_cost,
    serve_auto,
)


@dataclass(frozen=True)
class FleetRow:
    """One device kind of a :class:`Fleet`. A device on which the scenario fits at no
    tensor-parallel size has only ``device`` and ``note``; one without a price has no fleet
    (``units``, ``replicas`` and the fleet's rate are None, ``note`` says why). Under
    latency targets, ``meets_targets`` says whether the device meets them and
    ``concurrency`` is the batch or concurrency it serves at; one that misses them has
    zero tokens/s and units, and the reason in ``note``.

    The budget buys whole deployments (``models/cost/tco.py``): each device at its
    lifetime cost (``lifetime_cost_per_device_usd``: the device, its share of the server,
    network and facility, energy at ``serving_power_W`` while serving and idle power
    otherwise, maintenance and operations), after the chip's bottom-up NRE (``nre_usd``,
    spread over the units bought), within an optional power cap (``limited_by``).

    Rates in output tokens/s (per device, per W of serving power, per k$ of lifetime cost,
    of the whole fleet), power in W (``power_W`` the design power/TDP), facility power in
    MW, energy in J per output token, prices and budget in USD."""

    device: str
    note: str | None = None
    kind: str | None = None
    dtype: str | None = None
    tp: int | None = None
    pp: int | None = None
    output_tokens_per_s: float | None = None
    tpot_s: float | None = None
    ttft_s: float | None = None
    max_batch: int | None = None
    power_W: float | None = None
    tokens_per_s_per_W: float | None = None
    energy_per_token_J: float | None = None
    usd_per_million_tokens: float | None = None
    budget_usd: float | None = None
    unit_price_usd: float | None = None
    units: int | None = None
    replicas: int | None = None
    fleet_output_tokens_per_s: float | None = None
    tokens_per_s_per_kusd: float | None = None
    units_range: tuple[int, int] | None = None
    fleet_output_tokens_per_s_range: tuple[float, float] | None = None
    concurrency: int | None = None
    meets_targets: bool | None = None
    serving_power_W: float | None = None
    lifetime_cost_per_device_usd: float | None = None
    nre_usd: float | None = None
    facility_MW: float | None = None
    limited_by: str | None = None

    @property
    def served(self) -> bool:
        """Whether the scenario fits this device (else only ``note`` says why not)."""
        return self.output_tokens_per_s is not None

    def to_dict(self) -> dict[str, Any]:
        """The row as ``systolab fleet`` writes it: the keys a row of its kind has."""
        if not self.served:
            return {"device": self.device, "note": self.note}
        keys = ("device", "kind", "dtype", "tp", "pp", "output_tokens_per_s", "tpot_s", "ttft_s", "max_batch",
                "power_W", "serving_power_W", "tokens_per_s_per_W", "energy_per_token_J", "usd_per_million_tokens",
                "budget_usd", "unit_price_usd", "lifetime_cost_per_device_usd", "nre_usd", "units", "replicas",
                "fleet_output_tokens_per_s", "facility_MW", "limited_by", "tokens_per_s_per_kusd")
        d: dict[str, Any] = {k: getattr(self, k) for k in keys}
        if self.units_range is not None and self.fleet_output_tokens_per_s_range is not None:
            d["units_range"] = list(self.units_range)
            d["fleet_output_tokens_per_s_range"] = list(self.fleet_output_tokens_per_s_range)
        if self.meets_targets is not None:        # only under latency targets
            d["meets_targets"], d["concurrency"] = self.meets_targets, self.concurrency
        if self.note is not None:
            d["note"] = self.note
        return d


@dataclass(frozen=True)
class Fleet:
    """What ``budget_usd`` buys of each device kind for one serving scenario: a
    :class:`FleetRow` per device, in the order given; ``targets`` the latency targets
    (None without)."""

    budget_usd: float
    rows: tuple[FleetRow, ...]
    targets: Targets | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"budget_usd": self.budget_usd, "rows": [r.to_dict() for r in self.rows]}
        if self.targets is not None:
            d["targets"] = self.targets.to_dict()
        return d

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame (one per device; the keys of :meth:`FleetRow.to_dict`)."""
        return data_frame(r.to_dict() for r in self.rows)


def fleet(devices: list, model: str | DecoderShape, *, isl: int, osl: int, batch: int | None = None,
          concurrency: int | None = None, tp: int | None = None, pp: int = 1, budget_usd: float | None = None,
          dtype: str | None = None, kv_dtype: str | None = None, ttft_s: float | None = None,
          tpot_s: float | None = None, power_cap_MW: float | None = None, ep: int = 1, runtime: str | None = None,
          power_cap_W: float | None = None, chunk_tokens: int | None = None, kv_block: int | None = None,
          options: BatchingOptions | None = None) -> Fleet:
    """For each device (GPU ids, chips): the serving result at ``tp`` (default the smallest
    that fits), the devices a budget buys (default the cost model's $7B) at the unit price
    (and its range), the replicas of ``tp x pp`` devices they make, and the fleet's output
    tokens/s; tokens/s per device, per k$ and per W. A device without a price, or on which
    the scenario fits at no tensor-parallel size, gets a row with the reason.

    Latency targets ``ttft_s`` and ``tpot_s`` (seconds): without ``batch`` and
    ``concurrency`` each device serves at its goodput point (continuous batching, the
    best tensor-parallel size unless ``tp`` is given); with one of them, at that load. A
    device that misses the targets gets zero capacity (zero tokens/s, units and fleet
    rate) and the reason in ``note``. ``power_cap_MW`` caps each fleet's facility power
    (IT power x PUE at peak). ``ep``, ``chunk_tokens``, ``kv_block`` and ``options`` are
    :func:`serve`'s; ``runtime`` and ``power_cap_W`` (W per GPU board) apply to the GPUs of
    ``devices`` (a chip has neither)."""
    targets = Targets.checked(ttft_s, tpot_s)
    cap = None if power_cap_MW is None else check_positive("power_cap_MW", power_cap_MW)
    by_goodput = targets.given and batch is None and concurrency is None
    shape = check_request(model, isl=isl, osl=osl, batch=batch, concurrency=1 if by_goodput else concurrency)[0]
    # parallelism the model cannot take is the question's error, not one device's
    pp = check_int("pp", pp, hi=1 << 20)
    ep = check_int("ep", ep, hi=1 << 20)
    if runtime is not None:                    # an unknown runtime is the question's error, not one device's
        get_runtime(runtime)
    check_parallelism(shape, check_int("tp", tp, hi=1 << 20) if tp is not None else ep, pp, ep)
    if not devices or isinstance(devices, str):
        raise UserError("device: give a list of at least one device", parameter="device")
    # the budget resolved (default $7B) and checked before any work
    budget = check_real("budget_usd", budget_usd if budget_usd is not None else cost_inputs().default_budget_usd,
                        lo=0.0, lo_open=True, hi=MAX_BUDGET_USD)
    how: dict[str, Any] = {"ep": ep, "chunk_tokens": chunk_tokens, "kv_block": kv_block, "options": options}
    rows = []
    for d in devices:
        try:
            dev = gpu_or_chip(d, dtype, runtime, power_cap_W)
            if by_goodput:
                g = goodput(dev, shape, isl=isl, osl=osl, ttft_s=ttft_s, tpot_s=tpot_s, tp=tp, pp=pp, dtype=dtype,
                            kv_dtype=kv_dtype, **how)
                r, reason = g.chosen, g.reason
            else:
                r = serve_auto(dev, shape, tp=tp, isl=isl, osl=osl, batch=batch, concurrency=concurrency, pp=pp,
                               dtype=dtype, kv_dtype=kv_dtype, **how)
                reason = targets.reason(r)
        except UserError as exc:
            if exc.parameter == "device":          # not a device at all
                raise
            rows.append(FleetRow(getattr(d, "name", d), note=str(exc)))   # this device cannot serve it
            continue
        row = fleet_row(dev, r, budget, power_cap_MW=cap)
        if targets.given:
            row = replace(row, concurrency=r.sequences, meets_targets=reason is None)
        if reason is not None:
            row = no_capacity(row, reason)
        rows.append(row)
    return Fleet(budget, tuple(rows), targets if targets.given else None)


def gpu_or_chip(device: Any, dtype: str | None, runtime: str | None, power_cap_W: float | None):
    """:func:`get_device` with the runtime and power cap where ``device`` is a GPU."""
    if is_gpu(device):
        return get_device(device, dtype, runtime=runtime, power_cap_W=power_cap_W)
    return get_device(device, dtype)


def fleet_row(dev: GpuServing | ChipServing, r: ServingResult, budget: float, *,
              power_cap_MW: float | None = None) -> FleetRow:
    """The row of a device serving ``r``: the whole deployments ``budget`` buys of it
    (whole replicas of ``tp x pp`` devices at their lifetime cost, after the chip's NRE,
    within ``power_cap_MW``) at its price and that price's range."""
    serving_W = r.power_W or dev.power_W
    row = FleetRow(r.device, kind=r.kind, dtype=r.dtype, tp=r.tp, pp=r.pp,
                   output_tokens_per_s=r.output_tokens_per_s, tpot_s=r.tpot_s, ttft_s=r.ttft_s,
                   max_batch=r.max_batch, power_W=dev.power_W, serving_power_W=serving_W,
                   tokens_per_s_per_W=r.output_tokens_per_s / serving_W,
                   energy_per_token_J=r.energy_per_token_J, usd_per_million_tokens=r.usd_per_million_tokens,
                   budget_usd=budget, unit_price_usd=dev.price_usd)
    if not dev.price_usd:
        return replace(row, note="no public price: no fleet")
    prices, nre = device_prices(dev)
    fixed = min(nre, budget)
    mid, few, many = (deploy(budget_usd=budget, per_device=lifetime_cost(dev, devices=r.devices, power_W=r.power_W,
                                                                   idle_power_W=r.idle_power_W, accelerator_usd=p), fixed_usd=fixed,
                             devices_per_replica=r.devices, power_cap_MW=power_cap_MW) for p in prices)
    rate = r.output_tokens_per_s
    life = float(mid.per_device.total_usd)
    return replace(row, unit_price_usd=prices[0], replicas=int(mid.replicas), units=int(mid.units),
                   units_range=(int(few.units), int(many.units)), lifetime_cost_per_device_usd=life,
                   nre_usd=nre or None, fleet_output_tokens_per_s=int(mid.units) * rate,
                   fleet_output_tokens_per_s_range=(int(few.units) * rate, int(many.units) * rate),
                   facility_MW=float(mid.facility_power_MW), limited_by=str(mid.limited_by),
                   tokens_per_s_per_kusd=rate / life * 1e3,
                   note=mid.reason or None)


def no_capacity(row: FleetRow, reason: str) -> FleetRow:
    """``row`` of a device that misses the latency targets: its latencies stay (what it
    would give), its capacity is zero (tokens/s, units, replicas, fleet rate) and
    ``note`` holds ``reason`` (before any other note)."""
    priced = row.units is not None
    zero_int, zero = (0, 0.0) if priced else (None, None)
    return replace(row, output_tokens_per_s=0.0, tokens_per_s_per_W=0.0, energy_per_token_J=None,
                   usd_per_million_tokens=None, units=zero_int, replicas=zero_int, fleet_output_tokens_per_s=zero,
                   tokens_per_s_per_kusd=zero, units_range=(0, 0) if priced else None,
                   fleet_output_tokens_per_s_range=(0.0, 0.0) if priced else None,
                   note=reason if row.note is None else f"{reason}; {row.note}")


__all__ = ["Fleet", "FleetRow", "fleet", "fleet_row", "no_capacity"]
