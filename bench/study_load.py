"""Load on a served study (loopback): latency of 200 concurrent mixed requests, throughput of
1,000 concurrent answers (one fsync'd transaction each), and a SIGKILL in the middle.

The same measurements as tests/study/test_reliability.py, with numbers printed as a table.
Usage: .venv/bin/python bench/study_load.py [--participants 10] [--pairs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.study.conftest import lfw_study_pairs  # noqa: E402
from tests.study.server import Server  # noqa: E402

from facexplain.benchmarks.lookalike import write_pairs  # noqa: E402
from facexplain.study.create import create_study  # noqa: E402


async def timed(client: httpx.AsyncClient, method: str, url: str,
                **kw: object) -> tuple[int, float]:
    t = time.perf_counter()
    try:
        r = await client.request(method, url, **kw)  # type: ignore[arg-type]
    except httpx.TransportError:
        return -1, time.perf_counter() - t
    return r.status_code, time.perf_counter() - t


async def drive(run: str, server: Server, people: list, jobs: list,  # type: ignore[type-arg]
                acked: list[tuple[str, int]]) -> list[tuple[int, float]]:
    """'mixed': 200 concurrent page polls and answers; else every answer of ``jobs`` at once
    (100 connections), killing the server after a third were acknowledged in 'sigkill'."""
    limits = httpx.Limits(max_connections=200 if run == "mixed" else 100)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as c:
        if run == "mixed":
            reqs = []
            for k in range(200):
                w = people[k % len(people)]
                if k % 2:
                    reqs.append(timed(c, "GET", f"/p/{w.token}/next"))
                else:
                    reqs.append(timed(c, "POST", f"/p/{w.token}/answer",
                                      json={"phase": 1, "pair": w.order1[k // 20], "choice": 2}))
            return list(await asyncio.gather(*reqs))

        async def answer(w, pair: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
            code, dt = await timed(c, "POST", f"/p/{w.token}/answer",
                                   json={"phase": 1, "pair": pair, "choice": 4})
            if code == 200:
                acked.append((w.token, pair))
                if run == "sigkill" and len(acked) == len(jobs) // 3:
                    server.kill()
            return code, dt
        return list(await asyncio.gather(*(answer(w, p) for w, p in jobs)))


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="study-load-"))
    src = write_pairs(root / "pairs.json", lfw_study_pairs(args.pairs // 2), {"model": "sface"})
    rows = []
    for run in ("mixed", "answers", "sigkill"):
        made = create_study(src, root / run, ("none", "occlusion"), args.participants // 2,
                            draw_maps=False, catch=0)  # as recorded: 100 real pairs
        server = Server(made.folder, root / f"work-{run}")
        server.start()
        people = made.participants
        jobs = [(w, p) for w in people for p in w.order1]
        acked: list[tuple[str, int]] = []

        t0 = time.perf_counter()
        results = asyncio.run(drive(run, server, people, jobs, acked))
        wall = time.perf_counter() - t0
        server.stop()
        codes = [c for c, _ in results]
        lat = [dt for c, dt in results if c == 200]
        db = sqlite3.connect(made.folder / "study.sqlite")
        stored = set(db.execute("SELECT p.token, a.pair FROM answers a JOIN participants p "
                                "ON p.id = a.participant").fetchall())
        db.close()
        lost = sum(1 for a in acked if a not in stored)
        rows.append((run, len(results), codes.count(200), sum(c >= 500 for c in codes),
                     codes.count(-1), wall, statistics.median(lat), pct(lat, 0.95),
                     len(acked), lost))
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| run | requests | 200 | 5xx | no reply | wall s | median s | p95 s | acked | lost |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.2f} | {r[6]:.3f} | "
              f"{r[7]:.3f} | {r[8]} | {r[9]} |")


if __name__ == "__main__":
    main()
