"""The web app (FastAPI): explain a pair in the browser. A thin front end over ``explain_pair``
and ``write_explanation``; the JSON API is mounted at ``/api/v1`` and the study pages beside
it when a study folder is given.

Why the shape: explanations take seconds to minutes, so a submit only checks and saves the
photos and queues a job (202 + id); the page polls ``/api/jobs/{id}`` for progress and then
shows the same report the CLI writes, served from the job's folder. Jobs are stored
(``jobs``), so a result link keeps working across restarts for the retention time. Who may do
what is one rule for every route (``access``): with a key file, the key or a session it opened.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE, list_backbones
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.methods.registry import all_methods
from facexplain.report.components import ComponentsView, view_from_json
from facexplain.version import __version__
from facexplain.web.access import COOKIE, SESSION_S, AccessGuard, AccessRule, owner_of
from facexplain.web.admission import Admission, AdmissionLimits
from facexplain.web.api_keys import key_allowed, key_hash
from facexplain.web.api_v1 import build_api
from facexplain.web.errors import install_error_pages
from facexplain.web.guards import (
    LOOPBACK_HOSTS,
    HostAllowList,
    SecurityHeadersAndLog,
    SlowBodyTimeout,
    StreamingBodyLimit,
)
from facexplain.web.job_model import Job
from facexplain.web.jobs import ExplainQueue, Pipelines
from facexplain.web.method_form import form_fields, method_form, not_ready, runnable_methods
from facexplain.web.safety import MiB, check_id, child_file
from facexplain.web.submission import Submission, accept
from facexplain.web.uploads import PhotoLimits

MAX_LFW_CHOICES = 600  # fold 1 of pairs.txt: enough to pick from, small enough for a <select>


@dataclass(frozen=True)
class WebConfig:
    """Where jobs write and every limit the server enforces (see ``facexplain serve``)."""

    work_dir: Path
    max_upload_bytes: int = 10 * MiB
    max_pixels: int = 40_000_000
    max_side: int = 2048
    max_windows: int = 1024  # occluder positions per map
    max_waiting: int = 16
    job_time_limit_s: float = 300.0
    retention_hours: float = 24.0
    keep_uploads: bool = False  # keep every upload beside its result (else: deleted early)
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    api_key_hashes: frozenset[str] | None = None
    study_dir: Path | None = None

    @property
    def limits(self) -> PhotoLimits:
        return PhotoLimits(self.max_upload_bytes, self.max_pixels, self.max_side)


def templates() -> Jinja2Templates:
    loader = ChoiceLoader([PackageLoader("facexplain.web", "templates"),
                           PackageLoader("facexplain.study", "templates")])
    env = Environment(loader=loader, autoescape=select_autoescape(["html"]))
    return Jinja2Templates(env=env)


def lfw_choices() -> list[LfwPair]:
    """The first fold of LFW's pairs.txt, or nothing when LFW is not on this machine."""
    path = settings.current().lfw_pairs
    if not path.is_file():
        return []
    return read_pairs(path)[:MAX_LFW_CHOICES]


