"""A bounded soak of the web app: mixed uploads, API calls, hostile requests for ``--minutes``
against a real ``facexplain serve`` on the loopback address, the server's memory sampled
every 5 s. Passes when no answer is a 5xx and the resident memory of the last minute stays
within ``--bound-mb`` of the first minute's peak (models and caches are loaded by then).

The mix (seeded): explanations of uploaded LFW pairs (form), verify and explain through
/api/v1, status / page / zip reads, damaged files (415), a 7000x7000 PNG (413), a chunked
30 MiB body (413), unknown jobs (404) and a foreign Host header (400). Every loop is bounded
by the clock; the queue's cap answers 429 when the mix outruns the worker.
Usage: .venv/bin/python bench/web_soak.py [--minutes 10] [--json docs/results/web-soak.json]
       [--figure docs/figures/web-soak-memory.png]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import select
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.study.server

from tests.study.server import Server  # noqa: E402

from facexplain import settings  # noqa: E402
from facexplain.datasets.lfw import read_pairs  # noqa: E402

MiB = 2**20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chunked_post(port: int, size: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/api/explain")
    conn.putheader("Content-Type", "multipart/form-data; boundary=b")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    head = (b'--b\r\nContent-Disposition: form-data; name="photo_a"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n")
    chunk = b"\xff" * MiB
    try:
        conn.send(b"%x\r\n%s\r\n" % (len(head), head))
        for _ in range(size // MiB):
            if select.select([conn.sock], [], [], 0)[0]:
                break  # the server has answered: read it before it closes
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        return conn.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        return 0  # no answer read: counted apart, never as a 413
    finally:
        conn.close()


class Soak:
    def __init__(self, url: str, port: int, photos: list[tuple[Path, Path]], seed: int) -> None:
        self.url, self.port, self.photos = url, port, photos
        self.rng = random.Random(seed)
        self.codes: Counter[str] = Counter()
        self.jobs: list[str] = []
        self.client = httpx.Client(base_url=url, timeout=60)
        big = io.BytesIO()
        Image.new("RGB", (7000, 7000), (100, 100, 100)).save(big, "PNG")
        self.big_png = big.getvalue()

    def files(self) -> dict[str, tuple[str, bytes, str]]:
        a, b = self.rng.choice(self.photos)
        return {"photo_a": (a.name, a.read_bytes(), "image/jpeg"),
                "photo_b": (b.name, b.read_bytes(), "image/jpeg")}

    def step(self) -> None:
        kind = self.rng.choices(
            ["form", "verify", "api_explain", "read", "damaged", "huge", "chunked", "404",
             "host"], weights=[12, 15, 8, 30, 8, 5, 3, 12, 7])[0]
        c = self.client
        if kind == "form":
            r = c.post("/api/explain", data={"patch": "32", "stride": "16"}, files=self.files())
        elif kind == "verify":
            r = c.post("/api/v1/verify", files=self.files())
        elif kind == "api_explain":
            r = c.post("/api/v1/explain", data={"methods": "occlusion,saliency", "patch": "28",
                                                "stride": "14"}, files=self.files())
        elif kind == "read" and self.jobs:
            job = self.rng.choice(self.jobs)
            url = self.rng.choice([f"/api/jobs/{job}", f"/jobs/{job}", f"/api/v1/jobs/{job}",
                                   f"/jobs/{job}/download.zip", f"/api/v1/jobs/{job}/result"])
            r = c.get(url)
        elif kind == "damaged":
            files = self.files()
            files["photo_a"] = ("x.jpg", files["photo_a"][1][:500], "image/jpeg")
            r = c.post("/api/explain", files=files)
        elif kind == "huge":
            files = self.files()
            files["photo_b"] = ("big.png", self.big_png, "image/png")
            r = c.post("/api/v1/explain", files=files)
        elif kind == "chunked":
            self.codes[f"chunked {chunked_post(self.port, 30 * MiB)}"] += 1
            return
        elif kind == "host":
            r = c.get("/", headers={"host": "evil.example"})
        else:
            r = c.get(f"/jobs/{'x' * 16}")
        self.codes[f"{kind} {r.status_code}"] += 1
        if r.status_code == 202 and "id" in r.json():
            self.jobs.append(r.json()["id"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--bound-mb", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None)
    args = ap.parse_args()
    images = settings.current().lfw_images
    pairs = read_pairs(settings.current().lfw_pairs)[:600]
    photos = [(p.path_a(images), p.path_b(images)) for p in pairs[::20]]
    work = Path(tempfile.mkdtemp(prefix="web-soak-"))
    server = Server(None, work / "work", preload="sface")
    server.start()
    assert server.proc is not None
    pid, started = server.proc.pid, time.monotonic()
    curve: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            curve.append((round(time.monotonic() - started, 1), round(rss_mb(pid), 1)))
            stop.wait(5.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    soak = Soak(server.url, server.port, photos, args.seed)
    deadline = started + args.minutes * 60
    try:
        while time.monotonic() < deadline:
            soak.step()
            time.sleep(0.2)
    finally:
        stop.set()
        sampler.join()
        server.stop()
    errors = sum(n for k, n in soak.codes.items() if k.split()[-1].startswith("5"))
    first = max(m for t, m in curve if t <= 60)
    last = max(m for t, m in curve if t >= curve[-1][0] - 60)
    doc = {"minutes": args.minutes, "requests": sum(soak.codes.values()),
           "answers": dict(sorted(soak.codes.items())), "server_errors_5xx": errors,
           "rss_first_minute_peak_mb": first, "rss_last_minute_peak_mb": last,
           "growth_mb": round(last - first, 1), "bound_mb": args.bound_mb,
           "passed": errors == 0 and last - first <= args.bound_mb,
           "rss_curve": curve, "date": time.strftime("%Y-%m-%d"),
           "command": f"bench/web_soak.py --minutes {args.minutes:g}"}
    print(json.dumps({k: v for k, v in doc.items() if k != "rss_curve"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.figure:
        plot(curve, doc, args.figure)
    if not doc["passed"]:
        raise SystemExit(1)


def plot(curve: list[tuple[float, float]], doc: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([t / 60 for t, _ in curve], [m for _, m in curve], lw=1.5)
    ax.axhline(float(doc["rss_first_minute_peak_mb"]) + float(doc["bound_mb"]),  # type: ignore[arg-type]
               color="#a33", ls="--", lw=1, label="bound: first minute's peak + "
               f"{doc['bound_mb']:g} MB")
    ax.set_xlabel("minutes")
    ax.set_ylabel("server resident memory, MB")
    ax.set_title(f"web soak: {doc['requests']} requests, {doc['server_errors_5xx']} 5xx")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
