"""The chip with its models' views (:class:`Chip`), sizing it to budgets, the comparison of a
chip with GPUs on workloads, and the writers of its report."""
from .chip import Chip, as_chip, chip_html, chip_summary, get_chip
from .compare import Comparison, Device, ServingSection, compare, compare_row
from .evaluate import Evaluation, evaluate_chip, evaluate_gpu
from .figures import plot_efficiency, plot_export_map, plot_latency_per_layer, plot_roofline, write_report
from .html import render_html, write_html_report
from .replicas import Published, Replica, ReplicaRow, ReplicaTable, load_replicas, replica_table
from .sizing import check_reticle, fit_cores, largest_outside, match_gpu

__all__ = [
    "as_chip", "check_reticle", "Chip", "chip_html", "chip_summary", "compare", "compare_row", "Comparison", "Device",
    "evaluate_chip", "evaluate_gpu", "Evaluation", "fit_cores", "get_chip", "largest_outside", "match_gpu",
    "plot_efficiency", "plot_export_map", "plot_latency_per_layer", "plot_roofline", "render_html", "ServingSection",
    "write_html_report", "write_report",
    "load_replicas", "Published", "Replica", "replica_table", "ReplicaRow", "ReplicaTable",
]
