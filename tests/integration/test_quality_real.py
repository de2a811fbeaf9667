"""Photo quality on real LFW photos, through `verify --json`: a blurred, down-scaled copy of a
photo scores lower than the clean one, names the component that fails in plain words, and
with --max-error 0.01 turns an answered genuine pair into "not sure"; the shipped profiles
bound every component."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facexplain.quality.measures import COMPONENTS
from facexplain.quality.profile import QualityProfile
from facexplain.scoring import get_calibration
from tests.conftest import lfw_image
from tests.integration.test_cli import run_cli

pytestmark = pytest.mark.slow


def _verify(capsys: pytest.CaptureFixture[str], a: Path, b: Path, *extra: str
            ) -> dict[str, Any]:
    code, out, err = run_cli(["verify", str(a), str(b), "--json", *extra], capsys)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _blurred_small(src: Path, dst: Path, side: int = 48) -> Path:
    img = Image.open(src).convert("RGB").filter(ImageFilter.GaussianBlur(2.0))
    w, h = img.size
    small = img.resize((side, round(side * h / w)), Image.Resampling.BILINEAR)
    small.resize((w, h), Image.Resampling.BILINEAR).save(dst)
    return dst


@pytest.mark.parametrize("backbone", ["sface", "dlib-resnet"])
def test_the_shipped_profile_bounds_every_component(backbone: str) -> None:
    record = get_calibration(backbone).quality
    assert record is not None
    profile = QualityProfile.from_json(record)
    assert set(profile.bounds) == set(COMPONENTS)
    assert all(low <= high for low, high in profile.bounds.values())
    assert len(profile.quantiles) == 101 and np.all(np.diff(profile.quantiles) >= 0)


@pytest.mark.parametrize("person", ["Aaron_Peirsol", "Abdullah_Gul"])
def test_a_blurred_downscaled_copy_is_flagged_and_not_answered(
        tmp_path: Path, person: str, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = lfw_image(person, 1), lfw_image(person, 2)
    bad = _blurred_small(b, tmp_path / "b-small.png")
    clean = _verify(capsys, a, b, "--max-error", "0.01")
    worse = _verify(capsys, a, bad, "--max-error", "0.01")
    q_clean, q_bad = clean["quality"], worse["quality"]
    assert isinstance(q_clean, dict) and isinstance(q_bad, dict)
    assert q_clean["b"]["failing"] == [] and clean["answer"] == "same"
    assert q_bad["b"]["score"] < q_clean["b"]["score"]
    assert q_bad["b"]["failing"], q_bad["b"]
    assert worse["answer"] == "not sure"
    assert "photo B:" in str(worse["rule"])
    named = q_bad["b"]["failing"][0]
    assert named in {*COMPONENTS, "unified"}
    assert q_bad["b"]["reasons"] and str(q_bad["b"]["reasons"][0])
    # the LR says its population does not match this pair
    assert worse["lr_population"] != clean["lr_population"]


def test_the_text_verdict_names_the_unfit_photo(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a, b = lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)
    code, out, err = run_cli(["verify", str(a), str(_blurred_small(b, tmp_path / "b.png")),
                              "--max-error", "0.01"], capsys)
    assert code == 0, err
    assert out.startswith("NOT SURE")
    assert "photo B quality" in out and "outside the calibration photos' range" in out
