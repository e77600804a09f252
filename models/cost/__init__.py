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
    custom_system,
    deploy,
    gpu_per_device_tco,
    per_device_tco,
    system_for_gpu,
    tco_figures,
    tco_inputs,
    usd_per_million_tokens_tco,
)

__all__ = [
    "chip_unit_cost", "cost_inputs", "CostInputs", "custom_system", "deploy", "Deployment", "Estimate", "gpu_per_device_tco",
    "gpu_price", "nre_per_unit", "per_device_tco", "system_for_gpu", "TcoBreakdown", "TcoFigure", "tco_figures",
    "tco_inputs", "TcoInputs", "unit_cost", "UnitCost", "usd_per_million_tokens", "usd_per_million_tokens_tco",
    "waterfall",
]

# Time to silicon, bottom-up NRE, tokens over a horizon and the break-even date (issue 30, part 4).
from .schedule import (  # noqa: E402
    Band,
    DateBand,
    NreBreakdown,
    Phase,
    SiliconSchedule,
    UncertainFigure,
    evaluate_silicon,
    nre_breakdown,
    plot_timeline,
    schedule_inputs,
    silicon_inputs,
    time_to_silicon,
)
from .timeline import (  # noqa: E402
    DEFAULT_HORIZON_YEARS,
    BreakEven,
    Option,
    Timeline,
    break_even,
    delivered_tokens,
    incumbent_multiplier,
    plot_tokens_per_usd,
    timeline,
    tokens_over_horizon,
)

__all__ += [
    "Band", "break_even", "BreakEven", "DateBand", "DEFAULT_HORIZON_YEARS", "delivered_tokens", "evaluate_silicon", "incumbent_multiplier",
    "NreBreakdown", "Option", "Phase", "plot_timeline", "plot_tokens_per_usd", "schedule_inputs", "silicon_inputs",
    "SiliconSchedule", "Timeline", "nre_breakdown", "time_to_silicon", "timeline", "tokens_over_horizon", "UncertainFigure",
]
