"""Guards for everything a request names: uploads, ids and file names.

Why a module of its own: the web app and the study pages both serve files and take ids from
URLs; one set of checks keeps "no path traversal through any parameter" true in one place.
Client file names are never used: uploads are saved under fixed names.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from facexplain.errors import FacexplainError
from facexplain.io import load_image

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MiB = 2**20


def check_id(value: str, what: str = "job") -> str:
    """An id from a URL: letters, digits, '-' and '_' only, else 404 (never a path)."""
    if not _ID.fullmatch(value):
        raise HTTPException(404, f"no such {what}")
    return value


def child_file(folder: Path, name: str) -> Path:
    """``folder/name`` for a plain file name that stays inside ``folder``, else 404."""
    if not _FILE.fullmatch(name) or ".." in name:
        raise HTTPException(404, "no such file")
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        raise HTTPException(404, "no such file")
    return path


async def save_upload(upload: UploadFile, dest: Path, max_bytes: int) -> Path:
    """Write an uploaded photo to ``dest`` (a fixed name) and check it decodes as an image.

    Over ``max_bytes``: 413. Empty or not an image: 415 with the decoder's one-line reason.
    """
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(413, f"photo larger than the {max_bytes / MiB:.1f} MiB limit")
    if not data:
        raise HTTPException(415, "the uploaded photo is empty")
    dest.write_bytes(data)
    try:
        await run_in_threadpool(load_image, dest)
    except FacexplainError as exc:
        dest.unlink(missing_ok=True)
        reason = str(exc).replace(str(dest), upload.filename or "the upload")
        raise HTTPException(415, " ".join(reason.split())) from None
    return dest
