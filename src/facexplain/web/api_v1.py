"""The JSON API under ``/api/v1``: verify, explain, job status, results; its own OpenAPI.

Why a mounted app of its own: its schema (``/api/v1/openapi.json``) lists exactly the API a
program may rely on, without the browser pages and the study's admin routes; the interactive
docs are off (they would load scripts from a CDN). With ``--api-key-file`` every call needs
``X-API-Key`` (the rule of every route, ``web.access``), and a job is visible only to the key
that made it; without a key file the API is open like the pages (loopback by default).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader

from facexplain.backbones.registry import DEFAULT_BACKBONE, list_backbones
from facexplain.datasets.lfw import LfwPair
from facexplain.methods.registry import all_methods
from facexplain.types import VerdictOptions
from facexplain.version import __version__
from facexplain.web.access import AccessRule, owner_of
from facexplain.web.api_keys import HEADER
from facexplain.web.errors import install_error_pages
from facexplain.web.job_model import FINISHED, Job
from facexplain.web.jobs import ExplainQueue
from facexplain.web.method_form import method_form, not_ready, runnable_methods
from facexplain.web.safety import check_id, child_file
from facexplain.web.submission import Submission, accept
from facexplain.web.uploads import PhotoLimits

VERIFY_WAIT_S = 60.0  # a verify answers in the call when the queue is short, else 202
# Module-level, so the annotations of the routes below resolve (postponed evaluation).
KEY_HEADER = APIKeyHeader(name=HEADER, auto_error=False)
PresentedKey = Annotated[str | None, Depends(KEY_HEADER)]
Photo = Annotated[UploadFile | None, File(description="a photo (JPEG, PNG, WebP, BMP)")]
PairIndex = Annotated[int | None, Form(description="a pair of LFW's pairs.txt, fold 1")]
MaxError = Annotated[float | None, Form(
    description="answer 'not sure' unless the stored rule for this error rate answers "
    "(as `facexplain verify --max-error`)")]
Population = Annotated[str | None, Form(
    description="population of the --max-error rule: lfw or lookalike")]
PriorOdds = Annotated[float | None, Form(
    description="your odds of 'same person' before the photos (same : different); the "
    "verdict then gives p_same from the likelihood ratio (as `verify --prior-odds`)")]


def job_links(job: Job, position: int | None) -> dict[str, object]:
    base = f"/api/v1/jobs/{job.id}"
    return {**job.to_json(position), "links": {
        "status": base, "result": f"{base}/result", "page": f"/jobs/{job.id}",
        "files": [f"{base}/files/{f}" for f in job.files]}}


def build_api(jobs: ExplainQueue, pairs: list[LfwPair], limits: PhotoLimits, max_windows: int,
              rule: AccessRule) -> FastAPI:
    api = FastAPI(title="facexplain API", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", description=__doc__)
    install_error_pages(api, None)

    def require_key(request: Request, key: PresentedKey) -> None:
        """The guard (``web.access``) has checked the key; this names it in the schema."""
        del key
        if rule.enabled and owner_of(request.scope) is None:
            raise HTTPException(401, "a valid API key is needed in the X-API-Key header",
                                headers={"WWW-Authenticate": "APIKey"})

    guarded = [Depends(require_key)]
    options_form = Depends(method_form())  # a form field per registered web method option

    def job_or_404(request: Request, job_id: str) -> Job:
        job = jobs.get(check_id(job_id))
        if job is None or not rule.may_see(job.owner, owner_of(request.scope)):
            raise HTTPException(404, "no such job (results are kept for a limited time)")
        return job

    @api.get("/backbones", dependencies=guarded)
    def backbones() -> dict[str, object]:
        return {"default": DEFAULT_BACKBONE, "backbones": list_backbones()}

    @api.get("/methods", dependencies=guarded)
    def methods() -> list[dict[str, object]]:
        """Each method with its settings (the ones marked web are fields of /explain) and, for
        the default backbone, what it still lacks here (``missing``: None when it can run)."""
        missing = not_ready(DEFAULT_BACKBONE)
        return [{"name": m.name, "title": m.title, "family": m.family, "in_all": m.in_all,
                 "missing": missing.get(m.name),
                 "options": [{"name": o.name, "type": o.type.__name__, "help": o.help,
                              "default": list(o.default) if isinstance(o.default, tuple)
                              else o.default, "web": o.web} for o in m.options]}
                for m in all_methods().values()]

    @api.post("/verify", dependencies=guarded,
              responses={202: {"description": "still queued: poll the status link"}})
    async def verify(request: Request, backbone: Annotated[str, Form()] = DEFAULT_BACKBONE,
                     photo_a: Photo = None, photo_b: Photo = None,
                     lfw_pair: PairIndex = None, max_error: MaxError = None,
                     population: Population = None, prior_odds: PriorOdds = None
                     ) -> Response:
        """Same person or not, with the calibrated confidence; no maps. The verdict has the
        fields of `facexplain verify --json` (the same library call)."""
        job = await accept(Submission(backbone, "", {}, lfw_pair, _photos(photo_a, photo_b),
                                      verdict=VerdictOptions(max_error, population, prior_odds),
                                      owner=owner_of(request.scope)),
                           jobs, pairs, limits, max_windows)
        for _ in range(int(VERIFY_WAIT_S / 0.05)):
            if job.state in FINISHED:
                break
            await asyncio.sleep(0.05)
        if job.state == "done":
            return JSONResponse({"id": job.id, "verdict": job.verdict})
        if job.state in FINISHED:
            return JSONResponse({"id": job.id, "detail": job.error}, status_code=422)
        return JSONResponse(job_links(job, jobs.position(job.id)), status_code=202)

    @api.post("/explain", dependencies=guarded, status_code=202)
    async def explain(request: Request,
                      methods: Annotated[str, Form(description="comma list or 'all' (every "
                                                   "method ready on this server)")] =
                      "occlusion",
                      backbone: Annotated[str, Form()] = DEFAULT_BACKBONE,
                      keep_uploads: Annotated[bool, Form()] = False,
                      photo_a: Photo = None, photo_b: Photo = None,
                      lfw_pair: PairIndex = None, max_error: MaxError = None,
                      population: Population = None, prior_odds: PriorOdds = None,
                      method_options: dict[str, object] = options_form,
                      ) -> dict[str, object]:
        """Queue an explanation; poll the status link, then fetch the result. Each method's
        web settings (the occlusion's patch and stride, ...) are fields of their own. A method
        whose head is not trained on this server is refused (409) with the command that
        trains it."""
        job = await accept(Submission(backbone, runnable_methods(methods, backbone),
                                      method_options, lfw_pair, _photos(photo_a, photo_b),
                                      keep_uploads,
                                      VerdictOptions(max_error, population, prior_odds),
                                      owner=owner_of(request.scope)),
                           jobs, pairs, limits, max_windows)
        return job_links(job, jobs.position(job.id))

    @api.get("/jobs/{job_id}", dependencies=guarded)
    def status(request: Request, job_id: str) -> dict[str, object]:
        job = job_or_404(request, job_id)
        return job_links(job, jobs.position(job.id))

    @api.delete("/jobs/{job_id}", dependencies=guarded)
    def cancel(request: Request, job_id: str) -> dict[str, object]:
        """Cancel a queued job at once, a running one within seconds."""
        job = jobs.cancel(job_or_404(request, job_id).id)
        return job_links(job, jobs.position(job.id))

    @api.get("/jobs/{job_id}/result", dependencies=guarded)
    def result(request: Request, job_id: str) -> Response:
        """The explanation as JSON (``explanation.json``: verdict, the facial components'
        findings when a method compared them (``components``, rank 1 first), maps' summaries,
        files); for a verify job, the verdict."""
        job = job_or_404(request, job_id)
        if job.state != "done":
            raise HTTPException(409, f"the job is {job.state}; no result yet")
        if "explanation.json" not in job.files:
            return JSONResponse({"verdict": job.verdict})
        return FileResponse(child_file(job.out_dir, "explanation.json"))

    @api.get("/jobs/{job_id}/files/{name}", dependencies=guarded)
    def file(request: Request, job_id: str, name: str) -> FileResponse:
        job = job_or_404(request, job_id)
        if name.startswith("upload_"):
            raise HTTPException(404, "no such file")
        return FileResponse(child_file(job.out_dir, name))

    return api


def _photos(a: UploadFile | None, b: UploadFile | None) -> tuple[UploadFile, UploadFile] | None:
    if a is None and b is None:
        return None
    if a is None or b is None or not a.filename or not b.filename:
        from facexplain.errors import InvalidArgument

        raise InvalidArgument("give both photos (photo_a and photo_b), or an LFW pair")
    return (a, b)
