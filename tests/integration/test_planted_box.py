"""The harder planted set on real LFW photos: the area is pasted into the photo (only inside
it), the altered photo is detected and aligned again, the area lands on its landmark group in
the new crop, and another person's area lowers the similarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.align.landmarks68 import landmarks68
from facexplain.benchmarks.planted_box import _Photos, pair_rng, paste, paste_mask
from facexplain.benchmarks.planted_pairs import REGION_POINTS
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow

PAIRS = ((("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2), ("Abdel_Madi_Shabneh", 1)),
         (("Abdullah_Gul", 1), ("Abdullah_Gul", 2), ("Abdullah_Ahmad_Badawi", 1)))


@pytest.mark.parametrize("names", PAIRS)
def test_pasted_before_alignment_on_real_pairs(names) -> None:  # type: ignore[no-untyped-def]
    pipe = FacePipeline("sface", forward_runtime=False)
    a, b, donor = (lfw_image(*n) for n in names)
    located = {p: pipe.locate(load_image(p), policy="center", allow_fallback=True)
               for p in (a, b, donor)}
    reader = _Photos(pipe, located)
    crops = np.clip(np.stack([reader.crop(a), reader.crop(b)]).round(), 0, 255)
    base = pipe.scorer.similarity(torch.from_numpy(crops))
    drops = []
    for region in ("eyes", "brows", "nose", "mouth"):
        mask, _ = paste_mask(reader.marks(b), region, reader.photo(b).shape[:2],
                             pair_rng(f"test:{region}"))
        new = paste(reader.photo(b), reader.photo(donor), reader.marks(b),
                    reader.marks(donor), region, mask)
        changed = np.abs(new.astype(int) - reader.photo(b).astype(int)).max(axis=2) > 0
        assert not changed[~mask].any() and changed[mask].mean() > 0.5  # inside only
        made = reader.altered(crops, (a, b), 1, region, donor, mask)
        assert made is not None
        altered, carried = made
        assert np.array_equal(altered[0], crops[0]) and 0.01 < carried.mean() < 0.2
        marks = landmarks68(torch.from_numpy(altered[1:2].astype(np.float32))).numpy()[0]
        pts = np.round(marks[list(REGION_POINTS[region])]).astype(int).clip(0, carried.shape[0] - 1)
        assert carried[pts[:, 1], pts[:, 0]].mean() > 0.6  # the area sits on its group
        drops.append(base - pipe.scorer.similarity(torch.from_numpy(altered)))
    assert np.mean(drops) > 0.02  # a look-alike's areas make the pair less alike
