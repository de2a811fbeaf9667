"""Admission before decoding: how many uploads are in hand, how many photos are decoded at
once, by whom, and how many pixels that puts in memory.

Why: a 114 KB PNG can hold 39 megapixels (156 MB decoded: Pillow keeps RGB in four bytes a
pixel), and eight concurrent requests with two such photos took the server from 0.7 GB to
3.6 GB. The queue's cap counted only queued jobs, so it applied after the decodes. Now a full
queue answers 429 before a body is read, a client may have ``uploads_per_client`` upload
requests in admission (``uploads`` in all), and each photo's size is read from its header
(Pillow's ``Image.open`` is lazy) before it waits for a decode slot: at most ``decodes`` at
once, ``per_client`` of them for one client, and ``megapixels`` in flight in all. A photo that
gets no slot within ``wait_s`` is refused with 503 and Retry-After.

The gate belongs to the app (``Admission`` holds it) and a request's client is known only to
the ASGI layer; a context variable hands both to ``uploads`` without threading them through
every route. Waiting polls (20 ms) instead of using an asyncio condition, so one app can serve
several event loops (each TestClient runs its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from fastapi import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from facexplain.web.job_model import QueueFull

POLL_S = 0.02
TRIM_MEGAPIXELS = 4.0  # decodes at least this large hand their memory back (``release_memory``)


class Queue(Protocol):
    """What admission asks of the job queue (``jobs.ExplainQueue``)."""

    def check_capacity(self) -> None: ...


@dataclass(frozen=True)
class AdmissionLimits:
    """Upload requests in admission (all, per client), decodes at once (all, per client),
    megapixels decoded at once, and the longest wait for a decode slot."""

    uploads: int = 32
    uploads_per_client: int = 8
    decodes: int = 3
    per_client: int = 2
    megapixels: float = 80.0
    wait_s: float = 30.0


class Busy(HTTPException):
    """503: no decode slot within the wait; the client may try again after ``retry_s``."""

    def __init__(self, message: str, retry_s: int) -> None:
        super().__init__(503, message, headers={"Retry-After": str(retry_s)})


class DecodeGate:
    """Counts decodes in flight by client and pixels; ``slot`` waits for room or refuses."""

    def __init__(self, limits: AdmissionLimits, max_pixels: int) -> None:
        self.limits = limits
        # a photo at the pixel cap must always fit on its own
        self.budget = max(limits.megapixels * 1e6, float(max_pixels))
        self._lock = threading.Lock()
        self._by_client: Counter[str] = Counter()
        self._pixels = 0.0
        self.peak_pixels = 0.0  # the most pixels ever in flight: what the tests check

    def _try_take(self, client: str, pixels: float) -> bool:
        with self._lock:
            if (sum(self._by_client.values()) >= self.limits.decodes
                    or self._by_client[client] >= self.limits.per_client
                    or self._pixels + pixels > self.budget):
                return False
            self._by_client[client] += 1
            self._pixels += pixels
            self.peak_pixels = max(self.peak_pixels, self._pixels)
            return True

    def _give_back(self, client: str, pixels: float) -> None:
        with self._lock:
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]
            self._pixels = max(0.0, self._pixels - pixels)

    @contextlib.asynccontextmanager
    async def slot(self, client: str, pixels: float, which: str) -> AsyncIterator[None]:
        """Hold a decode slot for ``pixels`` of ``client``'s photo while the block runs."""
        deadline = time.monotonic() + self.limits.wait_s
        while not self._try_take(client, pixels):
            if time.monotonic() >= deadline:
                raise Busy(f"the server is decoding other large photos; {which} could not be "
                           "read now, please try again shortly", 5)
            await asyncio.sleep(POLL_S)
        try:
            yield
        finally:
            self._give_back(client, pixels)
            if pixels >= TRIM_MEGAPIXELS * 1e6:
                await asyncio.to_thread(release_memory)


@dataclass(frozen=True)
class Seat:
    """What an upload request finds in its context: the app's gate and who is asking."""

    gate: DecodeGate
    client: str


SEAT: ContextVar[Seat | None] = ContextVar("facexplain_admission_seat", default=None)


class Admission:
    """Pure-ASGI layer: hands the gate to the request (``SEAT``) and, for a multipart POST,
    answers 429 before the body is read when the queue is full or the client (or everyone)
    already has too many uploads in admission."""

    def __init__(self, app: ASGIApp, jobs: Queue, limits: AdmissionLimits,
                 max_pixels: int) -> None:
        self.app, self.jobs, self.limits = app, jobs, limits
        self.gate = DecodeGate(limits, max_pixels)
        self._lock = threading.Lock()
        self._uploads: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = str((scope.get("client") or ("?", 0))[0])
        token = SEAT.set(Seat(self.gate, client))
        try:
            if not _is_upload(scope):
                await self.app(scope, receive, send)
                return
            refusal = self._enter(client)
            if refusal is not None:
                await _refuse(send, 429, *refusal)
                return
            try:
                await self.app(scope, receive, send)
            finally:
                with self._lock:
                    self._uploads[client] -= 1
                    if self._uploads[client] <= 0:
                        del self._uploads[client]
        finally:
            SEAT.reset(token)

    def _enter(self, client: str) -> tuple[str, int] | None:
        """Count the upload in, or say why not and when to come back."""
        try:
            self.jobs.check_capacity()
        except QueueFull as full:
            return str(full), full.retry_after_s
        with self._lock:
            if self._uploads[client] >= self.limits.uploads_per_client:
                return (f"you already have {self._uploads[client]} uploads in progress; "
                        "please wait for them", 5)
            if sum(self._uploads.values()) >= self.limits.uploads:
                return "too many uploads are in progress; please try again shortly", 5
            self._uploads[client] += 1
        return None


def _is_upload(scope: Scope) -> bool:
    if scope["method"] != "POST":
        return False
    kind = dict(scope["headers"]).get(b"content-type", b"")
    return kind.lower().startswith(b"multipart/")


async def _refuse(send: Send, status: int, message: str, retry_s: int) -> None:
    import json

    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_s).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def release_memory() -> None:
    """Return freed heap pages to the system (glibc only; elsewhere a no-op).

    Why: Pillow allocates an image in 16 MB blocks; once glibc's mmap threshold has risen past
    that, such blocks come from its per-thread arenas, and freed arena memory stays with the
    process: a burst of 39-megapixel decodes left the server at 3.4 GB when it was over.
    ``malloc_trim(0)`` gives back the free pages of every arena (about a millisecond).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
