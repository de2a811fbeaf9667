"""The shipped calibration on real photos: a grey-level Yale pair is flagged as outside the
calibration's scope while an LFW pair is not, and a selective verdict says "not sure" exactly
where the stored rule of the asked error rate would not answer."""

from __future__ import annotations

import pytest

from facexplain import settings
from facexplain.api import verify
from facexplain.scoring import get_calibration
from facexplain.types import VerdictOptions
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow


def test_a_grey_yale_pair_is_out_of_scope_and_an_lfw_pair_is_not() -> None:
    yale = settings.current().yale
    grey = verify(yale / "subject01.glasses", yale / "subject01.noglasses")
    assert grey.scope and all("grey-level photo" in note for note in grey.scope)
    assert "LFW" in grey.population
    colour = verify(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2))
    assert colour.scope == () and colour.confidence is not None


def test_selective_verdict_follows_the_stored_rule() -> None:
    cal = get_calibration("sface")
    easy = verify(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2),
                  options=VerdictOptions(max_error=0.01, population="lfw"))
    rule = cal.selective_rule(0.01, "lfw")
    assert rule is not None and easy.same and easy.confidence is not None
    assert easy.answered == (easy.confidence >= rule["min_same"])
    assert "errors among answered pairs" in easy.rule
    strict = verify(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2),
                    options=VerdictOptions(max_error=0.001, population="lookalike"))
    rule = cal.selective_rule(0.001, "lookalike")
    assert rule is not None
    assert strict.answered == (strict.confidence >= rule["min_same"])
    assert strict.answer in ("same", "not sure")
