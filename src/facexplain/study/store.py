"""The study's storage: one SQLite file in WAL mode, one transaction per answer.

Why SQLite: a study runs on an operator's laptop or a small server with nothing to install, and
answers must survive a crash. Every answer is its own committed transaction (``synchronous=FULL``
by default, so an acknowledged answer is on disk even after a power cut); the primary key
(participant, phase, pair) makes a resubmitted answer idempotent: the first one stands.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from facexplain.errors import FacexplainError, InputNotFound, InvalidArgument

DB_NAME = "study.sqlite"
# What a pair is for: a real trial, or a catch trial (``study.catch``) shown like the others.
REAL, CATCH_IDENTICAL, CATCH_DIFFERENT = "real", "catch-identical", "catch-different"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs(
  idx INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL, same INTEGER NOT NULL,
  model_score REAL, model_same INTEGER, mining_score REAL, label TEXT,
  kind TEXT NOT NULL DEFAULT 'real');
CREATE TABLE IF NOT EXISTS participants(
  id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, condition TEXT NOT NULL,
  order1 TEXT NOT NULL, order2 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers(
  participant TEXT NOT NULL REFERENCES participants(id), phase INTEGER NOT NULL,
  pair INTEGER NOT NULL REFERENCES pairs(idx), choice INTEGER NOT NULL, ms INTEGER NOT NULL,
  at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY(participant, phase, pair));
"""

# The paper's five choices (after O'Toole et al.): 1-2 count as "same", 3-5 as "different".
SCALES: dict[int, tuple[str, ...]] = {
    5: ("Sure they are the same person", "Think they are the same person",
        "Not sure", "Think they are different people", "Sure they are different people"),
    7: ("Certain same", "Likely same", "Possibly same", "Cannot tell",
        "Possibly different", "Likely different", "Certain different"),
}


def judged_same(choice: int, scale: int) -> bool:
    """Choices before the scale's middle mean "same"; the middle ("not sure") counts as
    different, as in the paper (choices 1 and 2 of 5 are "same")."""
    return choice <= (scale - 1) // 2


