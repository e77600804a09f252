"""LLM serving on one device kind (prefill, decode, KV cache, parallelism), fleets of it, and
goodput under latency targets."""
from .fleet import Fleet, FleetRow, fleet
from .goodput import Goodput, GoodputPoint, Targets, goodput, plot_goodput
from .model import ServingResult, serve, serve_auto

__all__ = ["Fleet", "fleet", "FleetRow", "Goodput", "goodput", "GoodputPoint", "plot_goodput", "serve", "serve_auto",
           "ServingResult", "Targets"]
