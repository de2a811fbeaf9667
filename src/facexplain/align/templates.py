"""Five-point alignment templates (left eye, right eye, nose, left mouth, right mouth), in pixels.

A template is the landmark layout a backbone was trained on; ``align.warp`` maps detected
landmarks onto it with a similarity transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Template:
    name: str
    size: int
    points: tuple[tuple[float, float], ...]

    def as_array(self) -> np.ndarray:
        return np.asarray(self.points, dtype=np.float64)


# InsightFace/ArcFace 112x112 template (also used by SFace and the human-models graphs).
ARCFACE_112 = Template(
    "arcface-112",
    112,
    ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655),
     (70.7299, 92.2041)),
)

# The same layout scaled to 224x224 (faceres takes 224 inputs).
ARCFACE_224 = Template("arcface-224", 224, tuple((2 * x, 2 * y) for x, y in ARCFACE_112.points))

# Where dlib's get_face_chip(size=150, padding=0.25) puts MTCNN's five points (DESIGN.md).
DLIB_150 = Template(
    "dlib-150",
    150,
    ((44.12, 35.76), (101.98, 35.90), (72.82, 71.71), (47.95, 102.10), (98.37, 103.12)),
)

TEMPLATES: dict[str, Template] = {t.name: t for t in (ARCFACE_112, ARCFACE_224, DLIB_150)}
