"""The explanation queue of the web app: one worker thread, jobs kept in SQLite.

Why one worker: an explanation is CPU-bound and torch already spreads one over the cores, so
two at once only make both slower; a queue lets concurrent users wait their turn while the
event loop keeps answering page loads and progress polls. Models load once per backbone and
are reused by every later job (``Pipelines``). Jobs are stored (``job_store``) so finished
results outlive a restart for ``retention_s`` and queued work resumes.
"""

from __future__ import annotations

import functools
import logging
import queue
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from facexplain.errors import InvalidArgument
from facexplain.pipeline import FacePipeline
from facexplain.web.admission import release_memory
from facexplain.web.job_model import FINISHED, SHUTDOWN, Job, QueueFull
from facexplain.web.job_run import run_job
from facexplain.web.job_store import JobStore

PipelineFactory = Callable[[str], FacePipeline]
LOG = logging.getLogger("facexplain.web")
ORPHAN_AGE_S = 3600.0  # a job folder without a row this old was left by a crash mid-submit


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

    def warm(self, backbone: str, sample: tuple[Path, Path] | None) -> None:
        """Load the backbone and run the first job's path once (detection, alignment, one
        coarse occlusion map), so the first user does not pay for it."""
        from facexplain.api import explain_pair
        from facexplain.method_info import ExplainOptions

        pipe = self.get(backbone)
        if sample is not None:
            explain_pair(*sample, "occlusion", backbone, ExplainOptions(patch=56, stride=56),
                         pipeline=pipe)

    def put(self, pipe: FacePipeline) -> None:
        """Hand in an already built pipeline (a server warmed up at start, or a test's)."""
        with self._lock:
            self._pipes[pipe.spec.name] = pipe


class ExplainQueue:
    """Runs submitted jobs one at a time in a background thread; every state change is
    stored, finished jobs are swept after ``retention_s``."""

    def __init__(self, pipelines: Pipelines, work_dir: Path, max_waiting: int = 16,
                 retention_s: float = 24 * 3600.0, time_limit_s: float = 300.0,
                 keep_uploads: bool = False) -> None:
        self.pipelines = pipelines
        self.work_dir = work_dir
        self.max_waiting = max_waiting
        self.retention_s = retention_s
        self.time_limit_s = time_limit_s
        self.keep_uploads = keep_uploads
        self.store = JobStore(work_dir)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running: Job | None = None
        self._stopping = False
        self._recent_seconds: list[float] = []
        self._recover()

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="explain-worker",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown: the running job stops at its next tick and resumes after a
        restart when its photos are still there; queued jobs stay queued in the store."""
        self._stopping = True
        running = self._running
        if running is not None:
            running.request_stop(SHUTDOWN, "queued")
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self.store.close()

    def _recover(self) -> None:
        """Load stored jobs: finished ones stay reachable, unfinished ones are queued again
        when their photos are still there, else end with a message. Folders without a row
        (a crash between folder and row) are removed."""
        known: set[str] = set()
        for row in self.store.rows():
            job = Job.from_row(row, self.work_dir / row.id)
            known.add(job.id)
            if job.state in FINISHED:
                self._jobs[job.id] = job
            elif job.request.inputs_exist():
                job.state, job.message = "queued", "resumed after a server restart"
                self._jobs[job.id] = job
                self._waiting.append(job.id)
                self._queue.put(job.id)
            else:
                job.finish("failed", "lost", "this job was lost when the server stopped "
                           "(its photos were already deleted); please submit it again")
                self._jobs[job.id] = job
            self.store.save(job.to_row())
        for folder in self.work_dir.iterdir():
            if folder.is_dir() and folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
        self.sweep()

    # -- requests ---------------------------------------------------------------------------
    def check_capacity(self) -> None:
        """429 before anything of a request is written, when the queue is full."""
        with self._lock:
            waiting = len(self._waiting)
        if waiting >= self.max_waiting:
            raise QueueFull(f"{waiting} explanations are waiting; please try again in a "
                            "minute", self.retry_after_s())

    def retry_after_s(self) -> int:
        """A guess of when a place frees up: the median of the recent jobs' durations."""
        recent = sorted(self._recent_seconds[-20:])
        return max(5, int(recent[len(recent) // 2])) if recent else 30

    def submit(self, job: Job) -> Job:
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self._waiting)} explanations are waiting; please try "
                                "again in a minute", self.retry_after_s())
            self._jobs[job.id] = job
            self._waiting.append(job.id)
        self.store.save(job.to_row())
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

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, a running one at its next tick."""
        job = self.get(job_id)
        if job is None:
            raise InvalidArgument("no such job")
        with self._lock:
            if job.state == "queued" and job_id in self._waiting:
                self._waiting.remove(job_id)
                job.finish("cancelled", "cancelled by the user", "cancelled by the user")
                self._drop_uploads(job)
            elif job.state == "running":
                job.request_stop("cancelled by the user", "cancelled")
        if job.state in FINISHED:
            self.store.save(job.to_row())
        return job

    # -- retention --------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> list[str]:
        """Remove jobs finished more than ``retention_s`` ago (row, folder, memory) and job
        folders without a row older than an hour. Returns the removed ids."""
        gone = self.store.expired(self.retention_s, now)
        for job_id in gone:
            with self._lock:
                self._jobs.pop(job_id, None)
            shutil.rmtree(self.work_dir / job_id, ignore_errors=True)
            self.store.delete(job_id)
        cutoff = (time.time() if now is None else now) - ORPHAN_AGE_S
        with self._lock:
            known = set(self._jobs)
        for folder in self.work_dir.iterdir():
            if (folder.is_dir() and folder.name not in known
                    and folder.stat().st_mtime < cutoff):
                shutil.rmtree(folder, ignore_errors=True)
        return gone

    def _drop_uploads(self, job: Job) -> None:
        if job.request.uploaded and not self.keep_uploads:
            for path in (job.request.photo_a, job.request.photo_b):
                if path.parent == job.out_dir:
                    path.unlink(missing_ok=True)

    # -- the worker -------------------------------------------------------------------------
    def _work(self) -> None:
        last_sweep = time.monotonic()
        while True:
            try:
                job_id = self._queue.get(timeout=60.0)
            except queue.Empty:
                job_id = ""
            if job_id is None or self._stopping:
                return
            if time.monotonic() - last_sweep > 60.0:
                self.sweep()
                last_sweep = time.monotonic()
            with self._lock:
                job = self._jobs.get(job_id)
                if job_id in self._waiting:
                    self._waiting.remove(job_id)
            if job is None or job.state != "queued":
                continue
            self._running = job
            started = time.perf_counter()
            # Running from here on, so a cancel during the model's load stops it right after.
            job.state, job.message = "running", f"loading the model {job.request.backbone} ..."
            try:
                pipe = self.pipelines.get(job.request.backbone)
                run_job(job, pipe, self.time_limit_s, functools.partial(self._drop_uploads, job))
            except Exception as exc:  # a model that cannot load: the job says so
                LOG.exception("job %s could not start", job.id)
                job.finish("failed", "failed", f"the model could not be loaded "
                           f"({type(exc).__name__}); the operator can find it in the log")
            finally:
                self._running = None
                job.seconds = round(time.perf_counter() - started, 2)
                self._recent_seconds.append(job.seconds)
                self.store.save(job.to_row())
                release_memory()  # a large photo's detector buffers go back to the system