def job_components(job: Job) -> ComponentsView | None:
    """A finished job's component findings (from its ``explanation.json``), shown above the
    report on the job page; None while running or when no method compared components."""
    if job.state != "done" or "explanation.json" not in job.files:
        return None
    try:
        summary = json.loads((job.out_dir / "explanation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return view_from_json(summary) if isinstance(summary, dict) else None


def create_app(config: WebConfig, pipelines: Pipelines | None = None) -> FastAPI:
    """The app; ``pipelines`` lets a test or a warm server hand in already loaded models."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    jobs = ExplainQueue(pipelines or Pipelines(), config.work_dir, config.max_waiting,
                        config.retention_hours * 3600.0, config.job_time_limit_s,
                        config.keep_uploads)
    pages = templates()
    pairs = lfw_choices()
    rule = AccessRule(config.api_key_hashes, frozenset(
        h.lower() for h in config.allowed_hosts if h not in (*LOOPBACK_HOSTS, "*")))
    not_ready(DEFAULT_BACKBONE)  # loads what the readiness check reads, before any request

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        yield
        jobs.stop()

    app = FastAPI(title="facexplain", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.jobs = jobs
    app.add_middleware(Admission, jobs=jobs, limits=AdmissionLimits(),  # decode gate, 429
                       max_pixels=config.max_pixels)
    app.add_middleware(AccessGuard, rule=rule, pages=pages.env)  # inside the guards below
    app.add_middleware(StreamingBodyLimit, limit=2 * config.max_upload_bytes + MiB)
    app.add_middleware(SlowBodyTimeout)
    app.add_middleware(HostAllowList, hosts=config.allowed_hosts)
    app.add_middleware(SecurityHeadersAndLog)  # outermost: every answer, a 400 included
    install_error_pages(app, pages)
    app.mount("/api/v1", build_api(jobs, pairs, config.limits, config.max_windows, rule))

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        """The form; with a key file and no session, the sign-in form instead."""
        if rule.enabled and owner_of(request.scope) is None:
            return pages.TemplateResponse(request, "index.html", {
                "sign_in": True, "version": __version__})
        missing = not_ready(DEFAULT_BACKBONE)
        methods = [(m.name, m.title, missing.get(m.name)) for m in all_methods().values()]
        return pages.TemplateResponse(request, "index.html", {
            "backbones": list_backbones(), "default_backbone": DEFAULT_BACKBONE,
            "methods": methods, "pairs": list(enumerate(pairs)), "version": __version__,
            "options": form_fields(), "signed_in": rule.enabled,
            "max_mb": config.max_upload_bytes / MiB, "study": config.study_dir is not None,
            "retention_hours": config.retention_hours})

    @app.post("/login")
    def login(request: Request, key: Annotated[str, Form(max_length=200)]) -> Response:
        """Open a browser session with an API key: a cookie with a random id, never the key."""
        if not rule.enabled or rule.key_hashes is None:
            raise HTTPException(404, "this server has no API keys: nothing to sign in to")
        if not key_allowed(key.strip(), rule.key_hashes):
            raise HTTPException(401, "that is not a key of this server")
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(COOKIE, rule.sessions.open(key_hash(key.strip())),
                          max_age=int(SESSION_S), path="/", httponly=True, samesite="strict",
                          secure=request.url.scheme == "https")
        return answer

    @app.post("/logout")
    def logout(request: Request) -> Response:
        sid = request.cookies.get(COOKIE)
        if sid:
            rule.sessions.close(sid)
        answer = RedirectResponse("/", status_code=303)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/lfw-pairs")
    def lfw_pairs() -> list[dict[str, object]]:
        return [{"index": i, "a": f"{p.name_a}_{p.index_a:04d}",
                 "b": f"{p.name_b}_{p.index_b:04d}", "same": p.same}
                for i, p in enumerate(pairs)]

    options_form = Depends(method_form())

    @app.post("/api/explain", status_code=202)
    async def submit(
        request: Request,
        backbone: Annotated[str, Form()] = DEFAULT_BACKBONE,
        methods: Annotated[str, Form()] = "occlusion",
        keep_uploads: Annotated[bool, Form()] = False,
        lfw_pair: Annotated[int | None, Form()] = None,
        photo_a: Annotated[UploadFile | None, File()] = None,
        photo_b: Annotated[UploadFile | None, File()] = None,
        method_options: dict[str, object] = options_form,  # the methods' web options
    ) -> dict[str, object]:
        photos = None
        if photo_a is not None and photo_b is not None and photo_a.filename:
            photos = (photo_a, photo_b)
        wanted = runnable_methods(methods or "occlusion", backbone)
        job = await accept(Submission(backbone, wanted, method_options,
                                      None if photos else lfw_pair, photos, keep_uploads,
                                      owner=owner_of(request.scope)),
                           jobs, pairs, config.limits, config.max_windows)
        return {"id": job.id, "url": f"/jobs/{job.id}", "status": f"/api/jobs/{job.id}"}

    def job_or_404(request: Request, job_id: str) -> Job:
        """The job, when this caller may see it; a job of another key reads as absent."""
        job = jobs.get(check_id(job_id))
        if job is None or not rule.may_see(job.owner, owner_of(request.scope)):
            raise HTTPException(404, "this result does not exist or has expired (results are "
                                f"kept for {config.retention_hours:g} hours); please explain "
                                "the photos again")
        return job

    @app.get("/api/jobs/{job_id}")
    def job_status(request: Request, job_id: str) -> dict[str, object]:
        job = job_or_404(request, job_id)
        return job.to_json(jobs.position(job.id))

    @app.post("/api/jobs/{job_id}/cancel")
    def job_cancel(request: Request, job_id: str) -> dict[str, object]:
        job = jobs.cancel(job_or_404(request, job_id).id)
        return job.to_json(jobs.position(job.id))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> Response:
        job = job_or_404(request, job_id)
        return pages.TemplateResponse(request, "job.html", {
            "job": job, "version": __version__, "components": job_components(job)})

    @app.get("/jobs/{job_id}/files/{name}")
    def job_file(request: Request, job_id: str, name: str) -> FileResponse:
        job = job_or_404(request, job_id)
        if name.startswith("upload_") or name not in job.files:
            raise HTTPException(404, "no such file")
        return FileResponse(child_file(job.out_dir, name))

    @app.get("/jobs/{job_id}/download.zip")
    def job_zip(request: Request, job_id: str) -> Response:
        job = job_or_404(request, job_id)
        if job.state != "done":
            raise HTTPException(409, f"the job is {job.state}; nothing to download yet")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in job.files:
                zf.write(job.out_dir / name, f"facexplain-{job.id}/{name}")
        return Response(buf.getvalue(), media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="facexplain-{job.id}.zip"'})

    if config.study_dir is not None:
        from facexplain.web.study_routes import study_router

        app.include_router(study_router(config.study_dir, pages), include_in_schema=False)
    return app
