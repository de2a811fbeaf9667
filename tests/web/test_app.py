"""The web app through FastAPI's TestClient on real LFW photos and the real sface model:
submit, progress, verdict, report and downloads; models load once; bad input gets a clear 4xx."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facexplain.web.app import create_app
from facexplain.web.jobs import Pipelines
from tests.web.conftest import lfw_bytes, wait_for_job, web_config

FAST = {"patch": "32", "stride": "16"}
FIRST_IMPOSTOR = 300  # pairs.txt fold 1: 300 genuine lines, then 300 impostor lines


@pytest.fixture()
def client(tmp_path: Path, pipelines: Pipelines) -> TestClient:
    app = create_app(web_config(tmp_path / "work", max_upload_bytes=200_000), pipelines)
    with TestClient(app) as c:
        yield c


def test_index_offers_backbones_methods_and_lfw_pairs(client: TestClient) -> None:
    html = client.get("/").text
    assert "sface" in html and "dlib-resnet" in html
    assert 'value="occlusion"' in html and 'value="xcos"' in html
    pairs = client.get("/api/lfw-pairs").json()
    assert len(pairs) == 600 and pairs[0]["same"] and not pairs[FIRST_IMPOSTOR]["same"]


def test_lfw_pair_explained_with_report_maps_and_zip(client: TestClient,
                                                     pipelines: Pipelines) -> None:
    resp = client.post("/api/explain", data={"lfw_pair": str(FIRST_IMPOSTOR),
                                             "methods": "occlusion,saliency", **FAST})
    assert resp.status_code == 202, resp.text
    job = wait_for_job(client, resp.json()["id"])
    assert job["state"] == "done", job["error"]
    seen = job["seen_progress"]
    assert seen == sorted(seen) and seen[-1] == 1.0  # progress only moves forward
    verdict = job["verdict"]
    assert isinstance(verdict, dict) and verdict["same"] is False
    assert verdict["text"].startswith("Different people")
    files = set(job["files"])
    assert {"report.html", "explanation.json", "faces.png", "occlusion_delta.npy",
            "occlusion_difference.png", "saliency_delta.npy"} <= files
    assert not any(f.startswith("upload_") for f in files)
    page = client.get(f"/jobs/{job['id']}").text
    assert "Abdel_Madi_Shabneh" in page
    report = client.get(f"/jobs/{job['id']}/files/report.html")
    assert report.status_code == 200 and "Pairwise occlusion" in report.text
    delta = np.load(io.BytesIO(client.get(f"/jobs/{job['id']}/files/occlusion_delta.npy").content))
    assert delta.shape == (2, 112, 112) and np.isfinite(delta).all() and delta.std() > 0
    z = zipfile.ZipFile(io.BytesIO(client.get(f"/jobs/{job['id']}/download.zip").content))
    assert {Path(n).name for n in z.namelist()} == files
    assert pipelines.loads == 0  # the handed-in sface was reused, nothing loaded again


def test_uploaded_photos_of_one_person_are_the_same(client: TestClient, lfw_dir: Path) -> None:
    files = {"photo_a": ("a.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 1), "image/jpeg"),
             "photo_b": ("b.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 2), "image/jpeg")}
    resp = client.post("/api/explain", data={"methods": "occlusion", **FAST}, files=files)
    job = wait_for_job(client, resp.json()["id"])
    assert job["state"] == "done" and job["verdict"]["same"] is True  # type: ignore[index]
    assert job["label"] == "a.jpg vs b.jpg"
    report = client.get(f"/jobs/{job['id']}/files/report.html").text
    assert "<code>a.jpg</code>" in report and "upload_a" not in report  # not the temp path


def test_a_photo_without_a_face_fails_the_job_with_a_reason(client: TestClient,
                                                            lfw_dir: Path) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank, "PNG")
    files = {"photo_a": ("wall.png", blank.getvalue(), "image/png"),
             "photo_b": ("b.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 2), "image/jpeg")}
    job = wait_for_job(client, client.post("/api/explain", data=FAST, files=files).json()["id"])
    assert job["state"] == "failed" and "no face found" in str(job["error"])
    assert "wall.png" in str(job["error"])  # the user's name for the photo
    assert "upload_a" not in str(job["error"]) and "/tmp" not in str(job["error"])


def test_uploads_over_the_cap_get_413_and_non_images_415(client: TestClient,
                                                         lfw_dir: Path) -> None:
    real = lfw_bytes(lfw_dir, "Aaron_Peirsol", 1)
    big = real + b"\0" * 200_000  # a real JPEG padded over the 200 kB cap
    resp = client.post("/api/explain", files={"photo_a": ("a.jpg", big, "image/jpeg"),
                                              "photo_b": ("b.jpg", real, "image/jpeg")})
    assert resp.status_code == 413 and "limit" in resp.json()["detail"]
    huge = b"\0" * 3_000_000  # over the whole-body limit: refused before the form is parsed
    resp = client.post("/api/explain", files={"photo_a": ("a.jpg", huge, "image/jpeg"),
                                              "photo_b": ("b.jpg", real, "image/jpeg")})
    assert resp.status_code == 413
    for payload, why in ((b"%PDF-1.4 not a photo", "not an image"), (b"", "empty"),
                         (real[: len(real) // 3], "truncated")):
        resp = client.post("/api/explain", files={"photo_a": ("x.jpg", payload, "image/jpeg"),
                                                  "photo_b": ("b.jpg", real, "image/jpeg")})
        assert resp.status_code == 415, (why, resp.text)
        assert why in resp.json()["detail"] and "upload_a" not in resp.json()["detail"]


def test_bad_form_values_get_400_before_any_work(client: TestClient) -> None:
    for data, words in (({"lfw_pair": "600"}, "LFW pair"), ({"lfw_pair": "-1"}, "LFW pair"),
                        ({"lfw_pair": "0", "backbone": "../../etc"}, "unknown backbone"),
                        ({"lfw_pair": "0", "methods": "occlusion,nope"}, "unknown method"),
                        ({"lfw_pair": "0", "patch": "0"}, "patch"), ({}, "give two photos")):
        resp = client.post("/api/explain", data=data)
        assert resp.status_code == 400, (data, resp.text)
        assert words in resp.json()["detail"]


def test_no_path_traversal_through_job_ids_or_file_names(client: TestClient,
                                                         lfw_dir: Path) -> None:
    real = lfw_bytes(lfw_dir, "Aaron_Peirsol", 1)
    resp = client.post("/api/explain", data=FAST, files={
        "photo_a": ("../../../etc/passwd", real, "image/jpeg"),
        "photo_b": ("b.jpg", real, "image/jpeg")})
    job_id = resp.json()["id"]
    wait_for_job(client, job_id)
    for url in (f"/jobs/{job_id}/files/..%2F..%2F..%2Fetc%2Fpasswd",
                f"/jobs/{job_id}/files/%2Fetc%2Fpasswd", f"/jobs/{job_id}/files/upload_a",
                f"/jobs/{job_id}/files/.hidden", "/jobs/..%2F..%2Fetc/files/passwd",
                "/api/jobs/..%2F..", "/jobs/nope/download.zip", f"/jobs/{job_id}x"):
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert "root:" not in resp.text
    folder = client.app.state.jobs.get(job_id).out_dir
    assert not list(folder.glob("upload_*"))  # deleted once the faces were aligned
    assert not any("passwd" in p.name for p in folder.parent.rglob("*"))  # name never used


def test_concurrent_users_queue_and_the_server_keeps_answering(tmp_path: Path,
                                                               pipelines: Pipelines) -> None:
    app = create_app(web_config(tmp_path / "work", max_waiting=1), pipelines)
    with TestClient(app) as c:
        data = {"lfw_pair": "0", "methods": "occlusion", **FAST}
        codes = [c.post("/api/explain", data=data) for _ in range(3)]
        accepted = [r.json()["id"] for r in codes if r.status_code == 202]
        refused = [r for r in codes if r.status_code == 429]
        assert refused and len(accepted) + len(refused) == 3  # one waiting at most
        assert "waiting" in refused[0].json()["detail"]
        status = c.get(f"/api/jobs/{accepted[-1]}").json()
        assert status["state"] in ("queued", "running")
        t = time.perf_counter()
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        assert time.perf_counter() - t < 5.0  # pages do not wait for the explanation
        for job_id in accepted:
            assert wait_for_job(c, job_id)["state"] == "done"
