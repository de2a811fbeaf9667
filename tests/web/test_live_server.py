"""The web service as a real process on the loopback address: a chunked 1 GiB body, a
7000x7000 PNG, a Host header from elsewhere, and SIGKILL with a restart. Bounded: every loop
has a byte or time budget and stops by itself."""

from __future__ import annotations

import http.client
import io
import select
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.study.server import Server
from tests.web.conftest import lfw_bytes

GiB, MiB = 2**30, 2**20


def proc_io(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/io").read_text()
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines())}


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(None, tmp_path_factory.mktemp("live"), preload="",
                 extra=("--max-upload-mb", "10"))
    srv.start()
    yield srv
    srv.stop()


def send_chunked(port: int, total: int) -> tuple[int, int]:
    """POST ``total`` bytes as a chunked multipart body; stops when the server answers or
    closes. Returns (status, bytes sent)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/api/explain")
    conn.putheader("Content-Type", "multipart/form-data; boundary=xyz")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    head = (b'--xyz\r\nContent-Disposition: form-data; name="photo_a"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n")
    chunk = b"\xff" * MiB
    sent = 0
    try:
        conn.send(b"%x\r\n%s\r\n" % (len(head), head))
        while sent < total:
            if select.select([conn.sock], [], [], 0)[0]:
                break  # the server has answered: stop sending and read it before it closes
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server refused and closed: what we want
    try:
        status = conn.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        status = 0
    conn.close()
    return status, sent


def test_a_chunked_gibibyte_is_refused_before_25_mib_are_written(server: Server) -> None:
    assert server.proc is not None
    before = proc_io(server.proc.pid)["wchar"]
    status, sent = send_chunked(server.port, GiB)
    written = proc_io(server.proc.pid)["wchar"] - before
    assert status == 413
    assert written < 25 * MiB, f"{written / MiB:.1f} MiB written"
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # still serving
    assert not any(server.work.iterdir()) or all(
        p.name.startswith("jobs.sqlite") for p in server.work.iterdir())


@pytest.mark.parametrize("side", [7000, 6000])
def test_a_huge_png_costs_bounded_time_and_memory(server: Server, lfw_dir: Path,
                                                  side: int) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 110, 100)).save(buf, "PNG")  # ~100 KB of pixels
    assert len(buf.getvalue()) < 1 * MiB
    assert server.proc is not None
    rss_before = peak_rss(server.proc.pid)
    started = time.monotonic()
    resp = httpx.post(f"{server.url}/api/explain", data={"patch": "56", "stride": "56"},
                      files={"photo_a": ("big.png", buf.getvalue(), "image/png"),
                             "photo_b": ("b.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 1),
                                         "image/jpeg")}, timeout=30)
    took = time.monotonic() - started
    assert resp.status_code in (202, 413), resp.text
    assert (resp.status_code == 413) == (side * side > 40_000_000)
    assert took < 5.0, f"{took:.1f} s"
    assert peak_rss(server.proc.pid) - rss_before < GiB


def test_a_host_from_elsewhere_is_refused(server: Server) -> None:
    assert httpx.get(f"{server.url}/", headers={"host": "evil.example"}).status_code == 400
    assert httpx.get(f"{server.url}/").status_code == 200


def wait_state(url: str, job_id: str, states: tuple[str, ...], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/api/jobs/{job_id}", timeout=30).json()
        if body.get("state") in states:
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not in {states} after {timeout} s")


@pytest.mark.long
def test_after_sigkill_results_stay_and_queued_work_resumes_or_says_lost(
        tmp_path: Path, lfw_dir: Path) -> None:
    srv = Server(None, tmp_path / "work", preload="")
    srv.start()
    try:
        done = httpx.post(f"{srv.url}/api/explain", data={
            "lfw_pair": "0", "patch": "32", "stride": "16"}, timeout=30).json()["id"]
        wait_state(srv.url, done, ("done",), 180)
        photos = {"photo_a": ("a.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 1), "image/jpeg"),
                  "photo_b": ("b.jpg", lfw_bytes(lfw_dir, "Aaron_Peirsol", 2), "image/jpeg")}
        slow = {"patch": "8", "stride": "4"}
        running = httpx.post(f"{srv.url}/api/explain", data=slow, files=photos,
                             timeout=30).json()["id"]
        queued = httpx.post(f"{srv.url}/api/explain", timeout=30, data={
            "lfw_pair": "1", "patch": "32", "stride": "16"}).json()["id"]
        wait_state(srv.url, running, ("running",), 60)
        time.sleep(2.0)  # past alignment: the uploads are gone
        srv.kill()
        srv.start()
        page = httpx.get(f"{srv.url}/jobs/{done}", timeout=30)
        assert page.status_code == 200
        assert httpx.get(f"{srv.url}/jobs/{done}/download.zip", timeout=30).status_code == 200
        lost = httpx.get(f"{srv.url}/api/jobs/{running}", timeout=30).json()
        assert lost["state"] == "failed" and "lost" in lost["error"]
        resumed = wait_state(srv.url, queued, ("done", "failed"), 180)
        assert resumed["state"] == "done"
    finally:
        srv.stop()


def test_stopping_the_server_mid_job_is_quick_and_the_job_resumes(tmp_path: Path) -> None:
    srv = Server(None, tmp_path / "work", preload="")
    srv.start()
    try:
        job = httpx.post(f"{srv.url}/api/explain", data={"lfw_pair": "2", "patch": "8",
                                                         "stride": "4"}, timeout=30).json()["id"]
        wait_state(srv.url, job, ("running",), 120)
        time.sleep(1.0)
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.terminate()
        srv.proc.wait(30)
        assert time.monotonic() - started < 10.0
        srv.start()
        back = httpx.get(f"{srv.url}/api/jobs/{job}", timeout=30).json()
        assert back["state"] in ("queued", "running", "done"), back  # an LFW pair: it resumes
    finally:
        srv.stop()
