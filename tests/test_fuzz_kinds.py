"""Every public function of the models, given an object of the wrong kind for its required
arguments, rejects it cleanly (issue 33, class 11): a ``UserError``, or a ``TypeError``
raised by an argument check (``tests/test_fuzz.py``'s rule), never an ``AttributeError``
or a ``TypeError`` from deep inside a model."""
from __future__ import annotations

import importlib
import inspect

import pytest
from test_fuzz import _raises_cleanly

MODULES = ["systolab", "systolab.models", *[f"systolab.models.{p}" for p in (
    "core", "chip", "gpu", "serving", "silicon", "cost", "legal", "explore", "report", "workloads")]]
#: Not probed here, and why.
ELSEWHERE = {
    "load_space": "a path: the checked opener of issue 33 class 2",
    "replay": "a path: the checked opener of issue 33 class 2",
    "load_gemm_list": "a path: the checked opener of issue 33 class 2",
    "points_frame": "a notebook helper over rows the search returns",
    "gpu_reference": "takes a loaded Space (load_space's checks)",
    "perf_table": "a benchmark table over lists of configs and shapes",
    "as_chip": "wraps a ChipConfig that get_chip returned",
    "is_gpu": "a predicate: of any other object it answers False",
}
#: Whole runs (simulation, synthesis, searches, plots, files): their arguments are probed by
#: their own tests and the command-line fuzz.
RUNS = ("plot", "explore", "validate", "write", "synth", "run_", "fit", "serve", "fleet", "compare", "deep")


def _public_functions():
    seen = {}
    for m in MODULES:
        mod = importlib.import_module(m)
        for name in mod.__all__:
            fn = getattr(mod, name)
            if inspect.isfunction(fn) and not any(r in name for r in RUNS) and name not in ELSEWHERE:
                seen[id(fn)] = (name, fn)
    return sorted(seen.values(), key=lambda t: t[0])


def _required(fn) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(fn).parameters.values() if p.default is p.empty and p.kind in kinds]


FUNCTIONS = [(n, f) for n, f in _public_functions() if _required(f)]


def test_the_probe_sees_the_public_functions():
    assert len(FUNCTIONS) >= 40


@pytest.mark.parametrize("name, fn", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_an_object_of_the_wrong_kind_is_rejected_cleanly(name, fn):
    _raises_cleanly(fn, **{p: object() for p in _required(fn)})
