"""The comparison of a chip with GPUs on workloads, and the writers of its report."""
from .compare import compare
from .evaluate import Evaluation, evaluate_chip, evaluate_gpu
from .figures import plot_efficiency, plot_export_map, plot_latency_per_layer, plot_roofline, write_report

__all__ = [
    "compare", "evaluate_chip", "evaluate_gpu", "Evaluation", "plot_efficiency", "plot_export_map",
    "plot_latency_per_layer", "plot_roofline", "write_report",
]
