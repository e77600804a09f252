"""The decision under uncertainty: build the chip or buy GPUs (:func:`decide`, the report
writer), uncertain inputs (with the models' own errors), seeded Monte Carlo with
correlations, Sobol' and tornado sensitivity, break-even values, and their plots. Sits
above cost, serving, legal and report; nothing else in models imports it."""
from .compose import Decision, OptionResult, decide
from .options import Option, chip_option, gpu_option
from .plots import plot_distributions, plot_sobol, plot_tornado
from .report import write_decision_report
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
    "chip_option", "decide", "Decision", "gpu_option", "Option", "OptionResult", "write_decision_report",
    "BreakEven", "KINDS", "METHODS", "MonteCarlo", "OutputSummary", "SHAPES", "Samples", "SobolIndex", "SobolResult",
    "Tornado", "TornadoBar", "Uncertain", "break_even", "plot_distributions", "plot_sobol", "plot_tornado",
    "propagate", "sample", "sobol", "tornado", "uncertain_inputs",
]
