"""One access rule for every route: who may start work or read a job, and from which page.

Why one ASGI layer instead of a check per route: a route added later is guarded by default.
With ``--api-key-file`` every path but the public ones (health, the form page, its sign-in)
needs a key, in the ``X-API-Key`` header or through a browser session the key opened (an
HttpOnly, SameSite=Strict cookie holding a random id; the server maps it to the key's hash and
never sees the key again). The caller's key hash is the *owner* of the jobs it makes
(``owner_of``); a job is shown only to its owner. Independently of keys, a state-changing
request (POST, PUT, PATCH, DELETE) whose Origin (or, without one, Referer) is another site is
refused with 403 before its body is read: a page elsewhere cannot make a visitor's browser
queue work here (a browser's ``Sec-Fetch-Site`` is trusted first). Programs send neither
header and pass.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jinja2 import Environment
from starlette.types import ASGIApp, Receive, Scope, Send

from facexplain.version import __version__
from facexplain.web.api_keys import HEADER, key_allowed, key_hash

COOKIE = "fx_session"
OWNER = "facexplain.owner"  # the scope key holding the caller's key hash (None: anonymous)
PUBLIC = frozenset({"/", "/healthz", "/login", "/logout", "/api/v1/openapi.json"})
# The study's pages carry their own tokens (``web.study_routes``): not gated by API keys.
OWN_TOKENS = ("/p/", "/admin")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_S = 12 * 3600.0
MAX_SESSIONS = 1000


class Sessions:
    """Browser sessions: random id -> (key hash, expiry); bounded, in memory (a restart signs
    everyone out, which is the safe way round)."""

    def __init__(self, lifetime_s: float = SESSION_S, cap: int = MAX_SESSIONS) -> None:
        self.lifetime_s, self.cap = lifetime_s, cap
        self._open: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, owner: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._open[sid] = (owner, time.monotonic() + self.lifetime_s)
            while len(self._open) > self.cap:
                self._open.popitem(last=False)
        return sid

    def owner(self, sid: str) -> str | None:
        with self._lock:
            found = self._open.get(sid)
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self._open[sid]
                return None
            return found[0]

    def close(self, sid: str) -> None:
        with self._lock:
            self._open.pop(sid, None)


@dataclass
class AccessRule:
    """The server's keys (None: no key file, everything open as before) and its sessions.
    ``extra_hosts``: names the operator allowed besides loopback (a proxy's public name):
    a form on those origins may post here too."""

    key_hashes: frozenset[str] | None
    extra_hosts: frozenset[str] = frozenset()
    sessions: Sessions = field(default_factory=Sessions)

    @property
    def enabled(self) -> bool:
        return self.key_hashes is not None

    def owner(self, headers: dict[str, str]) -> str | None:
        """The key hash of the caller's key or session, None when it presents neither."""
        if self.key_hashes is None:
            return None
        key = headers.get(HEADER.lower())
        if key is not None:
            return key_hash(key) if key_allowed(key, self.key_hashes) else None
        sid = _cookie(headers.get("cookie", ""), COOKIE)
        return self.sessions.owner(sid) if sid else None

    def may_see(self, job_owner: str | None, caller: str | None) -> bool:
        """Without keys every job id opens its job (ids are unguessable); with keys only the
        key (or a session of it) that made the job."""
        if self.key_hashes is None:
            return True
        return (job_owner is not None and caller is not None
                and hmac.compare_digest(job_owner, caller))

    def cross_site(self, headers: dict[str, str]) -> bool:
        """True when the request comes from a page of another origin. A browser's own word
        (``Sec-Fetch-Site``, which no page can forge) decides first: our pages send
        ``no-referrer``, so their plain form posts carry ``Origin: null``. Without it (older
        browsers), the Origin (or Referer) must be this server's own host."""
        site = headers.get("sec-fetch-site")
        if site is not None:
            return site not in ("same-origin", "none")
        source = headers.get("origin") or headers.get("referer")
        if source is None:
            return False  # not sent by a browser form or script
        parts = urlsplit(source)
        if source == "null" or not parts.netloc:
            return True  # a sandboxed or opaque origin: never our own page
        origin = _netloc(parts.netloc, parts.scheme)
        host = _netloc(headers.get("host", ""), parts.scheme)
        return origin != host and (parts.hostname or "") not in self.extra_hosts


def _netloc(netloc: str, scheme: str) -> str:
    netloc = netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v:
            return v
    return None


def owner_of(scope: Scope) -> str | None:
    """The caller's key hash as the guard found it (None: no key file, or anonymous)."""
    owner = scope.get(OWNER)
    return owner if isinstance(owner, str) else None


class AccessGuard:
    """403 for a cross-site state change, 401 for a guarded path without a key or session;
    otherwise the caller's key hash goes into the scope for the routes (``owner_of``)."""

    def __init__(self, app: ASGIApp, rule: AccessRule, pages: Environment) -> None:
        self.app, self.rule, self.pages = app, rule, pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        if scope["method"] in UNSAFE and self.rule.cross_site(headers):
            await self._refuse(send, headers, 403, "This request came from a page of another "
                               "site; submit the form from this server's own page")
            return
        owner = self.rule.owner(headers)
        path = str(scope["path"])
        guarded = path not in PUBLIC and not path.startswith(OWN_TOKENS)
        if self.rule.enabled and guarded and owner is None:
            await self._refuse(send, headers, 401, "An API key is needed: send it in the "
                               "X-API-Key header, or sign in with it on the form page")
            return
        scope[OWNER] = owner
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, headers: dict[str, str], status: int,
                      message: str) -> None:
        if "text/html" in headers.get("accept", ""):
            title = "An API key is needed" if status == 401 else "Refused"
            body = self.pages.get_template("error.html").render(
                title=title, message=message, status=status, version=__version__).encode()
            kind = b"text/html; charset=utf-8"
        else:
            body, kind = json.dumps({"detail": message}).encode(), b"application/json"
        extra = [(b"www-authenticate", b"APIKey")] if status == 401 else []
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})
