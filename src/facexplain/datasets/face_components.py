"""The seven facial components examiners compare (``types.COMPONENTS``) as masks on an aligned
crop, from its 68 landmarks (iBUG layout, as ``align.landmarks68`` returns them).

Why these shapes: eyes, eyebrows, nose and mouth are exactly ``face_regions``' regions (the
planted game swaps those, so a component comparison is scored on the very pixels that were
altered); the other three cover the rest of the face an examiner reads:

- "forehead": above the brows, up to ``FOREHEAD_UP`` (0.6) eye distances, between the jaw
  line's top points (0 and 16), i.e. inside the face's width;
- "cheeks": on each side, the skin between the lower lid, the nose wing, the mouth corner and
  the jaw outline (polygon 36-41-40-39-31-48-5...1 and its mirror);
- "jaw": a band ``JAW_BAND`` (0.25) eye distances wide inside the jaw outline (points 2-14),
  grown by ``JAW_OUT`` (0.05) beyond it so the outline's edge is inside, plus the chin between
  the lower lip and the outline.

The masks are disjoint: ``face_regions``' four keep their pixels, then jaw, cheeks and forehead
take what is left, in that order. Masks are computed on a canvas padded by half the crop on
every side and then cut to the crop, so ``outside_share`` says how much of each component the
crop lost (a face near the crop's edge, a tilted head).
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon2mask

from facexplain.datasets import face_regions
from facexplain.datasets.face_regions import eye_distance
from facexplain.errors import InvalidArgument
from facexplain.types import COMPONENTS

FOREHEAD_UP = 0.6
FOREHEAD_GAP = 0.06  # the forehead starts this far above the brow points (the brows' band)
JAW_BAND, JAW_OUT = 0.25, 0.05
# face_regions' names for the components it already holds
FROM_REGIONS = {"eyes": "eyes", "eyebrows": "brows", "nose": "nose", "mouth": "mouth"}
LEFT_CHEEK = (36, 41, 40, 39, 31, 48, 5, 4, 3, 2, 1)
RIGHT_CHEEK = (45, 46, 47, 42, 35, 54, 11, 12, 13, 14, 15)
JAW_LINE = tuple(range(2, 15))
CHIN = (5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59)


def _marks(landmarks: np.ndarray) -> np.ndarray:
    marks = np.asarray(landmarks, dtype=np.float64)
    if marks.shape != (68, 2) or not np.isfinite(marks).all():
        raise InvalidArgument(f"expected (68, 2) finite landmarks, got {marks.shape}")
    return marks


def _fill(poly: np.ndarray, size: int) -> np.ndarray:
    return polygon2mask((size, size), poly[:, ::-1])


def _grow(mask: np.ndarray, radius: float) -> np.ndarray:
    from scipy import ndimage

    if radius <= 0:
        return mask
    return np.asarray(ndimage.distance_transform_edt(~mask) <= radius)


def _forehead(marks: np.ndarray, unit: float, up: np.ndarray, size: int) -> np.ndarray:
    base = marks[[0, *range(17, 27), 16]] + FOREHEAD_GAP * unit * up
    top = base + FOREHEAD_UP * unit * up
    return _fill(np.vstack([base, top[::-1]]), size)


def _jaw(marks: np.ndarray, unit: float, size: int) -> np.ndarray:
    line = marks[list(JAW_LINE)]
    centre = marks[30]  # the nose tip: "inside" the outline is towards it
    inward = centre - line
    inward /= np.linalg.norm(inward, axis=1, keepdims=True)
    band = _fill(np.vstack([line, (line + JAW_BAND * unit * inward)[::-1]]), size)
    chin = _fill(marks[list(CHIN)], size)
    return _grow(band | chin, JAW_OUT * unit)


def _all_masks(marks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Disjoint masks on a (size, size) canvas whose frame the landmarks are in."""
    unit = eye_distance(marks)
    regions = face_regions.region_masks(marks, size)
    up = -face_regions._down(marks)
    out = {comp: regions[name] for comp, name in FROM_REGIONS.items()}
    taken = np.zeros((size, size), dtype=bool)
    for m in out.values():
        taken |= m
    cheeks = _fill(marks[list(LEFT_CHEEK)], size) | _fill(marks[list(RIGHT_CHEEK)], size)
    for name, mask in (("jaw", _jaw(marks, unit, size)), ("cheeks", cheeks),
                       ("forehead", _forehead(marks, unit, up, size))):
        out[name] = mask & ~taken
        taken |= out[name]
    return {name: out[name] for name in COMPONENTS}


def component_masks_with_outside(landmarks: np.ndarray, size: int
                                 ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Bool (size, size) masks of the seven components (``types.COMPONENTS`` order), disjoint
    and cut to the crop, and the share (0-1) of each component that falls outside the crop."""
    if size < 1:
        raise InvalidArgument(f"mask size must be positive, got {size}")
    marks = _marks(landmarks)
    pad = size // 2
    full = _all_masks(marks + pad, size + 2 * pad)
    masks, outside = {}, {}
    for name, m in full.items():
        inside = m[pad:pad + size, pad:pad + size]
        total = int(m.sum())
        masks[name] = inside.copy()
        outside[name] = 1.0 - int(inside.sum()) / total if total else 1.0
    return masks, outside


def component_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Bool (size, size) masks of the seven components on an aligned crop (disjoint, cut to
    the crop), from the crop's 68 landmarks in its pixels."""
    return component_masks_with_outside(landmarks, size)[0]


def component_label_map(masks: dict[str, np.ndarray]) -> np.ndarray:
    """(size, size) int map: index into ``COMPONENTS`` + 1 per pixel, 0 outside every one."""
    first = next(iter(masks.values()))
    labels = np.zeros(first.shape, dtype=np.int16)
    for i, name in enumerate(COMPONENTS):
        labels[masks[name]] = i + 1
    return labels
