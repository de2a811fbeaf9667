"""Measurable quality components of one photo, in the spirit of ISO/IEC 29794-5.

Why each, and how it is read:
- pose (``yaw``, ``pitch`` from the 68 landmarks of the aligned crop, ``roll`` from the
  detector's eye line in the source photo; degrees, approximate): a turned face hides half
  its features, and alignment cannot undo it. Yaw is the nose tip's offset from the middle of
  the jaw outline at eye height, as a share of half the face width, read as the sine of the
  angle; pitch is the nose tip's height between the eye line and the chin against
  ``PITCH_FRONTAL`` (its median on LFW), read the same way. Roll is undone by alignment but a
  strong roll often comes with the other two.
- ``sharpness``: the spread of the Laplacian inside the face over the spread of the grey
  levels (so darkening alone does not read as blur); blur and up-scaled small photos lose it.
- ``exposure`` (mean grey level in the face, 0-255), ``contrast`` (their spread) and
  ``clipped`` (share of face pixels at the ends of the range): dark, washed-out or burnt faces.
- ``eye_distance``: pixels between the detected eyes in the source photo (resolution).
- ``landmark_error``: how far the 68-point net's eyes, nose tip and mouth corners lie from
  the detector's five points in the crop, in eye distances. On a blurred or tiny face the net
  guesses, and the pose read from its points is noise: beyond the calibration photos' range the
  pose is not judged (None) and the photo fails on "landmarks" instead.
- ``occluded``: how many of eyes, nose, mouth are hidden (``datasets.component_assess``, when
  present).
Every value is a plain float so a profile of calibration photos can bound it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.draw import polygon2mask

from facexplain.align.templates import Template
from facexplain.align.warp import alignment_matrix
from facexplain.types import AlignedFace

PITCH_FRONTAL = 0.43  # (nose tip - eye line) / (chin - eye line) on frontal LFW faces
CLIP_LOW, CLIP_HIGH = 8.0, 247.0
OCCLUSION_PARTS = ("eyes", "nose", "mouth")
COMPONENTS = ("yaw", "pitch", "roll", "sharpness", "exposure", "contrast", "clipped",
              "eye_distance", "landmark_error", "occluded")
UNITS = {"yaw": "degrees", "pitch": "degrees", "roll": "degrees", "sharpness": "",
         "exposure": "grey level", "contrast": "grey levels", "clipped": "share",
         "eye_distance": "px", "landmark_error": "eye distances", "occluded": "parts"}


def _grey(face: np.ndarray) -> np.ndarray:
    a = np.asarray(face, dtype=np.float64)
    return 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]


def face_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Pixels inside the jaw outline closed over the brows: the skin and features measured."""
    marks = np.asarray(landmarks, dtype=np.float64)
    outline = np.vstack([marks[0:17], marks[26:16:-1]])
    mask = polygon2mask((size, size), outline[:, ::-1])
    return mask if mask.sum() >= 16 else np.ones((size, size), dtype=bool)


def pose(landmarks: np.ndarray, source_eyes: np.ndarray | None) -> dict[str, float]:
    """Approximate yaw, pitch (from the crop's 68 points) and roll (source photo), degrees."""
    m = np.asarray(landmarks, dtype=np.float64)
    nose = m[30]
    left, right = m[1], m[15]  # jaw outline at about eye height
    half = max(float(np.linalg.norm(right - left)) / 2, 1e-6)
    offset = float(nose[0] - (left[0] + right[0]) / 2) / half
    eye_y = float((m[36:42, 1].mean() + m[42:48, 1].mean()) / 2)
    height = max(float(m[8, 1]) - eye_y, 1e-6)
    tilt = (float(nose[1]) - eye_y) / height - PITCH_FRONTAL
    roll = 0.0
    if source_eyes is not None:
        d = np.asarray(source_eyes[1], dtype=np.float64) - np.asarray(source_eyes[0])
        roll = math.degrees(math.atan2(float(d[1]), float(d[0])))
    return {"yaw": math.degrees(math.asin(max(-1.0, min(1.0, offset)))),
            "pitch": math.degrees(math.asin(max(-1.0, min(1.0, 2 * tilt)))),
            "roll": roll}


def appearance(face: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Sharpness, exposure, contrast and clipping inside the face."""
    grey = _grey(face)
    mask = face_mask(landmarks, grey.shape[0])
    inside = grey[mask]
    spread = float(inside.std())
    lap = ndimage.laplace(ndimage.gaussian_filter(grey, 0.5))
    inner = ndimage.binary_erosion(mask, iterations=2)
    lap_in = lap[inner] if inner.sum() >= 16 else lap[mask]
    return {"sharpness": float(lap_in.std()) / max(spread, 1.0),
            "exposure": float(inside.mean()), "contrast": spread,
            "clipped": float(((inside <= CLIP_LOW) | (inside >= CLIP_HIGH)).mean())}


def occluded_parts(face: np.ndarray, landmarks: np.ndarray) -> tuple[str, ...]:
    """Which of eyes, nose, mouth the component check calls hidden (none without it)."""
    try:
        from facexplain.datasets.component_assess import assess_components
    except ImportError:  # the component check is not installed in this build
        return ()
    crop = np.clip(np.asarray(face), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    hidden = assess_components(crop, np.asarray(landmarks, dtype=np.float64))
    return tuple(p for p in OCCLUSION_PARTS if p in hidden)


def landmark_error(landmarks: np.ndarray, detected: np.ndarray, template: Template) -> float:
    """Mean distance, in eye distances, between the 68-point net's five key points and the
    detector's five points carried into the crop by the alignment."""
    m = np.asarray(landmarks, dtype=np.float64)
    ours = np.stack([m[36:42].mean(axis=0), m[42:48].mean(axis=0), m[30], m[48], m[54]])
    matrix = alignment_matrix(detected, template)
    theirs = np.asarray(detected, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]
    unit = max(float(np.linalg.norm(theirs[1] - theirs[0])), 1e-6)
    return float(np.linalg.norm(ours - theirs, axis=1).mean()) / unit


def measure(face: AlignedFace, landmarks: np.ndarray, template: Template
            ) -> tuple[dict[str, float], tuple[str, ...]]:
    """Every component of one aligned face (and the hidden parts, by name)."""
    det = face.detection
    eyes = None if det is None else det.landmarks[:2]
    values = {**pose(landmarks, eyes), **appearance(face.array, landmarks)}
    values["eye_distance"] = 0.0 if eyes is None else float(np.linalg.norm(eyes[1] - eyes[0]))
    values["landmark_error"] = 0.0 if det is None else landmark_error(landmarks, det.landmarks,
                                                                       template)
    hidden = occluded_parts(face.array, landmarks)
    values["occluded"] = float(len(hidden))
    return {k: round(values[k], 5) for k in COMPONENTS}, hidden
