"""Facial-region masks on aligned crops from 68 landmarks: eyes, brows, nose, mouth and the face.

Why: the planted-difference benchmark swaps exactly one region of one face for another person's,
so each region must cover its feature (lids, the whole brow, the nostrils' wings, the lips) and
the regions of one face must barely overlap. Landmarks follow the iBUG 68 layout (jaw 0-16,
brows 17-26, nose 27-35, eyes 36-47, mouth 48-67), as ``align.landmarks68`` returns them.

Every region is a filled polygon grown by a margin, all lengths in units of the distance between
the two eye centres (``eye_distance``), so a mask means the same on a 112 and a 150 crop:

- "eyes": both eye contours (36-41, 42-47), grown by ``EYE_MARGIN`` (0.10) to take in the lids;
- "brows": each brow's five points (17-21, 22-26) made into a band reaching ``BROW_UP`` (0.03)
  above and ``BROW_DOWN`` (0.08) below them (the points follow the brow's upper half), grown by
  ``BROW_MARGIN`` (0.03);
- "nose": the hull of the bridge and the base (27-35), grown by ``NOSE_MARGIN`` (0.07), which
  takes in the wings beside the nostrils (31, 35);
- "mouth": the outer lip contour (48-59), grown by ``MOUTH_MARGIN`` (0.06);
- "face": the convex hull of all 68 points grown by as far as any region reaches beyond its
  points (0.10), so each region lies inside it (the brows lie on the hull's top edge).

Pixel centres sit at integer coordinates (as in the crops: ``align.warp``); a region "grown by
m" holds every pixel whose centre is inside its polygon (skimage's fill) or within m of its
outline. The four regions are made disjoint: a pixel two of them reach goes to the nearer one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from skimage.draw import polygon2mask

from facexplain.errors import InvalidArgument

REGIONS = ("eyes", "brows", "nose", "mouth")
MASK_NAMES = (*REGIONS, "face")

EYE_MARGIN = 0.10
BROW_UP, BROW_DOWN, BROW_MARGIN = 0.03, 0.08, 0.03
NOSE_MARGIN = 0.07
MOUTH_MARGIN = 0.06
FACE_MARGIN = max(EYE_MARGIN, BROW_UP + BROW_MARGIN, NOSE_MARGIN, MOUTH_MARGIN)
MARGINS = {"eyes": EYE_MARGIN, "brows": BROW_MARGIN, "nose": NOSE_MARGIN,
           "mouth": MOUTH_MARGIN, "face": FACE_MARGIN}

# iBUG 68 index ranges (eyes and brows: the one on the image's left first).
BROWS = (range(17, 22), range(22, 27))
NOSE = range(27, 36)
EYES = (range(36, 42), range(42, 48))
MOUTH_OUTER = range(48, 60)


def _points(landmarks: np.ndarray) -> np.ndarray:
    marks = np.asarray(landmarks, dtype=np.float64)
    if marks.shape != (68, 2):
        raise InvalidArgument(f"expected (68, 2) landmarks, got {marks.shape}")
    if not np.isfinite(marks).all():
        raise InvalidArgument("landmarks contain NaN or infinite values")
    return marks


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull vertices in order; points on one line stay a line (a zero-area polygon)."""
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:
        return points


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the eye on the image's left (36-41) and on its right (42-47)."""
    marks = np.asarray(landmarks, dtype=np.float64)
    return marks[EYES[0]].mean(axis=0), marks[EYES[1]].mean(axis=0)


def eye_distance(landmarks: np.ndarray) -> float:
    """Distance between the eye centres: the unit of every margin here."""
    left, right = eye_centres(landmarks)
    dist = float(np.linalg.norm(right - left))
    if dist <= 0:
        raise InvalidArgument("degenerate landmarks: the two eyes coincide")
    return dist


def _down(landmarks: np.ndarray) -> np.ndarray:
    """Unit vector from the eyes towards the mouth, square to the eye line (follows roll)."""
    left, right = eye_centres(landmarks)
    across = (right - left) / np.linalg.norm(right - left)
    down = np.array([-across[1], across[0]])
    mouth = np.asarray(landmarks, dtype=np.float64)[MOUTH_OUTER].mean(axis=0)
    return down if np.dot(mouth - (left + right) / 2, down) >= 0 else -down


