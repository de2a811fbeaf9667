"""Ranking table and resumable pair log of the faithfulness benchmark (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facexplain.benchmarks.faithfulness import FaithfulnessResult, PairLog
from facexplain.benchmarks.faithfulness_report import ranking_markdown, ranks
from facexplain.metrics.faithfulness import summarize

FR = (0.0, 0.5)


def _result(gains: dict[str, tuple[float, float]]) -> FaithfulnessResult:
    """Two families (deletion-px impostor, insertion-px impostor); a row's curve ends at
    0.5 + its gain for deletion (higher better) and 0.5 - its gain for insertion."""
    rnd = np.array([[0.0, 0.5]])
    rows = []
    for mode, sign, idx in (("deletion", 1, 0), ("insertion", -1, 1)):
        for name, g in gains.items():
            curve = np.array([[0.0, 0.5 + sign * 2 * g[idx]]])
            rows.append(summarize(name, "difference", FR, curve, rnd, mode=mode,
                                  protocol=f"{mode}-px"))
    curves = {f"{m}-px": {"difference": {}} for m in ("deletion", "insertion")}
    summary: dict[str, object] = {"protocols": ["deletion-px", "insertion-px"],
                                  "rows": list(gains)}
    return FaithfulnessResult(summary, rows, curves)  # type: ignore[arg-type]


def test_ranks_share_ties_and_order_by_mean_rank() -> None:
    table = ranks(_result({"a": (0.3, 0.1), "b": (0.3, 0.2), "c": (0.1, 0.3), "d": (0.0, 0.0)}))
    assert table["a"].ranks == {"deletion-px/difference": 1, "insertion-px/difference": 3}
    assert table["b"].ranks["deletion-px/difference"] == 1  # tie with a
    assert table["b"].gains["insertion-px/difference"] == 0.2
    assert [table[r].place for r in "abcd"] == [2, 1, 2, 4]  # means 2, 1.5, 2, 4
    assert {t.of for t in table.values()} == {4}
    md = ranking_markdown(_result({"a": (0.3, 0.1), "b": (0.3, 0.2)}))
    assert md.splitlines()[2].startswith("| **b** |") and "+0.300 (1)" in md


def test_identical_maps_are_one_entry_of_the_ranking() -> None:
    """saliency = deconv on a network without ReLU: ranked once, the others not pushed down."""
    result = _result({"sal": (0.2, 0.2), "dec": (0.2, 0.2), "occ": (0.1, 0.1)})
    same = np.array([[0.1, 0.2]])
    for by_kind in result.curves.values():
        by_kind["difference"].update(sal=same, dec=same.copy(), occ=same + 0.05)
    table = ranks(result)
    assert table["sal"].same_as == ["dec"] and table["dec"].same_as == ["sal"]
    assert table["occ"].place == 2 and table["occ"].of == 2  # not 3 of 3
    assert "| **sal = dec** |" in ranking_markdown(result)


def test_pair_log_resumes_finished_pairs_and_drops_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = PairLog(path, {"cfg": 1}, enabled=True)
    log.add({"pair": "x|y", "original": 0.5})
    log.add({"pair": "u|v", "original": 0.1})
    with path.open("a") as f:
        f.write('{"pair": "cut')  # a run killed mid-write
    again = PairLog(path, {"cfg": 1}, enabled=True)
    assert set(again.done) == {"x|y", "u|v"}
    assert len(path.read_text().splitlines()) == 3  # header + two intact records
    other = PairLog(path, {"cfg": 2}, enabled=True)  # another configuration starts over
    assert other.done == {}
    assert json.loads(path.read_text().splitlines()[0]) == {"key": {"cfg": 2}}
    fresh = PairLog(tmp_path / "f.jsonl", {"cfg": 1}, enabled=False)
    assert fresh.done == {}
