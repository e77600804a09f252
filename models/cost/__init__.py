"""Cost: dies, yield, packaging and NRE for the chip; street prices for GPUs; $ per million
tokens; the total cost of ownership of a device and of the deployment a budget buys."""
from .plots import waterfall
from .pricing import (
    CostInputs,
    Estimate,
    UnitCost,
    chip_unit_cost,
    cost_inputs,
    gpu_price,
    nre_per_unit,
    unit_cost,
    usd_per_million_tokens,
)
from .tco import (
    Deployment,
    TcoBreakdown,
    TcoFigure,
    TcoInputs,
    deploy,
    gpu_per_device_tco,
    per_device_tco,
    system_for_gpu,
    tco_figures,
    tco_inputs,
    usd_per_million_tokens_tco,
)

__all__ = [
    "chip_unit_cost", "cost_inputs", "CostInputs", "deploy", "Deployment", "Estimate", "gpu_per_device_tco",
    "gpu_price", "nre_per_unit", "per_device_tco", "system_for_gpu", "TcoBreakdown", "TcoFigure", "tco_figures",
    "tco_inputs", "TcoInputs", "unit_cost", "UnitCost", "usd_per_million_tokens", "usd_per_million_tokens_tco",
    "waterfall",
]
