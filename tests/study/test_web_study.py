"""The study pages through TestClient: a participant's two rounds, help only in the second,
admin behind the token, participants isolated, no path traversal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facexplain import settings
from facexplain.study.create import CreatedStudy
from facexplain.study.store import Participant, open_study
from facexplain.web.app import create_app
from facexplain.web.jobs import Pipelines
from tests.web.conftest import web_config


@pytest.fixture()
def client(tmp_path: Path, mapped_study: CreatedStudy) -> Iterator[TestClient]:
    app = create_app(web_config(tmp_path / "work", study_dir=mapped_study.folder), Pipelines())
    with TestClient(app) as c:
        yield c


def by_condition(made: CreatedStudy, cond: str) -> list[Participant]:
    return [p for p in made.participants if p.condition == cond]


def test_help_maps_and_cropped_photos_were_made(mapped_study: CreatedStudy) -> None:
    maps = sorted(p.name for p in (mapped_study.folder / "maps" / "occlusion").iterdir())
    assert maps == [f"p{i:04d}.png" for i in range(6)]  # 4 real pairs and 2 catch trials
    images = sorted((mapped_study.folder / "images").iterdir())
    assert len(images) == 12 and all(p.stat().st_size > 1000 for p in images)


def test_catch_trials_look_like_real_pairs(mapped_study: CreatedStudy) -> None:
    """One identical and one obviously different catch pair, stored as such, named and served
    like the real pairs (maps drawn too). These 8 photos hold no woman, so the different one
    is the pair of different people the model finds least alike."""
    folder = mapped_study.folder
    with open_study(folder) as store:
        kinds = store.pair_kinds()
        rows = {int(r["idx"]): r for r in store.pairs()}
    assert sorted(kinds.values()) == ["catch-different", "catch-identical"] + ["real"] * 4
    females = set((settings.current().lfw / "female_names.txt").read_text().split())
    for idx, kind in kinds.items():
        a, b = (folder / rows[idx]["a"], folder / rows[idx]["b"])
        assert (a.name, b.name) == (f"p{idx:04d}_a.jpg", f"p{idx:04d}_b.jpg")
        assert (folder / "maps" / "occlusion" / f"p{idx:04d}.png").is_file()
        src_a, src_b = rows[idx]["label"].split(" | ")
        if kind == "catch-identical":
            assert src_a == src_b and a.read_bytes() == b.read_bytes()
            assert rows[idx]["same"] == 1 and rows[idx]["model_same"] == 1
        elif kind == "catch-different":
            assert rows[idx]["same"] == 0 and rows[idx]["model_same"] == 0
            assert Path(src_a).parent != Path(src_b).parent
            assert not {Path(src_a).name, Path(src_b).name} & females
            genuine = [r["model_score"] for r in rows.values() if r["same"] and
                       kinds[int(r["idx"])] == "real"]
            assert rows[idx]["model_score"] < min(genuine) - 0.2


def test_a_participant_answers_both_rounds_with_help_in_the_second(
        client: TestClient, mapped_study: CreatedStudy) -> None:
    who = by_condition(mapped_study, "occlusion")[0]
    base = f"/p/{who.token}"
    page = client.get(base).text
    assert "Round 1 of 2" in page and "Sure they are the same person" in page
    assert not client.get(f"{base}/next").json()["help"]
    assert client.get(f"{base}/help/{who.order1[0]}").status_code == 403  # not in round 1
    resp = client.post(f"{base}/answer", json={"phase": 2, "pair": who.order2[0], "choice": 1})
    assert resp.status_code == 409
    seen = []
    for _ in range(2 * len(who.order1)):
        nxt = client.get(f"{base}/next").json()
        seen.append((nxt["phase"], nxt["pair"]))
        img = client.get(f"{base}/img/{nxt['pair']}/a")
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
        if nxt["phase"] == 2:
            assert nxt["help"]
            assert client.get(f"{base}/help/{nxt['pair']}").headers["content-type"] == "image/png"
        body = client.post(f"{base}/answer", json={"phase": nxt["phase"], "pair": nxt["pair"],
                                                   "choice": 2, "ms": 1234}).json()
        assert body == {"stored": True, "duplicate": False, "phase": nxt["phase"],
                        "pair": nxt["pair"], "choice": 2}
        assert "same" not in body and "correct" not in body  # never told what is right
    assert seen == [(1, p) for p in who.order1] + [(2, p) for p in who.order2]
    assert client.get(f"{base}/next").json()["done"]
    assert "Thank you" in client.get(base).text
    again = client.post(f"{base}/answer", json={"phase": 1, "pair": who.order1[0], "choice": 5})
    assert again.json()["duplicate"] and again.json()["choice"] == 2


def test_round_two_says_how_to_read_this_conditions_picture(
        client: TestClient, mapped_study: CreatedStudy) -> None:
    """The occlusion group reads its picture as where the faces differ (not 'what the model
    weighed most'); the control group gets no such text."""
    for cond in ("occlusion", "none"):
        who = by_condition(mapped_study, cond)[2]
        for pair in who.order1:
            client.post(f"/p/{who.token}/answer", json={"phase": 1, "pair": pair, "choice": 3})
        page = client.get(f"/p/{who.token}").text
        assert "Round 2 of 2" in page and "weighed most" not in page
        if cond == "occlusion":
            # the difference map at this coarse patch (no Θ measured for it) reads the same way
            assert "faces differ" in page and "which photo carries the difference" in page
        else:
            assert 'id="reading"' not in page and "faces differ" not in page


def test_the_control_group_gets_no_help(client: TestClient, mapped_study: CreatedStudy) -> None:
    who = by_condition(mapped_study, "none")[0]
    for pair in who.order1:
        client.post(f"/p/{who.token}/answer", json={"phase": 1, "pair": pair, "choice": 3})
    nxt = client.get(f"/p/{who.token}/next").json()
    assert nxt["phase"] == 2 and not nxt["help"]
    assert client.get(f"/p/{who.token}/help/{nxt['pair']}").status_code == 404
    assert "help picture" not in client.get(f"/p/{who.token}").text


def test_participants_are_isolated(client: TestClient, mapped_study: CreatedStudy) -> None:
    a, b = by_condition(mapped_study, "occlusion")[:2]
    client.post(f"/p/{b.token}/answer", json={"phase": 1, "pair": b.order1[0], "choice": 4})
    mine = client.get(f"/p/{a.token}/answers").json()
    theirs = client.get(f"/p/{b.token}/answers").json()
    assert {"phase": 1, "pair": b.order1[0], "choice": 4} in theirs
    assert {"phase": 1, "pair": b.order1[0], "choice": 4} not in mine
    for url in (f"/p/{b.id}/answers", f"/p/{a.token}x/answers", "/admin",
                f"/admin?token={a.token}", "/admin/export.csv",
                f"/admin/export.csv?token={a.token}",
                "/admin/analysis", "/admin/analysis/analysis.json"):
        resp = client.get(url)
        assert resp.status_code in (403, 404), url
        assert b.token not in resp.text and '"choice"' not in resp.text


def test_admin_sees_links_csv_and_analysis(client: TestClient,
                                           mapped_study: CreatedStudy) -> None:
    token = mapped_study.admin_token
    assert client.get("/admin", params={"token": token + "x"}).status_code == 403
    page = client.get("/admin", headers={"X-Admin-Token": token})
    assert page.status_code == 200
    for p in mapped_study.participants:
        assert f"/p/{p.token}" in page.text
    csv_text = client.get("/admin/export.csv", params={"token": token}).text
    assert csv_text.startswith("participant,condition,phase,pair")
    html = client.get("/admin/analysis", params={"token": token}).text
    assert "Table I" in html and "occlusion" in html
    fig = client.get("/admin/analysis/fig8_accuracy.png", params={"token": token})
    assert fig.status_code == 200 and fig.content[:4] == b"\x89PNG"


def test_no_path_traversal_through_study_urls(client: TestClient,
                                              mapped_study: CreatedStudy) -> None:
    who = by_condition(mapped_study, "occlusion")[0]
    token = mapped_study.admin_token
    for url in (f"/p/{who.token}/img/0/..%2F..%2Fstudy.sqlite", f"/p/{who.token}/img/99/a",
                f"/p/{who.token}/img/-1/a", "/p/..%2F..%2Fetc%2Fpasswd/next",
                f"/admin/analysis/..%2Fstudy.sqlite?token={token}",
                f"/admin/analysis/%2Fetc%2Fpasswd?token={token}"):
        resp = client.get(url)
        assert resp.status_code in (404, 422), url
        assert "SQLite" not in resp.text and "root:" not in resp.text
