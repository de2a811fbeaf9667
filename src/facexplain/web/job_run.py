"""Running one web job: verify or explain, report, progress with an estimate, early stops.

Why a listener: the explainers report every batch through ``facexplain.progress`` (and every
pair score and first-use measurement checks in there), so each report moves the page's bar,
updates "about N s left", and is the point where a cancel, the job's time limit or a server
shutdown stops the work (``JobStopped``) within seconds. A job never trains a head: it runs
inside ``training_forbidden``, so a head missing after the up-front check fails in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from facexplain.errors import FacexplainError
from facexplain.pipeline import FacePipeline
from facexplain.progress import reporting_to
from facexplain.train.first_use import training_forbidden
from facexplain.web.job_model import Job, JobStopped

LOG = logging.getLogger("facexplain.web")


class JobProgress:
    """Turns (step, done, total) reports into the job's bar, message and estimate."""

    def __init__(self, job: Job, time_limit_s: float, on_aligned: Callable[[], None]) -> None:
        self.job = job
        self.limit = time_limit_s
        self.started = time.monotonic()
        self.steps = len(job.request.methods) + 2  # align + verdict, each method, the report
        self.step = 0
        self.step_started = self.started
        self.on_aligned = on_aligned

    def check(self) -> None:
        if self.job.stop_reason is not None:
            raise JobStopped(self.job.stop_reason)
        if time.monotonic() - self.started > self.limit:
            raise JobStopped(f"stopped after {self.limit:.0f} s, the time limit of one job "
                             "here; try larger patches and strides, fewer methods, or the "
                             "command line")

    def next_step(self, message: str) -> None:
        """explain_pair calls this before each method (the faces are aligned by then)."""
        self.check()
        if self.step == 0:
            self.job.timings["detect_align"] = time.monotonic() - self.started
            self.on_aligned()
        self.step += 1
        self.step_started = time.monotonic()
        self.job.progress = max(self.job.progress, self.step / self.steps)
        self.job.message = message

    def __call__(self, what: str, done: int, total: int) -> None:
        self.check()
        if total <= 0:  # a check-in without a count: say what it does, when it says
            if what:
                self.job.message = f"{what} ..."
            return
        frac = min(done / total, 1.0)
        job = self.job
        job.progress = max(job.progress, (self.step + frac) / self.steps)
        spent = time.monotonic() - self.step_started
        left = spent * (1 - frac) / frac if frac >= 0.02 else None
        job.eta_s = left
        about = f", about {left:.0f} s left" if left is not None else ""
        job.message = f"{what}: {done} of {total}{about}"


def run_job(job: Job, pipe: FacePipeline, time_limit_s: float,
            drop_uploads: Callable[[], None]) -> None:
    """Run ``job`` to an end state; the uploads are dropped as soon as the faces are aligned."""
    from facexplain.api import explain_pair, verify
    from facexplain.confidence.likelihood import evidence_lines
    from facexplain.report.html import confidence_text, verdict_text, write_explanation

    req = job.request
    progress = JobProgress(job, time_limit_s, drop_uploads)
    job.timings["queued"] = max(0.0, time.time() - job.created)
    job.state = "running"
    job.message = ("aligning the faces ..." if not req.methods else
                   "loading the methods and aligning the faces ...")
    try:
        with reporting_to(progress), training_forbidden("a web job never trains a head"):
            progress.check()
            if not req.methods:
                verdict = verify(req.photo_a, req.photo_b, req.backbone, pipeline=pipe,
                                 options=req.verdict)
                drop_uploads()
            else:
                result = explain_pair(req.photo_a, req.photo_b, req.methods, req.backbone,
                                      req.options, pipeline=pipe, log=progress.next_step,
                                      verdict=req.verdict)
                progress.check()
                drawing = time.monotonic()
                job.timings["maps"] = drawing - progress.started - job.timings["detect_align"]
                job.message, job.eta_s = "drawing the report ...", None
                if all(req.names):  # the report names what the user gave, not temp paths
                    shown = replace(result.verdict, path_a=req.names[0], path_b=req.names[1])
                    result = replace(result, verdict=shown)
                write_explanation(result, job.out_dir)
                job.timings["report"] = time.monotonic() - drawing
                verdict = result.verdict
        if all(req.names):
            verdict = replace(verdict, path_a=req.names[0], path_b=req.names[1])
        job.verdict = {**verdict.to_dict(), "text": verdict_text(verdict),
                       "confidence_text": confidence_text(verdict.confidence),
                       "evidence_text": evidence_lines(verdict)}
        job.files = sorted(p.name for p in job.out_dir.iterdir()
                           if p.is_file() and not p.name.startswith("upload_"))
        job.finish("done", "done")
    except JobStopped as stop:
        reason = str(stop)
        if job.stop_reason is not None and job.stop_state == "queued" and req.inputs_exist():
            job.state, job.progress, job.eta_s = "queued", 0.0, None  # resumes after restart
            job.message = f"waiting: {reason}; it starts again when the server is back"
        else:
            state = job.stop_state if job.stop_reason is not None else "failed"
            job.finish("failed" if state == "queued" else state, reason, reason)
    except FacexplainError as exc:
        job.finish("failed", "failed", plain_error(str(exc), job))
    except Exception as exc:  # a bug: say so in the page instead of a silent dead job
        LOG.exception("job %s failed", job.id)
        job.finish("failed", "failed", f"something went wrong on the server "
                   f"({type(exc).__name__}); the operator can find it in the server log")
    finally:
        if job.state != "queued":
            drop_uploads()


def plain_error(message: str, job: Job) -> str:
    """The library's message with the job's temporary paths replaced by what the user gave."""
    req = job.request
    shown = {str(req.photo_a): req.names[0] or "the first photo",
             str(req.photo_b): req.names[1] or "the second photo",
             str(job.out_dir): "the job's folder"}
    for path, name in shown.items():
        message = message.replace(path, name)
    message = message.replace(" PIL ", " the image decoder ")
    return " ".join(message.split())
