"""Calibrators, reliability measures, the selective ("not sure") rule and the scope check, on
planted score distributions whose true P(same | score) is known."""

from __future__ import annotations

import numpy as np
import pytest

from facexplain.confidence import calibrators, reliability
from facexplain.confidence.scope import FaceTraits, out_of_scope, profile
from facexplain.confidence.selective import apply_rule, clopper_pearson, fit_selective
from facexplain.errors import InvalidArgument


def _planted(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosines, labels drawn from a known P(same | s) = sigmoid(25 s - 8), and that P."""
    s = rng.uniform(-0.2, 0.8, n)
    p = 1 / (1 + np.exp(-(25 * s - 8)))
    return s, rng.random(n) < p, p


@pytest.mark.parametrize("kind", calibrators.KINDS)
def test_each_calibrator_recovers_a_planted_probability(kind: str) -> None:
    rng = np.random.default_rng(0)
    s, y, _ = _planted(20_000, rng)
    fitted = calibrators.predictor(calibrators.fit(kind, s, y))
    grid = np.linspace(-0.1, 0.7, 41)
    truth = 1 / (1 + np.exp(-(25 * grid - 8)))
    assert float(np.abs(fitted(grid) - truth).max()) < 0.06
    t, yt, _ = _planted(20_000, rng)
    assert reliability.ece(fitted(t), yt) < 0.02  # held out


def test_calibrator_parameters_round_trip_and_bad_input_is_one_line() -> None:
    rng = np.random.default_rng(1)
    s, y, _ = _planted(500, rng)
    for kind in calibrators.KINDS:
        params = calibrators.fit(kind, s, y)
        p = calibrators.probability_same(params, 0.3)
        assert 0 < p < 1 and params["kind"] == kind
    with pytest.raises(InvalidArgument, match="both same and different"):
        calibrators.fit("logistic", s, np.ones_like(y))
    with pytest.raises(InvalidArgument, match="unknown calibrator"):
        calibrators.fit("spline", s, y)


def test_ece_is_small_for_the_truth_and_large_for_an_overconfident_map() -> None:
    rng = np.random.default_rng(2)
    s, y, p = _planted(50_000, rng)
    assert reliability.ece(p, y) < 0.01
    overconfident = np.where(p >= 0.5, 0.9999, 0.0001)
    assert reliability.ece(overconfident, y) > 0.05
    assert reliability.brier(p, y) < reliability.brier(overconfident, y)
    lo, hi = reliability.bootstrap_ci("ece", p[:2000], y[:2000], n_boot=200)
    assert 0 <= lo <= reliability.ece(p[:2000], y[:2000]) <= hi


@pytest.mark.parametrize("target", [0.05, 0.01, 0.002])
def test_selective_rule_keeps_the_error_among_answered_pairs_at_the_target(target: float) -> None:
    """The guarantee (in expectation over calibration draws): averaged over many independent
    calibration and test draws of a planted population, the test error among the pairs the
    rule answers is at most the target, while it still answers a useful share."""
    rng = np.random.default_rng(3)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, y, p = _planted(n, rng)
        conf, says = reliability.verdict_confidence(p)
        return conf, says == y, says

    errors, coverage = [], []
    for _ in range(150):
        conf, ok, says = draw(4000)
        rule = fit_selective(conf, ok, says, target, "planted")
        n, wrong = apply_rule(rule, *draw(20_000))
        errors.append(wrong / max(n, 1))
        coverage.append(n / 20_000)
    base_error = 1 - float(np.mean(draw(100_000)[1]))
    assert base_error > target  # answering everything would break the target
    assert float(np.mean(errors)) <= target
    assert float(np.mean(coverage)) > 0.1


def test_selective_rule_answers_nothing_when_no_threshold_is_safe() -> None:
    conf = np.full(50, 0.99)
    ok = np.zeros(50, dtype=bool)
    rule = fit_selective(conf, ok, np.ones(50, dtype=bool), 0.01)
    assert rule.coverage == 0 and not rule.answers(0.999999, True)


def test_selective_rule_answers_the_safe_side_only() -> None:
    """Confident "same" verdicts that are often wrong (look-alike impostors) and reliable
    "different" ones: the rule keeps answering "different" and abstains on "same"."""
    rng = np.random.default_rng(4)
    conf = rng.uniform(0.9, 1.0, 4000)
    says = np.arange(4000) % 2 == 0
    ok = np.where(says, rng.random(4000) > 0.05, True)
    rule = fit_selective(conf, ok, says, 0.01)
    assert rule.min_same > 1 and rule.min_different <= 0.9
    assert rule.coverage == pytest.approx(0.5) and rule.calibration_error == 0
    assert clopper_pearson(0, 100)[1] == pytest.approx(0.0362, abs=1e-3)


def test_scope_flags_grey_small_and_unusual_faces() -> None:
    calib = [FaceTraits(False, 40.0 + i % 10, 0.999, 10.0 + (i % 7) * 0.1) for i in range(500)]
    prof = profile(calib, "LFW")
    assert out_of_scope(calib[3], prof) == []
    grey = FaceTraits(True, 45.0, 0.999, 10.3)
    assert any("grey-level" in n for n in out_of_scope(grey, prof))
    small = FaceTraits(False, 12.0, 0.999, 10.3)
    assert any("small face" in n for n in out_of_scope(small, prof))
    guessed = FaceTraits(False, 0.0, 0.0, 10.3)
    assert any("no face was detected" in n for n in out_of_scope(guessed, prof))
    odd = FaceTraits(False, 45.0, 0.999, 30.0)
    assert any("embedding length" in n for n in out_of_scope(odd, prof))
