"""The GPU model's fit file, ``gpu_fit.yaml``: which copy the model reads, and the one
writer both fits use (:mod:`~systolab.models.gpu.fit` for the GEMM-shape terms,
:mod:`~systolab.models.serving.fit` for the serving parameters).

The model reads the user's copy when it exists and is newer than the shipped one, else
the shipped one (:func:`~systolab.models.records.current`). A fit writes the user's copy
(in :func:`~systolab.files.data_root`), or with ``write`` the repository's, which only a
checkout has; never the installed package.

Every cached function whose result depends on the fit registers with :func:`reads_fit`,
so that a write drops it. This module imports none of them: the model and both fits
import it, never the other way round.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar

import yaml

from ..records import current, shipped, write_target, write_text
from ..specs import load_yaml

FIT_NAME = "gpu_fit.yaml"
#: The shipped fit (``models/data/gpu_fit.yaml``).
FIT_FILE = shipped(FIT_NAME)
HEADER = "# Written by the GPU fits; do not edit by hand (rerun `python benchmarks/serving.py fit`).\n"


class _Cached(Protocol):
    def cache_clear(self) -> None: ...


C = TypeVar("C", bound=_Cached)
_readers: list[_Cached] = []


def fit_file() -> Path:
    """The fit the model reads: the user's copy when it exists and is newer than the
    shipped one, else the shipped one."""
    return current(FIT_NAME)


def reads_fit(cached: C) -> C:
    """Register a cached function (``functools.cache``) whose result depends on the fit:
    :func:`update_fit_file` clears it."""
    _readers.append(cached)
    return cached


def clear_fit_caches() -> None:
    """Drop every cached result that read the fit (registered with :func:`reads_fit`)."""
    for cached in _readers:
        cached.cache_clear()


def fit_target(write: bool = False) -> Path:
    """The copy a fit writes: the repository's with ``write`` (a
    :class:`~systolab.errors.UserError` naming ``write`` outside a checkout), else the
    user's. A long fit asks first, so that it fails before it runs."""
    return write_target(FIT_NAME, write=write)


def update_fit_file(values: dict, path: str | Path | None = None, *, write: bool = False) -> Path:
    """Merge ``values`` into the fit the model reads (:func:`fit_file`, or ``path`` when
    given) and write the result atomically to ``path``, else to the repository's copy with
    ``write`` (a :class:`~systolab.errors.UserError` outside a checkout), else to the user's
    copy; drop every cache that read the fit. Returns the file written."""
    target = Path(path) if path else fit_target(write)
    doc = dict(load_yaml(Path(path) if path else fit_file()))
    doc.update(values)
    write_text(target, HEADER + yaml.safe_dump(doc, sort_keys=False, width=100),
               parameter="path" if path else "write" if write else "SYSTOLAB_DATA_DIR")
    clear_fit_caches()
    return target
