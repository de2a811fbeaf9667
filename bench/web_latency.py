"""Submit -> result on the web app, the first job included: a real ``facexplain serve``
(sface preloaded and warmed up) on the loopback address, LFW photos uploaded as files, the
default occlusion map (patch 16, stride 8), polled like the page does.

The split comes from the server's own stage timings (``timings`` in the job's JSON): upload
(the POST's round trip less the server's decode), decode (checks and saving), queued, detect +
align, maps, report; "poll" is what is left of the wall time (the 0.1 s polling interval and
the status calls). Run it on an idle machine: it is a wall-clock figure.
Usage: .venv/bin/python bench/web_latency.py [--jobs 5] [--json docs/results/web-latency.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.study.server

from tests.study.server import Server  # noqa: E402

from facexplain import settings  # noqa: E402
from facexplain.datasets.lfw import read_pairs  # noqa: E402


def one_job(url: str, a: Path, b: Path) -> dict[str, float]:
    started = time.perf_counter()
    resp = httpx.post(f"{url}/api/explain", data={"methods": "occlusion"}, timeout=60, files={
        "photo_a": (a.name, a.read_bytes(), "image/jpeg"),
        "photo_b": (b.name, b.read_bytes(), "image/jpeg")})
    resp.raise_for_status()
    posted = time.perf_counter() - started
    job_id = resp.json()["id"]
    while True:
        body = httpx.get(f"{url}/api/jobs/{job_id}", timeout=60).json()
        if body["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.1)
    total = time.perf_counter() - started
    if body["state"] != "done":
        raise SystemExit(f"job failed: {body['error']}")
    t = body["timings"]
    split = {"upload": max(0.0, posted - t["decode"]), "decode": t["decode"],
             "queued": t["queued"], "detect_align": t["detect_align"], "maps": t["maps"],
             "report": t["report"]}
    split["poll"] = max(0.0, total - sum(split.values()))
    return {"total": round(total, 3), **{k: round(v, 3) for k, v in split.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=5)
    ap.add_argument("--preload", default="sface", help="'' : nothing loaded before the first job")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pairs = read_pairs(settings.current().lfw_pairs)
    images = settings.current().lfw_images
    work = Path(tempfile.mkdtemp(prefix="web-latency-"))
    server = Server(None, work / "work", preload=args.preload)
    t = time.perf_counter()
    server.start()
    ready = time.perf_counter() - t
    try:
        rows = []
        for i in range(args.jobs):
            pair = pairs[300 + i]  # impostor pairs of fold 1
            rows.append(one_job(server.url, pair.path_a(images), pair.path_b(images)))
            print(f"job {i + 1}: {rows[-1]}", flush=True)
    finally:
        server.stop()
    doc = {"startup_to_ready_s": round(ready, 2), "jobs": rows,
           "first_job_s": rows[0]["total"],
           "median_s": sorted(r["total"] for r in rows)[len(rows) // 2],
           "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
           "date": time.strftime("%Y-%m-%d"),
           "preload": args.preload,
           "command": f"bench/web_latency.py --jobs {args.jobs} --preload '{args.preload}'"}
    print(json.dumps({k: v for k, v in doc.items() if k != "jobs"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
