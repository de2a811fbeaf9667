"""Synthetic occlusion: brush-stroke masks hit their area; mask templates cover the lower face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.align.templates import ARCFACE_112, DLIB_150
from facexplain.datasets.occlusion import (
    apply_mask,
    default_region,
    face_region,
    homography,
    load_mask_templates,
    place_mask_template,
    random_mask,
)
from facexplain.errors import InvalidArgument


@pytest.mark.parametrize("area", [0.1, 0.2, 0.3, 0.4])
@pytest.mark.parametrize("size", [112, 150])
def test_random_mask_covers_requested_area(area: float, size: int) -> None:
    rng = np.random.default_rng(7)
    region = default_region(size)
    for _ in range(5):
        m = random_mask(size, area, rng)
        assert m.dtype == bool and m.shape == (size, size)
        assert not (m & ~region).any(), "mask leaks outside the face region"
        assert abs(m.sum() / region.sum() - area) < 0.015


def test_random_mask_is_seeded_and_validates() -> None:
    a = random_mask(112, 0.3, np.random.default_rng(3))
    b = random_mask(112, 0.3, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert not random_mask(112, 0.0, np.random.default_rng(0)).any()
    with pytest.raises(InvalidArgument):
        random_mask(112, 1.5, np.random.default_rng(0))


def test_face_region_contains_landmarks_not_corners() -> None:
    marks = DLIB_150.as_array()
    reg = face_region(marks, 150)
    for x, y in marks:
        assert reg[round(y), round(x)]
    assert not reg[0, 0] and not reg[0, -1]


def test_apply_mask_sets_fill_and_copies() -> None:
    face = torch.full((3, 4, 4), 100.0)
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 2] = True
    out = apply_mask(face, mask, fill=0.0)
    assert out[:, 1, 2].eq(0).all() and out.sum() == 100.0 * (3 * 16 - 3)
    assert face.eq(100).all()


def test_homography_recovers_projective_map() -> None:
    h = np.array([[1.2, 0.1, 5.0], [-0.05, 0.9, 3.0], [1e-3, 2e-3, 1.0]])
    src = np.array([[0, 0], [100, 0], [0, 80], [100, 80], [50, 40], [20, 70]], dtype=float)
    p = np.c_[src, np.ones(6)] @ h.T
    dst = p[:, :2] / p[:, 2:]
    assert np.allclose(homography(src, dst), h, atol=1e-8)


def test_mask_templates_cover_mouth_not_eyes() -> None:
    templates = load_mask_templates()
    assert len(templates) >= 5
    face = torch.full((3, 112, 112), 128.0)
    marks = ARCFACE_112.as_array()
    for t in templates:
        out, mask = place_mask_template(face, marks, t)
        assert out.shape == face.shape and mask.shape == (112, 112)
        for x, y in marks[3:]:  # mouth corners hidden
            assert mask[round(y), round(x)], t.name
        for x, y in marks[:2]:  # eyes visible
            assert not mask[round(y), round(x)], t.name
        assert 0.15 < mask.mean() < 0.6, t.name
