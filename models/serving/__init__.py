"""LLM serving on one device kind (prefill, decode, KV cache, parallelism) and fleets of it."""
from .model import Fleet, FleetRow, ServingResult, fleet, serve, serve_auto
from .power_fit import power_fit_report

__all__ = ["Fleet", "fleet", "FleetRow", "power_fit_report", "serve", "serve_auto", "ServingResult"]
