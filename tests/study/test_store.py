"""SQLite storage of answers: WAL, one transaction per answer, idempotent resubmission, the
two rounds in order, CSV export with the paper's same/different reading."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest

from facexplain.errors import InputNotFound, InvalidArgument
from facexplain.study.store import StudyError, judged_same, open_study
from tests.study.conftest import MakeStudy


def test_paper_reading_of_the_scales() -> None:
    assert [judged_same(c, 5) for c in range(1, 6)] == [True, True, False, False, False]
    assert [judged_same(c, 7) for c in range(1, 8)] == [True] * 3 + [False] * 4


def test_answers_are_idempotent_and_rounds_in_order(make_plain_study: MakeStudy) -> None:
    made = make_plain_study()
    with open_study(made.folder) as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        who = store.participants()[0]
        first = store.record(who, 1, who.order1[0], 2, 1500)
        again = store.record(who, 1, who.order1[0], 5, 99)  # a retry after a lost reply
        assert not first.duplicate and again.duplicate and again.choice == 2 and again.ms == 1500
        assert store.answered(who.id) == {(1, who.order1[0]): 2}
        with pytest.raises(StudyError, match="second round"):
            store.record(who, 2, who.order2[0], 1, 10)
        for pair in who.order1[1:]:
            store.record(who, 1, pair, 4, 10)
        assert store.record(who, 2, who.order2[0], 1, 10).choice == 1
        for bad in ((3, 0, 1), (1, 0, 0), (1, 0, 6), (1, 999, 1)):
            with pytest.raises(InvalidArgument):
                store.record(who, *bad, 10)
        other = store.participants()[1]
        assert store.answered(other.id) == {}  # nothing leaked to another participant


def test_csv_export_marks_correct_answers(make_plain_study: MakeStudy) -> None:
    made = make_plain_study()
    with open_study(made.folder) as store:
        who = store.participants()[0]
        truth = {int(r["idx"]): bool(r["same"]) for r in store.pairs()}
        for pair in who.order1:  # always answer "sure same"
            store.record(who, 1, pair, 1, 100)
        buf = io.StringIO()
        assert store.export_csv(buf) == len(who.order1)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert {r["participant"] for r in rows} == {who.id}
    for r in rows:
        assert r["judged_same"] == "1"
        assert r["correct"] == str(int(truth[int(r["pair"])]))


def test_orders_are_per_participant_permutations(make_plain_study: MakeStudy) -> None:
    made = make_plain_study(n_pairs=20, per_condition=3)
    orders = [p.order1 for p in made.participants]
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert len(set(orders)) == len(orders)  # each participant has their own order


def test_open_study_refuses_other_folders(tmp_path, make_plain_study: MakeStudy) -> None:
    with pytest.raises(InputNotFound, match="not a study folder"):
        open_study(tmp_path)
    made = make_plain_study()
    with pytest.raises(InvalidArgument, match="already holds a study"):
        make_plain_study()
    db = sqlite3.connect(made.folder / "study.sqlite")
    db.execute("DELETE FROM meta")
    db.commit()
    db.close()
    with pytest.raises(InvalidArgument, match="not a complete study"):
        open_study(made.folder)
