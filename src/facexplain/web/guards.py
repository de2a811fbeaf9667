"""What every request passes before a route sees it: body size, Host, headers, the log.

Why pure ASGI for the body limit: a chunked upload carries no Content-Length, so a limit on the
header alone let a 1 GiB body be spooled to disk. ``StreamingBodyLimit`` counts the bytes as
they arrive and stops the request (413) at the limit, before the form parser writes more.
After a 413 the answer says ``Connection: close`` (uvicorn then closes instead of reading the
rest of a 1 GiB body). ``SlowBodyTimeout`` drops a body that stalls or trickles (408), so a
client sending 1 byte a second cannot hold a connection. The Host allow-list stops DNS
rebinding: a web page that points its own name at 127.0.0.1 can reach a loopback server, but it
cannot make the browser send ``Host: 127.0.0.1``; the Host is parsed strictly (a name or an
``[IPv6]`` address and an optional port of digits), so ``localhost:80@evil.example`` is refused.
Every answer these layers make themselves carries the security headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facexplain.web.safety import MiB

ACCESS = logging.getLogger("facexplain.web.access")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "SAMEORIGIN",
}


CLOSE = (b"connection", b"close")


def security_headers() -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


async def answer(send: Send, status: int, body: bytes, kind: bytes = b"application/json",
                 extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A whole answer made by a guard itself: security headers, and the connection closed."""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode()), CLOSE,
        *extra, *security_headers()]})
    await send({"type": "http.response.body", "body": body})


def with_close(message: Message) -> Message:
    """``message`` (a response start) saying ``Connection: close``."""
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
    return {**message, "headers": [*headers, CLOSE]}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request is over the limit of {limit / MiB:.1f} MiB")


class BodyTimeout(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, "the request's body arrived too slowly; please send it again")


class StreamingBodyLimit:
    """413 for a body over ``limit`` bytes, declared or counted while it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        started = over = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over:  # the app answered the 413 itself: the rest of the body is not read
                    message = with_close(message)
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await answer(send, 413, b'{"detail":"the request is over the limit of '
                     + f"{self.limit / MiB:.1f}".encode() + b' MiB"}')


class SlowBodyTimeout:
    """408 and a closed connection for a body that stalls (no bytes for ``idle_s``) or
    trickles (after ``grace_s``, slower on average than ``min_rate`` bytes a second).

    Why: uvicorn has no read timeout, so a body shorter than its Content-Length, or one sent
    at a byte a second, held its connection open indefinitely. Once the body is complete the
    app's later ``receive`` calls (waiting for a disconnect) are passed through untimed.
    """

    def __init__(self, app: ASGIApp, idle_s: float = 10.0, grace_s: float = 10.0,
                 min_rate: float = 8 * 1024) -> None:
        self.app, self.idle_s, self.grace_s, self.min_rate = app, idle_s, grace_s, min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        begun, got = loop.time(), 0
        complete = started = timed_out = False

        async def timed_receive() -> Message:
            nonlocal got, complete, timed_out
            if complete:
                return await receive()
            wait = min(self.idle_s, begun + self.grace_s + got / self.min_rate - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except TimeoutError:
                timed_out = True
                raise BodyTimeout() from None
            got += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if timed_out:
                    message = with_close(message)
            await send(message)

        try:
            await self.app(scope, timed_receive, closing_send)
        except BodyTimeout as exc:
            if not started:
                await answer(send, 408, b'{"detail":"' + str(exc.detail).encode() + b'"}')


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(rf"(?P<name>{_LABEL}(?:\.{_LABEL})*|\[(?P<v6>[0-9a-f:.]+)\])"
                   r"(?::(?P<port>[0-9]{1,5}))?")


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host header: a host name (IPv4 included) or ``[IPv6]``, then an
    optional port of digits; None for anything else (``localhost:80@evil.example``,
    ``a b``, a bare ``::1``, a port over 65535)."""
    match = _HOST.fullmatch(value.lower())
    if match is None:
        return None
    if match["v6"] is not None:
        try:
            ipaddress.IPv6Address(match["v6"])
        except ValueError:
            return None
    port = int(match["port"]) if match["port"] is not None else None
    if port is not None and port > 65535:
        return None
    return match["name"], port


class HostAllowList:
    """400 unless the request has one Host header, well formed (``parse_host``), whose name
    (or name and port) is one of ``hosts``."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...]) -> None:
        self.app, self.hosts = app, {h.lower() for h in hosts}

    def allowed(self, values: list[bytes]) -> bool:
        if len(values) != 1:
            return False
        text = values[0].decode("latin-1")
        parsed = parse_host(text)
        if parsed is None:
            return False
        name = parsed[0]
        plain = name[1:-1] if name.startswith("[") else name  # '::1' in the list names '[::1]'
        return bool({name, plain, text.lower()} & self.hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.hosts:
            values = [v for k, v in scope["headers"] if k.lower() == b"host"]
            if not self.allowed(values):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await answer(send, 400, b"unknown host: this server answers only the names "
                             b"it was started for", b"text/plain; charset=utf-8")
                return
        await self.app(scope, receive, send)


class SecurityHeadersAndLog:
    """Adds the security headers to every answer and logs one line per request: method,
    path (no query string, no body: never a photo), status and milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        finally:
            ACCESS.info("%s %s %d %.0f ms", scope["method"], scope["path"], status,
                        (time.perf_counter() - started) * 1000)

