"""The web app (FastAPI): explain a pair in the browser. A thin front end over ``explain_pair``
and ``write_explanation``; the study pages are mounted beside it when a study folder is given.

Why the shape: explanations take seconds to minutes, so a submit only saves the photos and
queues a job (202 + id); the page polls ``/api/jobs/{id}`` for progress and then shows the same
report the CLI writes, served from the job's folder.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE, list_backbones
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.errors import FacexplainError, InvalidArgument
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import all_methods
from facexplain.version import __version__
from facexplain.web.jobs import (
    ExplainQueue,
    ExplainRequest,
    Job,
    Pipelines,
    QueueFull,
    new_job_id,
    parse_patch,
)
from facexplain.web.safety import MiB, check_id, child_file, save_upload

MAX_LFW_CHOICES = 600  # fold 1 of pairs.txt: enough to pick from, small enough for a <select>


@dataclass(frozen=True)
class WebConfig:
    """Where jobs write, how big an upload may be, and the optional study folder."""

    work_dir: Path
    max_upload_bytes: int = 10 * MiB
    max_waiting: int = 16
    study_dir: Path | None = None


def templates() -> Jinja2Templates:
    loader = ChoiceLoader([PackageLoader("facexplain.web", "templates"),
                           PackageLoader("facexplain.study", "templates")])
    env = Environment(loader=loader, autoescape=select_autoescape(["html"]))
    return Jinja2Templates(env=env)


class BodyLimit(BaseHTTPMiddleware):
    """Refuse a request whose declared body is over the limit before reading it (413)."""

    def __init__(self, app: object, limit: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.limit = limit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return JSONResponse({"detail": f"request body over {self.limit / MiB:.1f} MiB"},
                                status_code=413)
        return await call_next(request)


def lfw_choices() -> list[LfwPair]:
    """The first fold of LFW's pairs.txt, or nothing when LFW is not on this machine."""
    path = settings.current().lfw_pairs
    if not path.is_file():
        return []
    return read_pairs(path)[:MAX_LFW_CHOICES]


def create_app(config: WebConfig, pipelines: Pipelines | None = None) -> FastAPI:
    """The app; ``pipelines`` lets a test or a warm server hand in already loaded models."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    jobs = ExplainQueue(pipelines or Pipelines(), max_waiting=config.max_waiting)
    pages = templates()
    pairs = lfw_choices()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        yield
        jobs.stop()

    app = FastAPI(title="facexplain", version=__version__, lifespan=lifespan)
    app.state.jobs = jobs
    app.add_middleware(BodyLimit, limit=2 * config.max_upload_bytes + MiB)

    @app.exception_handler(FacexplainError)
    async def _user_error(_: Request, exc: FacexplainError) -> JSONResponse:
        status = 429 if isinstance(exc, QueueFull) else 400
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        methods = [(m.name, m.title) for m in all_methods().values()]
        return pages.TemplateResponse(request, "index.html", {
            "backbones": list_backbones(), "default_backbone": DEFAULT_BACKBONE,
            "methods": methods, "pairs": list(enumerate(pairs)), "version": __version__,
            "max_mb": config.max_upload_bytes / MiB, "study": config.study_dir is not None})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/lfw-pairs")
    def lfw_pairs() -> list[dict[str, object]]:
        return [{"index": i, "a": f"{p.name_a}_{p.index_a:04d}",
                 "b": f"{p.name_b}_{p.index_b:04d}", "same": p.same}
                for i, p in enumerate(pairs)]

    @app.post("/api/explain", status_code=202)
    async def submit(
        backbone: Annotated[str, Form()] = DEFAULT_BACKBONE,
        methods: Annotated[str, Form()] = "occlusion",
        patch: Annotated[int, Form()] = 16,
        stride: Annotated[int, Form()] = 8,
        lfw_pair: Annotated[int | None, Form()] = None,
        photo_a: Annotated[UploadFile | None, File()] = None,
        photo_b: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, object]:
        from facexplain.api import resolve_methods
        from facexplain.backbones.registry import get_spec

        options = ExplainOptions(patch=parse_patch(patch, "patch"),
                                 stride=parse_patch(stride, "stride"))
        infos = resolve_methods(methods, options, get_spec(backbone))  # 400 before any work
        job_id = new_job_id()
        out_dir = config.work_dir / job_id
        out_dir.mkdir()
        if photo_a is not None and photo_b is not None and photo_a.filename:
            a = await save_upload(photo_a, out_dir / "upload_a", config.max_upload_bytes)
            b = await save_upload(photo_b, out_dir / "upload_b", config.max_upload_bytes)
            label = f"{photo_a.filename} vs {photo_b.filename}"
            names = (Path(photo_a.filename).name, Path(photo_b.filename or "").name)
        elif lfw_pair is not None:
            if not 0 <= lfw_pair < len(pairs):
                raise InvalidArgument(f"lfw_pair must be between 0 and {len(pairs) - 1}")
            images = settings.current().lfw_images
            a, b = pairs[lfw_pair].path_a(images), pairs[lfw_pair].path_b(images)
            label = f"LFW {a.stem} vs {b.stem}"
            names = (f"LFW {a.parent.name}/{a.name}", f"LFW {b.parent.name}/{b.name}")
        else:
            raise InvalidArgument("give two photos (photo_a, photo_b) or an LFW pair (lfw_pair)")
        request = ExplainRequest(a, b, backbone, tuple(i.name for i in infos), options, label,
                                 names)
        job = jobs.submit(Job(job_id, request, out_dir))
        return {"id": job.id, "url": f"/jobs/{job.id}", "status": f"/api/jobs/{job.id}"}

    def job_or_404(job_id: str) -> Job:
        job = jobs.get(check_id(job_id))
        if job is None:
            raise HTTPException(404, "no such job (finished jobs are kept for a while only)")
        return job

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, object]:
        job = job_or_404(job_id)
        return job.to_json(jobs.position(job.id))

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> Response:
        job = job_or_404(job_id)
        return pages.TemplateResponse(request, "job.html", {"job": job, "version": __version__})

    @app.get("/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str) -> FileResponse:
        job = job_or_404(job_id)
        if name.startswith("upload_"):
            raise HTTPException(404, "no such file")
        return FileResponse(child_file(job.out_dir, name))

    @app.get("/jobs/{job_id}/download.zip")
    def job_zip(job_id: str) -> Response:
        job = job_or_404(job_id)
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

        app.include_router(study_router(config.study_dir, pages))
    return app
