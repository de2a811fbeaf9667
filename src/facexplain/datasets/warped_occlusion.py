"""The interpretable-representation paper's synthetic occlusion: one physical rectangle per batch.

Why: FAD (``losses.diversity``) compares a batch of faces with the same *physical* part hidden
(the left eye, the nose tip...), whatever each face's pose. As the paper (Sec. 3.4, Fig. 3), a
32x12 rectangle (in a 96x96 frame, scaled to the crop) is chosen in the frontal template, each
corner is written in barycentric coordinates of the template triangle that holds it, and the
same coordinates in the face's own triangles give the face's quadrilateral.

The paper's mesh has 142 triangles over 68 landmarks. Two meshes are built here, chosen by the
landmarks given: with the detector's five points, the five, five points derived from them by
fixed rules (forehead, chin, both cheeks, between the eyes: they follow the face's scale and
roll) and the crop's corners and edge midpoints (fixed, so every pixel of the crop lies in a
triangle), 18 points; with face-api's 68 points (``align.landmarks68``), the 68 and the same
eight border points, the paper's mesh. On an aligned crop the points sit near the template's,
so the warp mostly follows residual pose and expression: an eye rectangle stays on the eye of a
face turned slightly away, which a fixed crop rectangle would not.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import Delaunay

from facexplain.errors import InvalidArgument

FRAME = 96
RECT_LONG, RECT_SHORT = 32, 12


def _border(size: int) -> np.ndarray:
    s = float(size - 1)
    return np.array([[0, 0], [s / 2, 0], [s, 0], [s, s / 2], [s, s], [s / 2, s], [0, s],
                     [0, s / 2]])


def mesh_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(18, 2) from five landmarks (with five derived face points) or (76, 2) from 68, each with
    eight fixed crop border points."""
    marks = np.asarray(landmarks, dtype=np.float64)
    if marks.shape == (68, 2):
        return np.vstack([marks, _border(size)])
    if marks.shape != (5, 2):
        raise InvalidArgument(f"expected (5, 2) or (68, 2) landmarks, got {marks.shape}")
    eyes, mouth = marks[:2].mean(axis=0), marks[3:].mean(axis=0)
    down = mouth - eyes
    across = marks[1] - marks[0]
    derived = np.stack([
        eyes - 0.9 * down,  # forehead
        mouth + 0.55 * down,  # chin
        marks[2] - 0.75 * across,  # cheek on the image's left
        marks[2] + 0.75 * across,  # cheek on the image's right
        eyes - 0.25 * down,  # between the eyebrows
    ])
    return np.vstack([marks, derived, _border(size)])


class RectangleWarper:
    """Maps template rectangles onto faces through a fixed triangulation of the template mesh
    (five or 68 template landmarks; each face then gives landmarks of the same kind)."""

    def __init__(self, template_landmarks: np.ndarray, size: int) -> None:
        self.size = size
        self.template = mesh_points(template_landmarks, size)
        self.mesh = Delaunay(self.template)
        self.n_landmarks = int(np.asarray(template_landmarks).shape[0])

    def barycentric(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(triangle index, barycentric weights (n, 3)) of template points."""
        pts = np.asarray(points, dtype=np.float64)
        tri = self.mesh.find_simplex(pts)
        if (tri < 0).any():
            raise InvalidArgument("a rectangle corner lies outside the crop")
        t = self.mesh.transform[tri]  # (n, 3, 2): inverse matrix rows and origin
        b = np.einsum("nij,nj->ni", t[:, :2], pts - t[:, 2])
        return tri, np.column_stack([b, 1.0 - b.sum(axis=1)])

    def warp(self, corners: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The face's quadrilateral (4, 2) for template ``corners`` (4, 2)."""
        tri, weights = self.barycentric(corners)
        if np.asarray(landmarks).shape[0] != self.n_landmarks:
            raise InvalidArgument(f"this mesh is built on {self.n_landmarks} landmarks, the "
                                  f"face gives {np.asarray(landmarks).shape[0]}")
        face = mesh_points(landmarks, self.size)
        vertices = face[self.mesh.simplices[tri]]  # (4, 3, 2)
        return np.einsum("ni,nij->nj", weights, vertices)

    def mask(self, corners: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Bool (size, size): the warped quadrilateral filled."""
        quad = self.warp(corners, landmarks)
        img = Image.new("1", (self.size, self.size), 0)
        ImageDraw.Draw(img).polygon([tuple(p) for p in quad], fill=1)
        return np.array(img, dtype=bool)  # a writable copy


def random_rectangles(n: int, size: int, region: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """``n`` template rectangles (4 corners each, clockwise), 32x12 of a 96 frame scaled to
    ``size``, lying or standing at random, centred on a random pixel of ``region`` (the face)."""
    if n < 1:
        raise InvalidArgument(f"need at least one rectangle, got {n}")
    rng = np.random.default_rng(seed)
    ys, xs = np.nonzero(np.asarray(region, dtype=bool))
    if xs.size == 0:
        raise InvalidArgument("the face region is empty")
    k = size / FRAME
    out = []
    for _ in range(n):
        i = int(rng.integers(xs.size))
        w, h = (RECT_LONG * k, RECT_SHORT * k) if rng.random() < 0.5 else (RECT_SHORT * k,
                                                                          RECT_LONG * k)
        cx = float(np.clip(xs[i], w / 2, size - 1 - w / 2))
        cy = float(np.clip(ys[i], h / 2, size - 1 - h / 2))
        out.append(np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2],
                             [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]]))
    return out
