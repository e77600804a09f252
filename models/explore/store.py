"""The store of an exploration: SQLite, one row per evaluated point, each committed in its own transaction.

Each row holds the point's design hash, the design, the model version and the results. A
run killed at any moment loses at most the points being evaluated; rerunning the same
command skips every stored hash, so nothing is evaluated twice and the final set of
points (hence the Pareto front) is the same as an uninterrupted run's. The design hash is
SHA-256 of the canonical JSON of the design and workloads (never Python's ``hash()``).
The deep stage's results are kept in a table of their own, by the same hash.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from ... import __version__, config, dtypes
from ...errors import UserError
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
        except sqlite3.DatabaseError as exc:
            raise UserError(f"db: {self.path} is not a systolab store ({exc})", parameter="db") from None

    def hashes(self) -> set[str]:
        return {h for (h,) in self.db.execute("SELECT hash FROM points")}

    def put(self, h: str, design: dict, version: str, result: dict) -> None:
        with self.db:                                   # one transaction per point
            self.db.execute("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?)",
                            (h, json.dumps(design, sort_keys=True), version, json.dumps(result, sort_keys=True)))

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
