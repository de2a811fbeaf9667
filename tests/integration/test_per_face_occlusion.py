"""Per-face occlusion on real faces: a map per face, incremental equal to full re-evaluation.

Measured finding (docs/BENCHMARKS.md): when only face B is altered, *both* maps light on the
altered region — hiding it in either face removes the conflicting evidence — so the test checks
what holds: the altered region carries most of B's difference map, identical faces give dark
maps (hiding part of one of two identical faces can only lower their cosine), and the
incremental evaluation equals the full one.
"""

from __future__ import annotations

import pytest
import torch

from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import get_method
from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

REGION = (60, 92, 32, 80)  # nose and mouth in the 112 ArcFace crop


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline("sface")


@pytest.fixture(scope="module")
def altered_pair(pipe: FacePipeline) -> torch.Tensor:
    """Face A, and the same photo with nose and mouth pasted from another person as face B."""
    a = pipe.align_path(lfw_image("Aaron_Peirsol", 1)).pixels
    donor = pipe.align_path(lfw_image("George_W_Bush", 1)).pixels
    b = a.clone()
    y0, y1, x0, x1 = REGION
    b[:, y0:y1, x0:x1] = donor[:, y0:y1, x0:x1]
    return torch.stack([a, b])


def _explain(pipe: FacePipeline, pair: torch.Tensor, incremental: bool = True):  # type: ignore[no-untyped-def]
    options = ExplainOptions(patch=16, stride=8, incremental=incremental)
    return get_method("occlusion-per-face").build(pipe.scorer, options).explain(pair)


def test_altered_region_carries_face_b_map(pipe: FacePipeline, altered_pair: torch.Tensor
                                           ) -> None:
    result = _explain(pipe, altered_pair)
    diff = result.maps["difference"]
    inside = torch.zeros(112, 112, dtype=torch.bool)
    y0, y1, x0, x1 = REGION
    inside[y0:y1, x0:x1] = True
    share_b = float(diff[1][inside].sum() / diff[1].sum())
    assert share_b > 0.6  # the region is 12% of the crop
    assert float(diff[1].max()) > 0.02  # lit, not noise


def test_identical_faces_stay_dark(pipe: FacePipeline, altered_pair: torch.Tensor) -> None:
    same = torch.stack([altered_pair[0], altered_pair[0]])
    result = _explain(pipe, same)
    assert float(result.maps["difference"].max()) == 0.0
    assert float(result.maps["delta"].min()) < -0.01  # hiding parts of one copy does lower it


@pytest.mark.long
def test_incremental_equals_full_evaluation(pipe: FacePipeline, altered_pair: torch.Tensor
                                            ) -> None:
    fast = _explain(pipe, altered_pair)
    full = _explain(pipe, altered_pair, incremental=False)
    assert fast.meta.incremental and not full.meta.incremental
    assert float((fast.maps["delta"] - full.maps["delta"]).abs().max()) <= 1e-5
