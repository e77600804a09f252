"""The notebooks run top to bottom with small parameters (their code cells, in order, in
one namespace, without a Jupyter kernel)."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "quickstart.ipynb": 'ROWS, COLS, DATAFLOW = 4, 4, "ws"\nGEMM = (9, 6, 5)\nWORKLOADS = ("dlrm",)\nOUT = {out!r}\n',
    "build_vs_buy.ipynb": 'BUDGET_USD = 1e9\nWORKLOAD = "llama3-8b-decode"\nBATCH = 4\nGPUS = ("h20", "h100-sxm")\n',
}


def test_every_notebook_has_small_parameters():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path, capsys):
    nb = json.loads((NOTEBOOKS / name).read_text())
    ns: dict = {"__name__": "__notebook__"}
    ran = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = SMALL[name].format(out=str(tmp_path / "out"))
        exec(compile(src, f"{name}[{ran}]", "exec"), ns)
        ran += 1
    assert ran >= 4
    out = capsys.readouterr().out
    if name == "quickstart.ipynb":
        assert "passed: True" in out and (tmp_path / "out" / "report.md").is_file()
    else:
        assert "tokens/s" in out and "cores:" in out
