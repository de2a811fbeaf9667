"""The report's game lines: every map the game scored on these weights is ranked among all
others, old and new methods alike, and a record of other weights does not count."""

from __future__ import annotations

from pathlib import Path

import pytest

from facexplain.explain.trust_game import game_places, save_planted_records, trust_rows


def _cell(share: float, n: int = 12) -> dict[str, object]:
    return {"n": n, "share": {"mean": share, "ci": [share - 0.01, share + 0.01]},
            "pointing": {"mean": 0.3, "ci": [0.2, 0.4]}, "auc": {"mean": 0.6, "ci": [0.5, 0.7]}}


def _doc(rows: dict[str, float], weights: str, n: int = 12) -> dict[str, object]:
    return {"backbone": "toy", "rows": {r: {"altered": _cell(s, n)} for r, s in rows.items()},
            "pairs": {"altered": n}, "date": "2026-12-06", "weights": weights}


def test_new_methods_are_ranked_with_the_old(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path))  # user records start empty
    save_planted_records(_doc({"occlusion": 0.15, "saliency": 0.07, "saliency-abs": 0.07}, "w1"))
    save_planted_records(_doc({"corrrise": 0.12}, "w1"))  # a later run, a new method only
    save_planted_records(_doc({"lime": 0.5}, "other-weights"))
    places = game_places("toy", "w1")
    assert places == {"occlusion": (1, 4), "corrrise": (2, 4), "saliency": (3, 4),
                      "saliency-abs": (3, 4)}
    lines = trust_rows("toy", "corrrise", ["corrrise"], "w1")
    rank = [t for t in lines if t.measure.startswith("game rank")]
    assert [t.value for t in rank] == ["2 of 4"]
    assert "12 planted LFW pairs" in rank[0].population
    assert not [t for t in trust_rows("toy", "lime", ["lime"], "w1")]  # other weights


def test_a_short_run_keeps_larger_records_and_stores_only_the_named_methods(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The 300-pair xSSAB record survives a 10-pair run of new methods; --record-methods
    stores only the rows of the named methods (x-face's pairing rows included)."""
    from facexplain.explain.trust_game import planted_store

    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path))
    save_planted_records(_doc({"xssab": 0.09}, "w", n=300))
    _, kept = save_planted_records(_doc({"xssab": 0.2, "lime": 0.1}, "w", n=10))
    stored = planted_store().load()
    assert kept == ["xssab"] and stored["toy:xssab"]["altered"]["share"]["mean"] == 0.09
    assert stored["toy:lime"]["altered"]["n"] == 10
    _, kept = save_planted_records(_doc({"xssab": 0.3}, "other", n=10))  # other weights
    assert kept == []
    save_planted_records(_doc({"occlusion": 0.2, "occlusion-per-face A": 0.1,
                               "xface-occlusion (same)": 0.19, "rise": 0.05}, "w"),
                         methods=("occlusion", "xface-occlusion"))
    stored = planted_store().load()
    assert {"toy:occlusion", "toy:xface-occlusion (same)"} <= set(stored)
    assert "toy:occlusion-per-face A" not in stored and "toy:rise" not in stored


def _which(mean: float, n: int) -> dict[str, object]:
    return {"mean": mean, "ci": [mean - 0.05, min(mean + 0.05, 1.0)], "n": n}


def test_which_face_is_claimed_only_on_enough_pairs_and_not_for_edits(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from facexplain.explain.trust_game import which_face_verified

    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path))

    def store(row: str, altered: dict[str, object], control: dict[str, object] | None) -> None:
        cells: dict[str, object] = {"altered": {**_cell(0.2), "which": altered}}
        if control is not None:
            cells["same-person"] = {**_cell(0.1), "which": control}
        save_planted_records({"backbone": "toy", "rows": {row: cells}, "pairs": {},
                              "date": "2026-12-06", "weights": "w"})

    store("few", _which(1.0, 5), None)
    store("edits", _which(0.9, 300), _which(0.9, 100))
    store("owner", _which(0.9, 300), _which(0.5, 100))
    verified, sentence = which_face_verified("toy", "few", "w")
    assert not verified and "too few pairs" in sentence
    verified, sentence = which_face_verified("toy", "edits", "w")
    assert not verified and "finds the edit" in sentence
    assert which_face_verified("toy", "owner", "w")[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--record-methods", "lime"], "needs --write-record"),
    (["--write-record", "--record-methods", "lime", "--methods", "rise"],
     "must name methods of this run"),
])
def test_planted_record_methods_refused_in_one_line(args: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_pairwise_occlusion import run_cli

    code, err = run_cli(["benchmark", "planted", *args], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0 and len(lines) == 1 and message in lines[0], err
