"""The decision under uncertainty: uncertain inputs (with the models' own errors), seeded
Monte Carlo with correlations, Sobol' and tornado sensitivity, break-even values, and
their plots. Sits above cost, serving, legal and report; nothing else in models imports it."""
from .plots import plot_distributions, plot_sobol, plot_tornado
from .sensitivity import BreakEven, SobolIndex, SobolResult, Tornado, TornadoBar, break_even, sobol, tornado
from .uncertainty import (
    KINDS,
    METHODS,
    SHAPES,
    MonteCarlo,
    OutputSummary,
    Samples,
    Uncertain,
    propagate,
    sample,
    uncertain_inputs,
)

__all__ = [
    "BreakEven", "KINDS", "METHODS", "MonteCarlo", "OutputSummary", "SHAPES", "Samples", "SobolIndex", "SobolResult",
    "Tornado", "TornadoBar", "Uncertain", "break_even", "plot_distributions", "plot_sobol", "plot_tornado",
    "propagate", "sample", "sobol", "tornado", "uncertain_inputs",
]
