"""docs/BENCHMARKS.md's generated tables equal what their result files in docs/results make, and
the check fails when a number in a result file changes (the benchmark registry stamps once)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from facexplain.benchmarks.registry import TASKS, command_line, stamp, tasks
from facexplain.benchmarks.table_kinds import TABLE_KINDS
from facexplain.benchmarks.tables import blocks, regenerate, render, update_file
from facexplain.errors import InvalidArgument

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "BENCHMARKS.md"
RESULTS = REPO / "docs" / "results"
MAIN_KINDS = {"planted", "calibration", "calibration-selective", "sanity", "method-table",
              "faithfulness-ranking", "interpretable", "lfw"}


def test_committed_tables_equal_their_result_files() -> None:
    text = DOC.read_text()
    found = blocks(text)
    assert {b.kind for b in found} >= MAIN_KINDS
    assert len(found) >= 20
    new, changed = regenerate(text, RESULTS)
    assert not changed, "tables differ from docs/results (run `facexplain benchmark tables`): " \
        + ", ".join(f"line {b.line}: {b.spec}" for b in changed)
    assert new == text


def test_every_marker_names_a_kind_and_existing_files() -> None:
    for b in blocks(DOC.read_text()):
        assert b.kind in TABLE_KINDS, b.spec
        assert b.files and all((RESULTS / f).is_file() for f in b.files), b.spec


@pytest.fixture()
def copy(tmp_path: Path) -> tuple[Path, Path]:
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    doc = tmp_path / "BENCHMARKS.md"
    shutil.copy(DOC, doc)
    return doc, results


def test_an_altered_number_fails_the_check_and_is_rewritten(copy: tuple[Path, Path]) -> None:
    doc, results = copy
    path = results / "planted-sface.json"
    game = json.loads(path.read_text())
    game["rows"]["occlusion"]["altered"]["share"]["mean"] = 0.4444
    path.write_text(json.dumps(game))
    before = doc.read_text()

    changed = update_file(doc, results, check=True)
    # the game's own table and the method table, which reads the same file
    assert [b.kind for b in changed] == ["planted", "method-table"]
    assert all("planted-sface.json" in b.files for b in changed)
    assert doc.read_text() == before  # --check writes nothing

    update_file(doc, results)
    after = doc.read_text()
    assert "| occlusion | 0.44 [0.14, 0.17] |" in after
    assert "| occlusion | 0.15 [0.14, 0.17] |" not in after
    assert "| occlusion | 0.44 [0.14, 0.17] | 0.44 [0.39, 0.48] |" in after  # method table
    # only the block changed: the prose around it is kept word for word
    outside = [line for line in before.splitlines() if not line.startswith("|")]
    assert outside == [line for line in after.splitlines() if not line.startswith("|")]
    assert not update_file(doc, results, check=True)


def test_the_cli_check_exits_non_zero_naming_the_table(copy: tuple[Path, Path],
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from facexplain.cli.app import main

    doc, results = copy
    path = results / "calibration-sface.json"
    cal = json.loads(path.read_text())
    cal["heldout"][cal["chosen"]]["lfw"]["ece"] = 0.5
    path.write_text(json.dumps(cal))
    old = sys.argv
    sys.argv = ["facexplain", "benchmark", "tables", "--check", "--doc", str(doc),
                "--results", str(results)]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "'calibration calibration-sface.json' differs" in out


def test_unknown_kind_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown table kind"):
        render("no-such-kind planted-sface.json", RESULTS)
    with pytest.raises(Exception, match="no such file"):
        render("planted no-such-file.json", tmp_path)


def test_benchmark_group_is_built_from_the_registry() -> None:
    from facexplain.cli.benchmark import build_group

    group = build_group()
    names = {c.name for c in group.registered_commands}
    registered = {t.name for t in tasks("benchmark")}
    assert {"lfw", "sanity", "calibration", "faithfulness", "planted", "xcos", "codes",
            "interpretable", "search-speed", "gallery", "occlusion-stats"} <= registered
    assert names == registered | {"tables"}
    for task in TASKS.values():
        assert task.summary, task.name
        if task.config:
            assert isinstance(task.config_type(), type)
        assert set(task.tables) <= set(TABLE_KINDS), task.name


def test_typed_results_know_their_json_and_table() -> None:
    from facexplain.benchmarks.calibration_report import CalibrationResult
    from facexplain.benchmarks.planted_report import PlantedResult
    from facexplain.benchmarks.registry import BenchmarkResult
    from facexplain.benchmarks.sanity_report import SanityResult

    for name in ("lfw", "sanity", "calibration", "planted", "faithfulness"):
        assert hasattr(TASKS[name].result_type(), "to_json"), name
    for cls, file in ((SanityResult, "sanity-sface.json"),
                      (CalibrationResult, "calibration-sface.json"),
                      (PlantedResult, "planted-sface.json")):
        doc = json.loads((RESULTS / file).read_text())
        result = cls.from_json(doc)
        assert isinstance(result, BenchmarkResult)
        assert result.to_json() == doc  # the JSON goes back out as it came in
        assert result.table() in DOC.read_text()


def test_stamp_adds_the_command_and_date_once() -> None:
    doc: dict[str, object] = {"date": "2026-01-01", "seconds": 1.0}
    stamp(doc, ["benchmark", "lfw", "--json", "a b.json"])
    assert doc["command"] == "facexplain benchmark lfw --json 'a b.json'"
    assert doc["date"] == "2026-01-01"  # a runner's own date is kept
    assert "machine" in doc and "cores" in doc
    assert command_line(["x"]) == "facexplain x"
