"""One access rule for every route (``web.access``) through TestClient, with the real sface
model and real LFW pairs: with a key file every job route needs the key or a session it opened,
a job belongs to its key (also after a restart), a cross-site form post is refused, and a
method whose head is not trained is refused up front without writing anything."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facexplain import settings
from facexplain.web.api_keys import new_api_key, read_key_hashes
from facexplain.web.app import create_app, lfw_choices
from facexplain.web.jobs import Pipelines
from facexplain.web.safety import MiB
from facexplain.web.submission import Submission, accept
from facexplain.web.uploads import PhotoLimits
from tests.study.server import FACEXPLAIN
from tests.web.conftest import web_config

COARSE = {"patch": "56", "stride": "56"}
JOB_ROUTES = ("/api/jobs/{id}", "/jobs/{id}", "/jobs/{id}/files/report.html",
              "/jobs/{id}/download.zip", "/api/v1/jobs/{id}", "/api/v1/jobs/{id}/result",
              "/api/v1/jobs/{id}/files/report.html")


def wait_done(c: TestClient, job_id: str, key: str, timeout: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = c.get(f"/api/v1/jobs/{job_id}", headers={"X-API-Key": key}).json()
        if body["state"] in ("done", "failed", "cancelled"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, str, str]:
    path = tmp_path / "keys.txt"
    return path, new_api_key(path, "a"), new_api_key(path, "b")


def keyed_app(work: Path, keys: Path, pipelines: Pipelines) -> TestClient:
    return TestClient(create_app(web_config(work, api_key_hashes=read_key_hashes(keys)),
                                 pipelines))


def test_every_job_route_needs_the_key_and_a_job_is_its_keys_alone(
        tmp_path: Path, keys: tuple[Path, str, str], pipelines: Pipelines) -> None:
    path, key_a, key_b = keys
    a, b = {"X-API-Key": key_a}, {"X-API-Key": key_b}
    with keyed_app(tmp_path / "w", path, pipelines) as c:
        for url in ("/healthz", "/", "/api/v1/openapi.json"):  # public
            assert c.get(url).status_code == 200, url
        assert c.post("/api/explain", data={"lfw_pair": "0", **COARSE}).status_code == 401
        assert c.post("/api/v1/explain", data={"lfw_pair": "0"}).status_code == 401
        assert c.post("/api/v1/verify", data={"lfw_pair": "0"}).status_code == 401
        assert c.get("/api/lfw-pairs").status_code == 401
        assert not [p for p in (tmp_path / "w").iterdir() if p.is_dir()]  # nothing queued
        made = c.post("/api/explain", data={"lfw_pair": "0", **COARSE}, headers=a)
        assert made.status_code == 202, made.text
        job_id = made.json()["id"]
        assert wait_done(c, job_id, key_a)["state"] == "done"
        for route in JOB_ROUTES:
            url = route.format(id=job_id)
            assert c.get(url).status_code == 401, url
            assert c.get(url, headers={"X-API-Key": "fx_wrong"}).status_code == 401, url
            assert c.get(url, headers=b).status_code == 404, url  # existence not told
            assert c.get(url, headers=a).status_code == 200, url
        assert c.post(f"/api/jobs/{job_id}/cancel").status_code == 401
        assert c.post(f"/api/jobs/{job_id}/cancel", headers=b).status_code == 404
        assert c.delete(f"/api/v1/jobs/{job_id}", headers=b).status_code == 404
    # the owner is stored with the job: a restarted server still tells the keys apart
    with keyed_app(tmp_path / "w", path, pipelines) as c:
        assert c.get(f"/api/jobs/{job_id}", headers=a).json()["state"] == "done"
        assert c.get(f"/api/jobs/{job_id}", headers=b).status_code == 404


def test_a_browser_session_opened_by_the_key_holds_no_key(
        tmp_path: Path, keys: tuple[Path, str, str], pipelines: Pipelines) -> None:
    path, key_a, key_b = keys
    with keyed_app(tmp_path / "w", path, pipelines) as c:
        assert 'action="/login"' in c.get("/").text and 'class="method"' not in c.get("/").text
        assert c.post("/login", data={"key": "fx_wrong"}).status_code == 401
        signed = c.post("/login", data={"key": key_a}, follow_redirects=False)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and key_a not in cookie
        page = c.get("/").text  # the client keeps the cookie: now the form
        assert 'class="method"' in page and 'action="/logout"' in page
        made = c.post("/api/explain", data={"lfw_pair": "1", **COARSE})
        assert made.status_code == 202, made.text
        job_id = made.json()["id"]
        assert c.get(f"/jobs/{job_id}").status_code == 200
        assert c.get(f"/api/jobs/{job_id}", headers={"X-API-Key": key_b}).status_code == 404
        assert c.post(f"/api/jobs/{job_id}/cancel").status_code == 200  # the owner may
        c.post("/logout")
        assert c.get(f"/api/jobs/{job_id}").status_code == 401


def test_a_cross_site_post_is_refused_with_or_without_keys(
        tmp_path: Path, keys: tuple[Path, str, str], pipelines: Pipelines) -> None:
    path, key_a, _ = keys
    for config in (web_config(tmp_path / "open"),
                   web_config(tmp_path / "keyed", api_key_hashes=read_key_hashes(path))):
        with TestClient(create_app(config, pipelines)) as c:
            for origin in ("http://evil.example", "null", "http://127.0.0.1:8001"):
                resp = c.post("/api/explain", data={"lfw_pair": "0", **COARSE},
                              headers={"Origin": origin, "X-API-Key": key_a})
                assert resp.status_code == 403, (origin, resp.text)
            for headers in ({"Referer": "http://evil.example/page"},
                            {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                            {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"}):
                resp = c.post("/api/explain", data={"lfw_pair": "0", **COARSE},
                              headers={**headers, "X-API-Key": key_a})
                assert resp.status_code == 403, headers
            # our own page's plain form: no-referrer makes its Origin 'null', the browser
            # still says same-origin
            own = c.post("/login", data={"key": key_a}, follow_redirects=False, headers={
                "Origin": "null", "Sec-Fetch-Site": "same-origin"})
            assert own.status_code == (303 if config.api_key_hashes else 404)
            assert c.post("/login", data={"key": key_a},
                          headers={"Origin": "http://evil.example"}).status_code == 403
            same = c.post("/api/explain", data={"lfw_pair": "0", **COARSE},
                          headers={"Origin": "http://testserver", "X-API-Key": key_a})
            assert same.status_code == 202, same.text
            assert c.post(f"/api/jobs/{same.json()['id']}/cancel", headers={
                "Origin": "http://evil.example", "X-API-Key": key_a}).status_code == 403


@pytest.fixture()
def home_without_heads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A model home linking the real model files, with no trained head."""
    home = tmp_path / "home"
    home.mkdir()
    for entry in settings.current().home.iterdir():
        if entry.is_dir() and entry.name not in ("xcos", "parts", "cache", "_downloads",
                                                 "records"):
            (home / entry.name).symlink_to(entry)
        elif entry.is_file():  # the records of recorded sha256s
            shutil.copy2(entry, home / entry.name)
    monkeypatch.setenv(settings.HOME_ENV, str(home))
    yield home


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_an_untrained_head_is_refused_up_front_and_a_job_never_trains(
        tmp_path: Path, home_without_heads: Path, pipelines: Pipelines) -> None:
    home = home_without_heads
    with TestClient(create_app(web_config(tmp_path / "w"), pipelines)) as c:
        page = c.get("/").text
        assert "not ready on this server" in page and 'value="xcos" disabled' in page
        before = tree(home)
        for url, methods in (("/api/explain", "xcos"), ("/api/v1/explain", "occlusion,parts")):
            resp = c.post(url, data={"lfw_pair": "0", "methods": methods})
            assert resp.status_code == 409, resp.text
            assert "facexplain setup --heads --backbone sface" in resp.json()["detail"]
        listed = {m["name"]: m["missing"] for m in c.get("/api/v1/methods").json()}
        assert listed["occlusion"] is None and "setup --heads" in str(listed["xcos"])
        resp = c.post("/api/v1/explain", data={"lfw_pair": "0", "methods": "all", **COARSE})
        assert resp.status_code == 202 and {"xcos", "parts"}.isdisjoint(resp.json()["methods"])
        assert "occlusion" in resp.json()["methods"]  # 'all': every method ready here
        c.delete(f"/api/v1/jobs/{resp.json()['id']}")
        # belt and braces: a job that reaches the worker anyway fails in one line, untrained
        jobs = c.app.state.jobs  # type: ignore[attr-defined]
        assert c.portal is not None
        queued = c.portal.call(accept, Submission("sface", "xcos", {}, 0), jobs, lfw_choices(),
                               PhotoLimits(MiB, 10**6, 1000), 1024)
        deadline = time.monotonic() + 60
        while queued.state not in ("done", "failed", "cancelled"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert queued.state == "failed" and "never trains" in str(queued.error)
        assert "\n" not in str(queued.error) and "setup --heads" in str(queued.error)
        assert tree(home) == before


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_new_api_key_at_a_bad_path_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("x")
    target = tmp_path if where == "folder" else tmp_path / "file" / "keys.txt"
    run = subprocess.run([str(FACEXPLAIN), "serve", "--new-api-key", str(target)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and str(target) in run.stderr
    assert "fx_" not in run.stdout  # no key shown for a file that was not written
