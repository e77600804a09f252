"""Crash-safe files and folders, and reading user files with clear errors.

Everything systolab writes goes through here: a file is written to a temporary sibling
and renamed into place; an output folder is built in a staging folder beside it and
swapped in when complete, so a run killed at any moment leaves either the old folder or
the new one, never a mix. Staging folders of killed runs carry their process id and are
removed by the next run once that process is gone.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UserError

#: Marks a folder as written by systolab (an output folder systolab may replace).
MARKER = ".systolab"
# what killed runs leave behind: <kind>-<pid>-<random>, possibly after ".<name>."
_STALE = re.compile(r"(?:^|\.)(?:staging|old|tmp|build|run|runtime|synth)-(\d+)-[^.]*$")


def umask() -> int:
    """The process's umask: from /proc where Linux shows it, else read by setting it and
    putting it back (a moment in which another thread would create files with 022)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The longest name (one part of a path) and the longest path the operating system takes,
#: in bytes (Linux's NAME_MAX and PATH_MAX less its terminating zero).
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4095
#: Kernel pseudo-file systems: neither user data to read nor a place to write results.
PSEUDO_ROOTS = ("/proc", "/sys")
#: The largest user file systolab reads (a workload CSV, a configuration, a chips or space file).
MAX_READ_BYTES = 64 << 20


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text)} characters)"


def user_path(value: str | os.PathLike, *, parameter: str) -> Path:
    """The one check every path a user gives goes through before systolab looks at it,
    reads it or writes it: a non-empty string (or path), no NUL byte, no name longer
    than :data:`NAME_MAX_BYTES` and no path longer than :data:`PATH_MAX_BYTES` (where the
    operating system would raise "File name too long"), and not inside ``/proc`` or
    ``/sys``. Anything else is a :class:`UserError` naming ``parameter``. Returns the
    path, ``~`` expanded."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise UserError(f"{parameter}: expected a path, not {value!r}", parameter=parameter)
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{parameter}: give a path, not {text!r}", parameter=parameter)
    if "\x00" in text:
        raise UserError(f"{parameter}: a path cannot hold a NUL character: {_shown(text)}", parameter=parameter)
    path = Path(text).expanduser()
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX_BYTES:
            raise UserError(f"{parameter}: a name in {_shown(text)} is {len(os.fsencode(part))} bytes long; the file "
                            f"system takes at most {NAME_MAX_BYTES}", parameter=parameter)
    absolute = os.path.abspath(path)
    if len(os.fsencode(absolute)) > PATH_MAX_BYTES:
        raise UserError(f"{parameter}: {_shown(text)} is {len(os.fsencode(absolute))} bytes long as a full path; the "
                        f"operating system takes at most {PATH_MAX_BYTES}", parameter=parameter)
    for where in {absolute, os.path.realpath(path)}:
        for root in PSEUDO_ROOTS:
            if where == root or where.startswith(root + os.sep):
                raise UserError(f"{parameter}: {_shown(text)} is in {root}, a kernel pseudo-file system, not a place "
                                "for systolab's files", parameter=parameter)
    return path


def path_kind(value: str | os.PathLike, *, parameter: str) -> str | None:
    """What is at a user's path (checked by :func:`user_path`): ``"file"``, ``"folder"``,
    ``"other"`` (a device, a pipe, a socket) or None (nothing); a path that cannot be
    looked at (permission, a loop of links) is a :class:`UserError` naming ``parameter``."""
    path = user_path(value, parameter=parameter)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UserError(f"{parameter}: cannot look at {_shown(str(value))}: {exc.strerror or exc}",
                        parameter=parameter) from None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def is_user_file(value: str | os.PathLike, *, parameter: str) -> bool:
    """Whether a user's path (checked by :func:`user_path`) is a regular file: for
    arguments that take a name or a file (``--workload``, ``--chip``, ``--device``)."""
    return path_kind(value, parameter=parameter) == "file"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(folder: Path, prefix: str = "") -> None:
    """Remove leftovers of killed runs in ``folder``: entries named
    ``[prefix]<kind>-<pid>-...`` whose process no longer exists."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        m = _STALE.search(entry.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fd, 0o666 & ~umask())         # mkstemp makes it 0600: honour the umask as open() does
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def read_text(path: str | Path, *, parameter: str) -> str:
    """A user's text file as UTF-8; a missing, unreadable or non-UTF-8 file is a
    :class:`UserError` naming ``parameter``."""
    kind = path_kind(path, parameter=parameter)
    path = user_path(path, parameter=parameter)
    if kind is None:
        raise UserError(f"{parameter}: no such file: {_shown(str(path))}", parameter=parameter)
    if kind != "file":
        raise UserError(f"{parameter}: {_shown(str(path))} is a {'folder' if kind == 'folder' else 'special file'}, "
                        "not a file", parameter=parameter)
    try:
        if (size := path.stat().st_size) > MAX_READ_BYTES:
            raise UserError(f"{parameter}: {_shown(str(path))} is {size / 2**20:.0f} MiB; systolab reads files of at "
                            f"most {MAX_READ_BYTES >> 20} MiB", parameter=parameter)
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{parameter}: {path} is not UTF-8 text (byte {exc.start}: {exc.reason})",
                        parameter=parameter) from None
    except OSError as exc:
        raise UserError(f"{parameter}: cannot read {path}: {exc.strerror}", parameter=parameter) from None


