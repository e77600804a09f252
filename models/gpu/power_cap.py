"""A GPU under a power cap (``nvidia-smi -pl``): the clock it allows, and so its compute rate.

Assumptions (also in ``docs/gpu.md``):

* the board's power above idle is dynamic power, ``P_dyn ∝ C · V² · f``; near the top of
  the DVFS curve the voltage falls about in proportion to the clock, so ``P_dyn ∝ f³``
  (Mei, Wang and Chu, "A survey and measurement study of GPU DVFS on energy
  conservation", Digital Communications and Networks 3(2), 2017: dynamic power
  ``∝ V² f``, with voltage scaled together with the core frequency);
* a step that would draw ``P`` uncapped (``models/gpu/power.py``) runs under a cap
  ``C < P`` at the clock fraction ``s = ((C - P_idle) / (P - P_idle))^(1/3)`` and draws
  ``C``; a step that draws no more than the cap runs at full clock;
* tensor-core throughput is proportional to the clock; DRAM bandwidth and the runtime's
  fixed cost per kernel (host-side) are not clocked down;
* the cap must lie above the board's idle power; a cap above TDP changes nothing (the
  board's own limit is TDP).
"""
from __future__ import annotations

from ...checks import check_gpu_spec, check_positive, check_real
from ...errors import UserError
from .power import gpu_idle_W
from .specs import GpuSpec


def check_power_cap(gpu: GpuSpec, power_cap_W: float | None, parameter: str = "power-cap-w") -> float | None:
    """``power_cap_W`` (W) checked against ``gpu``: positive and above its idle power (a
    :class:`~systolab.errors.UserError` naming ``parameter`` otherwise); None stays None."""
    check_gpu_spec("gpu", gpu)
    if power_cap_W is None:
        return None
    cap = check_positive(parameter, power_cap_W)
    idle = gpu_idle_W(gpu)
    if cap <= idle:
        raise UserError(f"{parameter}: {cap:g} W is not above {gpu.id}'s idle power ({idle:.0f} W)",
                        parameter=parameter)
    return cap


def clock_fraction(gpu: GpuSpec, uncapped_W: float, power_cap_W: float | None) -> float:
    """The fraction of its full clock (0-1] ``gpu`` runs a step at under ``power_cap_W``
    (W; None: no cap) when the step would draw ``uncapped_W`` (W) at full clock."""
    check_gpu_spec("gpu", gpu)
    uncapped_W = check_real("uncapped_W", uncapped_W, lo=0.0)
    if power_cap_W is not None:
        power_cap_W = check_positive("power_cap_W", power_cap_W)
    if power_cap_W is None or uncapped_W <= power_cap_W:
        return 1.0
    idle = gpu_idle_W(gpu)
    return float(((power_cap_W - idle) / (uncapped_W - idle)) ** (1 / 3))
