"""The hostile-request tally (issue 36): a fixed, seeded set of hostile requests against a real
``facexplain serve`` on the loopback address, each answer tallied by kind and status, then
eight concurrent uploads of two 39-megapixel PNGs with the server's memory measured.

Passes when no answer is a 5xx, the burst's peak resident memory stays under ``--peak-mb`` and
the server ends within ``--return-mb`` of its idle size. Kinds: bodies over the cap (declared
and chunked), bodies sent at a byte a second or cut short, a head sent slowly, pixel bombs
(49 megapixels; a header claiming 10^10 pixels), damaged and foreign files, malformed
multipart and HTTP, bad Host variants, unknown job ids and traversal in ids and file names,
options out of bounds and cross-origin posts. Every loop is bounded by a count or a clock.
Status 0 means the server closed the connection without an answer.
Usage: .venv/bin/python bench/web_hostile.py [--seed 0] [--json docs/results/web-hostile.json]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.study.server

from tests.study.server import Server  # noqa: E402

from facexplain import settings  # noqa: E402

MiB = 2**20
BOUNDARY = "hostile"
HOSTS = [b"evil.example", b"localhost:80@evil.example", b"localhost@evil.example",
         b"127.0.0.1.evil.example", b"localhost:abc", b"localhost:99999", b"::1", b"[::1",
         b"localhost/x", b"user@localhost", b"", b"localhost:80:80"]


def status_of(answer: bytes) -> int:
    try:
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    except (IndexError, ValueError):
        return 0


def raw(port: int, data: bytes, then: Callable[[socket.socket], None] | None = None,
        limit_s: float = 40.0) -> int:
    """Send ``data`` on a fresh connection (``then`` may send more), return the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            if then is not None:
                then(sock)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(1.0)
        got, started = b"", time.monotonic()
        while time.monotonic() - started < limit_s and b"\r\n" not in got:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return status_of(got)


def trickle(sock: socket.socket, seconds: int = 40) -> None:
    """A byte a second until the server answers or closes (at most ``seconds``)."""
    sock.settimeout(1.0)
    for _ in range(seconds):
        sock.sendall(b"x")
        try:
            sock.recv(1, socket.MSG_PEEK)  # an answer or the end: stop trickling
            return
        except TimeoutError:
            continue


def post_head(port: int, length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
            f"multipart/form-data; boundary={BOUNDARY}\r\n{size}\r\n{extra}\r\n").encode()


FIELD = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="methods"\r\n\r\n'.encode()
FILE = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo_a"; filename="a.jpg"'
        '\r\nContent-Type: image/jpeg\r\n\r\n').encode()


def chunked_flood(sock: socket.socket) -> None:
    sock.sendall(b"%x\r\n%s\r\n" % (len(FILE), FILE))
    chunk = b"%x\r\n%s\r\n" % (MiB, b"\xff" * MiB)
    sock.settimeout(0.05)
    for _ in range(200):  # at most 200 MiB; the cap is 21 MiB
        sock.sendall(chunk)
        try:
            sock.recv(1, socket.MSG_PEEK)  # the server has answered (or closed)
            return
        except TimeoutError:
            continue


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 110, 100)).save(buf, "PNG")
    return buf.getvalue()


