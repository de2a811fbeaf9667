"""A study condition that shows the component table instead of a heat map: `study create` on
real LFW pairs with the real sface model stores each pair's table, the participant sees it in
round 2 (and not before), and `study simulate` and the analysis handle the condition."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facexplain.benchmarks.lookalike import write_pairs
from facexplain.study.analyze import analyze_study
from facexplain.study.create import TABLE_CONDITIONS, TABLE_READING, CreatedStudy, create_study
from facexplain.study.simulate import simulate_study
from facexplain.study.store import open_study
from facexplain.types import FINDINGS
from facexplain.web.app import create_app
from facexplain.web.jobs import Pipelines
from tests.component_standin import component_method  # noqa: F401
from tests.study.conftest import COARSE, lfw_study_pairs
from tests.web.conftest import web_config


@pytest.fixture()
def table_study(tmp_path: Path, component_method: str) -> CreatedStudy:  # noqa: F811
    src = write_pairs(tmp_path / "pairs.json", lfw_study_pairs(1), {"model": "sface"})
    return create_study(src, tmp_path / "study", ("none", "occlusion", component_method), 2,
                        options=COARSE, catch=0)


@pytest.fixture()
def client(tmp_path: Path, table_study: CreatedStudy) -> Iterator[TestClient]:
    app = create_app(web_config(tmp_path / "work", study_dir=table_study.folder), Pipelines())
    with TestClient(app) as c:
        yield c


@pytest.mark.long
def test_the_component_condition_shows_a_table_in_round_two(
        table_study: CreatedStudy, client: TestClient, component_method: str  # noqa: F811
) -> None:
    folder = table_study.folder
    for idx in range(2):
        rows = json.loads((folder / "maps" / component_method / f"p{idx:04d}.json").read_text())
        assert len(rows) >= 4 and all(r["finding"] in FINDINGS for r in rows)
        assert not (folder / "maps" / component_method / f"p{idx:04d}.png").exists()
        assert (folder / "maps" / "occlusion" / f"p{idx:04d}.png").is_file()
    with open_study(folder) as store:
        assert json.loads(store.meta["help_tables"]) == [component_method]
        assert json.loads(store.meta["help_readings"])[component_method] == TABLE_READING

    who = next(p for p in table_study.participants if p.condition == component_method)
    base = f"/p/{who.token}"
    assert 'id="help-table"' not in client.get(base).text  # no help in round 1
    for pair in who.order1:
        client.post(f"{base}/answer", json={"phase": 1, "pair": pair, "choice": 3})
    page = client.get(base).text
    assert "Round 2 of 2" in page and "now with a table" in page
    table = page[page.index('id="help-table"'):page.index("</table>")]
    stored = json.loads((folder / "maps" / component_method /
                         f"p{who.order2[0]:04d}.json").read_text())
    for r in stored:
        assert f"<td>{r['component']}</td><td>{r['finding']}</td>" in table
    assert 'id="help"' not in page  # no heat map for this condition
    assert "How to read the table" in page and "Component comparison" not in page  # unnamed
    other = next(p for p in table_study.participants if p.condition == "occlusion")
    for pair in other.order1:
        client.post(f"/p/{other.token}/answer", json={"phase": 1, "pair": pair, "choice": 3})
    assert 'id="help"' in client.get(f"/p/{other.token}").text  # the map group: its picture


def test_simulate_and_analyze_a_study_with_the_component_condition(make_plain_study) -> None:
    made = make_plain_study(n_pairs=8, conditions=("none", TABLE_CONDITIONS[0]),
                            per_condition=4)
    with open_study(made.folder) as store:
        assert json.loads(store.meta["help_tables"]) == ["components"]
    planted = simulate_study(made.folder, {"components": 0.15}, seed=3)
    assert {p.condition for p in planted} == {"none", "components"}
    assert all(p.accuracy_after > p.accuracy_before for p in planted
               if p.condition == "components")
    report = analyze_study(made.folder, made.folder / "analysis")
    assert "components" in report.read_text(encoding="utf-8")
