"""Incremental occlusion on the four real backbones: stage splits and scores equal full forwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facexplain.backbones.registry import SPECS, get_spec, load_backbone
from facexplain.errors import AssetMissing
from facexplain.explain.base import backbone_pair_score
from facexplain.explain.incremental import IncrementalPairScore
from facexplain.explain.occlusion_loop import occlusion_windows
from facexplain.io import load_image
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow


def _real_pair(size: int) -> torch.Tensor:
    """Two LFW faces (central crop, resized to the backbone's input), float RGB [0, 255]."""
    faces = []
    for name in ("Abdel_Madi_Shabneh", "Dean_Barker"):
        img = torch.from_numpy(np.ascontiguousarray(load_image(lfw_image(name, 1))))
        crop = img[70:180, 70:180].permute(2, 0, 1).float()[None]
        faces.append(F.interpolate(crop, size=(size, size), mode="bilinear",
                                   align_corners=False)[0])
    return torch.stack(faces)


@pytest.mark.parametrize("name", list(SPECS))
def test_incremental_scores_equal_full_forwards(name: str) -> None:
    try:
        model = load_backbone(name)
    except AssetMissing as exc:
        pytest.skip(str(exc))
    size = get_spec(name).input_size
    pair = _real_pair(size)
    with torch.inference_mode():
        x = pair
        for stage in model.stages():
            x = stage(x)
        assert torch.equal(x, model(pair))  # the split is the forward
        scorer = IncrementalPairScore(model, pair)
        assert scorer.faces.groups  # the early layers do run incrementally
        full = backbone_pair_score(model)
        for k, s in ((8, 3), (16, 8)):
            windows = occlusion_windows(size, size, k, s, "clip")
            picked = [windows[i] for i in np.linspace(0, len(windows) - 1, 12).astype(int)]
            mask = torch.zeros(len(picked), 1, size, size, dtype=torch.bool)
            for i, (y0, y1, x0, x1) in enumerate(picked):
                mask[i, :, y0:y1, x0:x1] = True
            a = torch.where(mask, 128.0, pair[0])
            b = torch.where(mask, 128.0, pair[1])
            fast = scorer(torch.full_like(pair, 128.0), picked)
            slow = full(a, b)
            assert float((fast - slow).abs().max()) <= 1e-5
            assert float((slow - full(pair[:1], pair[1:])).abs().max()) > 1e-4  # windows matter
