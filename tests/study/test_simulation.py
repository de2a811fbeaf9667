"""Simulated participants through the whole flow: 3 conditions x 30 participants x 200 pairs
and 4 catch trials, one participant answering at random, analysed end to end: the screening
removes exactly that one, and the planted before/after gains come back within their noise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from facexplain.study.analyze import analyze_study
from facexplain.study.simulate import CUTS, choice_for, d_prime, simulate_study
from facexplain.study.store import judged_same, open_study
from tests.study.conftest import MakeStudy

GAINS = {"occlusion": 0.08, "deconv": 0.0, "saliency": 0.0}  # the paper's A+, B+, C+


def test_choice_cuts_agree_with_the_same_different_reading() -> None:
    for scale in CUTS:
        for x in (-3.0, -0.5, -1e-9, 0.0, 1e-9, 0.5, 3.0):
            assert judged_same(choice_for(x, scale), scale) == (x > 0)
    assert d_prime(0.5) == pytest.approx(0.0)
    assert 0.5 * (1 + math.erf(d_prime(0.76) / 2 / math.sqrt(2))) == pytest.approx(0.76)


def test_planted_gains_are_recovered(make_plain_study: MakeStudy, tmp_path: Path) -> None:
    made = make_plain_study(n_pairs=200, conditions=tuple(GAINS), per_condition=30, catch=4)
    planted = simulate_study(made.folder, GAINS, base=0.76, sd=0.05, seed=1, careless=1)
    careless = [p for p in planted if p.careless]
    assert len(careless) == 1
    with open_study(made.folder) as store:
        assert sum(store.progress().values()) == 3 * 30 * (200 + 4) * 2
    analyze_study(made.folder, tmp_path / "analysis")
    summary = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert summary["model_accuracy"] == pytest.approx(0.75)  # every 4th pair wrong
    assert summary["pairs"] == 200
    scr = summary["screening"]
    assert (scr["catch_pairs"], scr["min_correct"], scr["finished"], scr["kept"]) == (4, 7, 90, 89)
    assert scr["screened"] == [careless[0].id]
    people = {p["id"]: p for p in summary["participants"]}
    assert people[careless[0].id]["catch_correct"] < 7 and not people[careless[0].id]["kept"]
    assert all(p["catch_answered"] == 8 and p["answered"] == [200, 200] for p in people.values())
    html = (tmp_path / "analysis" / "analysis.html").read_text()
    assert "Kept <b>89 of 90</b>" in html and f"Screened out: {careless[0].id}" in html
    for c in summary["conditions"]:
        cond = c["condition"]
        mine = [p for p in planted if p.condition == cond and not p.careless]
        want_gain = sum(p.accuracy_after - p.accuracy_before for p in mine) / len(mine)
        want_before = sum(p.accuracy_before for p in mine) / len(mine)
        assert (c["n"], c["finished"]) == (len(mine), 30)
        half_ci = (c["gain_ci95"][1] - c["gain_ci95"][0]) / 2
        assert 0.005 < half_ci < 0.03  # the noise of 30 x 200 binary answers
        assert abs(c["gain_mean"] - want_gain) < half_ci * 1.5, cond
        assert abs(c["before_mean"] - want_before) < 0.015, cond
        if GAINS[cond] > 0:
            assert c["t_p"] < 1e-6 and c["gain_ci95"][0] > 0.04
            assert c["auc_after"] > c["auc_before"] + 0.03
        else:
            assert c["gain_ci95"][0] < 0.0 < c["gain_ci95"][1] or abs(c["gain_mean"]) < 0.01
    for name in ("fig8_accuracy.png", "fig9_before_after.png", "fig10_roc.png",
                 "analysis.html"):
        assert (tmp_path / "analysis" / name).stat().st_size > 5000
