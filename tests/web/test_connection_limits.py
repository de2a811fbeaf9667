"""Bounded time and memory per connection, on a live ``facexplain serve`` (issue 36, item 5):
slow and short bodies and heads are dropped, a 413 closes its connection, every 400 carries
the security headers, the Host header is parsed strictly, and a burst of 39-megapixel uploads
stays within its memory bound. Raw sockets, because an HTTP client would not send such
requests; every loop is bounded by a byte count or a clock."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from facexplain.web.admission import AdmissionLimits, DecodeGate
from facexplain.web.guards import SECURITY_HEADERS, HostAllowList, parse_host
from tests.study.server import Server
from tests.web.conftest import lfw_bytes

MiB = 2**20
MULTIPART = "multipart/form-data; boundary=xyz"
FILE_PART = (b'--xyz\r\nContent-Disposition: form-data; name="photo_a"; filename="a.jpg"'
             b"\r\nContent-Type: image/jpeg\r\n\r\n")
PART = b'--xyz\r\nContent-Disposition: form-data; name="methods"\r\n\r\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(None, tmp_path_factory.mktemp("conn") / "work", preload="")
    srv.start()
    yield srv
    srv.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or ``limit_s`` passes), and when."""
    started, got = time.monotonic(), b""
    sock.settimeout(1.0)
    while time.monotonic() - started < limit_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return got, time.monotonic() - started


def head(answer: bytes) -> tuple[int, dict[str, str]]:
    lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}


def post_head(port: int, length: int) -> bytes:
    return (f"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {MULTIPART}\r\nContent-Length: {length}\r\n\r\n").encode()


def test_a_body_sent_at_a_byte_a_second_is_dropped_within_30_s(server: Server) -> None:
    sock = connect(server.port)
    sock.sendall(post_head(server.port, 100_000) + PART)  # then the field's value, trickled
    started, sent = time.monotonic(), 0
    sock.settimeout(1.0)
    answer = b""
    while time.monotonic() - started < 40 and not answer:
        try:
            sock.sendall(b"x")
            sent += 1
            answer = sock.recv(65536)  # waits up to a second: a byte a second
            if not answer:
                break
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    rest, _ = read_until_closed(sock, 5)
    took = time.monotonic() - started
    sock.close()
    assert took < 30, f"held {took:.0f} s"
    assert sent < 40
    status, fields = head(answer + rest)
    assert status == 408 and fields.get("connection") == "close"


def test_a_body_shorter_than_its_length_is_dropped(server: Server) -> None:
    sock = connect(server.port)
    sock.sendall(post_head(server.port, 50_000) + PART + b"y" * 1000)
    answer, took = read_until_closed(sock, 40)
    sock.close()
    assert took < 30, f"held {took:.0f} s"
    assert head(answer)[0] == 408


def test_a_head_sent_slowly_or_never_finished_is_dropped(server: Server) -> None:
    trickled, silent = connect(server.port), connect(server.port)
    trickled.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    trickled.settimeout(1.0)
    answer = b""
    for _ in range(40):  # a header byte a second, until the server ends it
        try:
            trickled.sendall(b"X")
            answer = trickled.recv(65536)
            break
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    took = time.monotonic() - started
    nothing, quiet = read_until_closed(silent, 40)  # connected, sent nothing
    trickled.close()
    silent.close()
    assert took < 20 and quiet < 20
    assert head(answer)[0] == 408 and nothing == b""


