"""The pages in a real browser: Playwright driving Debian's Chromium (Playwright's own browser
download is not available here). Set FACEXPLAIN_SCREENSHOTS=docs/figures to refresh the
screenshots in the docs; by default they go to the test's temporary folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from facexplain.study.create import CreatedStudy
from tests.conftest import lfw_image
from tests.study.conftest import mapped_study  # noqa: F401  (a session fixture)
from tests.study.server import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
pytestmark = [pytest.mark.long, pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="no Chromium: install Debian's 'chromium' package (make setup does, as root)")]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(mapped_study: CreatedStudy, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
           ) -> Iterator[Server]:
    s = Server(mapped_study.folder, tmp_path_factory.mktemp("web"), preload="sface")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FACEXPLAIN_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def loaded(page: object, selector: str) -> bool:
    """The image under ``selector`` finished loading with real pixels."""
    return bool(page.eval_on_selector(  # type: ignore[attr-defined]
        selector, "img => img.complete && img.naturalWidth > 0"))


def test_upload_a_real_pair_and_see_verdict_and_maps(server: Server, page: object,
                                                     shots: Path) -> None:
    p = page
    p.goto(server.url + "/")  # type: ignore[attr-defined]
    p.set_input_files("#photo_a", str(lfw_image("Abdel_Madi_Shabneh", 1)))  # type: ignore
    p.set_input_files("#photo_b", str(lfw_image("Dean_Barker", 1)))  # type: ignore
    p.fill("input[name=patch]", "32")  # type: ignore[attr-defined]
    p.fill("input[name=stride]", "16")  # type: ignore[attr-defined]
    p.screenshot(path=str(shots / "web-index.png"))  # type: ignore[attr-defined]
    p.click("#go")  # type: ignore[attr-defined]
    p.wait_for_url("**/jobs/*")  # type: ignore[attr-defined]
    p.wait_for_selector("#verdict:not(:empty)", timeout=180_000)  # type: ignore
    assert p.inner_text("#verdict").startswith("Different people")  # type: ignore
    report = p.frame_locator("#report")  # type: ignore[attr-defined]
    report.locator("text=Pairwise occlusion").first.wait_for(timeout=30_000)
    figure = report.locator("img").nth(1)
    figure.wait_for(timeout=30_000)
    assert figure.evaluate("img => img.complete && img.naturalWidth > 0")
    p.wait_for_timeout(500)  # type: ignore[attr-defined]
    p.screenshot(path=str(shots / "web-result.png"), full_page=False)  # type: ignore
    frame_height, doc_height = p.eval_on_selector(  # type: ignore[attr-defined]
        "#report", "f => [f.clientHeight, f.contentDocument.documentElement.scrollHeight]")
    assert frame_height >= doc_height  # the report at full height: no scroll bar of its own
    trust = report.locator(".trust")  # the verdict's trust block, with its population
    assert "How far to trust this verdict" in trust.inner_text()
    assert "LFW" in trust.inner_text()
    trust.screenshot(path=str(shots / "web-result-trust.png"))
    with p.expect_download() as dl:  # type: ignore[attr-defined]
        p.click("#zip")  # type: ignore[attr-defined]
    assert dl.value.suggested_filename.endswith(".zip")


def test_a_participant_runs_through_the_study(server: Server, page: object, shots: Path,
                                              mapped_study: CreatedStudy,  # noqa: F811
                                              ) -> None:
    who = [q for q in mapped_study.participants if q.condition == "occlusion"][-1]
    p = page
    p.goto(f"{server.url}/p/{who.token}")  # type: ignore[attr-defined]
    n = len(who.order1)
    for k in range(2 * n):
        phase = 1 if k < n else 2
        p.wait_for_selector("#where")  # type: ignore[attr-defined]
        where = p.inner_text("#where")  # type: ignore[attr-defined]
        assert where.startswith(f"Round {phase} of 2 · pair {k % n + 1} of {n}"), where
        assert loaded(p, "#img_a") and loaded(p, "#img_b")
        assert (p.query_selector("#help") is not None) == (phase == 2)  # type: ignore
        if k == 0:
            p.screenshot(path=str(shots / "study-round1.png"))  # type: ignore
        if k == n:
            assert loaded(p, "#help")
            p.screenshot(path=str(shots / "study-round2-help.png"), full_page=True)  # type: ignore
        with p.expect_navigation():  # type: ignore[attr-defined]
            p.click(f"#choices button[data-choice='{1 + k % 5}']")  # type: ignore
    assert "Thank you" in p.inner_text("#done")  # type: ignore[attr-defined]


def test_the_admin_sees_links_and_the_analysis(server: Server, page: object, shots: Path,
                                               mapped_study: CreatedStudy,  # noqa: F811
                                               ) -> None:
    p = page
    p.goto(f"{server.url}/admin")  # type: ignore[attr-defined]
    assert "admin token required" in p.content()  # type: ignore[attr-defined]
    p.goto(f"{server.url}/admin?token={mapped_study.admin_token}")  # type: ignore
    assert p.locator("#participants tr").count() == 1 + len(mapped_study.participants)  # type: ignore
    p.screenshot(path=str(shots / "study-admin.png"), full_page=True)  # type: ignore
    p.click("#analysis")  # type: ignore[attr-defined]
    p.wait_for_selector("#table1")  # type: ignore[attr-defined]
    assert "occlusion" in p.inner_text("#table1")  # type: ignore[attr-defined]
    for alt in ("Fig. 8", "Fig. 9", "Fig. 10"):
        assert loaded(p, f"img[alt='{alt}']"), alt
    p.screenshot(path=str(shots / "study-analysis.png"), full_page=True)  # type: ignore


def test_an_error_page_leads_back_to_the_form(server: Server, page: object,
                                              shots: Path) -> None:
    p = page
    p.goto(server.url + "/jobs/no-such-job")  # type: ignore[attr-defined]
    assert "expired" in p.inner_text("#error-message")  # type: ignore[attr-defined]
    p.screenshot(path=str(shots / "web-error.png"))  # type: ignore[attr-defined]
    p.click("#back")  # type: ignore[attr-defined]
    p.wait_for_selector("#go")  # type: ignore[attr-defined]
    p.set_input_files("#photo_a", {"name": "notes.txt", "mimeType": "image/jpeg",  # type: ignore
                                   "buffer": b"not a photo at all"})
    p.set_input_files("#photo_b", str(lfw_image("Dean_Barker", 1)))  # type: ignore
    p.click("#go")  # type: ignore[attr-defined]
    p.wait_for_selector("#status:not(:empty)")  # type: ignore[attr-defined]
    assert "not an image" in p.inner_text("#status")  # type: ignore[attr-defined]
    assert "upload_a" not in p.inner_text("#status")  # type: ignore[attr-defined]
    assert not p.is_disabled("#go")  # type: ignore[attr-defined]  # the form is usable again


def test_the_api_with_a_key_from_the_browser(page: object, tmp_path: Path) -> None:
    from facexplain.web.api_keys import new_api_key

    keys = tmp_path / "keys.txt"
    key = new_api_key(keys)
    srv = Server(None, tmp_path / "work", preload="", extra=("--api-key-file", str(keys)))
    srv.start()
    try:
        api = page.request  # type: ignore[attr-defined]
        assert api.get(f"{srv.url}/api/v1/methods").status == 401
        assert api.get(f"{srv.url}/api/v1/methods", headers={"X-API-Key": "fx_no"}).status == 401
        ok = api.get(f"{srv.url}/api/v1/methods", headers={"X-API-Key": key})
        assert ok.status == 200 and "occlusion" in [m["name"] for m in ok.json()]
        assert api.get(f"{srv.url}/api/v1/openapi.json").status == 200
    finally:
        srv.stop()
