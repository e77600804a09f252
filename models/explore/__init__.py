"""Design-space exploration, in stages: the space (:mod:`.space`), the searches
(:mod:`.search`), the analytic and deep stages of a point (:mod:`.stages`), the
crash-safe SQLite store (:mod:`.store`), the report of a run (:mod:`.report`), and
:func:`explore` that assembles them (:mod:`.run`)."""
from .report import gpu_reference, plot_pareto, points_frame, write_explore_report
from .run import explore, replay, run_explore
from .space import Space, load_space
from .stages import DeepStage
from .store import Store

__all__ = ["DeepStage", "explore", "gpu_reference", "load_space", "plot_pareto", "points_frame", "replay",
           "run_explore", "Space", "Store", "write_explore_report"]
