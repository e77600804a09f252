"""Cost: dies, yield, packaging and NRE for the chip; street prices for GPUs; $ per million tokens."""
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

__all__ = [
    "chip_unit_cost", "cost_inputs", "CostInputs", "Estimate", "gpu_price", "nre_per_unit", "unit_cost", "UnitCost",
    "usd_per_million_tokens",
]
