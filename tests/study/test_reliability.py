"""The served study under load, on the loopback address with bounded loops: 200 concurrent
requests give no 5xx; SIGKILL during 1,000 concurrent answers loses no acknowledged answer."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facexplain.study.create import CreatedStudy
from tests.study.conftest import MakeStudy
from tests.study.server import Server

# A loaded two-core machine queues requests in the client for long: no pool timeout, a long
# read timeout; each test's run is bounded as a whole instead.
PATIENT = httpx.Timeout(180.0, pool=None)


@pytest.fixture()
def served(make_plain_study: MakeStudy, tmp_path: Path) -> Iterator[tuple[Server, CreatedStudy]]:
    made = make_plain_study(n_pairs=100, conditions=("none", "occlusion"), per_condition=5)
    server = Server(made.folder, tmp_path / "work")
    server.start()
    try:
        yield server, made
    finally:
        server.stop()


def test_200_concurrent_requests_get_no_5xx(served: tuple[Server, CreatedStudy]) -> None:
    server, made = served
    people = made.participants

    def request(k: int, client: httpx.AsyncClient) -> object:
        who = people[k % len(people)]
        kind = k % 5
        if kind == 0:
            return client.get("/")
        if kind == 1:
            return client.get(f"/p/{who.token}/next")
        if kind == 2:
            return client.get("/admin", params={"token": made.admin_token})
        return client.post(f"/p/{who.token}/answer",
                           json={"phase": 1, "pair": who.order1[k // 10], "choice": 1 + k % 5})

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=PATIENT) as c:
            return list(await asyncio.wait_for(  # bounded: the whole run, not each request
                asyncio.gather(*(request(k, c) for k in range(200))), 600))  # type: ignore

    responses = asyncio.run(run())
    codes = [r.status_code for r in responses]
    assert len(codes) == 200 and max(codes) < 500, sorted(set(codes))
    assert codes.count(200) == 200


def test_sigkill_during_1000_answers_loses_no_acknowledged_answer(
        served: tuple[Server, CreatedStudy]) -> None:
    server, made = served
    jobs = [(who, pair, 1 + (pair + len(who.id)) % 5) for who in made.participants
            for pair in who.order1]
    assert len(jobs) == 1000
    acked: list[tuple[str, int, int]] = []
    kill_after = 150

    async def answer(client: httpx.AsyncClient, who, pair: int, choice: int) -> None:  # type: ignore[no-untyped-def]
        try:
            r = await client.post(f"/p/{who.token}/answer",
                                  json={"phase": 1, "pair": pair, "choice": choice})
        except httpx.TransportError:
            return  # not acknowledged: the server died first
        if r.status_code == 200:
            acked.append((who.token, pair, r.json()["choice"]))
            if len(acked) == kill_after:
                server.kill()

    async def run() -> None:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=PATIENT) as c:
            await asyncio.wait_for(asyncio.gather(*(answer(c, *j) for j in jobs)), 600)

    asyncio.run(run())
    assert kill_after <= len(acked) < 1000  # killed mid-way, after 150 acknowledgements
    db = sqlite3.connect(made.folder / "study.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    server.start()  # a restart recovers the WAL; every acknowledged answer is there
    stored = {}
    for who in made.participants:
        for a in httpx.get(f"{server.url}/p/{who.token}/answers", timeout=30).json():
            stored[(who.token, a["pair"])] = a["choice"]
    missing = [(t, p) for t, p, c in acked if stored.get((t, p)) != c]
    assert not missing, f"{len(missing)} acknowledged answers lost"
