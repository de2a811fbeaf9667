"""The report's game lines: every map the game scored on these weights is ranked among all
others, old and new methods alike, and a record of other weights does not count."""

from __future__ import annotations

from pathlib import Path

import pytest

from facexplain.explain.trust_game import game_places, save_planted_records, trust_rows


def _cell(share: float, n: int = 12) -> dict[str, object]:
    return {"n": n, "share": {"mean": share, "ci": [share - 0.01, share + 0.01]},
            "pointing": {"mean": 0.3, "ci": [0.2, 0.4]}, "auc": {"mean": 0.6, "ci": [0.5, 0.7]}}


def _doc(rows: dict[str, float], weights: str) -> dict[str, object]:
    return {"backbone": "toy", "rows": {r: {"altered": _cell(s)} for r, s in rows.items()},
            "pairs": {"altered": 12}, "date": "2026-12-06", "weights": weights}


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
