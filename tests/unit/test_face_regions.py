"""Region masks from 68 landmarks on a toy face drawn by rule: coverage, disjoint regions,
scaling with the crop, closed eyes, soft edges, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from facexplain.datasets.face_regions import (
    MASK_NAMES,
    REGIONS,
    overlap,
    region_masks,
    soft_region_masks,
)
from facexplain.errors import InvalidArgument


def _toy_face(size: int = 112) -> np.ndarray:
    """A frontal 68-point layout drawn by rule (ellipses and arcs), roughly an aligned face."""
    s = size / 112

    def ring(cx: float, cy: float, rx: float, ry: float, n: int, start: float) -> np.ndarray:
        t = start + np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)

    jaw_t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([56 - 40 * np.cos(jaw_t), 50 + 50 * np.sin(jaw_t)], axis=1)
    brow = [np.stack([np.linspace(a, b, 5), 40 - 3 * np.sin(np.linspace(0, np.pi, 5))], axis=1)
            for a, b in ((28, 50), (62, 84))]
    nose = np.vstack([np.stack([np.full(4, 56.0), np.linspace(51, 70, 4)], axis=1),
                      np.stack([np.linspace(48, 64, 5), np.full(5, 74.0)], axis=1)])
    eyes = [ring(cx, 51, 7, 2.5, 6, np.pi) for cx in (39, 73)]
    mouth = np.vstack([ring(56, 92, 15, 5, 12, np.pi), ring(56, 92, 9, 2, 8, np.pi)])
    return np.vstack([jaw, *brow, nose, *eyes, mouth]) * s


def test_region_masks_on_a_toy_face() -> None:
    face = _toy_face()
    masks = region_masks(face, 112)
    assert set(masks) == set(MASK_NAMES)
    for name in REGIONS:
        assert masks[name].any() and not (masks[name] & ~masks["face"]).any()
    for i, a in enumerate(REGIONS):
        for b in REGIONS[i + 1:]:
            assert overlap(masks[a], masks[b]) == 0.0
    # The same face at 150 px: the same regions, scaled (margins follow the eye distance).
    big = region_masks(_toy_face(150), 150)
    for name in MASK_NAMES:
        assert big[name].sum() / masks[name].sum() == pytest.approx((150 / 112) ** 2, rel=0.1)


def test_closed_eyes_still_have_a_mask_and_soft_masks_are_weights() -> None:
    face = _toy_face()
    face[36:48, 1] = 51.0  # lids shut: each eye polygon is a line
    masks = region_masks(face, 112)
    assert masks["eyes"].sum() > 50
    soft = soft_region_masks(face, 112)
    for name in MASK_NAMES:
        assert soft[name].dtype == np.float32
        assert soft[name].min() >= 0.0 and soft[name].max() <= 1.0
        assert soft[name][masks[name]].mean() > 0.5 > soft[name][~masks[name]].mean()


def test_bad_landmarks_are_refused() -> None:
    face = _toy_face()
    with pytest.raises(InvalidArgument, match="68, 2"):
        region_masks(face[:5], 112)
    face[0, 0] = np.nan
    with pytest.raises(InvalidArgument, match="NaN"):
        region_masks(face, 112)
    same = _toy_face()
    same[36:48] = same[36]
    with pytest.raises(InvalidArgument, match="eyes coincide"):
        region_masks(same, 112)
