"""The notebooks run top to bottom under a real Jupyter kernel (nbclient + ipykernel), with
small parameters injected into the cell tagged ``parameters``; plots show inline."""
import json
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "quickstart.ipynb": 'ROWS, COLS, DATAFLOW = 4, 4, "ws"\nGEMM = (9, 6, 5)\nWORKLOADS = ("dlrm",)\nOUT = {out!r}\n',
    "build_vs_buy.ipynb": 'BUDGET_USD = 1e9\nWORKLOAD = "llama3-8b-decode"\nBATCH = 4\nGPUS = ("h20", "h100-sxm")\n',
    "explore_h20_beater.ipynb": 'SPACE = "h20-beater"\nSEARCH, TRIALS, SEED = "lhs", 6, 0\nDB = {out!r} + "/store.sqlite"\n',
    "serving_fleet.ipynb": 'MODEL, ISL, OSL, CONCURRENCY = "llama3-8b", 512, 64, 8\nGPU = "h100-sxm"\n'
                           'DEVICES = ("sl-n4-os32", "h100-sxm")\nBUDGET_USD = 1e8\n',
    "mapping.ipynb": 'CHIP = "sl-small"\nGEMM = (64, 48, 100, 2)\nWORKLOAD = ("bert-base", {{"seq_len": 64}})\n',
    "decision.ipynb": 'BUYER, DATE = "allied", "2026-12-01"\nGPUS = ("h20",)\nDRAWS, SOBOL_BASE = 300, 32\n'
                      'HBM_USD_PER_GB = (40.0, 50.0, 60.0)\n',
    "number_formats.ipynb": 'FORMATS = ("int8", "fp8_e4m3", "bf16")\nROWS, COLS, DATAFLOW = 2, 2, "ws"\nGEMM = (3, 2, 9)\n'
                            'WORKLOAD = "llama3-8b-decode"\nGPUS = ("h100-sxm",)\n',
}


def test_every_notebook_has_small_parameters_and_cell_ids():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)
    for name in SMALL:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert all(c.get("id") for c in nb.cells)
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


def _run(name: str, tmp_path: Path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = SMALL[name].format(out=str(tmp_path / "out"))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    _reads_cleanly(nb)
    return nb


def _reads_cleanly(nb) -> None:
    """What a reader sees: no figure shown twice by one cell (returning a Figure that the
    inline backend also draws), no numpy scalar reprs such as ``np.int64(64)`` in text."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        kinds = {o["output_type"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})}
        assert len(images) == len(set(images)) and kinds != {"display_data", "execute_result"}, \
            f"a figure shown twice by: {cell.source[:80]!r}"
        text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))
        assert not re.search(r"np\.(u?int|float|bool_?)\d*\(", text), f"a numpy scalar repr in: {text[:200]!r}"


def _text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def _mime(nb, kind: str) -> int:
    return sum(kind in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_quickstart_runs_under_a_kernel(tmp_path):
    nb = _run("quickstart.ipynb", tmp_path)
    assert "passed: True" in _text(nb)
    assert (tmp_path / "out" / "report.md").is_file()
    assert _mime(nb, "image/png") >= 1          # the roofline plot, inline
    assert _mime(nb, "text/html") >= 1          # the evaluation renders as a table


def test_build_vs_buy_runs_under_a_kernel(tmp_path):
    nb = _run("build_vs_buy.ipynb", tmp_path)
    text = _text(nb)
    assert "tokens/s" in text and "cores:" in text
    assert _mime(nb, "text/html") >= 1          # the export class renders
    assert not (NOTEBOOKS / "out").exists()     # outputs go to the repository's out/, never notebooks/out/
    json.dumps(nb)                              # outputs are plain JSON


def test_explore_h20_beater_runs_under_a_kernel(tmp_path):
    nb = _run("explore_h20_beater.ipynb", tmp_path)
    text = _text(nb)
    assert "6 designs (6 evaluated now)" in text and "h20" in text
    assert (tmp_path / "out" / "store.sqlite").is_file()
    assert _mime(nb, "text/html") >= 1          # the Pareto table
    assert _mime(nb, "image/png") == 1          # the plot with the GPUs, once


def test_serving_fleet_runs_under_a_kernel(tmp_path):
    nb = _run("serving_fleet.ipynb", tmp_path)
    text = _text(nb)
    assert "budget $100,000,000" in text
    assert _mime(nb, "text/html") >= 3          # the two devices, the decode step, the fleet
    assert _mime(nb, "image/png") >= 1          # the fleet plot


def test_number_formats_runs_under_a_kernel():
    nb = _run("number_formats.ipynb", Path("."))
    text = _text(nb)
    assert "llama3-8b-decode, tokens/s by device and format" in text
    assert _mime(nb, "text/html") >= 4          # verification, area, throughput and TPP tables
    assert _mime(nb, "image/png") >= 1          # the area bars


def test_mapping_runs_under_a_kernel(tmp_path):
    nb = _run("mapping.ipynb", tmp_path)
    text = _text(nb)
    assert "mappings; fewest cycles" in text and "x the bound in DMA beats" in text
    assert _mime(nb, "text/html") >= 3          # the mapping, the space, the workload's table
    assert _mime(nb, "image/png") >= 1          # the space's plot


def test_the_decision_notebook_runs_under_a_kernel(tmp_path):
    nb = _run("decision.ipynb", tmp_path)
    text = _text(nb)
    assert "with probability" in text or "Building" in text       # the verdict
    assert _mime(nb, "text/html") >= 2                           # the options and the Sobol table
    assert _mime(nb, "image/png") >= 1                           # the distributions, inline

