"""Design-space exploration: spaces, the crash-safe SQLite store, searches, and the report of a run."""
from .engine import Space, Store, explore, gpu_reference, load_space, plot_pareto, points_frame, replay

__all__ = ["explore", "gpu_reference", "load_space", "plot_pareto", "points_frame", "replay", "Space", "Store"]
