"""Guards for everything a request names: uploads, ids and file names.

Why a module of its own: the web app and the study pages both serve files and take ids from
URLs; one set of checks keeps "no path traversal through any parameter" true in one place.
Client file names are never used: uploads are saved under fixed names.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import HTTPException

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
