"""Each option served within the service targets: its goodput point, computed once.

The serving model's answer at its own values: the tensor-parallel size and concurrency at
which the device delivers the most output tokens/s per device while meeting the TTFT and
TPOT targets (:func:`~systolab.models.serving.goodput.goodput`), and its average and idle
board power there (power by phase). The Monte Carlo then varies these through the models'
measured errors, not by re-running the serving search per draw.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ...errors import UserError
from ..chip.config import ChipConfig
from ..gpu.specs import get_gpu
from ..serving.goodput import NO_FIT, Goodput, goodput
from ..silicon.energy import chip_power
from .options import Option


@dataclass(frozen=True)
class Served:
    """``option`` at its goodput point: ``tokens_per_s`` output tokens/s per device (0 when
    no point meets the targets, ``reason`` then says why), ``tp`` devices per replica,
    ``power_W`` average board power while serving and ``idle_power_W`` when not, W."""

    option: Option
    tokens_per_s: float
    tp: int
    pp: int
    concurrency: int | None
    ttft_s: float | None
    tpot_s: float | None
    power_W: float
    idle_power_W: float
    tdp_W: float
    reason: str | None
    goodput: Goodput | None

    @property
    def devices_per_replica(self) -> int:
        return self.tp * self.pp

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option.name, "tokens_per_s_per_device": self.tokens_per_s, "tp": self.tp,
                "pp": self.pp, "concurrency": self.concurrency, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
                "power_W": self.power_W, "idle_power_W": self.idle_power_W, "tdp_W": self.tdp_W,
                "reason": self.reason}


def serve_option(option: Option, device: str | ChipConfig, *, model: str, isl: int, osl: int,
                 ttft_s: float | None, tpot_s: float | None) -> Served:
    """``option`` (served on ``device``: its GPU id, or the chip) at its goodput point."""
    tdp = chip_power(device).tdp_W if isinstance(device, ChipConfig) else float(get_gpu(device).tdp_W)
    try:
        g = _goodput(device, model, isl, osl, ttft_s, tpot_s)
    except UserError as exc:
        if exc.parameter not in NO_FIT:
            raise                               # the question is wrong, not the device
        return Served(option, 0.0, 1, 1, None, None, None, 0.0, 0.0, tdp, f"does not hold the model: {exc}", None)
    r = g.best
    if r is None:
        return Served(option, 0.0, 1, 1, None, None, None, 0.0, 0.0, tdp, g.reason or "meets no target", g)
    assert r.power_W is not None and r.idle_power_W is not None
    return Served(option, g.output_tokens_per_s, r.tp, r.pp, r.sequences, r.ttft_s, r.tpot_s, r.power_W,
                  r.idle_power_W, tdp, None, g)


@cache
def _goodput(device: str | ChipConfig, model: str, isl: int, osl: int, ttft_s: float | None,
             tpot_s: float | None) -> Goodput:
    # a decision re-asked with other money or draws serves the same way: search once
    return goodput(device, model, isl=isl, osl=osl, ttft_s=ttft_s, tpot_s=tpot_s)
