"""LLM serving on one device kind (prefill, decode, KV cache, parallelism) and fleets of it."""
from .model import ServingResult, fleet, serve, serve_auto

__all__ = ["fleet", "serve", "serve_auto", "ServingResult"]
