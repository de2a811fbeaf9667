"""Errors in words a user reads, with a way back: HTML for a browser, JSON for a program.

Why: a refused upload or an expired result link used to answer ``{"detail": "no such job"}``
with nothing to click. A browser (it asks for ``text/html``) now gets a page that says what
happened and links back to the form; scripts and the JSON API keep getting JSON.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from facexplain.errors import FacexplainError
from facexplain.version import __version__
from facexplain.web.job_model import QueueFull

TITLES = {400: "That request could not be used", 401: "An API key is needed",
          404: "Not found", 409: "Not ready yet", 413: "Too large",
          415: "Not a photo this app can read", 422: "Something is missing in the form",
          429: "Busy: please try again shortly"}
# Form field names as a user knows them.
FIELDS = {"photo_a": "the first photo", "photo_b": "the second photo",
          "lfw_pair": "the LFW pair", "patch": "the patch size", "stride": "the stride",
          "methods": "the methods", "backbone": "the model"}


def plain(message: str) -> str:
    for field, words in FIELDS.items():
        if "_" in field:  # internal names only; 'patch' or 'stride' already read as words
            message = message.replace(field, words)
    return " ".join(message.split())


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def install_error_pages(app: FastAPI, pages: Jinja2Templates | None) -> None:
    """Register the handlers: library errors 400 (429 for a full queue), HTTP errors as
    raised, form validation errors 422; each as HTML or JSON as the client prefers
    (``pages`` None: always JSON, for the API)."""

    def answer(request: Request, status: int, message: str,
               headers: dict[str, str] | None = None) -> Response:
        message = plain(message)
        if pages is not None and wants_html(request):
            return pages.TemplateResponse(request, "error.html", {
                "title": TITLES.get(status, "Something went wrong"), "message": message,
                "status": status, "version": __version__}, status_code=status,
                headers=headers)
        return JSONResponse({"detail": message}, status_code=status, headers=headers)

    @app.exception_handler(FacexplainError)
    async def _library(request: Request, exc: FacexplainError) -> Response:
        if isinstance(exc, QueueFull):
            return answer(request, 429, str(exc), {"Retry-After": str(exc.retry_after_s)})
        return answer(request, 400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        if exc.status_code == 404 and detail == "Not Found":
            detail = "there is nothing at this address"
        return answer(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _form(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            field = str(err.get("loc", ["", ""])[-1])
            parts.append(f"{FIELDS.get(field, field)}: {err.get('msg', 'not valid')}")
        return answer(request, 422, "; ".join(parts) or "the form is not complete")
