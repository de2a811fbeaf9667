"""Records are keyed by the weights' values: a modified copy of a built-in backbone reads
neither the original's calibration (threshold and confidence) nor its Θ nor its trust notes;
the unmodified model reads all of them."""

from __future__ import annotations

import pytest
import torch

from facexplain.api import explain_pair
from facexplain.method_info import ExplainOptions
from facexplain.pipeline import FacePipeline
from facexplain.report.html import write_explanation
from facexplain.scoring import get_calibration
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow
A, B = lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)
OPTIONS = ExplainOptions(patch=16, stride=8)


@pytest.mark.long
def test_the_original_reads_its_records_and_a_modified_copy_does_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pipe = FacePipeline("sface", forward_runtime=False)
    original = explain_pair(A, B, methods="occlusion", pipeline=pipe, options=OPTIONS)
    assert original.verdict.confidence is not None
    assert original.verdict.threshold == get_calibration("sface").threshold
    assert "difference_normalized" in original.results[0].explanation.maps  # Θ found
    report = write_explanation(original, tmp_path / "original").read_text()
    assert "Sanity check (model randomisation" in report

    with torch.no_grad():  # a modified copy: one weight tensor scaled through .data
        weights = [p for p in pipe.model.parameters() if p.ndim == 4]
        weights[len(weights) // 2].data.mul_(1.05)
    modified = explain_pair(A, B, methods="occlusion", pipeline=pipe, options=OPTIONS)
    assert modified.weights != original.weights
    assert modified.verdict.confidence is None and modified.calibration.provisional
    assert "not calibrated for these weights" in modified.verdict.population
    assert "difference_normalized" not in modified.results[0].explanation.maps  # no Θ
    assert modified.verdict.similarity != pytest.approx(original.verdict.similarity, abs=1e-4)
    report = write_explanation(modified, tmp_path / "modified").read_text()
    assert "Sanity check: not run for these weights of sface" in report
