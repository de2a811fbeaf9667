"""The component comparison through the web app (TestClient, real LFW pair, real sface): the
findings in `/api/v1`'s result and a table on the job page above the report's pixel maps."""

from __future__ import annotations

import html
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facexplain.report.components import finding_from_dict, sentence
from facexplain.types import COMPONENTS, FINDINGS
from facexplain.web.app import create_app
from facexplain.web.jobs import Pipelines
from tests.component_standin import component_method  # noqa: F401
from tests.web.conftest import web_config

FIRST_IMPOSTOR = 300  # pairs.txt fold 1: 300 genuine lines, then 300 impostor lines


@pytest.fixture()
def client(tmp_path: Path, pipelines: Pipelines) -> TestClient:
    with TestClient(create_app(web_config(tmp_path / "work"), pipelines)) as c:
        yield c


def finished(client: TestClient, links: dict[str, str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (state := client.get(links["status"]).json()["state"]) not in (
            "done", "failed", "cancelled"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    assert state == "done", client.get(links["status"]).json()["error"]


@pytest.mark.long
def test_api_result_and_job_page_carry_the_component_findings(
        client: TestClient, component_method: str) -> None:  # noqa: F811
    queued = client.post("/api/v1/explain", data={
        "lfw_pair": str(FIRST_IMPOSTOR), "methods": f"{component_method},occlusion",
        "patch": "32", "stride": "16"})
    assert queued.status_code == 202, queued.text
    links = queued.json()["links"]
    finished(client, links)
    result = client.get(links["result"]).json()
    found = result["components"]
    assert {f["component"] for f in found} <= set(COMPONENTS) and len(found) >= 4
    assert all(f["finding"] in FINDINGS for f in found)
    ranked = [f["rank"] for f in found if f["rank"] is not None]
    assert ranked == sorted(ranked) and ranked[0] == 1  # rank 1 first, not assessable last
    assessable = [f["finding"] != "not assessable" for f in found]
    assert assessable == sorted(assessable, reverse=True)
    assert "components.png" in client.get(links["status"]).json()["files"]

    page = client.get(links["page"]).text
    start = page.index("<h3>Facial components</h3>")
    assert start < page.index('<iframe id="report"')
    table = page[start:page.index("</table>", start)]
    for f in found:
        assert f"<td>{f['component']}</td>" in table
    said = sentence([finding_from_dict(f) for f in found])
    assert html.escape(said) in page[start:]  # the plain-words sentence above the table
    report = client.get(f"{links['page']}/files/report.html").text
    assert report.index("Facial components") < report.index("Pairwise occlusion")
