"""Component masks and the assessability check on real LFW faces with their real landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.align.landmarks68 import landmarks68, load_landmarks68
from facexplain.align.templates import ARCFACE_112
from facexplain.datasets.component_assess import (
    HIDDEN,
    OUTSIDE,
    UNRELIABLE,
    assess_components,
    load_appearance,
)
from facexplain.datasets.face_components import (
    component_label_map,
    component_masks,
    component_masks_with_outside,
)
from facexplain.datasets.occluders import dark_band_over_eyes, hand_over_mouth, skin_colour
from facexplain.types import COMPONENTS

FIVE = ARCFACE_112.as_array()  # where sface's alignment put the detector's five points


@pytest.fixture(scope="module")
def faces(six_faces: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(6, 112, 112, 3) uint8 crops and their (6, 68, 2) landmarks."""
    marks = landmarks68(six_faces, load_landmarks68()).numpy().astype(np.float64)
    crops = six_faces.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return crops, marks


def _relocate(crop: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float()
    return landmarks68(x, load_landmarks68())[0].numpy().astype(np.float64)


def test_masks_disjoint_inside_and_ordered(faces: tuple[np.ndarray, np.ndarray]) -> None:
    _, marks = faces
    for m in marks:
        masks, outside = component_masks_with_outside(m, 112)
        assert tuple(masks) == COMPONENTS
        stack = np.stack([masks[c] for c in COMPONENTS]).astype(int)
        assert stack.sum(axis=0).max() == 1  # disjoint
        for c in COMPONENTS:
            assert masks[c].shape == (112, 112) and masks[c].sum() > 50, c
            assert outside[c] < 0.05, (c, outside[c])
        # the components sit where they should: forehead above the eyes, jaw below the mouth
        rows = {c: np.nonzero(masks[c])[0].mean() for c in COMPONENTS}
        assert rows["forehead"] < rows["eyebrows"] < rows["eyes"] < rows["nose"] < rows["mouth"]
        assert np.nonzero(masks["jaw"])[0].max() > np.nonzero(masks["mouth"])[0].max()
        labels = component_label_map(masks)
        assert labels.max() == len(COMPONENTS)


def test_component_outside_the_crop_is_reported(faces: tuple[np.ndarray, np.ndarray]) -> None:
    crops, marks = faces
    shifted = marks[0] + np.array([0.0, -45.0])  # the face moved up: the forehead leaves
    masks, outside = component_masks_with_outside(shifted, 112)
    assert outside["forehead"] > 0.5 and outside["jaw"] < 0.05
    assert masks["forehead"].sum() < component_masks(marks[0], 112)["forehead"].sum()
    assert assess_components(crops[0], shifted)["forehead"] == OUTSIDE


def test_clean_faces_are_assessable(faces: tuple[np.ndarray, np.ndarray]) -> None:
    crops, marks = faces
    for c, m in zip(crops, marks, strict=True):
        assert assess_components(c, m) == {}
        assert assess_components(c, m, expected=FIVE) == {}


def test_dark_band_over_the_eyes_hides_the_eyes(faces: tuple[np.ndarray, np.ndarray]) -> None:
    crops, marks = faces
    for i, (c, m) in enumerate(zip(crops, marks, strict=True)):
        covered = dark_band_over_eyes(c, m, i)
        found = assess_components(covered, _relocate(covered), expected=FIVE)
        # hidden, or the net put the eyes somewhere else (on the brows above the band)
        assert found.get("eyes") in (HIDDEN, UNRELIABLE), found
        assert "mouth" not in found


def test_hand_over_the_mouth_hides_the_mouth(faces: tuple[np.ndarray, np.ndarray]) -> None:
    crops, marks = faces
    for i, (c, m) in enumerate(zip(crops, marks, strict=True)):
        covered = hand_over_mouth(c, m, i)
        # the hand is the face's own skin colour: colour alone cannot find it
        y, x = int(m[48:68, 1].mean()), int(m[48:68, 0].mean())
        hand = covered[y - 3:y + 4, x - 3:x + 4].reshape(-1, 3).mean(axis=0)
        skin = skin_colour(c, m)
        assert (np.abs(hand - skin) / skin).max() < 0.3
        found = assess_components(covered, _relocate(covered), expected=FIVE)
        assert found.get("mouth") == HIDDEN, found
        assert "eyes" not in found


def test_the_shipped_model_covers_every_component() -> None:
    model = load_appearance()
    assert set(model.components) == set(COMPONENTS)
    assert model.mean_shape.shape == (68, 2)
