"""The planted-difference game's pieces on real aligned LFW faces: a transplant changes the
chosen region only, blends in without a seam, and lowers the similarity when the donor is
another person; the game's scores are right on maps whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.align.landmarks68 import landmarks68, load_landmarks68
from facexplain.benchmarks.planted_metrics import map_scores
from facexplain.benchmarks.planted_pairs import transplant
from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faces() -> tuple[FacePipeline, np.ndarray, np.ndarray]:
    pipe = FacePipeline("sface", forward_runtime=False)
    genuine = pipe.pair(lfw_image("Aaron_Peirsol", 1), lfw_image("Aaron_Peirsol", 2)).array
    donor = pipe.align_path(lfw_image("Abdel_Madi_Shabneh", 1)).array
    return pipe, genuine, donor


@pytest.mark.parametrize("region", ["eyes", "brows", "nose", "mouth"])
def test_transplant_changes_the_region_only_and_without_a_seam(faces, region: str) -> None:  # type: ignore[no-untyped-def]
    pipe, genuine, donor = faces
    marks = landmarks68(torch.from_numpy(np.stack([genuine[1], donor])),
                        load_landmarks68()).numpy()
    new, mask = transplant(genuine[1], donor, region, marks[0], marks[1])
    assert 0.005 < mask.mean() < 0.2
    assert np.array_equal(new[:, ~mask], genuine[1][:, ~mask])  # nothing outside the region
    assert float(np.abs(new[:, mask] - genuine[1][:, mask]).mean()) > 2.0  # inside: replaced
    ring = mask & ~np.roll(mask, 1, 0) | mask & ~np.roll(mask, -1, 1)  # the region's edge
    step = float(np.abs(new[:, ring] - genuine[1][:, ring]).mean())
    assert step < float(np.abs(donor[:, ring] - genuine[1][:, ring]).mean())  # seam blended
    altered = genuine.copy()
    altered[1] = new
    before = pipe.scorer.similarity(torch.from_numpy(genuine))
    after = pipe.scorer.similarity(torch.from_numpy(altered))
    assert after < before  # another person's region makes the pair less alike


def test_scores_of_maps_with_known_answers() -> None:
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:14, 6:26] = True
    exact = np.zeros((2, 32, 32))
    exact[1][mask] = 1.0
    s = map_scores(exact, mask, face=1)
    assert s["share"] == 1.0 and s["pointing"] == 1.0 and s["auc"] == 1.0 and s["which"] == 1.0
    wrong = exact[::-1].copy()  # the same region, lit on the other face
    assert map_scores(wrong, mask, face=1)["which"] == 0.0
    flat = np.ones((2, 32, 32))
    f = map_scores(flat, mask, face=1)
    assert f["share"] == pytest.approx(mask.mean()) and f["auc"] == 0.5 and f["which"] == -1
