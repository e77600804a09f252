"""The store of an exploration: SQLite, one row per evaluated point, each committed in its own transaction.

Each row holds the point's design hash, the design, the model version and the results. A
run killed at any moment loses at most the points being evaluated; rerunning the same
command skips every stored hash, so nothing is evaluated twice and the final set of
points (hence the Pareto front) is the same as an uninterrupted run's. The design hash is
SHA-256 of the canonical JSON of the design and workloads (never Python's ``hash()``).
The deep stage's results are kept in a table of their own, by the same hash.

Runs that share one store share its work: a run claims a point (``claims``: the point's
hash, the claiming host and process) in a transaction before evaluating it, and a point
another live run has claimed is left to that run and read from the store when it lands.
The claim of a run that died is taken over.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ... import __version__, config, dtypes
from ...errors import UserError
from ...files import pid_alive
from ..specs import DATA_DIR
from .space import Space


def design_hash(design: dict, space: Space) -> str:
    """SHA-256 of the canonical JSON of the base, the design, the workloads and the export
    rule date: what the stored metrics depend on (the other constraints are judged when
    the points are read, so changing them re-evaluates nothing)."""
    text = json.dumps({"base": space.base, "design": design, "workloads": list(space.workloads),
                       "rule_date": space.constraints.get("rule_date")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_version() -> str:
    """systolab's version and a hash of the model sources and data that evaluate a point,
    with the configuration classes they derive a design's parameters with."""
    h = hashlib.sha256(__version__.encode())
    here = DATA_DIR.parent                     # the models package: every model source and data file
    files = sorted(f for f in here.rglob("*") if f.is_file() and (f.suffix == ".py" or DATA_DIR in f.parents))
    for f in [*files, Path(config.__file__), Path(dtypes.__file__)]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


class Store:
    """The SQLite store: one row per evaluated design, each in its own transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60)
            with self.db:
                self.db.execute("CREATE TABLE IF NOT EXISTS points (hash TEXT PRIMARY KEY, design TEXT NOT NULL, "
                                "model_version TEXT NOT NULL, result TEXT NOT NULL)")
                self.db.execute("CREATE TABLE IF NOT EXISTS deep (hash TEXT PRIMARY KEY, model_version TEXT NOT NULL, "
                                "result TEXT NOT NULL)")
                self.db.execute("CREATE TABLE IF NOT EXISTS claims (hash TEXT PRIMARY KEY, host TEXT NOT NULL, "
                                "pid INTEGER NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"db: {self.path} is not a systolab store ({exc})", parameter="db") from None

    def hashes(self) -> set[str]:
        return {h for (h,) in self.db.execute("SELECT hash FROM points")}

    def put(self, h: str, design: dict, version: str, result: dict) -> None:
        with self.db:                                   # one transaction per point
            self.db.execute("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?)",
                            (h, json.dumps(design, sort_keys=True), version, json.dumps(result, sort_keys=True)))
            self.db.execute("DELETE FROM claims WHERE hash = ?", (h,))

    def claim(self, hashes: Iterable[str], limit: int) -> tuple[list[str], list[str]]:
        """Claim up to ``limit`` of the points of ``hashes`` that are neither stored nor
        claimed by a live run (the claim of a process gone from this host is taken over),
        in one transaction, so two runs never claim the same point. Returns (the points
        claimed, those found already stored on the way)."""
        me, host = os.getpid(), socket.gethostname()
        won: list[str] = []
        stored: list[str] = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")          # the write lock first: claims are read and set as one
            for h in hashes:
                if len(won) >= limit:
                    break
                if self.db.execute("SELECT 1 FROM points WHERE hash = ?", (h,)).fetchone():
                    stored.append(h)
                    continue
                row = self.db.execute("SELECT host, pid FROM claims WHERE hash = ?", (h,)).fetchone()
                if row is not None and tuple(row) != (host, me) and (row[0] != host or pid_alive(row[1])):
                    continue                            # another live run evaluates it
                self.db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (h, host, me))
                won.append(h)
        return won, stored

    def release(self, hashes: Iterable[str]) -> None:
        """Give back this process's claims on ``hashes`` (a run that stops early)."""
        with self.db:
            self.db.executemany("DELETE FROM claims WHERE hash = ? AND pid = ?", [(h, os.getpid()) for h in hashes])

    def get(self, h: str) -> dict | None:
        row = self.db.execute("SELECT design, model_version, result FROM points WHERE hash = ?", (h,)).fetchone()
        if row is None:
            return None
        return {"design_hash": h, "design": json.loads(row[0]), "model_version": row[1], "result": json.loads(row[2])}

    def points(self, hashes: list[str]) -> list[dict]:
        return [p for p in (self.get(h) for h in hashes) if p is not None]

    def deep(self, h: str) -> dict | None:
        """The deep stage's result for a point, if it ran."""
        row = self.db.execute("SELECT result FROM deep WHERE hash = ?", (h,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_deep(self, h: str, version: str, result: dict) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO deep VALUES (?, ?, ?)", (h, version, json.dumps(result, sort_keys=True)))

    def close(self) -> None:
        self.db.close()


__all__ = ["Store", "design_hash", "model_version"]
