"""Likelihood ratios: lir's calibrators stored as bounded tables, Cllr's parts, the verbal
scale and the prior the user states."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facexplain.confidence.likelihood import (
    LR_KINDS,
    LrFit,
    cllr_parts,
    equal_error_rate,
    fit_lr,
    posterior_same,
    verbal,
)
from facexplain.scoring import Calibration
from facexplain.types import VerdictOptions


def _scores(n: int = 1500, seed: int = 0, genuine: float = 0.65
            ) -> tuple[np.ndarray, np.ndarray]:
    """Cosines shaped like a face model's: genuine ~ N(0.65, 0.12), impostor ~ N(0.1, 0.1)."""
    rng = np.random.default_rng(seed)
    same = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    scores = np.r_[rng.normal(genuine, 0.12, n), rng.normal(0.1, 0.10, n)]
    return np.clip(scores, -1, 1), same


@pytest.mark.parametrize("kind", LR_KINDS)
def test_each_calibrator_orders_the_evidence_and_is_bounded(kind: str) -> None:
    scores, same = _scores()
    fit = fit_lr(kind, scores, same, "synthetic")
    llr = fit(np.array([-0.2, 0.05, 0.35, 0.65, 0.95]))
    assert llr[0] < 0 < llr[-1]
    assert np.all(np.diff(llr) >= -1e-9)  # more similar never weakens "same"
    # ELUB: no LR beyond what 1,500 pairs a side can support (|log10 LR| <= log10(1501))
    assert fit.lower >= -math.log10(1501) - 0.01 and fit.upper <= math.log10(1501) + 0.01
    assert fit(5.0) == pytest.approx(fit.upper) and fit(-5.0) == pytest.approx(fit.lower)


def test_a_fit_survives_its_json() -> None:
    scores, same = _scores(seed=1)
    fit = fit_lr("kde", scores, same, "synthetic")
    again = LrFit.from_json(fit.to_json())
    probe = np.linspace(-1, 1, 50)
    assert np.allclose(again(probe), fit(probe), atol=1e-4)


@pytest.mark.parametrize("kind", ["kde", "isotonic"])
def test_held_out_lrs_are_calibrated_and_an_overconfident_one_is_not(kind: str) -> None:
    """Overlapping classes of unequal spread (genuine N(0.45, 0.12), impostor N(0.1, 0.1)):
    a flexible calibrator fitted on one sample is calibrated on another; the same LRs made
    three times too strong (in log) carry a large calibration loss."""
    scores, same = _scores(seed=1, genuine=0.45)
    fit = fit_lr(kind, scores, same, "synthetic")
    test_scores, test_same = _scores(seed=2, genuine=0.45)
    llr = fit(test_scores)
    total, minimum, cal = cllr_parts(llr, test_same)
    assert 0.1 < minimum <= total < 0.35
    assert cal < 0.03
    _, minimum3, cal3 = cllr_parts(3 * llr, test_same)
    assert cal3 > 0.1 and minimum3 == pytest.approx(minimum, abs=1e-6)  # PAV: same order
    assert cllr_parts(np.zeros(test_same.size), test_same)[0] == pytest.approx(1.0)


def test_eer_of_separate_and_of_identical_classes() -> None:
    scores, same = _scores(seed=4)
    assert equal_error_rate(scores, same) < 0.01
    rng = np.random.default_rng(5)
    assert 0.4 < equal_error_rate(rng.normal(size=2000), rng.random(2000) < 0.5) < 0.6


@pytest.mark.parametrize(("log10_lr", "words"), [
    (0.0, "no support for either proposition"),
    (0.5, "weak support for 'same person'"),
    (-1.5, "moderate support for 'different people'"),
    (2.5, "moderately strong support for 'same person'"),
    (3.5, "strong support for 'same person'"),
    (-5.0, "very strong support for 'different people'"),
    (6.5, "extremely strong support for 'same person'"),
])
def test_enfsi_verbal_scale(log10_lr: float, words: str) -> None:
    assert verbal(log10_lr) == words


def test_the_prior_is_the_users() -> None:
    assert posterior_same(0.0, 1.0) == pytest.approx(0.5)
    assert posterior_same(3.0, 1e-3) == pytest.approx(0.5)  # LR 1,000 against 1 : 1,000
    assert posterior_same(2.0, 1.0) == pytest.approx(100 / 101)
    with pytest.raises(Exception, match="prior odds"):
        VerdictOptions(prior_odds=0.0).check()


def test_calibration_decides_with_the_lr_of_the_named_population() -> None:
    scores, same = _scores(seed=6)
    lfw = fit_lr("logistic", scores, same, "lfw").to_json()
    hard = fit_lr("logistic", scores - 0.1, same, "lookalike").to_json()
    cal = Calibration("toy", 0.35, 10.0, -3.5, "test", "2026-12-07",
                      lr={"lfw": lfw, "lookalike": hard, "command": "x", "date": "y"})
    default = cal.decide(0.5)
    named = cal.decide(0.5, VerdictOptions(population="lookalike"))
    assert default.evidence is not None and default.evidence[1] == "lfw"
    assert named.evidence is not None and named.evidence[1] == "lookalike"
    assert named.evidence[0] > default.evidence[0]  # 0.5 is more typical of genuine there
    assert Calibration("toy", 0.35, 10.0, -3.5, "test", "").decide(0.5).evidence is None
