"""The house rules of the source tree, read from the sources (no imports run): layers one
way, no import cycles, no private name crossing a module, few function-local imports,
each with its reason, and no function too long to read."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Source folder -> the package it installs as.
PACKAGES = {"systolab": "systolab", "hdl": "systolab.hdl", "models": "systolab.models", "sim": "systolab.sim"}
#: Base modules: below hdl, sim and models; they import only each other.
BASE = {f"systolab.{m}" for m in ("blocking", "checks", "config", "dtypes", "errors", "executors", "files")}
#: Who may not import whom (prefixes).
FORBIDDEN = {
    "systolab.hdl": ("systolab.models", "systolab.sim", "systolab.flows", "systolab.cli"),
    "systolab.sim": ("systolab.models", "systolab.flows", "systolab.cli"),
    "systolab.models": ("systolab.sim", "systolab.flows", "systolab.cli"),
    "systolab.flows": ("systolab.cli",),
}
MAX_LOCAL_IMPORTS = 30
MAX_FUNCTION_LINES = 120
LAZY_MARK = "noqa: PLC0415"


@dataclass(frozen=True)
class Import:
    module: str          # the importing module
    target: str          # the systolab module imported
    names: tuple[str, ...]
    line: int
    local: bool          # inside a function
    text: str            # the source line


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _sources() -> dict[str, Path]:
    return {_module_name(p): p for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py"))
            if "__pycache__" not in p.parts}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def _walk(tree: ast.AST, local: bool = False):
    """(node, inside a function) for every node, skipping ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue            # typing only: never runs
        yield child, local
        yield from _walk(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))


@cache
def _imports() -> tuple[Import, ...]:
    modules = _sources()
    found: list[Import] = []
    for module, path in modules.items():
        text = path.read_text()
        lines = text.splitlines()
        for node, local in _walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in modules else base
                    if target in modules:
                        names = () if target == sub else (alias.name,)
                        found.append(Import(module, target, names, node.lineno, local, lines[node.lineno - 1]))
            elif isinstance(node, ast.Import):
                found += [Import(module, a.name, (), node.lineno, local, lines[node.lineno - 1])
                          for a in node.names if a.name in modules]
    return tuple(found)


def _local_imports() -> list[tuple[str, int, str]]:
    """Every function-local import (of any module), with its line."""
    out = []
    for module, path in _sources().items():
        lines = path.read_text().splitlines()
        out += [(module, node.lineno, lines[node.lineno - 1].strip()) for node, local in _walk(ast.parse("\n".join(lines)))
                if local and isinstance(node, (ast.Import, ast.ImportFrom))]
    return out


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_the_rules_see_the_tree():
    """The scan finds the package (a rule checked over nothing would pass)."""
    modules = _sources()
    assert {"systolab.models.chip.config", "systolab.hdl.chip", "systolab.sim.runner", "systolab.cli"} <= set(modules)
    assert len(_imports()) > 200


def test_no_import_cycles_module_level_or_local():
    edges: dict[str, set[str]] = {}
    for imp in _imports():
        if imp.target != imp.module:
            edges.setdefault(imp.module, set()).add(imp.target)
    assert _cycles(edges) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_one_way(layer):
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in _imports()
             if (i.module == layer or i.module.startswith(layer + "."))
             and any(i.target == f or i.target.startswith(f + ".") for f in FORBIDDEN[layer])]
    assert wrong == []


def test_base_modules_import_only_the_base():
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in _imports()
             if i.module in BASE and i.target not in BASE and i.target != "systolab"]
    assert wrong == []


def test_no_private_name_crosses_a_module():
    crossing = [f"{i.module}:{i.line} imports {n} from {i.target}" for i in _imports() for n in i.names
                if n.startswith("_") and not n.startswith("__")]
    assert crossing == []


def test_function_local_imports_are_few_and_say_why():
    local = _local_imports()
    unexplained = [f"{m}:{line}: {text}" for m, line, text in local if LAZY_MARK not in text]
    assert unexplained == [], f"a function-local import needs `# {LAZY_MARK}  lazy: <reason>` or a move to the top"
    assert len(local) <= MAX_LOCAL_IMPORTS, "\n".join(f"{m}:{line}: {text}" for m, line, text in local)


def test_no_function_is_too_long_to_read():
    long = []
    for module, path in _sources().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {n} lines")
    assert long == []


def test_the_cycle_finder_finds_a_cycle():
    """The rule can fail: a two-module loop and a three-module loop are both reported."""
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(edges) == [["a", "b"], ["c", "d", "e"]]
