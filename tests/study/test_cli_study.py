"""`facexplain study ...` and `facexplain serve` from the command line: the whole flow on a
small pair set, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from facexplain.benchmarks.lookalike import write_pairs
from tests.integration.test_cli import assert_one_line_error, run_cli
from tests.study.conftest import lfw_study_pairs


@pytest.fixture()
def pair_set(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "pairs.json", lfw_study_pairs(10), {"model": "sface"})


def test_create_simulate_export_analyze(pair_set: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "study"
    code, out, _ = run_cli(["study", "create", str(pair_set), "--out", str(study), "--no-maps",
                            "--conditions", "none,occlusion", "--participants", "3"], capsys)
    assert code == 0 and "admin token (shown once" in out
    assert "3 participants per condition x 2 conditions (none, occlusion) = 6 participants" in out
    assert "20 pairs + 4 catch trials" in out
    token = out.split("admin token (shown once, keep it): ")[1].split()[0]
    links = list(csv.DictReader((study / "participants.csv").open()))
    assert len(links) == 6 and all(r["link"].startswith("/p/") for r in links)
    assert token not in (study / "participants.csv").read_text()
    assert token.encode() not in (study / "study.sqlite").read_bytes()  # only its hash
    code, out, _ = run_cli(["study", "simulate", str(study), "--gains", "occlusion=0.1",
                            "--careless", "1"], capsys)
    assert code == 0 and "6 simulated participants" in out
    careless = out.split("answering at random: ")[1].split()[0]
    code, out, _ = run_cli(["study", "export", str(study)], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 6 * 24 * 2
    assert sum(r["kind"] != "real" for r in rows) == 6 * 4 * 2
    code, out, _ = run_cli(["study", "analyze", str(study), "--out", str(tmp_path / "a")], capsys)
    assert code == 0 and "screening: kept 5 of 6 participants who finished" in out
    assert f"screened out: {careless}" in out and "at least 7 of 8 catch answers" in out
    assert f"{careless.rsplit('-', 1)[0]}: n=2 (of 3)" in out
    summary = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert summary["pairs"] == 20 and summary["screening"]["catch_pairs"] == 4


@pytest.mark.parametrize(("args", "words"), [
    (["study", "create", "nope.json", "--out", "x"], "no such file"),
    (["study", "create", "{pairs}", "--out", "{tmp}/s", "--conditions", "none,magic"],
     "unknown condition 'magic'"),
    (["study", "create", "{pairs}", "--out", "{tmp}/s", "--scale", "4"], "--scale"),
    (["study", "create", "{pairs}", "--out", "{tmp}/s", "--no-maps", "--catch", "-1"],
     "--catch must be 0 or more"),
    (["study", "create", "{pairs}", "--out", "{tmp}/s", "--no-maps", "--catch", "30"],
     "too few for 30 catch pairs"),
    (["study", "simulate", "{tmp}", "--gains", "occlusion=lots"], "--gains wants name=number"),
    (["study", "simulate", "{tmp}", "--gains", "occlusion=0.1"], "not a study folder"),
    (["study", "analyze", "{tmp}/missing"], "no such directory"),
    (["study", "pairs", "--out", "{tmp}/p.json", "--mining-model", "sface"], "must differ"),
    (["study", "pairs", "--out", "{tmp}/p.json", "--folds", "11"], "--folds"),
    (["serve", "--port", "0"], "--port"),
    (["serve", "--study", "{tmp}", "--preload", ""], "not a study folder"),
    (["serve", "--preload", "nope"], "unknown backbone"),
])
def test_bad_input_is_one_line(args: list[str], words: str, pair_set: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(pairs=pair_set, tmp=tmp_path) for a in args]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, words)
