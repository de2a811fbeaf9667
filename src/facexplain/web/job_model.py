"""What a web job is: the request, its state, and how both are stored and shown.

Why apart from the queue: the store, the queue, the pages and the JSON API all read jobs; the
queue only decides when they run.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, cast

from facexplain.errors import FacexplainError
from facexplain.method_info import ExplainOptions
from facexplain.types import VerdictOptions
from facexplain.web.job_store import JobRow

State = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[str, ...] = ("done", "failed", "cancelled")
SHUTDOWN = "the server stopped during this job"


class QueueFull(FacexplainError):
    """Too many explanations waiting; the client should try again later (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class JobStopped(Exception):
    """Raised inside a running job to end it early: cancel, time limit or shutdown."""


def new_job_id() -> str:
    """An unguessable id: a job's folder and results are reachable only through it."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class ExplainRequest:
    """What one submission asks for. ``uploaded``: the photos are the client's uploads in the
    job's folder (deleted once the faces are aligned), not files of this machine (LFW)."""

    photo_a: Path
    photo_b: Path
    backbone: str
    methods: tuple[str, ...]  # empty: verify only
    options: ExplainOptions
    label: str = ""
    names: tuple[str, str] = ("", "")  # what the report calls the photos (not the temp paths)
    uploaded: bool = False
    verdict: VerdictOptions = VerdictOptions()  # the verdict's options, as ``verify`` takes

    def to_json(self) -> dict[str, object]:
        return {"photo_a": str(self.photo_a), "photo_b": str(self.photo_b),
                "backbone": self.backbone, "methods": list(self.methods),
                "options": {k: list(v) if isinstance(v, tuple) else v  # method options
                            for k, v in self.options.values.items()},
                "label": self.label, "names": list(self.names), "uploaded": self.uploaded,
                "verdict": asdict(self.verdict)}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> ExplainRequest:
        names = [str(n) for n in cast(list[object], d.get("names", ["", ""]))]
        methods = cast(list[object], d["methods"])
        return cls(Path(str(d["photo_a"])), Path(str(d["photo_b"])), str(d["backbone"]),
                   tuple(str(m) for m in methods),
                   _stored_options(d),
                   str(d.get("label", "")), (names[0], names[1]), bool(d.get("uploaded")),
                   _verdict_options(d.get("verdict")))

    def inputs_exist(self) -> bool:
        return self.photo_a.is_file() and self.photo_b.is_file()


def _stored_options(d: dict[str, object]) -> ExplainOptions:
    """A stored request's method options, by name (a job of an earlier version stored only
    ``patch`` and ``stride``, each at the top level)."""
    stored = d.get("options")
    if not isinstance(stored, dict):
        stored = {k: d[k] for k in ("patch", "stride") if k in d}
    return ExplainOptions(values={str(k): tuple(v) if isinstance(v, list) else v
                                  for k, v in stored.items()})


def _verdict_options(stored: object) -> VerdictOptions:
    """A stored request's verdict options (none stored: a job of an earlier version)."""
    if not isinstance(stored, dict):
        return VerdictOptions()
    max_error, population = stored.get("max_error"), stored.get("population")
    prior_odds = stored.get("prior_odds")
    return VerdictOptions(None if max_error is None else float(max_error),
                          None if population is None else str(population),
                          None if prior_odds is None else float(prior_odds))


@dataclass
class Job:
    """One request and how far it got (read by the progress poll; state changes are stored)."""

    id: str
    request: ExplainRequest
    out_dir: Path
    state: State = "queued"
    progress: float = 0.0
    message: str = "waiting in the queue"
    error: str | None = None
    verdict: dict[str, object] | None = None
    files: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    finished: float | None = None
    seconds: float | None = None
    eta_s: float | None = None
    # Seconds per stage (decode, queued, detect_align, maps, report), for the latency bench.
    timings: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None  # set by cancel, shutdown: the worker stops at its next tick
    stop_state: State = "failed"  # the state a stopped job ends in
    owner: str | None = None  # the hash of the API key that made it (``web.access``)

    def request_stop(self, reason: str, state: State) -> None:
        self.stop_reason, self.stop_state = reason, state

    def to_json(self, position: int | None = None) -> dict[str, object]:
        return {"id": self.id, "state": self.state, "progress": round(self.progress, 3),
                "message": self.message, "error": self.error, "verdict": self.verdict,
                "files": self.files, "queue_position": position, "seconds": self.seconds,
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
                "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "label": self.request.label, "backbone": self.request.backbone,
                "methods": list(self.request.methods)}

    def to_row(self) -> JobRow:
        return JobRow(self.id, self.state, self.request.to_json(), self.created, self.finished,
                      self.message, self.error, self.verdict, self.files, self.seconds,
                      self.owner)

    @classmethod
    def from_row(cls, row: JobRow, out_dir: Path) -> Job:
        return cls(row.id, ExplainRequest.from_json(row.request), out_dir,
                   row.state, 1.0 if row.state == "done" else 0.0,  # type: ignore[arg-type]
                   row.message, row.error, row.verdict, row.files, row.created, row.finished,
                   row.seconds, owner=row.owner)

    def finish(self, state: State, message: str, error: str | None = None) -> None:
        self.state, self.message, self.error = state, message, error
        self.finished, self.eta_s = time.time(), None
        if state == "done":
            self.progress = 1.0
