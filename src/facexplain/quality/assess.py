"""One entry point from aligned faces to their quality, for verdicts and benchmarks alike."""

from __future__ import annotations

import numpy as np

from facexplain.align.landmarks68_runtime import locate_landmarks
from facexplain.align.templates import Template
from facexplain.quality.measures import measure
from facexplain.quality.profile import PhotoQuality, QualityProfile, judge
from facexplain.quality.unified import Embed, stability, ui_distance
from facexplain.types import AlignedFace


def raw_components(faces: list[AlignedFace], template: Template
                   ) -> tuple[list[dict[str, float]], list[tuple[str, ...]], np.ndarray]:
    """Components and hidden parts of each face, and its 68 crop landmarks (N, 68, 2)."""
    marks = locate_landmarks(np.stack([f.array for f in faces]))
    rows = [measure(f, m, template) for f, m in zip(faces, marks, strict=True)]
    return [r[0] for r in rows], [r[1] for r in rows], marks


def unified_raw(kind: str, faces: np.ndarray, embeddings: np.ndarray, embed: Embed | None,
                centre: np.ndarray | None) -> np.ndarray:
    """The raw model-based score of each face for ``kind``."""
    if kind == "norm":  # the embedding's length (higher: the model saw more of a face)
        return np.linalg.norm(np.asarray(embeddings, dtype=np.float64), axis=1)
    if kind == "ui_distance":
        if centre is None:
            raise ValueError("ui_distance needs the unrecognisable-face centre")
        return ui_distance(embeddings, centre)
    if embed is None:
        raise ValueError("stability needs the backbone's embedding function")
    return stability(embed, faces, embeddings)


def assess_faces(faces: list[AlignedFace], template: Template, embeddings: np.ndarray,
                 profile: QualityProfile, embed: Embed | None = None) -> list[PhotoQuality]:
    """Each face's quality against the calibration photos' profile."""
    values, hidden, _ = raw_components(faces, template)
    centre = None if profile.centre is None else np.asarray(profile.centre)
    raw = unified_raw(profile.kind, np.stack([f.array for f in faces]), embeddings, embed,
                      centre)
    return [judge(dict(v), h, float(r), profile)
            for v, h, r in zip(values, hidden, raw, strict=True)]
