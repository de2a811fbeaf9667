"""The scope of a calibration: what its photos looked like, and whether a new photo does.

Why: a confidence fitted on LFW is a statement about LFW-like photos. A grey-level studio photo,
a tiny face, a doubtful detection or an embedding of unusual length is outside what the fit saw,
and the verdict should say so instead of printing "> 99.9%" as if it were not. The features are
cheap and come with every verdict: whether the aligned face is grey-level, the eye distance in
the source photo (pixels), the detector's score, and the embedding's length. A profile of the
calibration photos stores their low (and, for the embedding length, high) percentiles; a photo
beyond them gets a note naming the feature and the calibration population.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

GREY_SPREAD = 3.0  # mean per-pixel channel spread (0-255) below which a face is grey-level
LOW, HIGH = 1.0, 99.0  # percentiles of the calibration photos that bound "in scope"


@dataclass(frozen=True)
class FaceTraits:
    """What the scope check reads from one aligned face."""

    grey: bool
    eye_distance: float  # source-photo pixels between the detected eyes (0: no detection)
    detector_score: float  # 0 when the face was guessed (no detection)
    embedding_norm: float


def channel_spread(face: np.ndarray) -> float:
    """Mean over pixels of (max channel - min channel) of a (3, H, W) face in [0, 255]."""
    a = np.asarray(face, dtype=np.float32)
    return float((a.max(axis=0) - a.min(axis=0)).mean())


def face_traits(face: np.ndarray, landmarks: np.ndarray | None, score: float | None,
                embedding: np.ndarray) -> FaceTraits:
    eyes = 0.0
    if landmarks is not None:
        marks = np.asarray(landmarks, dtype=np.float64)
        eyes = float(np.linalg.norm(marks[1] - marks[0]))
    return FaceTraits(channel_spread(face) < GREY_SPREAD, eyes, float(score or 0.0),
                      float(np.linalg.norm(np.asarray(embedding, dtype=np.float64))))


@dataclass(frozen=True)
class ScopeProfile:
    """The calibration photos in a few numbers (``population`` names them)."""

    population: str
    n_faces: int
    grey_share: float
    eye_distance_low: float
    detector_low: float
    norm_low: float
    norm_high: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def profile(traits: list[FaceTraits], population: str) -> ScopeProfile:
    eyes = np.array([t.eye_distance for t in traits if t.eye_distance > 0])
    scores = np.array([t.detector_score for t in traits if t.detector_score > 0])
    norms = np.array([t.embedding_norm for t in traits])
    return ScopeProfile(
        population, len(traits), round(float(np.mean([t.grey for t in traits])), 5),
        round(float(np.percentile(eyes, LOW)), 3), round(float(np.percentile(scores, LOW)), 5),
        round(float(np.percentile(norms, LOW)), 5), round(float(np.percentile(norms, HIGH)), 5))


def out_of_scope(t: FaceTraits, p: ScopeProfile) -> list[str]:
    """Plain-language reasons a face is unlike the calibration photos (empty: in scope)."""
    notes = []
    if t.grey and p.grey_share < 0.05:
        notes.append(f"grey-level photo ({100 * p.grey_share:.1f}% of the {p.population} "
                     "calibration photos are)")
    if t.detector_score <= 0:
        notes.append("no face was detected; the crop is a guess")
    elif t.detector_score < p.detector_low:
        notes.append(f"doubtful detection (score {t.detector_score:.3f}; 99% of calibration "
                     f"faces score at least {p.detector_low:.3f})")
    if 0 < t.eye_distance < p.eye_distance_low:
        notes.append(f"small face ({t.eye_distance:.0f} px between the eyes; 99% of "
                     f"calibration faces have at least {p.eye_distance_low:.0f} px)")
    if not p.norm_low <= t.embedding_norm <= p.norm_high:
        notes.append(f"unusual embedding length {t.embedding_norm:.3g} (calibration faces: "
                     f"{p.norm_low:.3g}-{p.norm_high:.3g})")
    return notes
