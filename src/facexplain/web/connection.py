"""uvicorn's HTTP/1.1 connection with the limits it lacks: a deadline for the request head,
no reading of a body nobody wants, and security headers on its own 400 answers.

Why a protocol subclass: uvicorn's h11 protocol has no header timeout (a client that sends a
request line and then a byte a second, or nothing at all, holds its connection for ever: the
keep-alive timer starts only after a first answer and every byte received cancels it), and
after an answer sent before the body was read it goes on reading and discarding the rest of
that body. Its "Invalid HTTP request" 400 is written below the ASGI app, so no middleware can
add headers to it. An ASGI layer (``guards.SlowBodyTimeout``) times bodies; this class times
heads. ``facexplain serve`` passes it to ``uvicorn.run(http=...)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from facexplain.web.guards import CLOSE, security_headers

HEAD_TIMEOUT_S = 10.0  # from connecting (or the last answer) to a complete request head


class GuardedH11Protocol(H11Protocol):
    """``H11Protocol`` with a request-head deadline; closes after an answer while the client
    is still sending a body; its 400 carries the security headers."""

    head_timeout_s = HEAD_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in (or the connection failed)
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        unread = self.conn.their_state is h11.SEND_BODY  # answered before the body was read
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread:  # a 404, a refusal: do not read and discard the rest of the body
            self.transport.close()
        elif self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # waiting for the next request on this connection

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._head_bytes:  # a head was begun: say why the connection ends
            body = b"the request's head arrived too slowly"
            lines = [b"HTTP/1.1 408 Request Timeout", b"content-type: text/plain; charset=utf-8",
                     b"content-length: " + str(len(body)).encode(), b": ".join(CLOSE),
                     *(b": ".join(h) for h in security_headers())]
            self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request, with the security headers."""
        body = msg.encode("ascii", "replace")
        headers = [(b"content-type", b"text/plain; charset=utf-8"),
                   (b"content-length", str(len(body)).encode()), CLOSE, *security_headers()]
        try:
            out = self.conn.send(h11.Response(status_code=400, headers=headers,
                                              reason=b"Bad Request"))
            self.transport.write((out or b"") + (self.conn.send(h11.Data(data=body)) or b"")
                                 + (self.conn.send(h11.EndOfMessage()) or b""))
        except h11.LocalProtocolError:  # an answer was already under way: just close
            pass
        self.transport.close()
