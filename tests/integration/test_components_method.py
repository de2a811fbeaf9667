"""The component comparison on real LFW faces with the real models (issue 37)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain.align.landmarks68 import landmarks68, load_landmarks68
from facexplain.datasets.occluders import dark_band_over_eyes, hand_over_mouth
from facexplain.explain.components import ComponentDetails
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import all_methods, get_method
from facexplain.pipeline import FacePipeline
from facexplain.types import COMPONENTS, FINDINGS
from tests.conftest import lfw_image
from tests.integration.test_cli import run_cli


def _check_findings(rows: list[dict[str, object]]) -> None:
    assert sorted(str(r["component"]) for r in rows) == sorted(COMPONENTS)
    assert all(r["finding"] in FINDINGS for r in rows)
    scored = [r for r in rows if r["score"] is not None]
    ranks = [r["rank"] for r in scored]
    assert ranks == list(range(1, len(scored) + 1))
    assert rows[:len(scored)] == scored  # not-assessable (unscored) rows last
    for r in scored:
        if r["theta"] is not None:
            key = float(r["score"]) / float(r["theta"])  # type: ignore[arg-type]
            assert r["finding"] == ("differs" if key > 1 else "consistent")
    keys = [float(r["score"]) / float(r["theta"]) if r["theta"] else float(r["score"])  # type: ignore[arg-type]
            for r in scored]
    assert keys == sorted(keys, reverse=True)
    for r in rows:
        if r["score"] is None:
            assert r["finding"] == "not assessable" and r["reason"]


def test_registered_and_in_all() -> None:
    info = all_methods()["components"]
    assert info.in_all and not info.pairwise  # one map per face: its own component outlines


def test_explain_cli_writes_the_components_key(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    a, b = lfw_image("Aaron_Peirsol", 1), lfw_image("Dean_Barker", 1)
    code, _, err = run_cli(["explain", str(a), str(b), "--out", str(tmp_path), "--method",
                            "components"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "explanation.json").read_text())
    rows = doc["components"]
    assert len(rows) == 7
    _check_findings(rows)
    assert "components" in doc["methods"]


def _pair(pipe: FacePipeline, a: Path, b: Path) -> torch.Tensor:
    return torch.stack([pipe.align_path(a).pixels, pipe.align_path(b).pixels])


def _occlude(pair: torch.Tensor, draw: object) -> torch.Tensor:
    crop = pair[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    marks = landmarks68(pair[0:1], load_landmarks68())[0].numpy().astype(np.float64)
    covered = draw(crop, marks, 0)  # type: ignore[operator]
    out = pair.clone()
    out[0] = torch.from_numpy(covered).permute(2, 0, 1).float()
    return out


@pytest.mark.parametrize(("draw", "component"), [(dark_band_over_eyes, "eyes"),
                                                 (hand_over_mouth, "mouth")])
def test_a_covered_component_is_not_assessable(draw: object, component: str) -> None:
    pipe = FacePipeline("sface")
    pair = _occlude(_pair(pipe, lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 2)),
                    draw)
    explainer = get_method("components").build(pipe.scorer, ExplainOptions())
    result = explainer.explain(pair)
    d = result.meta
    assert isinstance(d, ComponentDetails)
    row = next(f for f in d.components if f.component == component)
    assert row.finding == "not assessable" and row.score is None, row
    assert row.reason.startswith("photo A: ")
    _check_findings([f.to_dict() for f in d.components])


def test_works_on_dlib_resnet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a, b = lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 2)
    code, _, err = run_cli(["explain", str(a), str(b), "--out", str(tmp_path), "--method",
                            "components", "--backbone", "dlib-resnet"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "explanation.json").read_text())
    assert doc["backbone"] == "dlib-resnet"
    _check_findings(doc["components"])
    pipe = FacePipeline("dlib-resnet")
    pair = _occlude(_pair(pipe, a, b), dark_band_over_eyes)
    d = get_method("components").build(pipe.scorer, ExplainOptions()).explain(pair).meta
    assert isinstance(d, ComponentDetails)
    assert next(f for f in d.components if f.component == "eyes").finding == "not assessable"
