"""The library use case: ``explain_pair`` on a real LFW pair, reusing one pipeline, and its
typed result rendered by ``write_explanation`` (what every front end calls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import facexplain
from facexplain.api import explain_pair
from facexplain.errors import InvalidArgument, UnknownBackbone, UnknownMethod
from facexplain.method_info import ExplainOptions
from facexplain.pipeline import FacePipeline
from facexplain.report.html import write_explanation
from tests.conftest import lfw_image

A, B = lfw_image("Abdel_Madi_Shabneh", 1), lfw_image("Dean_Barker", 1)
FAST = ExplainOptions(patch=32, stride=16)


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline("sface")


def test_explain_pair_typed_result_and_rendering(pipe: FacePipeline, tmp_path: Path) -> None:
    result = explain_pair(A, B, methods=["occlusion", "saliency"], options=FAST, pipeline=pipe)
    assert not result.verdict.same and result.spec.name == "sface"
    assert [r.method.name for r in result.results] == ["occlusion", "saliency"]
    occlusion = result.results[0]
    names = {m.name: m for m in occlusion.maps}
    assert names["delta"].spec.signed and not names["difference"].spec.signed
    assert all(m.values.shape == (2, 112, 112) for m in occlusion.maps)
    assert occlusion.score == pytest.approx(result.verdict.similarity, abs=1e-6)
    report = write_explanation(result, tmp_path)
    summary = json.loads((tmp_path / "explanation.json").read_text())
    assert summary["methods"]["occlusion"]["details"]["k"] == 32
    assert {m["file"] for m in summary["methods"]["saliency"]["maps"]} <= {
        p.name for p in tmp_path.glob("*.npy")}
    html = report.read_text()
    assert "Pairwise occlusion" in html and "Gradient saliency" in html
    assert "100.0%" not in html  # a fitted probability is never shown as certainty
    drawn = [m for r in result.results for m in r.maps if m.spec.show]
    assert len(drawn) == 4 and html.count("How to read it:") == len(drawn)  # every picture
    assert html.count("Faithfulness") == 2 and html.count("Sanity check") == 2  # per method


def test_a_reused_pipeline_embeds_each_clean_pair_once(pipe: FacePipeline) -> None:
    before = pipe.scorer.clean_embeddings
    a, b = lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)  # a pair not seen yet
    explain_pair(a, b, methods="occlusion,gradcam", options=FAST, pipeline=pipe)
    assert pipe.scorer.clean_embeddings - before == 1  # verdict, occlusion and Grad-CAM share it


def test_bad_arguments_fail_before_any_model_loads(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEXPLAIN_HOME", str(tmp_path / "empty-home"))  # no model files at all
    with pytest.raises(UnknownMethod):
        explain_pair(A, B, methods="occlusion,nope")
    with pytest.raises(UnknownBackbone):
        explain_pair(A, B, backbone="nope")
    with pytest.raises(InvalidArgument, match="stride"):
        explain_pair(A, B, options=ExplainOptions(patch=16, stride=1000))
    with pytest.raises(InvalidArgument, match="larger than the 112px"):
        facexplain.explain_pair(A, B, options=ExplainOptions(patch=500, stride=8))


def test_remembered_embedding_follows_the_weights(pipe: FacePipeline) -> None:
    """A re-initialised model must not be answered from the clean pair embedded before."""
    import torch

    from facexplain.explain.scorer import PairScorer

    model = FacePipeline("sface").model  # a model of its own: the shared one stays intact
    scorer = PairScorer(model)
    faces = pipe.pair(A, B).tensor
    before, fingerprint = scorer.similarity(faces), scorer.fingerprint()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    assert scorer.similarity(faces) != pytest.approx(before, abs=1e-3)
    assert scorer.fingerprint() != fingerprint


def test_integrated_gradients_complete_with_cli_defaults(pipe: FacePipeline) -> None:
    """IG's baseline follows the fill (mean face) and its steps grow until the attributions add
    up to the similarity change within 5% (checked on a real impostor pair)."""
    result = explain_pair(A, B, methods="ig", pipeline=pipe)
    details = result.results[0].explanation.meta
    assert details.fill == "mean-face"  # type: ignore[attr-defined]
    assert details.completeness_error < 0.05  # type: ignore[attr-defined]
    maps = result.results[0].explanation.maps
    total = -float(maps["delta"].sum())  # delta = -sum_c IG: the map adds up to the change
    assert total == pytest.approx(details.score_change, rel=0.05)  # type: ignore[attr-defined]


def test_verify_runs_forward_only_without_loading_the_torch_module(pipe: FacePipeline) -> None:
    """``verify`` needs no gradient: the exported runtime embeds, the module is never built,
    and the similarity is the module's (what ``explain`` reports) to float precision."""
    from facexplain.api import verify

    fresh = FacePipeline("sface", detector=pipe.detector)
    if fresh.runtime() is None:
        pytest.skip("no forward-only runtime in this model home; run make setup")
    verdict = verify(A, B, pipeline=fresh)
    assert fresh._model is None  # the torch graph was never built
    assert verdict.similarity == pytest.approx(pipe.scorer.similarity(pipe.pair(A, B).tensor),
                                               abs=1e-5)
    assert fresh.embedding_key().startswith("ort-")
    torch_only = FacePipeline("sface", detector=pipe.detector, forward_runtime=False)
    assert torch_only.runtime() is None and not torch_only.embedding_key().startswith("ort-")