def lying_png(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming ``width`` x ``height``, and one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


class Tally:
    def __init__(self, url: str, port: int, face_a: bytes, face_b: bytes, seed: int) -> None:
        self.url, self.port, self.rng = url, port, random.Random(seed)
        self.face_a, self.face_b = face_a, face_b
        self.codes: dict[str, Counter[int]] = defaultdict(Counter)
        self.client = httpx.Client(base_url=url, timeout=120)
        self.jobs: list[str] = []

    def note(self, kind: str, status: int) -> None:
        self.codes[kind][status] += 1

    def upload(self, kind: str, a: tuple[str, bytes, str], b: tuple[str, bytes, str] | None = None,
               data: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> None:
        files = {"photo_a": a, "photo_b": b or ("b.jpg", self.face_b, "image/jpeg")}
        r = self.client.post("/api/explain", files=files, data=data or {"patch": "56",
                                                                         "stride": "56"},
                             headers=headers)
        self.note(kind, r.status_code)
        if r.status_code == 202:
            self.jobs.append(r.json()["id"])

    def slow_ones(self) -> None:
        """Trickled and truncated bodies and a slow head, five at once (each ends by itself)."""
        p = self.port
        work = {"trickled body": lambda: raw(p, post_head(p, 100_000) + FIELD, trickle),
                "truncated body": lambda: raw(p, post_head(p, 50_000) + FIELD + b"y" * 999),
                "slow head": lambda: raw(p, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", trickle)}
        threads = []
        for kind, fn in [*work.items(), *list(work.items())[:2]]:
            threads.append(threading.Thread(target=lambda k=kind, f=fn: self.note(k, f())))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    def run(self) -> None:
        p, face = self.port, ("a.jpg", self.face_a, "image/jpeg")
        self.slow_ones()
        for _ in range(3):
            self.note("declared 30 MiB body", raw(p, post_head(p, 30 * MiB) + FILE))
            self.note("chunked 1 GiB body", raw(p, post_head(p, None), chunked_flood))
        bombs = {"49-megapixel PNG": png(7000, 7000), "10^10-pixel PNG header":
                 lying_png(100_000, 100_000), "39-megapixel PNG": png(7000, 5600)}
        for kind, data in bombs.items():
            self.upload(kind, ("big.png", data, "image/png"))
        gif = io.BytesIO()
        Image.new("RGB", (64, 64)).save(gif, "GIF")
        damaged = {"truncated JPEG": self.face_a[:700], "random bytes": self.rng.randbytes(4096),
                   "GIF": gif.getvalue(), "empty file": b""}
        for kind, data in damaged.items():
            self.upload(kind, ("x.jpg", data, "image/jpeg"))
        for name in ("../../evil.jpg", "/etc/passwd", "..\\..\\x.jpg"):
            self.upload("traversal in a file name", (name, self.face_a, "image/jpeg"))
        for options in ({"patch": "1", "stride": "1"}, {"patch": "-5", "stride": "0"},
                        {"patch": "99999", "stride": "1"}, {"methods": "nope"},
                        {"backbone": "../../x"}):
            self.upload("options out of bounds", face, data=options)
        for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
            self.upload("cross-origin post", face, headers={"origin": origin})
        for host in HOSTS:
            self.note("bad Host", raw(p, b"GET /healthz HTTP/1.1\r\nHost: " + host
                                      + b"\r\nConnection: close\r\n\r\n"))
        for request in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                        b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n",
                        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"):
            self.note("malformed HTTP", raw(p, request))
        for body in (b"--wrong\r\n\r\n", FIELD, FIELD + b"x\r\n--" + BOUNDARY.encode(),
                     b"\x00" * 512):
            self.note("malformed multipart", raw(p, post_head(p, len(body)) + body))
        for url in ("/jobs/does-not-exist", "/api/jobs/%2e%2e%2f%2e%2e%2fetc",
                    "/api/v1/jobs/x" * 3, "/jobs/../../etc/passwd",
                    "/jobs/abc/files/..%2f..%2fjobs.sqlite", "/jobs/abc/download.zip"):
            self.note("unknown job or traversal", self.client.get(url).status_code)
        for job in self.jobs[:3]:
            for name in ("../jobs.sqlite", "upload_a", "%2e%2e%2fjobs.sqlite"):
                self.note("job file traversal",
                          self.client.get(f"/jobs/{job}/files/{name}").status_code)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def burst(url: str, pid: int, big: bytes, uploads: int = 8) -> dict[str, object]:
    """``uploads`` concurrent verify calls, two 39-megapixel PNGs each; memory sampled."""
    idle, codes, peak = rss_mb(pid), Counter[int](), 0.0

    def one() -> None:
        files = {"photo_a": ("a.png", big, "image/png"), "photo_b": ("b.png", big, "image/png")}
        codes[httpx.post(f"{url}/api/v1/verify", files=files, timeout=180).status_code] += 1

    threads = [threading.Thread(target=one) for _ in range(uploads)]
    started = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) and time.monotonic() - started < 240:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.05)
    seconds = time.monotonic() - started
    time.sleep(3.0)
    return {"uploads": uploads, "photo": "7000x5600 plain PNG", "png_bytes": len(big),
            "answers": dict(codes), "seconds": round(seconds, 1), "idle_mb": round(idle),
            "peak_mb": round(max(peak, rss_mb(pid, "VmHWM"))), "after_mb": round(rss_mb(pid))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak-mb", type=float, default=1500.0)
    ap.add_argument("--return-mb", type=float, default=200.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    lfw = settings.current().lfw_images / "Aaron_Peirsol"
    face_a, face_b = ((lfw / f"Aaron_Peirsol_{i:04d}.jpg").read_bytes() for i in (1, 2))
    server = Server(None, Path(tempfile.mkdtemp(prefix="web-hostile-")) / "work",
                    preload="sface")
    server.start()
    assert server.proc is not None
    pid, started = server.proc.pid, time.monotonic()
    try:
        warm = httpx.post(f"{server.url}/api/v1/verify", timeout=120, files={
            "photo_a": ("a.jpg", face_a, "image/jpeg"), "photo_b": ("b.jpg", face_b, "image/jpeg")})
        assert warm.status_code == 200, warm.text
        memory = burst(server.url, pid, png(7000, 5600))
        tally = Tally(server.url, server.port, face_a, face_b, args.seed)
        tally.run()
        alive = httpx.get(f"{server.url}/healthz", timeout=10).status_code
        hwm = rss_mb(pid, "VmHWM")
    finally:
        server.stop()
    codes = {k: dict(sorted(v.items())) for k, v in tally.codes.items()}
    errors = sum(n for v in tally.codes.values() for s, n in v.items() if s >= 500)
    passed = (errors == 0 and alive == 200 and float(memory["peak_mb"]) < args.peak_mb  # type: ignore[arg-type]
              and float(memory["after_mb"]) - float(memory["idle_mb"]) < args.return_mb)  # type: ignore[arg-type]
    doc = {"date": time.strftime("%Y-%m-%d"), "machine": "2-core AMD EPYC, no GPU",
           "command": f"bench/web_hostile.py --seed {args.seed}", "seed": args.seed,
           "requests": sum(sum(v.values()) for v in tally.codes.values()), "answers": codes,
           "server_errors_5xx": errors, "healthz_after": alive, "max_rss_mb": round(hwm),
           "burst": memory, "peak_bound_mb": args.peak_mb, "return_bound_mb": args.return_mb,
           "seconds": round(time.monotonic() - started), "passed": passed}
    print(json.dumps(doc, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
