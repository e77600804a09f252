"""The plots a decision maker reads (issue 33, class 9), each looked at through its saved
PNG (size) and its text elements: nothing overprints, thresholds are labelled once, the
region outside 3A090 is shaded, titles say only what is drawn, efficiency is absolute and
says what is divided, and the serving case is there."""
from __future__ import annotations

import itertools
import json

import pytest
from matplotlib.image import imread
from matplotlib.text import Text

from systolab.cli import main
from systolab.models.report.figures import PLOTS, plot_efficiency, plot_export_map


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "cmp"
    assert main(["compare", "sl-n4-os32", "--buyer", "any", "--workload", "llama3-8b-decode", "--workload", "dlrm",
                 "--gpus", "h100-sxm,h200-sxm,h20,b200", "--out", str(out), "--json"]) == 0
    return out, json.loads((out / "summary.json").read_text())


def _texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _overlapping(texts: list[Text]) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def test_every_plot_is_saved_at_a_readable_size(report):
    out, _ = report
    for name in PLOTS:
        h, w = imread(out / name).shape[:2]
        assert w >= 700 and h >= 450, (name, w, h)


def test_export_map_labels_thresholds_once_and_shades_outside(report):
    _, summary = report
    fig = plot_export_map(summary)
    ax = fig.axes[0]
    texts = [t.get_text() for t in _texts(fig)]
    assert not _overlapping(ax.texts), _overlapping(ax.texts)              # devices and thresholds alike
    assert any("h100-sxm" in t and "h200-sxm" in t for t in texts)          # one point, one label
    thresholds = [t for t in texts if t.startswith(("TPP ", "PD "))]
    assert len(thresholds) == len(set(t.split(" (")[0] for t in thresholds))   # each value labelled once
    assert "outside 3A090 (ECCN none)" in texts and ax.collections            # the shaded region and its key
    assert "0.12" not in ax.get_title() and "plotted at" not in ax.get_title()


def test_export_map_lists_devices_it_cannot_place():
    devices = [{"id": "mystery", "tpp": 3000.0, "performance_density": None, "kind": "gpu", "eccn": "undetermined"},
               {"id": "h20", "tpp": 2368.0, "performance_density": 2.9, "kind": "gpu", "eccn": "none"}]
    fig = plot_export_map({"devices": devices})
    texts = [t.get_text() for t in _texts(fig)]
    assert any("not placed (die area unknown): mystery" in t for t in texts)
    assert not any(t.startswith("mystery") for t in texts)


def test_efficiency_is_absolute_says_what_is_divided_and_has_the_serving_case(report):
    _, summary = report
    fig = plot_efficiency(summary)
    titles = [a.get_title(loc="left") for a in fig.axes]
    assert len(fig.axes) == 3 * 3                                    # two workloads and the serving case
    assert all(any(f"÷ {what}" in t for t in titles) for what in ("die area", "TDP", "unit price"))
    assert any("llama3-70b serving" in t for t in titles)
    assert all("per" in a.get_ylabel() for a in fig.axes)
    chip_bars = [a.patches[0].get_height() for a in fig.axes]
    assert len({round(h, 9) for h in chip_bars}) > 1 and chip_bars != [1.0] * len(chip_bars)   # not normalised
    row = next(r for r in summary["rows"] if r["workload"] == "dlrm" and r["device"] == "h20")
    h20 = [d["id"] for d in summary["devices"]].index("h20")
    assert fig.axes[3 * 1 + 1].patches[h20].get_height() == pytest.approx(row["throughput_per_W"])


def test_report_tables_say_what_is_divided_and_what_is_left_out(report):
    out, _ = report
    md = (out / "report.md").read_text()
    assert "tokens/s per die mm²" in md and "tokens/s per TDP W" in md and "per k$ of unit price" in md
    assert "| per mm² |" not in md
    assert md.count("GEMMs only") == 2 and "the serving section below includes them" in md