def check_output_folder(out: str | Path, *, parameter: str = "out") -> Path:
    """``out`` as a folder systolab may (re)write: not empty text, not a file, not a
    folder of someone else's files, inside a folder that can be created and written."""
    if out is None or str(out).strip() == "":
        raise UserError(f"{parameter}: give a folder name (an empty path would write into the current folder)",
                        parameter=parameter)
    path = Path(os.path.abspath(user_path(out, parameter=parameter)))
    kind = path_kind(path, parameter=parameter)
    if kind not in (None, "folder"):
        raise UserError(f"{parameter}: {out} is a file, not a folder", parameter=parameter)
    here = Path.cwd().absolute()
    if path == here or path in here.parents:
        # the output folder is swapped in whole: never the folder the user stands in
        raise UserError(f"{parameter}: {out} is the current folder or holds it; name a new folder inside it, "
                        "e.g. out/NAME", parameter=parameter)
    if kind == "folder" and not (path / MARKER).exists():
        try:
            foreign = any(path.iterdir())
        except OSError as exc:
            raise UserError(f"{parameter}: cannot read {out}: {exc.strerror}", parameter=parameter) from None
        if foreign:
            raise UserError(f"{parameter}: {out} holds files systolab did not write; choose a new or empty folder",
                            parameter=parameter)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{parameter}: {parent} is a file, so {out} cannot be a folder", parameter=parameter)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"{parameter}: {parent} is not writable", parameter=parameter)
            break
    return path


@contextlib.contextmanager
def staged_folder(out: str | Path, *, parameter: str = "out", what: str = "") -> Iterator[Path]:
    """Build an output folder in a staging folder beside it; on success swap it in.

    Files whose bytes did not change keep their old modification time (build tools that
    watch the folder see only real changes). On any error the staging folder is removed
    and ``out`` is left as it was.
    """
    path = check_output_folder(out, parameter=parameter)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{parameter}: cannot create {path.parent}: {exc.strerror}", parameter=parameter) from None
    sweep_stale(path.parent, f".{path.name}.")
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging-{os.getpid()}-", dir=path.parent))
    except OSError as exc:
        raise UserError(f"{parameter}: cannot write in {path.parent}: {exc.strerror or exc}", parameter=parameter) from None
    stage.chmod(0o777 & ~umask())                   # mkdtemp makes it 0700: honour the umask as mkdir does
    try:
        yield stage
        (stage / MARKER).write_text(json.dumps({"written_by": "systolab", "what": what}) + "\n")
        old = None
        if path.exists():
            for f in stage.rglob("*"):
                prev = path / f.relative_to(stage)
                if f.is_file() and prev.is_file() and prev.stat().st_size == f.stat().st_size \
                        and prev.read_bytes() == f.read_bytes():
                    st = prev.stat()
                    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
            old = path.parent / f".{path.name}.old-{os.getpid()}-{stage.name[-8:]}"
            os.rename(path, old)
        os.rename(stage, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def cache_root() -> Path:
    """The build cache: ``$SYSTOLAB_CACHE``, else ``$XDG_CACHE_HOME/systolab`` or
    ``~/.cache/systolab``; created on first use. A path that cannot be a writable folder
    is a :class:`UserError` naming ``SYSTOLAB_CACHE``."""
    given = os.environ.get("SYSTOLAB_CACHE")
    root = Path(given or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                      "systolab")).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"SYSTOLAB_CACHE: cannot use {root} as the build cache: {exc.strerror or exc}",
                        parameter="SYSTOLAB_CACHE") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"SYSTOLAB_CACHE: {root} is not writable", parameter="SYSTOLAB_CACHE")
    return root


def data_root() -> Path:
    """The user's data folder, where runs write their records and fits (never the
    installed package): ``$SYSTOLAB_DATA_DIR``, else ``$XDG_DATA_HOME/systolab`` or
    ``~/.local/share/systolab``. Not created here: readers only look, and
    :func:`atomic_write_bytes` creates the folder on the first write."""
    given = os.environ.get("SYSTOLAB_DATA_DIR")
    return Path(given or os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"),
                                      "systolab")).expanduser()


def default_out(name: str) -> Path:
    """``out/<name>`` of the systolab clone the working directory is in (a notebook in
    ``notebooks/`` writes to the repository's ``out/``), else ``./out/<name>``."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise UserError(f"name: a plain folder name, not {name!r}")
    here = Path.cwd().absolute()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "systolab" / "__init__.py").is_file():
            return folder / "out" / name
    return here / "out" / name


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value
