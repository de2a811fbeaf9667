"""The study's pages: one link per participant, an admin page behind a token.

Why these rules: a participant's token is their identity, so every participant route reads and
writes that participant's rows only; the help picture opens only after the whole first round
(so the first answer is really unaided); correctness is never sent to a participant. Admin
routes need the token printed at creation (query ``token`` or header ``X-Admin-Token``).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from facexplain.report.components import ComponentRow, finding_from_dict, rows
from facexplain.study.store import SCALES, Participant, StudyError, StudyStore, open_study
from facexplain.version import __version__
from facexplain.web.safety import check_id, child_file


class AnswerIn(BaseModel):
    phase: int
    pair: int
    choice: int
    ms: int = 0


def next_item(who: Participant, answered: dict[tuple[int, int], int]) -> tuple[int, int, int]:
    """(phase, pair, position) of the next unanswered item; phase 0 when all are done."""
    for phase, order in ((1, who.order1), (2, who.order2)):
        for pos, pair in enumerate(order):
            if (phase, pair) not in answered:
                return phase, pair, pos
    return 0, -1, len(who.order1)


def help_table(folder: Path, condition: str, pair: int) -> tuple[ComponentRow, ...] | None:
    """The component table of a table condition for one pair (None: none was drawn)."""
    path = folder / "maps" / condition / f"p{pair:04d}.json"
    if not path.is_file():
        return None
    return rows([finding_from_dict(d) for d in json.loads(path.read_text(encoding="utf-8"))])


def study_router(folder: Path, pages: Jinja2Templates) -> APIRouter:
    """Routes of the study in ``folder`` (one connection per server thread: WAL lets readers
    and the one writer work side by side)."""
    router = APIRouter()
    # One writer at a time inside the process: SQLite's own busy handler sleeps in growing
    # steps while another connection holds the write lock, which under 100 concurrent answers
    # cost more than the writes; a lock hands the turn over at once. Reads do not take it.
    write_lock = threading.Lock()

    local = threading.local()

    @contextmanager
    def store() -> Iterator[StudyStore]:
        """This worker thread's connection, kept open: opening one per request cost ~20 ms
        (the last connection to close checkpoints and removes the WAL each time)."""
        s = getattr(local, "store", None)
        if s is None:
            s = local.store = open_study(folder)
        yield s

    def participant(s: StudyStore, token: str) -> Participant:
        who = s.participant_by_token(check_id(token, "participant"))
        if who is None:
            raise HTTPException(404, "no such participant link")
        return who

    def admin(s: StudyStore, token: str | None) -> None:
        if not s.check_admin(token):
            raise HTTPException(403, "admin token required")

    @router.get("/p/{token}", response_class=HTMLResponse)
    def participant_page(request: Request, token: str) -> Response:
        with store() as s:
            who = participant(s, token)
            answered = s.answered(who.id)
            phase, pair, pos = next_item(who, answered)
            scale = s.scale
            readings = json.loads(s.meta.get("help_readings", "{}"))
            tables = json.loads(s.meta.get("help_tables", "[]"))
        help_shown = phase == 2 and who.condition != "none"
        table = (help_table(folder, who.condition, pair)
                 if help_shown and who.condition in tables else None)
        return pages.TemplateResponse(request, "participant.html", {
            "token": token, "phase": phase, "pair": pair, "position": pos + 1,
            "total": len(who.order1), "choices": list(enumerate(SCALES[scale], start=1)),
            "help": help_shown, "reading": readings.get(who.condition, ""),
            "table": table, "is_table": who.condition in tables, "version": __version__})

    @router.get("/p/{token}/next")
    def participant_next(token: str) -> dict[str, object]:
        """The next item as JSON (what the page shows; used by scripted participants)."""
        with store() as s:
            who = participant(s, token)
            phase, pair, pos = next_item(who, s.answered(who.id))
        return {"phase": phase, "pair": pair, "position": pos + 1, "total": len(who.order1),
                "help": phase == 2 and who.condition != "none", "done": phase == 0}

    @router.get("/p/{token}/answers")
    def participant_answers(token: str) -> list[dict[str, int]]:
        """This participant's own answers (and nobody else's)."""
        with store() as s:
            who = participant(s, token)
            return [{"phase": ph, "pair": p, "choice": c}
                    for (ph, p), c in sorted(s.answered(who.id).items())]

    @router.post("/p/{token}/answer")
    def answer(token: str, body: AnswerIn) -> dict[str, object]:
        with store() as s:
            who = participant(s, token)
            try:
                with write_lock:
                    a = s.record(who, body.phase, body.pair, body.choice, body.ms)
            except StudyError as exc:
                raise HTTPException(409, str(exc)) from None
        return {"stored": True, "duplicate": a.duplicate, "phase": a.phase, "pair": a.pair,
                "choice": a.choice}

    @router.get("/p/{token}/img/{pair}/{side}")
    def pair_image(token: str, pair: int, side: str) -> FileResponse:
        if side not in ("a", "b"):
            raise HTTPException(404, "no such image")
        with store() as s:
            participant(s, token)
            try:
                files = s.pair_files(pair)
            except StudyError:
                raise HTTPException(404, "no such pair") from None
        rel = Path(files[0] if side == "a" else files[1])
        return FileResponse(child_file(folder / "images", rel.name))

    @router.get("/p/{token}/help/{pair}")
    def help_image(token: str, pair: int) -> FileResponse:
        with store() as s:
            who = participant(s, token)
            first_round = sum(1 for ph, _ in s.answered(who.id) if ph == 1)
        if who.condition == "none" or pair not in who.order1:
            raise HTTPException(404, "no help picture")
        if first_round < len(who.order1):
            raise HTTPException(403, "the help opens in the second round")
        return FileResponse(child_file(folder / "maps" / who.condition, f"p{pair:04d}.png"))

    @router.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, token: str | None = None,
                   x_admin_token: str | None = Header(None)) -> Response:
        token = token or x_admin_token
        with store() as s:
            admin(s, token)
            meta, people, done = s.meta, s.participants(), s.progress()
        base = str(request.base_url).rstrip("/")
        rows = [(p, f"{base}/p/{p.token}", done.get(p.id, 0), 2 * len(p.order1)) for p in people]
        return pages.TemplateResponse(request, "admin.html", {
            "meta": meta, "conditions": json.loads(meta.get("conditions", "[]")),
            "rows": rows, "token": token, "version": __version__})

    @router.get("/admin/export.csv")
    def export(token: str | None = None, x_admin_token: str | None = Header(None)) -> Response:
        with store() as s:
            admin(s, token or x_admin_token)
            buf = io.StringIO()
            s.export_csv(buf)
        return Response(buf.getvalue(), media_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="answers.csv"'})

    @router.get("/admin/analysis", response_class=HTMLResponse)
    def analysis(token: str | None = None, x_admin_token: str | None = Header(None)) -> Response:
        from facexplain.study.analyze import analyze_study

        with store() as s:
            admin(s, token or x_admin_token)
        report = analyze_study(folder, folder / "analysis", link_token=token or x_admin_token)
        return HTMLResponse(report.read_text(encoding="utf-8"))

    @router.get("/admin/analysis/{name}")
    def analysis_file(name: str, token: str | None = None,
                      x_admin_token: str | None = Header(None)) -> FileResponse:
        with store() as s:
            admin(s, token or x_admin_token)
        return FileResponse(child_file(folder / "analysis", name))

    return router