class StudyError(FacexplainError):
    """A study request that cannot be served (wrong phase, unknown pair, closed study)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Participant:
    id: str
    token: str
    condition: str
    order1: tuple[int, ...]
    order2: tuple[int, ...]


@dataclass(frozen=True)
class Answer:
    participant: str
    phase: int
    pair: int
    choice: int
    ms: int
    duplicate: bool = False


class StudyStore:
    """A connection to one study's database (open one per thread or request)."""

    def __init__(self, path: Path, durable: bool = True) -> None:
        self.path = path
        self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=30000")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- set-up -------------------------------------------------------------------------
    def init(self, meta: dict[str, str]) -> None:
        self.db.executescript(SCHEMA)
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES(?, ?)", meta.items())

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def scale(self) -> int:
        return int(self.meta.get("scale", "5"))

    def check_admin(self, token: str | None) -> bool:
        """Constant-time comparison of the token's hash with the one stored at creation."""
        stored = self.meta.get("admin_token_sha256", "")
        return bool(token) and hmac.compare_digest(token_hash(token or ""), stored)

    # -- reads --------------------------------------------------------------------------
    def pairs(self) -> list[sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        try:
            return self.db.execute("SELECT * FROM pairs ORDER BY idx").fetchall()
        finally:
            self.db.row_factory = None

    def pair_kinds(self) -> dict[int, str]:
        """idx -> 'real' or a catch kind (a study made before catch trials: all real)."""
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(pairs)")}
        if "kind" not in cols:
            return {int(r[0]): REAL for r in self.db.execute("SELECT idx FROM pairs")}
        return {int(i): str(k) for i, k in self.db.execute("SELECT idx, kind FROM pairs")}

    def pair_files(self, idx: int) -> tuple[str, str]:
        row = self.db.execute("SELECT a, b FROM pairs WHERE idx=?", (idx,)).fetchone()
        if row is None:
            raise StudyError(f"no pair {idx} in this study")
        return str(row[0]), str(row[1])

    def participants(self) -> list[Participant]:
        rows = self.db.execute("SELECT id, token, condition, order1, order2 FROM participants "
                               "ORDER BY condition, id").fetchall()
        return [Participant(r[0], r[1], r[2], tuple(json.loads(r[3])), tuple(json.loads(r[4])))
                for r in rows]

    def participant_by_token(self, token: str) -> Participant | None:
        row = self.db.execute("SELECT id, token, condition, order1, order2 FROM participants "
                              "WHERE token=?", (token,)).fetchone()
        if row is None:
            return None
        return Participant(row[0], row[1], row[2], tuple(json.loads(row[3])),
                           tuple(json.loads(row[4])))

    def answered(self, participant: str) -> dict[tuple[int, int], int]:
        """(phase, pair) -> choice, of this participant only."""
        rows = self.db.execute("SELECT phase, pair, choice FROM answers WHERE participant=?",
                               (participant,)).fetchall()
        return {(int(p), int(i)): int(c) for p, i, c in rows}

    def progress(self) -> dict[str, int]:
        rows = self.db.execute("SELECT participant, COUNT(*) FROM answers GROUP BY participant")
        return {str(p): int(n) for p, n in rows}

    def answers(self) -> Iterator[tuple[str, str, int, int, int, int, str]]:
        """(participant, condition, phase, pair, choice, ms, at) for every stored answer."""
        yield from self.db.execute(
            "SELECT a.participant, p.condition, a.phase, a.pair, a.choice, a.ms, a.at "
            "FROM answers a JOIN participants p ON p.id = a.participant "
            "ORDER BY p.condition, a.participant, a.phase, a.at")

    # -- writes -------------------------------------------------------------------------
    def transaction(self) -> sqlite3.Connection:
        """``with store.transaction():`` — BEGIN IMMEDIATE ... COMMIT (or ROLLBACK)."""
        return _Txn(self.db)  # type: ignore[return-value]

    def add_participant(self, p: Participant) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO participants VALUES(?, ?, ?, ?, ?)",
                            (p.id, p.token, p.condition, json.dumps(p.order1),
                             json.dumps(p.order2)))

    def record(self, who: Participant, phase: int, pair: int, choice: int, ms: int) -> Answer:
        """Store one answer in its own transaction; a repeat returns the stored one unchanged.

        Phase 2 (with help) opens only once every pair of phase 1 is answered.
        """
        scale = self.scale
        if phase not in (1, 2):
            raise InvalidArgument(f"phase must be 1 or 2, got {phase}")
        if not 1 <= choice <= scale:
            raise InvalidArgument(f"choice must be between 1 and {scale}, got {choice}")
        if pair not in who.order1:
            raise InvalidArgument(f"no pair {pair} in this study")
        ms = max(0, min(int(ms), 24 * 3600 * 1000))
        with self.transaction():
            row = self.db.execute("SELECT choice, ms FROM answers WHERE participant=? AND "
                                  "phase=? AND pair=?", (who.id, phase, pair)).fetchone()
            if row is not None:
                return Answer(who.id, phase, pair, int(row[0]), int(row[1]), duplicate=True)
            if phase == 2:
                done = self.db.execute("SELECT COUNT(*) FROM answers WHERE participant=? AND "
                                       "phase=1", (who.id,)).fetchone()[0]
                if done < len(who.order1):
                    raise StudyError("the second round opens after every pair of the first")
            self.db.execute("INSERT INTO answers(participant, phase, pair, choice, ms) "
                            "VALUES(?, ?, ?, ?, ?)", (who.id, phase, pair, choice, ms))
        return Answer(who.id, phase, pair, choice, ms)

    def export_csv(self, out: IO[str]) -> int:
        """Every answer with its pair's truth and the participant's condition; returns rows."""
        scale = self.scale
        truth = {int(r["idx"]): r for r in self.pairs()}
        kinds = self.pair_kinds()
        w = csv.writer(out)
        w.writerow(["participant", "condition", "phase", "pair", "photo_a", "photo_b", "same",
                    "choice", "judged_same", "correct", "ms", "at", "model_score",
                    "model_same", "kind"])
        n = 0
        for who, cond, phase, pair, choice, ms, at in self.answers():
            t = truth[pair]
            said = judged_same(choice, scale)
            w.writerow([who, cond, phase, pair, t["a"], t["b"], int(t["same"]), choice,
                        int(said), int(said == bool(t["same"])), ms, at, t["model_score"],
                        t["model_same"], kinds[pair]])
            n += 1
        return n


class _Txn:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def open_study(folder: Path, durable: bool = True) -> StudyStore:
    """The store of an existing study folder (one line if it is not one)."""
    path = folder / DB_NAME
    if not folder.is_dir():
        raise InputNotFound(f"study folder {folder}: no such directory")
    if not path.is_file():
        raise InputNotFound(f"{folder} is not a study folder (no {DB_NAME}; make one with "
                            "'facexplain study create')")
    store = StudyStore(path, durable)
    if "admin_token_sha256" not in store.meta:
        store.close()
        raise InvalidArgument(f"{path} is not a complete study database")
    return store