def region_polygons(landmarks: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The polygons (each (k, 2), x then y) of every mask, before growing."""
    marks = _points(landmarks)
    unit, down = eye_distance(marks), _down(marks)
    brows = []
    for idx in BROWS:
        line = marks[idx]
        brows.append(np.vstack([line - BROW_UP * unit * down,
                                (line + BROW_DOWN * unit * down)[::-1]]))
    return {
        "eyes": [marks[idx] for idx in EYES],
        "brows": brows,
        "nose": [_hull(marks[NOSE])],
        "mouth": [marks[MOUTH_OUTER]],
        "face": [_hull(marks)],
    }


def _distance(polygons: list[np.ndarray], size: int, reach: float) -> np.ndarray:
    """(size, size) distance of each pixel centre to the nearest polygon, inf beyond ``reach``:
    0 inside one, else the distance to its outline (exact, so margins scale with the crop; a
    closed eye, whose polygon is a line, still gets a band)."""
    best = np.full((size, size), np.inf)
    for poly in polygons:
        lo = np.clip(np.floor(poly.min(axis=0) - reach), 0, size - 1).astype(int)
        hi = np.clip(np.ceil(poly.max(axis=0) + reach), 0, size - 1).astype(int)
        ys, xs = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1].astype(np.float64)
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1)[:, None, :]  # (P, 1, 2)
        a, b = poly, np.roll(poly, -1, axis=0)
        ab = b - a
        length2 = (ab**2).sum(axis=1)
        t = ((pts - a) * ab).sum(axis=2) / np.where(length2 > 0, length2, 1.0)
        nearest = a + np.clip(t, 0.0, 1.0)[..., None] * ab  # (P, k, 2)
        dist = np.sqrt(((pts - nearest) ** 2).sum(axis=2)).min(axis=1).reshape(xs.shape)
        dist[polygon2mask(xs.shape, (poly - lo)[:, ::-1])] = 0.0
        window = best[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
        np.minimum(window, dist, out=window)
    best[best > reach] = np.inf
    return best


def region_masks(landmarks: np.ndarray, size: int, exclusive: bool = True
                 ) -> dict[str, np.ndarray]:
    """Bool (size, size) masks of "eyes", "brows", "nose", "mouth" and "face" on an aligned
    crop, from its 68 landmarks in the crop's pixels.

    ``exclusive``: a pixel that two grown regions reach (low brows and the upper lid) goes to
    the region whose polygon is nearer, so swapping one region never touches another.
    """
    if size < 1:
        raise InvalidArgument(f"mask size must be positive, got {size}")
    marks = _points(landmarks)
    unit = eye_distance(marks)
    polygons = region_polygons(marks)
    dist = {name: _distance(polygons[name], size, MARGINS[name] * unit) for name in MASK_NAMES}
    masks = {name: np.isfinite(dist[name]) for name in MASK_NAMES}
    if exclusive:
        nearest = np.argmin(np.stack([dist[name] for name in REGIONS]), axis=0)
        for i, name in enumerate(REGIONS):
            masks[name] &= nearest == i
    return masks


def soft_region_masks(landmarks: np.ndarray, size: int, feather: float = 0.05
                      ) -> dict[str, np.ndarray]:
    """``region_masks`` with edges blurred (Gaussian, sigma ``feather`` eye distances): float32
    weights in [0, 1] for blending one face's region into another without a visible seam."""
    if feather < 0:
        raise InvalidArgument(f"feather must be >= 0, got {feather}")
    sigma = feather * eye_distance(_points(landmarks))
    out: dict[str, np.ndarray] = {}
    for name, mask in region_masks(landmarks, size).items():
        soft = mask.astype(np.float32)
        if sigma > 0:
            soft = ndimage.gaussian_filter(soft, sigma, mode="constant")
        out[name] = np.clip(soft, 0.0, 1.0)
    return out


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Shared pixels as a fraction of the smaller mask (0 when either is empty)."""
    smaller = min(int(a.sum()), int(b.sum()))
    return float((a & b).sum()) / smaller if smaller else 0.0
