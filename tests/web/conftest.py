"""Fixtures of the web tests: one real sface pipeline per session, shared by every app."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facexplain.pipeline import FacePipeline
from facexplain.web.app import WebConfig
from facexplain.web.guards import LOOPBACK_HOSTS
from facexplain.web.jobs import Pipelines

# TestClient sends ``Host: testserver``; a real server answers the loopback names only.
TEST_HOSTS = (*LOOPBACK_HOSTS, "testserver")


def web_config(work: Path, **kwargs: object) -> WebConfig:
    """The app's defaults, but answering TestClient's host name."""
    return WebConfig(work, allowed_hosts=TEST_HOSTS, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sface() -> FacePipeline:
    return FacePipeline("sface")


@pytest.fixture()
def pipelines(sface: FacePipeline) -> Pipelines:
    pipes = Pipelines()
    pipes.put(sface)
    return pipes


def wait_for_job(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, object]:
    """Poll the job like the page does until it is done or failed."""
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    while time.monotonic() < deadline:
        body = client.get(f"/api/jobs/{job_id}").json()
        seen.append(float(body["progress"]))
        if body["state"] in ("done", "failed", "cancelled"):
            body["seen_progress"] = seen
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def lfw_bytes(lfw_dir: Path, name: str, index: int) -> bytes:
    return (lfw_dir / name / f"{name}_{index:04d}.jpg").read_bytes()
