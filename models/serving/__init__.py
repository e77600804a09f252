"""LLM serving on one device kind (prefill, decode, KV cache, parallelism) and fleets of it."""
from .model import Fleet, FleetRow, ServingResult, fleet, serve, serve_auto

__all__ = ["Fleet", "fleet", "FleetRow", "serve", "serve_auto", "ServingResult"]
