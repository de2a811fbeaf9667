"""Results are keyed by the weights' values: an edit that torch's version counters miss
(``p.data.mul_``, ``vector_to_parameters``) still gives recomputed scores and occlusion maps,
equal to those of a freshly loaded model with the same edit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import vector_to_parameters

from facexplain.backbones.base import FaceModel
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.scorer import PairScorer, model_fingerprint
from facexplain.io import load_image
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow
Edit = Callable[[FaceModel], None]


def _pair(size: int) -> torch.Tensor:
    faces = []
    for name in ("Aaron_Peirsol", "Abdel_Madi_Shabneh"):
        img = torch.from_numpy(np.ascontiguousarray(load_image(lfw_image(name, 1))))
        crop = img[70:180, 70:180].permute(2, 0, 1).float()[None]
        faces.append(F.interpolate(crop, size=(size, size), mode="bilinear",
                                   align_corners=False)[0])
    return torch.stack(faces)


def _scale_middle_weight(model: FaceModel) -> None:
    """In place through ``.data``: the version counter does not move."""
    params = [p for p in model.parameters() if p.ndim == 4]
    params[len(params) // 2].data.mul_(1.5)


def _vector_edit(model: FaceModel) -> None:
    """``vector_to_parameters`` assigns ``p.data``: a new tensor, the counter is not bumped."""
    v = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    noise = torch.randn(v.shape, generator=torch.Generator().manual_seed(0))
    vector_to_parameters(v * (1 + 0.05 * noise), model.parameters())


def _occlusion(scorer: PairScorer, pair: torch.Tensor) -> torch.Tensor:
    occ = PairwiseOcclusion(scorer, patch=16, stride=16, fill="zero", template="arcface-112")
    return occ.explain(pair).maps["delta"]


@pytest.mark.parametrize("edit", [_scale_middle_weight, _vector_edit], ids=["data", "vector"])
@pytest.mark.long
def test_edited_weights_are_recomputed(edit: Edit) -> None:
    spec = get_spec("sface")
    pair = _pair(spec.input_size)
    model = load_backbone("sface")
    scorer = PairScorer(model, spec)
    before = (scorer.similarity(pair), _occlusion(scorer, pair), scorer.fingerprint())
    versions = [int(p._version) for p in model.parameters()]
    edit(model)
    assert [int(p._version) for p in model.parameters()] == versions  # torch did not notice
    after = (scorer.similarity(pair), _occlusion(scorer, pair), scorer.fingerprint())
    fresh = load_backbone("sface")
    edit(fresh)
    reference = PairScorer(fresh, spec)
    assert after[2] == model_fingerprint(fresh) != before[2]
    assert after[0] == pytest.approx(reference.similarity(pair), abs=1e-5)
    assert abs(after[0] - before[0]) > 1e-3
    expected = _occlusion(reference, pair)
    assert float((after[1] - expected).abs().max()) <= 1e-5
    assert float((after[1] - before[1]).abs().max()) > 1e-3
