"""The shipped likelihood ratios on real LFW photos: a genuine pair's evidence supports "same
person", an impostor pair's "different people"; the LR is prior-free and P(same) appears only
for a prior the user states, through the CLI as through the library."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from facexplain.api import verify
from facexplain.cli.app import app
from facexplain.scoring import get_calibration
from facexplain.types import VerdictOptions
from tests.conftest import lfw_image
from tests.integration.test_cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backbone", ["sface", "dlib-resnet"])
def test_the_shipped_record_has_bounded_lr_fits(backbone: str) -> None:
    lr = get_calibration(backbone).lr
    assert lr is not None and {"lfw", "lookalike"} <= set(lr)
    for population in ("lfw", "lookalike"):
        fit = lr[population]
        assert fit["lower"] < 0 < fit["upper"]
        # ELUB never claims more than the fitting pairs can support
        assert fit["upper"] <= math.log10(fit["n_different"] + 1) + 0.01


def test_genuine_and_impostor_pairs_get_evidence_for_their_side() -> None:
    genuine = verify(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2))
    impostor = verify(lfw_image("Aaron_Peirsol", 1), lfw_image("Abdullah_Gul", 1))
    assert genuine.log10_lr is not None and genuine.log10_lr > 1
    assert impostor.log10_lr is not None and impostor.log10_lr < -1
    assert "for 'same person'" in genuine.verbal
    assert "for 'different people'" in impostor.verbal
    assert genuine.lr_population == "lfw" and genuine.p_same is None  # no prior, no P(same)
    hard = verify(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2),
                  options=VerdictOptions(population="lookalike"))
    assert hard.lr_population == "lookalike"


def test_verify_json_gives_p_same_only_for_the_stated_prior() -> None:
    runner = CliRunner()
    a, b = str(lfw_image("Aaron_Peirsol", 1)), str(lfw_image("Aaron_Peirsol", 2))
    plain = json.loads(runner.invoke(app, ["verify", a, b, "--json"]).stdout)
    assert plain["p_same"] is None and plain["prior_odds"] is None
    assert plain["log10_lr"] > 1 and plain["verbal"]
    doc = json.loads(runner.invoke(app, ["verify", a, b, "--json", "--prior-odds", "0.001"]
                                   ).stdout)
    expected = 1 / (1 + 10 ** -(doc["log10_lr"] + math.log10(0.001)))
    assert doc["p_same"] == pytest.approx(expected)
    assert doc["log10_lr"] == pytest.approx(plain["log10_lr"])  # the LR ignores the prior
    same_prior = json.loads(runner.invoke(app, ["verify", a, b, "--json", "--prior", "0.5"]
                                          ).stdout)
    assert same_prior["prior_odds"] == pytest.approx(1.0)
    text = runner.invoke(app, ["verify", a, b, "--prior-odds", "0.001"]).stdout
    assert "strength of evidence: log10 LR" in text and "1 : 1,000" in text


@pytest.mark.parametrize(("args", "words"), [
    (["--prior", "0.5", "--prior-odds", "1"], "not both"),
    (["--prior", "1.5"], "strictly between 0 and 1"),
    (["--prior-odds", "0"], "prior odds must be between"),
])
def test_a_bad_prior_is_one_line(args: list[str], words: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(lfw_image("Aaron_Peirsol", 1)), str(lfw_image("Aaron_Peirsol", 2))
    code, _, err = run_cli(["verify", a, b, *args], capsys)
    assert_one_line_error(code, err, words)
