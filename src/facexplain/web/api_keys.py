"""Optional API keys (``serve --api-key-file``): a file of SHA-256 hashes, one per line. With
one, every route that starts work or returns a job's data needs a key (``web.access``).

Why hashes: the key file sits on the server and ends up in backups; a leaked hash does not let
anyone call the API. Keys are long random tokens, so a plain SHA-256 is enough (no password
stretching needed). ``facexplain serve --new-api-key FILE`` appends a new key's hash and prints
the key once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from facexplain.errors import InputNotFound, InvalidArgument

HEADER = "X-API-Key"
_HEX = set("0123456789abcdef")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_key_hashes(path: Path) -> frozenset[str]:
    """The hashes in ``path`` (blank lines and ``#`` comments skipped); a bad file: one line."""
    if not path.is_file():
        raise InputNotFound(f"API key file not found: {path}")
    hashes = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip().lower()
        if not text:
            continue
        if len(text) != 64 or not set(text) <= _HEX:
            raise InvalidArgument(f"{path}, line {n}: not a SHA-256 hash (64 hex digits); "
                                  "make keys with 'facexplain serve --new-api-key FILE'")
        hashes.add(text)
    if not hashes:
        raise InvalidArgument(f"{path} holds no key hashes; nobody could call the API")
    return frozenset(hashes)


def new_api_key(path: Path, label: str = "") -> str:
    """Append the hash of a new random key to ``path`` and return the key (shown once); a
    path that is a folder or cannot be written fails in one line, before a key is shown."""
    if path.is_dir():
        raise InvalidArgument(f"{path} is a folder; give the key file's own path, e.g. "
                              f"{path / 'api-keys.txt'}")
    key = "fx_" + secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(f"{key_hash(key)}  # {label}\n" if label else f"{key_hash(key)}\n")
        path.chmod(0o600)
    except OSError as exc:
        raise InvalidArgument(f"cannot write the key file {path}: "
                              f"{exc.strerror or type(exc).__name__}") from None
    return key


def key_allowed(key: str | None, hashes: frozenset[str]) -> bool:
    """Constant-time check of a presented key against every stored hash."""
    if not key:
        return False
    presented = key_hash(key)
    return any(hmac.compare_digest(presented, h) for h in hashes)
