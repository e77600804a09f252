"""Records and fits that runs write (``validation.yaml``, ``gpu_fit.yaml``): which copy a
reader takes, and where a writer puts its copy.

The package ships a copy of each in ``models/data``. Nothing writes into the installed
package at run time: a run writes the user's copy, in :func:`~systolab.files.data_root`
(``$SYSTOLAB_DATA_DIR``, else ``$XDG_DATA_HOME/systolab`` or ``~/.local/share/systolab``),
unless it is asked to ``--write`` the repository's copy, which only a checkout has
(:func:`checkout_root`).

Reading rule: a reader takes the user's copy when it exists and is newer (modification
time) than the shipped one, else the shipped one (:func:`current`). A newer shipped copy
(a pull, an upgrade) thus wins over an old user copy.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..files import atomic_write_text, data_root
from .specs import DATA_DIR, load_yaml

#: The last recorded run of each ``systolab validate`` (``core``, ``chip``).
VALIDATION_RECORD = "validation.yaml"


def shipped(name: str) -> Path:
    """The package's copy of ``name`` (``models/data``)."""
    return DATA_DIR / name


def user_copy(name: str) -> Path:
    """The user's copy of ``name`` (in :func:`~systolab.files.data_root`; may not exist)."""
    return data_root() / name


def current(name: str) -> Path:
    """The copy of ``name`` readers take: the user's when it exists and is newer than the
    shipped one, else the shipped one."""
    mine, theirs = user_copy(name), shipped(name)
    try:
        mine_ns = mine.stat().st_mtime_ns
    except OSError:
        return theirs
    try:
        return mine if mine_ns > theirs.stat().st_mtime_ns else theirs
    except OSError:
        return mine


def checkout_root(package_dir: Path | None = None) -> Path | None:
    """The repository root when the models package (``package_dir``, default this one)
    is a checkout's source: its parent holds ``pyproject.toml`` beside ``models/`` and
    lies in a git work tree (a ``.git`` in it or above). None for an installed package."""
    package_dir = Path(package_dir or DATA_DIR.parent).resolve()
    root = package_dir.parent
    if package_dir.name != "models" or not (root / "pyproject.toml").is_file():
        return None
    return root if any((folder / ".git").exists() for folder in (root, *root.parents)) else None


def write_target(name: str, *, write: bool, parameter: str = "write") -> Path:
    """Where a run writes ``name``: the repository's copy with ``write`` (a
    :class:`UserError` naming ``parameter`` outside a checkout), else the user's copy."""
    if not write:
        return user_copy(name)
    root = checkout_root()
    if root is None:
        raise UserError(f"{parameter}: writes the repository's {name}, which only a git checkout of systolab has "
                        f"(this package is installed at {DATA_DIR.parent}); leave it out to write your own copy in "
                        f"{data_root()}", parameter=parameter)
    return root / "models" / "data" / name


def write_text(path: Path, text: str, *, parameter: str = "SYSTOLAB_DATA_DIR") -> Path:
    """Write ``text`` to ``path`` atomically; a folder that cannot be written is a
    :class:`UserError` naming ``parameter`` (what chose the folder)."""
    try:
        return atomic_write_text(path, text)
    except OSError as exc:
        raise UserError(f"{parameter}: cannot write {path}: {exc.strerror or exc}", parameter=parameter) from None


def record_file() -> Path:
    """The validation record readers take (:func:`current` of ``validation.yaml``): the last
    recorded run of each validation."""
    return current(VALIDATION_RECORD)


def recorded(kind: str, path: Path | None = None) -> dict | None:
    """The recorded run of ``kind`` (``core`` or ``chip``) in ``path`` (default
    :func:`record_file`), or None."""
    target = path or record_file()
    return dict(load_yaml(target)).get(kind) if target.exists() else None
