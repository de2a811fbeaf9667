"""The access rule in a real browser (Debian's Chromium through Playwright): a page on another
origin that auto-submits the explain form gets 403 and queues nothing; with a key file, signing
in on the form page opens a session (an HttpOnly, SameSite=Strict cookie that is not the key)
that runs a job, and a browser without it sees the job's page as 401."""

from __future__ import annotations

from pathlib import Path

import pytest

from facexplain.web.api_keys import new_api_key
from tests.browser.test_pages import browser, page  # noqa: F401  (fixtures)
from tests.study.server import Server

pytestmark = pytest.mark.long
ELSEWHERE = "http://attacker.example/"


def test_a_page_elsewhere_auto_submitting_the_form_is_refused(page: object,  # noqa: F811
                                                             tmp_path: Path) -> None:
    srv = Server(None, tmp_path / "work", preload="")
    srv.start()
    try:
        html = (f'<form id="f" method="post" action="{srv.url}/api/explain">'
                '<input name="lfw_pair" value="0"><input name="patch" value="56">'
                '<input name="stride" value="56"></form>'
                "<script>document.getElementById('f').submit()</script>")
        p = page
        p.route(ELSEWHERE + "**", lambda route: route.fulfill(  # type: ignore[attr-defined]
            status=200, content_type="text/html", body=html))
        with p.expect_navigation(url=f"{srv.url}/api/explain"):  # type: ignore[attr-defined]
            p.goto(ELSEWHERE)  # type: ignore[attr-defined]
        assert "another site" in p.inner_text("body")  # type: ignore[attr-defined]
        assert not [d for d in srv.work.iterdir() if d.is_dir()]  # no job was queued
        assert " 403 " in srv.log.read_text()
    finally:
        srv.stop()


def test_sign_in_with_the_key_runs_a_job_others_cannot_see(
        browser: object, page: object, tmp_path: Path) -> None:  # noqa: F811
    keys = tmp_path / "keys.txt"
    key = new_api_key(keys)
    srv = Server(None, tmp_path / "work", preload="", extra=("--api-key-file", str(keys)))
    srv.start()
    try:
        p = page
        p.goto(srv.url + "/")  # type: ignore[attr-defined]
        p.fill("#key", key)  # type: ignore[attr-defined]
        p.click("#sign-in-go")  # type: ignore[attr-defined]
        p.wait_for_selector("#go")  # type: ignore[attr-defined]  # the form, signed in
        cookies = p.context.cookies()  # type: ignore[attr-defined]
        assert len(cookies) == 1 and cookies[0]["httpOnly"]
        assert cookies[0]["sameSite"] == "Strict" and cookies[0]["value"] != key
        p.select_option("#lfw_pair", "0")  # type: ignore[attr-defined]
        p.fill("input[name=patch]", "56")  # type: ignore[attr-defined]
        p.fill("input[name=stride]", "56")  # type: ignore[attr-defined]
        p.click("#go")  # type: ignore[attr-defined]
        p.wait_for_url("**/jobs/*")  # type: ignore[attr-defined]
        p.wait_for_selector("#verdict:not(:empty)", timeout=180_000)  # type: ignore
        job_url = p.url  # type: ignore[attr-defined]
        other = browser.new_context()  # type: ignore[attr-defined]
        try:
            q = other.new_page()
            answer = q.goto(job_url)
            assert answer.status == 401 and "API key" in q.inner_text("body")
        finally:
            other.close()
    finally:
        srv.stop()
