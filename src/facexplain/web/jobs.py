"""The explanation queue of the web app: one worker thread, jobs polled by id.

Why one worker: an explanation is CPU-bound and torch already spreads one over the cores, so
two at once only make both slower; a queue lets concurrent users wait their turn while the
event loop keeps answering page loads and progress polls. Models load once per backbone and
are reused by every later job (``Pipelines``).
"""

from __future__ import annotations

import queue
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from facexplain.errors import FacexplainError, InvalidArgument
from facexplain.method_info import ExplainOptions
from facexplain.pipeline import FacePipeline

State = Literal["queued", "running", "done", "failed"]
PipelineFactory = Callable[[str], FacePipeline]


class Pipelines:
    """One ``FacePipeline`` per backbone, built on first use and kept for the process."""

    def __init__(self, factory: PipelineFactory = FacePipeline) -> None:
        self._factory = factory
        self._pipes: dict[str, FacePipeline] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many pipelines were built (a test checks models load once)

    def get(self, backbone: str) -> FacePipeline:
        with self._lock:
            if backbone not in self._pipes:
                self._pipes[backbone] = self._factory(backbone)
                self.loads += 1
            return self._pipes[backbone]

    def put(self, pipe: FacePipeline) -> None:
        """Hand in an already built pipeline (a server warmed up at start, or a test's)."""
        with self._lock:
            self._pipes[pipe.spec.name] = pipe


@dataclass(frozen=True)
class ExplainRequest:
    """What one submitted form asks for; the photos are already saved in the job's folder."""

    photo_a: Path
    photo_b: Path
    backbone: str
    methods: tuple[str, ...]
    options: ExplainOptions
    label: str = ""
    names: tuple[str, str] = ("", "")  # what the report calls the photos (not the temp paths)


@dataclass
class Job:
    """One explanation request and how far it got (read by the progress poll)."""

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
    seconds: float | None = None

    def to_json(self, position: int | None = None) -> dict[str, object]:
        return {"id": self.id, "state": self.state, "progress": round(self.progress, 3),
                "message": self.message, "error": self.error, "verdict": self.verdict,
                "files": self.files, "queue_position": position, "seconds": self.seconds,
                "label": self.request.label}


class QueueFull(FacexplainError):
    """Too many explanations waiting; the client should try again later (HTTP 429)."""


def new_job_id() -> str:
    """An unguessable id: a job's folder and results are reachable only through it."""
    return secrets.token_urlsafe(12)


class ExplainQueue:
    """Runs submitted explanations one at a time in a background thread."""

    def __init__(self, pipelines: Pipelines, max_waiting: int = 16, keep: int = 100) -> None:
        self.pipelines = pipelines
        self.max_waiting = max_waiting
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="explain-worker",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def submit(self, job: Job) -> Job:
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self._waiting)} explanations are waiting; try again soon")
            self._jobs[job.id] = job
            self._waiting.append(job.id)
            self._forget_old()
        self._queue.put(job.id)
        self.start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job_id: str) -> int | None:
        """Jobs ahead of this one (0: next or running), None once it has started."""
        with self._lock:
            return self._waiting.index(job_id) if job_id in self._waiting else None

    def _forget_old(self) -> None:
        """Keep the newest ``keep`` finished jobs; older results leave memory and disk."""
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
        for job in finished[: max(0, len(finished) - self.keep)]:
            self._jobs.pop(job.id, None)
            shutil.rmtree(job.out_dir, ignore_errors=True)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job_id in self._waiting:
                    self._waiting.remove(job_id)
            if job is not None:
                self._run(job)

    def _run(self, job: Job) -> None:
        from facexplain.api import explain_pair
        from facexplain.report.html import confidence_text, verdict_text, write_explanation

        started = time.perf_counter()
        req = job.request
        steps = len(req.methods) + 2  # models + verdict, each method, the report

        def log(message: str) -> None:  # explain_pair calls it before each method
            job.progress = min(job.progress + 1 / steps, 1.0)
            job.message = message

        job.state = "running"
        job.message = f"loading {req.backbone} and aligning the faces ..."
        try:
            pipe = self.pipelines.get(req.backbone)
            result = explain_pair(req.photo_a, req.photo_b, req.methods, req.backbone,
                                  req.options, pipeline=pipe, log=log)
            job.message = "drawing the report ..."
            job.progress = (steps - 1) / steps
            if all(req.names):
                shown = replace(result.verdict, path_a=req.names[0], path_b=req.names[1])
                result = replace(result, verdict=shown)
            write_explanation(result, job.out_dir)
            v = result.verdict
            job.verdict = {**v.to_dict(), "text": verdict_text(v),
                           "confidence_text": confidence_text(v.confidence)}
            job.files = sorted(p.name for p in job.out_dir.iterdir()
                               if p.is_file() and not p.name.startswith("upload_"))
            job.state, job.progress, job.message = "done", 1.0, "done"
        except FacexplainError as exc:
            job.state, job.error, job.message = "failed", " ".join(str(exc).split()), "failed"
        except Exception as exc:  # a bug: say so in the page instead of a silent dead job
            job.state, job.message = "failed", "failed"
            job.error = f"internal error ({type(exc).__name__}); see the server log"
            import logging

            logging.getLogger("facexplain.web").exception("explanation %s failed", job.id)
        finally:
            job.seconds = round(time.perf_counter() - started, 2)


def parse_patch(value: int, name: str) -> int:
    """Occlusion sizes from a form: small positive integers (the library checks the rest)."""
    if not 1 <= value <= 112:
        raise InvalidArgument(f"{name} must be between 1 and 112 pixels, got {value}")
    return value
