"""Thresholds, k-fold protocol and pair-list parsing, on small inputs with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facexplain.datasets.lfw import read_pairs
from facexplain.errors import InvalidArgument
from facexplain.metrics.verification import kfold_accuracy, tar_at_far
from facexplain.scoring import Calibration, best_threshold, fit_platt, load_calibrations
from tests.conftest import SHARED_DATA


def test_best_threshold_separable() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    same = np.array([False, False, False, True, True])
    assert best_threshold(scores, same) == pytest.approx(0.5)


def test_best_threshold_with_overlap_maximises_accuracy() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.2, 0.1, 300), rng.normal(0.6, 0.1, 300)])
    same = np.concatenate([np.zeros(300, bool), np.ones(300, bool)])
    th = best_threshold(scores, same)
    best = ((scores >= th) == same).mean()
    grid = np.linspace(-0.5, 1.5, 4001)
    assert best >= max(((scores >= g) == same).mean() for g in grid)


def test_kfold_picks_threshold_on_other_folds() -> None:
    # fold 0 is separable at 0.5 but fold 1's scores are shifted: its threshold comes from
    # fold 0 and so misclassifies, which a leak of the test fold would hide.
    scores = np.array([0.1, 0.9, 0.6, 0.95])
    same = np.array([False, True, False, True])
    folds = np.array([0, 0, 1, 1])
    res = kfold_accuracy(scores, same, folds)
    assert res.accuracies[1] == 0.5
    assert res.thresholds[1] == pytest.approx(0.5)


def test_tar_at_far() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.35, 0.5, 0.6, 0.7])
    same = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    assert tar_at_far(scores, same, 0.0) == pytest.approx(0.75)
    assert tar_at_far(scores, same, 0.25) == pytest.approx(1.0)


def test_platt_confidence_monotone() -> None:
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0.1, 0.1, 200), rng.normal(0.6, 0.1, 200)])
    same = np.arange(400) >= 200
    a, b = fit_platt(scores, same)
    cal = Calibration("x", 0.35, a, b, "cmd", "2026-01-01")
    assert cal.probability_same(0.8) > 0.99 > 0.01 > cal.probability_same(-0.1)
    assert cal.confidence(0.8) > 0.99 and cal.confidence(-0.1) > 0.99


def test_official_pairs_file() -> None:
    pairs = read_pairs(SHARED_DATA / "lfw" / "pairs.txt")
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    assert {p.fold for p in pairs} == set(range(10))
    assert pairs[0].same and not pairs[300].same and pairs[600].fold == 1


def test_malformed_pairs_file(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("1 1\nAlice\t1\t2\nBob\t1\n")
    with pytest.raises(InvalidArgument, match=r"pairs.txt:3: expected an impostor"):
        read_pairs(f)


def test_stored_calibrations_are_well_formed() -> None:
    for name, cal in load_calibrations().items():
        assert 0.0 < cal.threshold < 1.0, name
        assert cal.platt_slope > 0, name
        assert "benchmark lfw" in cal.command or "benchmark calibration" in cal.command, name
        assert cal.weights is not None, name  # keyed by the weights it was measured on
        if cal.calibrator is not None:  # a full calibration: held-out quality, rules, scope
            assert cal.heldout and cal.selective and cal.scope, name
            assert cal.heldout["lfw"]["ece"] <= 0.01, name
