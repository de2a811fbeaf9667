"""Faithfulness ranks stored for the report: a run can store only some methods' ranks."""

from __future__ import annotations

from pathlib import Path

import pytest

from facexplain.explain.trust import (
    faithfulness_note,
    faithfulness_store,
    save_faithfulness_records,
)


def _run(rows: dict[str, int]) -> dict[str, object]:
    return {"backbone": "testnet", "n_pairs": 40, "date": "2026-12-06", "command": "x",
            "ranking": {row: {"place": place, "of": len(rows), "mean_rank": float(place),
                              "ranks": {}, "gains": {}} for row, place in rows.items()}}


def test_a_run_stores_only_the_rows_it_is_asked_to(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path))
    save_faithfulness_records(_run({"occlusion": 1, "saliency": 2}))  # the 300-pair run
    save_faithfulness_records(_run({"occlusion": 3, "rise": 1, "saliency": 2}), rows={"rise"})
    store = faithfulness_store()
    assert store.get("testnet:occlusion")["of"] == 2  # type: ignore[index]  # kept
    assert store.get("testnet:rise")["place"] == 1  # type: ignore[index]
    assert "ranked this map 1 of 3" in faithfulness_note("testnet", "rise", ["rise"])
    assert "this map 1 of 2" in faithfulness_note("testnet", "occlusion", ["occlusion"])
