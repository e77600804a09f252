"""Where independent jobs run: local processes, or a Dask distributed cluster.

``local`` (the default) runs ``jobs`` worker processes on this machine (in this process
when ``jobs`` is 1). ``dask://HOST:PORT`` sends the jobs to the workers of a running Dask
scheduler (``dask scheduler`` and ``dask worker tcp://HOST:PORT`` on the cluster; a
``tcp://`` address works too). Why Dask and not Ray: its wheels are pure Python (a few
MB, seconds to install on a 2-core CI machine, where Ray's core is a 70 MB native
wheel); it runs a local cluster in-process for tests; and its futures API is the shape
of this work (map the jobs, collect results as they complete, in one process that
writes the store).

Results come back to the calling process in the order they complete, tagged with the
job's index: whoever writes them (the exploration's store) stays the only writer.
Workers must run the same systolab as the caller: :func:`open_executor` checks the
workers' model version against its own and refuses a cluster that differs.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from .checks import check_int
from .errors import UserError


def parse_executor(spec: str | None) -> tuple[str, str | None]:
    """``(kind, address)`` of an executor spec; errors name ``executor``."""
    if spec is None or spec == "local":
        return "local", None
    if not isinstance(spec, str):
        raise UserError(f"executor: expected local or dask://HOST:PORT, not {spec!r}", parameter="executor")
    scheme, sep, rest = spec.partition("://")
    if scheme == "ray":
        raise UserError("executor: systolab runs on Dask distributed, not Ray (see the README, 'Executors'); start "
                        "`dask scheduler` and `dask worker`, and pass dask://HOST:PORT", parameter="executor")
    if scheme not in ("dask", "tcp") or not sep or ":" not in rest or not rest.rsplit(":", 1)[1].isdigit():
        raise UserError(f"executor: expected local or dask://HOST:PORT, not {spec!r}", parameter="executor")
    return "dask", f"tcp://{rest}"


#: How often a local worker looks whether the process that started it is still there, s.
PARENT_POLL_S = 0.5


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _die_with_parent() -> None:
    """A local worker's initializer: exit as soon as its parent is gone. A killed run
    (``kill -9``, or a signal Python does not turn into an exception) never reaches the
    pool's shutdown, and its workers would otherwise wait on the job queue forever."""
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


@dataclass
class Executor:
    """An open executor: :meth:`imap` runs a function over items on its workers."""

    kind: str
    workers: int
    address: str | None = None
    _pool: Any = field(default=None, repr=False)

    def imap(self, fn: Callable, items: Iterable) -> Iterator[tuple[int, Any]]:
        """``(index, fn(item))`` for every item, in the order the jobs complete. ``fn``
        must be a module-level function (it is pickled to the workers)."""
        items = list(items)
        if not items:
            return
        if self._pool is None:
            for i, item in enumerate(items):
                yield i, fn(item)
        elif self.kind == "local":
            futures = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
            try:
                for fut in as_completed(futures):
                    yield futures[fut], fut.result()
            finally:
                for fut in futures:
                    fut.cancel()
        else:
            from distributed import as_completed as dask_completed  # noqa: PLC0415  lazy: an optional dependency (systolab[cluster])

            futures = self._pool.map(fn, items, pure=False)
            index = {fut.key: i for i, fut in enumerate(futures)}
            try:
                for fut, result in dask_completed(futures, with_results=True):
                    yield index[fut.key], result
            finally:
                self._pool.cancel(futures)


@contextlib.contextmanager
def open_executor(spec: str | None = "local", *, jobs: int = 1, version: Callable[[], str] | None = None
                  ) -> Iterator[Executor]:
    """An :class:`Executor` for ``spec`` (``local`` with ``jobs`` processes, or
    ``dask://HOST:PORT``); with ``version`` (a module-level function), every Dask worker
    must return what it returns here."""
    kind, address = parse_executor(spec)
    jobs = check_int("jobs", jobs, hi=256)
    if kind == "local":
        if jobs == 1:
            yield Executor("local", 1)
            return

        with ProcessPoolExecutor(jobs, initializer=_die_with_parent) as pool:
            yield Executor("local", jobs, None, pool)
        return
    try:
        from distributed import Client  # noqa: PLC0415  lazy: an optional dependency (systolab[cluster])
    except ImportError:
        raise UserError("executor: Dask distributed is not installed; pip install 'systolab[cluster]' "
                        "(or distributed)", parameter="executor") from None
    try:
        client = Client(address, timeout="15s")
    except (OSError, TimeoutError) as exc:
        raise UserError(f"executor: cannot reach the Dask scheduler at {address} ({exc})", parameter="executor") from None
    try:
        try:
            client.wait_for_workers(1, timeout=30)
        except TimeoutError:
            raise UserError(f"executor: the Dask scheduler at {address} has no workers", parameter="executor") from None
        if version is not None:
            mine = version()
            theirs = client.run(version)
            other = {w: v for w, v in theirs.items() if v != mine}
            if other:
                w, v = next(iter(other.items()))
                raise UserError(f"executor: worker {w} runs systolab {v}, this process {mine}: install the same "
                                "systolab on every worker", parameter="executor")
        yield Executor("dask", len(client.scheduler_info()["workers"]), address, client)
    finally:
        client.close()


__all__ = ["Executor", "open_executor", "parse_executor"]
