"""Face detection (MTCNN) and five-point alignment to a backbone's template.

``align_image`` is the one call the rest of the library needs: detect, choose a face, warp.
"""

from __future__ import annotations

import numpy as np

from facexplain.align.detect import (
    MTCNN,
    MTCNNConfig,
    choose_face,
    fallback_detection,
    nms,
)
from facexplain.align.templates import TEMPLATES, Template
from facexplain.align.warp import (
    estimate_similarity,
    transform_points,
    warp_affine,
    warp_face,
    warp_face_array,
)
from facexplain.errors import NoFaceFound
from facexplain.types import AlignedFace

__all__ = [
    "MTCNN",
    "MTCNNConfig",
    "TEMPLATES",
    "Template",
    "align_image",
    "choose_face",
    "estimate_similarity",
    "fallback_detection",
    "nms",
    "transform_points",
    "warp_affine",
    "warp_face",
    "warp_face_array",
]


def align_image(
    image: np.ndarray,
    detector: MTCNN,
    template: Template,
    policy: str = "largest",
    source: str = "",
    allow_fallback: bool = False,
) -> AlignedFace:
    """Detect faces in an RGB uint8 image, choose one by ``policy`` and warp it to ``template``.

    Raises ``NoFaceFound`` (naming ``source``) when there is no face, unless ``allow_fallback``
    (benchmarks on roughly centred LFW images), which aligns the mean LFW face layout instead and
    says so in ``warnings``.
    """
    detections = detector.detect(image)
    warnings: list[str] = []
    if detections:
        chosen = choose_face(detections, image.shape, policy)
        if len(detections) > 1:
            which = "the largest" if policy == "largest" else "the one nearest the centre"
            warnings.append(f"{len(detections)} faces found in {source or 'the image'}; "
                            f"using {which}")
    elif allow_fallback:
        chosen = fallback_detection(image.shape)
        warnings.append(f"no face found in {source or 'the image'}; "
                        "using the centred mean-face fallback")
    else:
        where = source or "the image"
        raise NoFaceFound(f"no face found in {where}; try a photo with a clearer, larger face")
    return AlignedFace(
        array=warp_face_array(image, chosen.landmarks, template),
        source=source,
        detection=chosen,
        n_faces=len(detections),
        warnings=tuple(warnings),
    )
