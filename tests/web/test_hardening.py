"""The web service's limits through TestClient on real LFW photos and the real sface model:
time limit, cancel, nothing of a refused or expired request on disk, the JSON API and its key,
Host allow-list, security headers, Retry-After, and error pages with a way back."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facexplain.web.api_keys import key_hash, new_api_key, read_key_hashes
from facexplain.web.app import create_app
from facexplain.web.jobs import Pipelines
from tests.web.conftest import lfw_bytes, wait_for_job, web_config

COARSE = {"patch": "32", "stride": "16"}
SLOW = {"patch": "8", "stride": "4"}  # 729 occluder positions: tens of seconds here


def leftovers(work: Path) -> list[str]:
    """Everything in the work folder but the job database."""
    return sorted(str(p.relative_to(work)) for p in work.rglob("*")
                  if not p.name.startswith("jobs.sqlite"))


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 90, 90)).save(buf, "PNG")
    return buf.getvalue()


def test_a_job_over_its_time_limit_ends_with_a_message(tmp_path: Path,
                                                       pipelines: Pipelines) -> None:
    app = create_app(web_config(tmp_path / "w", job_time_limit_s=2.0), pipelines)
    with TestClient(app) as c:
        job_id = c.post("/api/explain", data={"lfw_pair": "0", **SLOW}).json()["id"]
        job = wait_for_job(c, job_id, timeout=60)
        assert job["state"] == "failed" and "time limit" in str(job["error"])
        assert "larger patches" in str(job["error"])


def test_cancel_stops_a_running_job_and_a_queued_one(tmp_path: Path,
                                                     pipelines: Pipelines) -> None:
    app = create_app(web_config(tmp_path / "w"), pipelines)
    with TestClient(app) as c:
        first = c.post("/api/explain", data={"lfw_pair": "0", **SLOW}).json()["id"]
        second = c.post("/api/explain", data={"lfw_pair": "1", **SLOW}).json()["id"]
        deadline = time.monotonic() + 30
        while c.get(f"/api/jobs/{first}").json()["progress"] < 0.3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.post(f"/api/jobs/{second}/cancel").json()["state"] == "cancelled"
        started = time.monotonic()
        c.post(f"/api/jobs/{first}/cancel")
        job = wait_for_job(c, first, timeout=30)
        assert job["state"] == "cancelled" and time.monotonic() - started < 10
        assert "cancelled" in str(job["error"])
        assert c.get(f"/api/jobs/{second}").json()["state"] == "cancelled"


def test_progress_moves_per_patch_with_an_estimate(tmp_path: Path, pipelines: Pipelines) -> None:
    app = create_app(web_config(tmp_path / "w"), pipelines)
    with TestClient(app) as c:
        job_id = c.post("/api/explain", data={"lfw_pair": "0", "patch": "16",
                                              "stride": "4"}).json()["id"]
        messages = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = c.get(f"/api/jobs/{job_id}").json()
            messages.add(body["message"])
            if body["state"] == "done":
                break
            time.sleep(0.2)
        per_patch = [m for m in messages if " of " in m and "s left" in m]
        assert len(per_patch) >= 3, messages  # the bar moves during the occlusion step


def test_nothing_of_refused_requests_stays_on_disk(tmp_path: Path, pipelines: Pipelines,
                                                   lfw_dir: Path) -> None:
    work = tmp_path / "w"
    real = lfw_bytes(lfw_dir, "Aaron_Peirsol", 1)
    app = create_app(web_config(work, max_upload_bytes=200_000, max_waiting=1), pipelines)
    with TestClient(app) as c:
        refusals = [
            ({"photo_a": ("a.jpg", b"%PDF no", "image/jpeg"), "photo_b": ("b", real, "x")}, 415),
            ({"photo_a": ("a.jpg", real, "image/jpeg"), "photo_b": ("b", real[:900], "x")}, 415),
            ({"photo_a": ("a.png", png(7000, 7000), "image/png"), "photo_b": ("b", real, "x")},
             413),
        ]
        for files, status in refusals:
            resp = c.post("/api/explain", data=COARSE, files=files)
            assert resp.status_code == status, resp.text
        resp = c.post("/api/explain", data={**COARSE, "patch": "2", "stride": "1"},
                      files={"photo_a": ("a.jpg", real, "x"), "photo_b": ("b.jpg", real, "x")})
        assert resp.status_code == 400 and "occluder positions" in resp.json()["detail"]
        assert leftovers(work) == []
        ids = []
        for _ in range(4):  # one runs, one waits, the rest are refused with Retry-After
            resp = c.post("/api/explain", data=SLOW, files={
                "photo_a": ("a.jpg", real, "image/jpeg"), "photo_b": ("b.jpg", real, "x")})
            if resp.status_code == 429:
                assert int(resp.headers["retry-after"]) > 0
            else:
                ids.append(resp.json()["id"])
        assert len(ids) == 2
        assert sorted({p.split("/")[0] for p in leftovers(work)}) == sorted(ids)
        for job_id in ids:
            c.post(f"/api/jobs/{job_id}/cancel")
            wait_for_job(c, job_id, timeout=30)
        assert not [p for p in leftovers(work) if "upload" in p]  # photos gone with the job
        assert sorted(c.app.state.jobs.sweep(now=time.time() + 25 * 3600)) == sorted(ids)
        assert leftovers(work) == []
        page = c.get(f"/jobs/{ids[0]}", headers={"accept": "text/html"})
        assert page.status_code == 404 and "expired" in page.text and 'href="/"' in page.text


def test_uploads_are_deleted_once_aligned_unless_kept(tmp_path: Path, pipelines: Pipelines,
                                                      lfw_dir: Path) -> None:
    real_a = lfw_bytes(lfw_dir, "Aaron_Peirsol", 1)
    real_b = lfw_bytes(lfw_dir, "Aaron_Peirsol", 2)
    files = {"photo_a": ("a.jpg", real_a, "image/jpeg"), "photo_b": ("b.jpg", real_b, "x")}
    with TestClient(create_app(web_config(tmp_path / "w"), pipelines)) as c:
        dropped = wait_for_job(c, c.post("/api/explain", data=COARSE, files=files).json()["id"])
        kept = wait_for_job(c, c.post("/api/explain", data={**COARSE, "keep_uploads": "true"},
                                      files=files).json()["id"])
        assert dropped["state"] == kept["state"] == "done"
        assert not list((tmp_path / "w" / str(dropped["id"])).glob("upload_*"))
        assert len(list((tmp_path / "w" / str(kept["id"])).glob("upload_*"))) == 2


def test_a_huge_photo_is_reduced_before_it_is_saved(tmp_path: Path, pipelines: Pipelines,
                                                    lfw_dir: Path) -> None:
    big = io.BytesIO()
    face = Image.open(io.BytesIO(lfw_bytes(lfw_dir, "Aaron_Peirsol", 1)))
    face.resize((4000, 4000)).save(big, "JPEG", quality=80)
    real = lfw_bytes(lfw_dir, "Aaron_Peirsol", 2)
    app = create_app(web_config(tmp_path / "w", keep_uploads=True), pipelines)
    with TestClient(app) as c:
        resp = c.post("/api/explain", data=COARSE, files={
            "photo_a": ("big.jpg", big.getvalue(), "image/jpeg"), "photo_b": ("b.jpg", real, "x")})
        job = wait_for_job(c, resp.json()["id"])
        assert job["state"] == "done" and job["verdict"]["same"] is True  # type: ignore[index]
        with Image.open(tmp_path / "w" / str(job["id"]) / "upload_a") as saved:
            assert max(saved.size) == 2048


@pytest.fixture()
def api_client(tmp_path: Path, pipelines: Pipelines) -> TestClient:
    keys = tmp_path / "keys.txt"
    key = new_api_key(keys, "test")
    assert key_hash(key) in read_key_hashes(keys) and key not in keys.read_text()
    app = create_app(web_config(tmp_path / "w", api_key_hashes=read_key_hashes(keys)), pipelines)
    with TestClient(app) as c:
        c.headers["x-test-key"] = key
        yield c


def test_the_api_needs_its_key_and_answers_with_json(api_client: TestClient,
                                                     lfw_dir: Path) -> None:
    c = api_client
    key = {"X-API-Key": c.headers["x-test-key"]}
    assert c.get("/api/v1/backbones").status_code == 401
    assert c.get("/api/v1/backbones", headers={"X-API-Key": "fx_wrong"}).status_code == 401
    assert "sface" in c.get("/api/v1/backbones", headers=key).json()["backbones"]
    files = {"photo_a": ("a.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 1), "image/jpeg"),
             "photo_b": ("b.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 2), "image/jpeg")}
    verdict = c.post("/api/v1/verify", files=files, headers=key)
    assert verdict.status_code == 200 and verdict.json()["verdict"]["same"] is True
    queued = c.post("/api/v1/explain", data=COARSE, files=files, headers=key)
    assert queued.status_code == 202
    status_url = queued.json()["links"]["status"]
    deadline = time.monotonic() + 120
    while c.get(status_url, headers=key).json()["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    result = c.get(queued.json()["links"]["result"], headers=key).json()
    assert result["verdict"]["same"] is True and "occlusion" in str(result)
    assert c.get(queued.json()["links"]["result"]).status_code == 401


def test_the_schema_lists_the_api_only_and_no_docs_are_served(api_client: TestClient) -> None:
    schema = api_client.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/verify", "/explain", "/jobs/{job_id}", "/jobs/{job_id}/result"} <= paths
    assert not any("admin" in p or "study" in p for p in paths)
    key = {"X-API-Key": api_client.headers["x-test-key"]}
    for url in ("/docs", "/redoc", "/openapi.json", "/api/v1/docs"):
        assert api_client.get(url).status_code == 401, url  # no key: nothing said about it
        assert api_client.get(url, headers=key).status_code == 404, url


def test_hosts_headers_and_the_access_log(tmp_path: Path, pipelines: Pipelines,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(web_config(tmp_path / "w"), pipelines)) as c:
        assert c.get("/", headers={"host": "evil.example"}).status_code == 400
        assert c.get("/", headers={"host": "127.0.0.1:8000"}).status_code == 200
        with caplog.at_level(logging.INFO, logger="facexplain.web.access"):
            resp = c.get("/healthz?secret=photo-bytes")
        for header in ("content-security-policy", "x-content-type-options", "referrer-policy"):
            assert header in resp.headers
        assert "frame-ancestors" in resp.headers["content-security-policy"]
        assert "/healthz" in caplog.text and "secret" not in caplog.text


def test_errors_are_pages_with_a_way_back_for_a_browser(tmp_path: Path,
                                                        pipelines: Pipelines) -> None:
    html = {"accept": "text/html,application/xhtml+xml"}
    with TestClient(create_app(web_config(tmp_path / "w"), pipelines)) as c:
        resp = c.post("/api/explain", data={"lfw_pair": "9999"}, headers=html)
        assert resp.status_code == 400 and 'id="back" href="/"' in resp.text
        assert "LFW pair" in resp.text and "lfw_pair" not in resp.text
        resp = c.get("/jobs/doesnotexist", headers=html)
        assert resp.status_code == 404 and "expired" in resp.text
        assert c.get("/jobs/doesnotexist").json()["detail"]  # a program still gets JSON


def test_mangled_photos_are_refused_in_words_never_with_a_server_error(lfw_dir: Path) -> None:
    """Seeded byte mutations of a real JPEG and PNG: each decodes or gets 413/415, nothing else."""
    import random

    from fastapi import HTTPException

    from facexplain.web.uploads import PhotoLimits, decode_photo

    jpeg = lfw_bytes(lfw_dir, "Aaron_Peirsol", 1)
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGBA").save(buf, "PNG")
    rng = random.Random(0)
    outcomes = set()
    for original in (jpeg, buf.getvalue()):
        for _ in range(150):
            data = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(1, len(data))]
            try:
                photo, _ = decode_photo(bytes(data), PhotoLimits(), "the first photo")
                assert photo.mode == "RGB"
                outcomes.add("decoded")
            except HTTPException as exc:
                assert exc.status_code in (413, 415), exc.detail
                outcomes.add(str(exc.status_code))
    assert "decoded" in outcomes and "415" in outcomes  # both paths were exercised


def test_a_server_on_every_address_answers_its_own_names_only() -> None:
    import socket

    from facexplain.cli.serve import own_names

    names = own_names("0.0.0.0")
    assert socket.gethostname() in names and "evil.example" not in names
    assert own_names("10.1.2.3") == ("10.1.2.3",) and own_names("127.0.0.1") == ()