def test_a_413_closes_the_connection(server: Server) -> None:
    sock = connect(server.port)
    sock.sendall((f"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}"
                  "\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
                 + b"%x\r\n%s\r\n" % (len(FILE_PART), FILE_PART))
    chunk = b"%x\r\n%s\r\n" % (MiB, b"\xff" * MiB)
    sock.settimeout(0.05)
    answer, sent = b"", 0
    while sent < 200 and not answer:  # at most 200 MiB; the limit is 21 MiB
        try:
            sock.sendall(chunk)
            sent += 1
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    status, fields = head(answer)
    assert status == 413 and fields.get("connection") == "close"
    # The server stops reading: sending on fails (or the socket reads its end) within seconds.
    started, closed = time.monotonic(), False
    while time.monotonic() - started < 10 and not closed:
        try:
            sock.sendall(chunk)
            closed = sock.recv(65536) == b""
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
    sock.close()
    assert closed, "the server kept reading after its 413"
    assert sent < 60


def raw(port: int, request: bytes) -> tuple[int, dict[str, str]]:
    sock = connect(port)
    sock.sendall(request)
    answer, _ = read_until_closed(sock, 10)
    sock.close()
    return head(answer)


def with_host(host: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"


def test_every_400_carries_the_security_headers(server: Server) -> None:
    for request in (with_host(b"evil.example"),  # refused by the Host allow-list
                    b"GARBAGE\r\n\r\n",  # refused by uvicorn's parser itself
                    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n"):
        status, fields = raw(server.port, request)
        assert status == 400, request
        assert all(fields.get(k) == v for k, v in SECURITY_HEADERS.items()), (request, fields)


HOSTS = {b"127.0.0.1": 200, b"127.0.0.1:8000": 200, b"localhost": 200, b"LOCALHOST:1": 200,
         b"[::1]:8000": 200, b"[::1]": 200, b"localhost:80@evil.example": 400,
         b"localhost@evil.example": 400, b"evil.example": 400, b"localhost:": 400,
         b"localhost:abc": 400, b"localhost:99999": 400, b"localhost:80:80": 400,
         b"::1": 400, b"[::1": 400, b"[evil.example]": 400, b"127.0.0.1.evil.example": 400,
         b"localhost/x": 400, b"user@localhost": 400}


def test_the_host_header_is_parsed_strictly(server: Server) -> None:
    for host, expected in HOSTS.items():
        assert raw(server.port, with_host(host))[0] == expected, host
    two = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"
    assert raw(server.port, two)[0] == 400


@pytest.mark.parametrize(("value", "parsed"), [
    ("localhost:8000", ("localhost", 8000)), ("[::1]", ("[::1]", None)),
    ("127.0.0.1", ("127.0.0.1", None)), ("Example.ORG:80", ("example.org", 80)),
    ("localhost:80@evil.example", None), ("a b", None), ("-a", None), ("[fe80::1%eth0]", None),
    ("[1.2.3.4]", None), ("x" * 64, None), ("localhost:65536", None), ("", None)])
def test_parse_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_host(value) == parsed


def test_the_allow_list_matches_names_not_prefixes() -> None:
    hosts = HostAllowList(lambda *a: None, ("127.0.0.1", "::1", "example.org:8080"))  # type: ignore[arg-type]
    assert hosts.allowed([b"[::1]:80"]) and hosts.allowed([b"example.org:8080"])
    assert not hosts.allowed([b"example.org"]) and not hosts.allowed([b"example.org:80"])
    assert not hosts.allowed([]) and not hosts.allowed([b"127.0.0.1", b"127.0.0.1"])


def test_the_decode_gate_bounds_decodes_clients_and_pixels() -> None:
    limits = AdmissionLimits(decodes=3, per_client=2, megapixels=80.0, wait_s=1.0)
    gate = DecodeGate(limits, max_pixels=40_000_000)
    inside: list[tuple[str, float]] = []
    most: list[int] = []
    by_client: list[int] = []

    async def decode(client: str, pixels: float) -> str:
        try:
            async with gate.slot(client, pixels, "a photo"):
                inside.append((client, pixels))
                most.append(len(inside))
                by_client.append(sum(1 for c, _ in inside if c == client))
                await asyncio.sleep(0.1)
                inside.remove((client, pixels))
            return "ok"
        except Exception as exc:  # noqa: BLE001 - the test counts refusals
            return str(getattr(exc, "status_code", exc))

    async def burst() -> list[str]:
        jobs = [decode("a", 39e6) for _ in range(6)] + [decode("b", 1e6) for _ in range(4)]
        return list(await asyncio.gather(*jobs))

    assert asyncio.run(burst()) == ["ok"] * 10
    assert max(most) <= 3 and max(by_client) <= 2 and gate.peak_pixels <= 80e6

    async def starved() -> list[str]:  # 2 s of 39-megapixel decodes, a 1 s wait: refusals
        slow = DecodeGate(AdmissionLimits(megapixels=40.0, wait_s=0.3), 40_000_000)

        async def hold(client: str) -> str:
            try:
                async with slow.slot(client, 39e6, "a photo"):
                    await asyncio.sleep(0.5)
                return "ok"
            except Exception as exc:  # noqa: BLE001
                return str(getattr(exc, "status_code", exc))

        return list(await asyncio.gather(*(hold(str(i)) for i in range(4))))

    answers = asyncio.run(starved())
    assert answers.count("ok") == 1 and answers.count("503") == 3


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


@pytest.mark.long
def test_eight_concurrent_39_megapixel_uploads_stay_within_the_memory_bound(
        tmp_path: Path, lfw_dir: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (7000, 5600), (120, 110, 100)).save(buf, "PNG")
    big = buf.getvalue()
    assert len(big) < 200_000
    srv = Server(None, tmp_path / "work", preload="sface")
    srv.start()
    try:
        assert srv.proc is not None
        pid = srv.proc.pid
        faces = {"photo_a": ("a.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 1), "image/jpeg"),
                 "photo_b": ("b.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 2), "image/jpeg")}
        assert httpx.post(f"{srv.url}/api/v1/verify", files=faces, timeout=60).status_code == 200
        idle = rss_mb(pid)
        codes: list[int] = []

        def upload() -> None:
            files = {"photo_a": ("a.png", big, "image/png"), "photo_b": ("b.png", big, "image/png")}
            codes.append(httpx.post(f"{srv.url}/api/v1/verify", files=files,
                                    timeout=180).status_code)

        threads = [threading.Thread(target=upload) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        time.sleep(3.0)
        after, peak = rss_mb(pid), rss_mb(pid, "VmHWM")
    finally:
        srv.stop()
    assert len(codes) == 8 and all(c in (200, 202, 422) for c in codes), codes
    assert peak < 1500, f"peak {peak:.0f} MB"
    assert after - idle < 200, f"idle {idle:.0f} MB, after the burst {after:.0f} MB"
