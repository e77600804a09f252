"""The installed package holds every subpackage of the source tree (a fresh clone's
`make demo` once could not import `systolab.cli`)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_installed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(cfg["packages"]), cfg["package-dir"]
    found, data_only = set(), set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
        # a folder of data files (models/data, its spaces) is importable as a namespace
        # package too: setuptools warns that it "would be ignored" unless it is listed
        for sub in (ROOT / folder).rglob("*"):
            rel = sub.relative_to(ROOT / folder)
            if sub.is_dir() and "__pycache__" not in rel.parts and not (sub / "__init__.py").exists() \
                    and any(f.is_file() for f in sub.iterdir()) and name != "systolab":
                data_only.add(".".join([name, *rel.parts]))
    assert found | data_only == listed, \
        f"pyproject.toml packages differ from the source tree: {sorted((found | data_only) ^ listed)}"
    data = cfg["package-data"]
    assert all(data.get(pkg) == ["*"] for pkg in data_only), "every data folder ships all its files"


def test_public_names_resolve_lazily_and_a_testbench_import_stays_light():
    """Every name of ``systolab.__all__`` resolves (imported on first use, PEP 562), an
    unknown one is an AttributeError, and importing the core testbench, as the simulator
    does, leaves the models unimported."""
    import subprocess
    import sys

    import pytest

    import systolab

    assert set(systolab.__all__) == {"__version__", *systolab._WHERE}
    assert all(getattr(systolab, name) is not None for name in systolab.__all__)
    assert set(systolab.__all__) <= set(dir(systolab))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        systolab.nope  # noqa: B018
    code = "import sys, systolab.sim.cocotb_core; print(any(m.startswith('systolab.models') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
