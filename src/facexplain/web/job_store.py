"""The web app's jobs in SQLite (WAL), beside their folders, so a restart loses nothing.

Why SQLite: the same reason as the study store (``study.store``): nothing to install, and a
committed row survives a SIGKILL. Only state changes are written (queued, running, finished);
the progress of a running job lives in memory and is polled from there.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "jobs.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs(
  id TEXT PRIMARY KEY, state TEXT NOT NULL, request TEXT NOT NULL, created REAL NOT NULL,
  finished REAL, message TEXT NOT NULL, error TEXT, verdict TEXT, files TEXT NOT NULL,
  seconds REAL, owner TEXT);
"""


@dataclass(frozen=True)
class JobRow:
    """One job as stored: ``request`` and ``verdict`` are JSON objects, ``files`` names."""

    id: str
    state: str
    request: dict[str, object]
    created: float
    finished: float | None
    message: str
    error: str | None
    verdict: dict[str, object] | None
    files: list[str]
    seconds: float | None
    owner: str | None = None  # the hash of the API key that made the job (None: no keys)


class JobStore:
    """Thread-safe access to ``jobs.sqlite`` in the web app's work folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / DB_NAME
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "owner" not in columns:  # a store of an earlier version: its jobs have no owner
            self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save(self, row: JobRow) -> None:
        """Insert or replace one job (one committed transaction)."""
        values = (row.id, row.state, json.dumps(row.request), row.created, row.finished,
                  row.message, row.error,
                  None if row.verdict is None else json.dumps(row.verdict),
                  json.dumps(row.files), row.seconds, row.owner)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO jobs (id, state, request, created, finished,"
                             " message, error, verdict, files, seconds, owner) VALUES "
                             "(?,?,?,?,?,?,?,?,?,?,?)", values)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def rows(self) -> Iterator[JobRow]:
        """Every stored job, oldest first."""
        with self._lock:
            raw = self._db.execute("SELECT id, state, request, created, finished, message, "
                                   "error, verdict, files, seconds, owner FROM jobs "
                                   "ORDER BY created").fetchall()
        for r in raw:
            yield JobRow(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6],
                         None if r[7] is None else json.loads(r[7]), json.loads(r[8]), r[9],
                         r[10])

    def expired(self, retention_s: float, now: float | None = None) -> list[str]:
        """Ids of jobs that finished more than ``retention_s`` ago."""
        cutoff = (time.time() if now is None else now) - retention_s
        with self._lock:
            raw = self._db.execute("SELECT id FROM jobs WHERE finished IS NOT NULL AND "
                                   "finished < ?", (cutoff,)).fetchall()
        return [r[0] for r in raw]
