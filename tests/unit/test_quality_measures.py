"""Photo quality pieces on synthetic inputs: EDC and pAUC, the profile's judgement, the
seeded degradations and the default "not sure" rule on a planted score distribution of hard
pairs (look-alike impostors scoring like genuine pairs)."""

from __future__ import annotations

import numpy as np
import pytest

from facexplain.benchmarks.edc import DISCARD, compare, edc, pauc
from facexplain.confidence.calibrators import fit, predictor
from facexplain.confidence.reliability import verdict_confidence
from facexplain.confidence.selective import fit_selective
from facexplain.datasets.degrade import KINDS, degrade_photo
from facexplain.errors import InvalidArgument
from facexplain.quality.measures import COMPONENTS
from facexplain.quality.profile import fit_profile, judge
from facexplain.quality.unified import perturbations, rank_score
from facexplain.scoring import Calibration
from facexplain.types import VerdictOptions


def test_edc_falls_when_quality_predicts_errors_and_stays_flat_when_it_does_not() -> None:
    rng = np.random.default_rng(0)
    wrong = rng.random(2000) < 0.05
    informative = np.where(wrong, rng.normal(0, 1, 2000), rng.normal(2, 1, 2000))
    curve = edc(informative, wrong)
    assert curve[0] == pytest.approx(wrong.mean())
    assert curve[-1] < 0.5 * curve[0]
    good = compare(informative, wrong, 100, 0)
    assert good["difference_ci"][1] < 0  # better than random, CI excludes it
    noise = compare(rng.random(2000), wrong, 100, 0)
    lo, hi = noise["difference_ci"]
    assert lo < 0 < hi
    assert pauc(np.full(DISCARD.size, 0.1)) == pytest.approx(0.1)


def _values(**over: float) -> dict[str, float | None]:
    base: dict[str, float | None] = {c: 0.0 for c in COMPONENTS}
    base.update(sharpness=0.3, exposure=120.0, contrast=25.0, eye_distance=40.0,
                landmark_error=0.05)
    base.update(over)
    return base


def _profile():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(500):
        rows.append({"yaw": rng.normal(0, 10), "pitch": rng.normal(0, 8), "roll": rng.normal(0, 5),
                     "sharpness": rng.normal(0.3, 0.05), "exposure": rng.normal(120, 20),
                     "contrast": rng.normal(25, 5), "clipped": abs(rng.normal(0, 0.01)),
                     "eye_distance": rng.normal(40, 5),
                     "landmark_error": abs(rng.normal(0.05, 0.02)),
                     "occluded": 0.0})
    return fit_profile(rows, rng.normal(0, 1, 500), "stability", "LFW")


def test_a_photo_inside_the_range_passes_and_each_outlier_is_named_in_plain_words() -> None:
    profile = _profile()
    ok = judge(_values(), (), 0.0, profile)
    assert ok.failing == () and 0.3 < (ok.score or 0) < 0.7
    bad = judge(_values(eye_distance=12.0, yaw=-60.0, sharpness=0.02), (), -5.0, profile)
    assert set(bad.failing) == {"eye_distance", "yaw", "sharpness", "unified"}
    text = " ".join(bad.reasons)
    assert "12 px between the eyes" in text and "yaw -60 degrees" in text
    assert bad.to_dict()["failing"] == list(bad.failing)


def test_unreliable_landmarks_fail_as_such_and_pose_is_not_judged() -> None:
    q = judge(_values(landmark_error=0.9, yaw=90.0), (), 0.0, _profile())
    assert "landmark_error" in q.failing and "yaw" not in q.failing
    assert q.components["yaw"] is None
    assert "landmarks unreliable" in q.reasons[0]


def test_a_hidden_part_always_fails() -> None:
    q = judge(_values(occluded=1.0), ("mouth",), 0.0, _profile())
    assert q.failing == ("occluded",) and q.reasons == ("mouth hidden",)


def test_rank_score_is_the_share_of_calibration_photos_beaten() -> None:
    quantiles = list(np.percentile(np.arange(1000.0), np.arange(101)))
    assert rank_score(499.5, quantiles) == pytest.approx(0.5, abs=0.01)
    assert rank_score(-10, quantiles) == 0.0 and rank_score(5000, quantiles) == 1.0


def test_perturbations_mirror_and_shift_the_crop() -> None:
    face = np.random.default_rng(0).random((3, 112, 112)).astype(np.float32)
    moved = perturbations(face)
    assert moved.shape == (5, 3, 112, 112)
    np.testing.assert_array_equal(moved[0], face[:, :, ::-1])
    assert not np.array_equal(moved[1], face)


def test_degradations_are_seeded_and_each_changes_the_photo() -> None:
    rng = np.random.default_rng(3)
    photo = (rng.random((120, 100, 3)) * 255).astype(np.uint8)
    eyes = np.array([[35.0, 50.0], [65.0, 50.0]])
    for kind in KINDS:
        a = degrade_photo(photo, kind, np.random.default_rng(7), eyes)
        b = degrade_photo(photo, kind, np.random.default_rng(7), eyes)
        assert a.shape == photo.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        assert np.abs(a.astype(int) - photo).mean() > 1.0, kind
    with pytest.raises(InvalidArgument):
        degrade_photo(photo, "sepia", rng)
    with pytest.raises(InvalidArgument):
        degrade_photo(photo, "eye_band", rng)


def _population(rng: np.random.Generator, n: int, impostor_mean: float
                ) -> tuple[np.ndarray, np.ndarray]:
    same = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    scores = np.r_[rng.normal(0.62, 0.12, n), rng.normal(impostor_mean, 0.1, n)]
    return np.clip(scores, -1, 1), same


def test_default_rule_holds_on_planted_hard_pairs_where_the_easy_rule_does_not() -> None:
    """Calibrate on easy (LFW-like) and hard (look-alike-like) draws; judge on fresh hard pairs.
    The default rule (stricter of both) keeps errors at the target; LFW's alone does not."""
    rng = np.random.default_rng(11)
    easy_s, easy_y = _population(rng, 3000, 0.08)
    hard_s, hard_y = _population(rng, 3000, 0.38)
    params = fit("logistic", easy_s, easy_y)
    p = predictor(params)
    rules = {}
    for name, (s, y) in {"lfw": (easy_s, easy_y), "lookalike": (hard_s, hard_y)}.items():
        conf, says = verdict_confidence(p(s))
        rules[name] = {"0.01": fit_selective(conf, says == y, says, 0.01, name).to_json()}
    threshold = 0.3
    cal = Calibration("toy", threshold, 0.0, 0.0, "test", "today", calibrator=params,
                      selective=rules)
    test_s, test_y = _population(rng, 4000, 0.38)

    def error(population: str | None) -> tuple[float, float]:
        got = [cal.decide(float(s), VerdictOptions(max_error=0.01, population=population))
               for s in test_s]
        answered = np.array([d.answered for d in got])
        wrong = np.array([d.same != y for d, y in zip(got, test_y, strict=True)])
        return float((answered & wrong).sum() / answered.sum()), float(answered.mean())

    default_error, default_coverage = error(None)
    lfw_error, _ = error("lfw")
    assert default_error <= 0.013  # the target, up to sampling of 8,000 fresh pairs
    assert lfw_error > 0.02  # the easy population's rule does not carry over
    assert 0.1 < default_coverage < 1.0
