"""Is each facial component fit for comparison? Hidden, out of the crop, or unreliable landmarks.

Why structure and not colour: a dark band over the eyes is easy to see by colour, but a hand
over the mouth has the face's own skin colour. What both take away is the component's
*structure*: the pattern of an eye (iris, lids, the brow's shadow) or of a mouth (the lips, the
dark line between them). Each component gets a small model of that pattern, fitted on clean LFW
faces of calibration folds 1-5 (``fit_appearance``; ``bench/component_assess_fit.py`` writes the
shipped ``data/component_appearance.json``):

- the crop is warped (a similarity fit of all 68 landmarks) to a 64 px canonical face with the
  eye distance 22 px, and each component's pixels there (its mask on the mean shape) are read
  as luminance;
- **pattern**: the pixels minus their mean, divided by their own standard deviation (so the
  light, the skin tone and the contrast drop out), and the squared error of its reconstruction
  from the first ``N_BASIS`` principal directions of the calibration faces' patterns: a pattern
  no face has (a flat bar is pure noise after the division) leaves a large error;
- **detail**: the log of the median and of the lower quartile of the component's gradient
  magnitude over the whole face's: a flat cover has almost none (quantiles, not the mean: the
  cover's own edges are strong, and a misplaced landmark puts some of them in the component).

A component is hidden when its pattern error is above ``MARGIN`` (1.25) times the
``PATTERN_QUANTILE`` (0.995) of the calibration faces' errors, or either detail is below the
calibration faces' (1 − ``QUANTILE``) = 0.001 quantile. Each component's pattern is read in its
own frame (a similarity fit of its own landmarks), so a misplaced mouth does not move the eyes.
Why not a PCA model of the pixel values themselves: measured, it never caught the dark band
(0 of 260 faces), since a linear model of pixel values contains every darker, lower-contrast
copy of a face; nor the hand.

"Landmarks unreliable": after the same similarity fit, the component's points sit farther from
the mean shape than on ``QUANTILE`` of calibration faces times ``MARGIN``; or, when the caller
knows where the alignment put the detector's five points (``expected``), the 68 points' eye
centres, nose tip or mouth corners sit farther from them than on ``QUANTILE`` of calibration
faces times ``MARGIN`` (a band over the eyes can make the landmark net put the eyes on the
brows, above it, where the band is not). "Out of the crop":
more than ``MAX_OUTSIDE`` of the component lies outside the crop. Measured rates (false alarms
on clean held-out faces, detection of drawn occluders): docs/BENCHMARKS.md, "Component
findings (issue 37): the method".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from skimage.transform import SimilarityTransform, warp

from facexplain.datasets.face_components import component_masks, component_masks_with_outside
from facexplain.errors import InvalidArgument
from facexplain.types import COMPONENTS

CANVAS, EYE_PX, EYE_MID = 64, 22.0, (32.0, 26.0)
N_BASIS = 12
DETAIL_SIGMA = 0.0
QUANTILE = 0.999
PATTERN_QUANTILE = 0.995  # the pattern error's tail is long (profiles, glasses, beards)
MARGIN = 1.25
MAX_OUTSIDE = 0.25
MODEL_FILE = "component_appearance.json"
HIDDEN = "hidden: something covers it (its pattern is unlike any face's)"
OUTSIDE = "out of the crop"
UNRELIABLE = "landmarks unreliable"
COMPONENT_POINTS = {"forehead": (*range(17, 27), 36, 45), "eyebrows": range(17, 27),
                    "eyes": range(36, 48), "nose": range(27, 36),
                    "cheeks": (*range(1, 6), *range(11, 16), 31, 35, 48, 54),
                    "mouth": range(48, 68), "jaw": range(2, 15)}


@dataclass(frozen=True)
class ComponentModel:
    """One component's pattern model: canvas pixels, mean pattern, principal directions and
    the three thresholds."""

    pixels: np.ndarray  # (P,) flat indices into the canvas
    mean: np.ndarray  # (P,) mean normalised pattern
    basis: np.ndarray  # (N_BASIS, P) orthonormal rows
    pattern_threshold: float  # reconstruction error above which the component is hidden
    detail_threshold: tuple[float, float]  # log detail (median, quartile) below: hidden
    shape_threshold: float  # landmark distance (eye distances) above which unreliable


@dataclass(frozen=True)
class AppearanceModel:
    mean_shape: np.ndarray  # (68, 2) in canvas pixels
    components: dict[str, ComponentModel]
    # how far (eye distances) the 68 points' eyes, nose tip and mouth corners may sit from
    # where the alignment put the detector's five points
    anchor_thresholds: np.ndarray = field(default_factory=lambda: np.full(5, np.inf))


ANCHOR_COMPONENTS = (("eyes", "eyebrows"), ("eyes", "eyebrows"), ("nose",), ("mouth",),
                     ("mouth",))


def anchors(landmarks: np.ndarray) -> np.ndarray:
    """The detector's five points as the 68 landmarks place them: eye centres, nose tip,
    mouth corners."""
    m = np.asarray(landmarks, dtype=np.float64)
    return np.stack([m[36:42].mean(axis=0), m[42:48].mean(axis=0), m[30], m[48], m[54]])


def anchor_shift(landmarks: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """(5,) distances, in eye distances, of ``anchors`` from ``expected`` (5, 2)."""
    exp = np.asarray(expected, dtype=np.float64)
    unit = float(np.linalg.norm(exp[1] - exp[0]))
    return np.asarray(np.linalg.norm(anchors(landmarks) - exp, axis=1) / max(unit, 1e-6))


def normalised_shape(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) points moved so the eyes' midpoint is at ``EYE_MID``, level, ``EYE_PX`` apart."""
    m = np.asarray(landmarks, dtype=np.float64)
    left, right = m[36:42].mean(axis=0), m[42:48].mean(axis=0)
    across = right - left
    dist = float(np.linalg.norm(across))
    if dist <= 0:
        raise InvalidArgument("degenerate landmarks: the two eyes coincide")
    c, s = across / dist
    rot = np.array([[c, s], [-s, c]])
    return (m - (left + right) / 2) @ rot.T * (EYE_PX / dist) + np.array(EYE_MID)


def _fit_transform(marks: np.ndarray, mean_shape: np.ndarray) -> SimilarityTransform:
    tform = SimilarityTransform.from_estimate(np.asarray(mean_shape, np.float64),
                                              np.asarray(marks, np.float64))
    if not isinstance(tform, SimilarityTransform):
        raise InvalidArgument("cannot fit the landmarks to the mean face shape")
    return tform


def canonical(crop: np.ndarray, marks: np.ndarray, mean_shape: np.ndarray,
              points: Sequence[int] | None = None) -> np.ndarray:
    """(CANVAS, CANVAS) float luminance of the crop warped onto the mean shape (a similarity
    fit of ``points``, all 68 when None)."""
    img = np.asarray(crop, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InvalidArgument(f"expected an (H, W, 3) RGB crop, got {img.shape}")
    lum = img @ np.array([0.299, 0.587, 0.114])
    idx = list(points) if points is not None else list(range(68))
    tform = _fit_transform(np.asarray(marks, np.float64)[idx], mean_shape[idx])
    return np.asarray(warp(lum, tform, output_shape=(CANVAS, CANVAS), order=1, mode="edge",
                           preserve_range=True))


@lru_cache(maxsize=4)
def _face_pixels_cached(key: bytes) -> np.ndarray:
    shape = np.frombuffer(key, dtype=np.float64).reshape(68, 2)
    union = np.zeros((CANVAS, CANVAS), dtype=bool)
    for m in component_masks(shape, CANVAS).values():
        union |= m
    return np.flatnonzero(union)


def _face_pixels(mean_shape: np.ndarray) -> np.ndarray:
    return _face_pixels_cached(np.ascontiguousarray(mean_shape, np.float64).tobytes())


def _pattern(canvas: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    p = canvas.ravel()[pixels]
    return (p - p.mean()) / (p.std() + 1e-6)


def _gradient(canvas: np.ndarray) -> np.ndarray:
    """Gradient magnitude after a slight blur (``DETAIL_SIGMA`` px): pixel noise on a flat
    cover is not detail."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(canvas, DETAIL_SIGMA) if DETAIL_SIGMA > 0 else canvas
    gy, gx = np.gradient(smooth)
    return np.asarray(np.hypot(gx, gy).ravel())


def _detail(grad: np.ndarray, pixels: np.ndarray, face: np.ndarray, whole: np.ndarray
            ) -> tuple[float, float]:
    """log(median and lower quartile of the gradient magnitude ``grad`` on ``pixels`` over
    those of the whole face's, ``whole`` on ``face``)."""
    out = []
    for q in (0.5, 0.25):
        ratio = np.quantile(grad[pixels], q) / max(float(np.quantile(whole[face], q)), 1e-6)
        out.append(float(np.log(max(float(ratio), 1e-6))))
    return out[0], out[1]


def _error(model: ComponentModel, pattern: np.ndarray) -> float:
    d = pattern - model.mean
    z = model.basis @ d
    return float(d @ d - z @ z) / len(d)


def shape_distance(marks: np.ndarray, mean_shape: np.ndarray) -> dict[str, float]:
    """Per component: RMS distance (in eye distances) of its points from the mean shape's after
    a similarity fit of all 68 points."""
    tform = _fit_transform(marks, mean_shape)
    moved = tform.inverse(np.asarray(marks, np.float64))
    err = np.linalg.norm(moved - mean_shape, axis=1) / EYE_PX
    return {c: float(np.sqrt((err[list(COMPONENT_POINTS[c])] ** 2).mean())) for c in COMPONENTS}


def scores(crop: np.ndarray, landmarks: np.ndarray, model: AppearanceModel
           ) -> dict[str, tuple[float, tuple[float, float], float]]:
    """Per component: (pattern error, log details, landmark distance), unthresholded."""
    marks = np.asarray(landmarks, dtype=np.float64)
    face = _face_pixels(model.mean_shape)
    whole = _gradient(canonical(crop, marks, model.mean_shape))
    shape = shape_distance(marks, model.mean_shape)
    out = {}
    for c, m in model.components.items():
        canvas = canonical(crop, marks, model.mean_shape, COMPONENT_POINTS[c])
        out[c] = (_error(m, _pattern(canvas, m.pixels)),
                  _detail(_gradient(canvas), m.pixels, face, whole), shape[c])
    return out


def assess_components(crop: np.ndarray, landmarks: np.ndarray,
                      model: AppearanceModel | None = None,
                      expected: np.ndarray | None = None) -> dict[str, str]:
    """Components NOT fit for comparison, each with its reason in plain words ("out of the
    crop", "landmarks unreliable", "hidden: ..."); a component absent from the dict is
    assessable. ``crop``: (H, W, 3) uint8 RGB aligned face; ``landmarks``: (68, 2) in its
    pixels; ``model``: the shipped appearance model when None; ``expected``: where the
    alignment put the detector's five points (the template's (5, 2) points), when known: a
    landmark far from its anchor (the net put the eyes on the brows above a band) is
    "landmarks unreliable"."""
    img = np.asarray(crop)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1]:
        raise InvalidArgument(f"expected a square (H, W, 3) RGB crop, got {img.shape}")
    model = model if model is not None else load_appearance()
    _, outside = component_masks_with_outside(landmarks, img.shape[0])
    out = {c: OUTSIDE for c in COMPONENTS if outside[c] > MAX_OUTSIDE}
    if expected is not None:
        shift = anchor_shift(landmarks, expected)
        for i in np.flatnonzero(shift > model.anchor_thresholds):
            for c in ANCHOR_COMPONENTS[i]:
                out.setdefault(c, UNRELIABLE)
    for c, (error, detail, shape) in scores(img, landmarks, model).items():
        m = model.components[c]
        if c in out:
            continue
        if shape > m.shape_threshold:
            out[c] = UNRELIABLE
        elif error > m.pattern_threshold or any(
                d < t for d, t in zip(detail, m.detail_threshold, strict=True)):
            out[c] = HIDDEN
    return {c: out[c] for c in COMPONENTS if c in out}


def fit_appearance(crops: np.ndarray, marks: np.ndarray, expected: np.ndarray | None = None
                   ) -> AppearanceModel:
    """The model from clean aligned faces (N, S, S, 3) uint8 and their (N, 68, 2) landmarks
    (calibration folds only: the rates are measured on other faces); ``expected``: the
    alignment template's five points (5, 2) the crops were warped to."""
    mean_shape = np.mean([normalised_shape(m) for m in marks], axis=0)
    masks = component_masks(mean_shape, CANVAS)
    face = _face_pixels(mean_shape)
    wholes = [_gradient(canonical(c, m, mean_shape)) for c, m in zip(crops, marks, strict=True)]
    shapes = [shape_distance(m, mean_shape) for m in marks]
    comps = {}
    for c in COMPONENTS:
        pixels = np.flatnonzero(masks[c])
        canvases = [canonical(im, m, mean_shape, COMPONENT_POINTS[c])
                    for im, m in zip(crops, marks, strict=True)]
        x = np.stack([_pattern(cv, pixels) for cv in canvases])
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        proto = ComponentModel(pixels, mean, vt[:N_BASIS], 0.0, (0.0, 0.0), 0.0)
        errors = [_error(proto, row) for row in x]
        detail = np.array([_detail(_gradient(cv), pixels, face, w)
                           for cv, w in zip(canvases, wholes, strict=True)])
        low = np.quantile(detail, 1 - QUANTILE, axis=0)
        comps[c] = ComponentModel(
            pixels, mean, vt[:N_BASIS], float(np.quantile(errors, PATTERN_QUANTILE) * MARGIN),
            (float(low[0]), float(low[1])),
            float(np.quantile([s[c] for s in shapes], QUANTILE) * MARGIN))
    limits = np.full(5, np.inf)
    if expected is not None:
        shifts = np.stack([anchor_shift(m, expected) for m in marks])
        limits = np.quantile(shifts, QUANTILE, axis=0) * MARGIN
    return AppearanceModel(mean_shape, comps, limits)


def _floats(values: np.ndarray) -> list[float]:
    return [float(f"{v:.5g}") for v in np.asarray(values, dtype=np.float64).ravel()]


def save_appearance(model: AppearanceModel, path: Path) -> Path:
    """Write the model as JSON (five significant digits: about 300 kB), reviewable text like
    the other fitted records the package ships."""
    doc: dict[str, object] = {"mean_shape": _floats(model.mean_shape),
                              "mean_shape_dims": list(model.mean_shape.shape),
                              "anchor_thresholds": _floats(model.anchor_thresholds),
                              "components": {}}
    comps: dict[str, object] = {}
    for c, m in model.components.items():
        comps[c] = {"pixels": [int(v) for v in m.pixels], "mean": _floats(m.mean),
                    "basis": _floats(m.basis), "basis_dims": list(m.basis.shape),
                    "pattern_threshold": m.pattern_threshold,
                    "detail_threshold": list(m.detail_threshold),
                    "shape_threshold": m.shape_threshold}
    doc["components"] = comps
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def read_appearance(path: Path) -> AppearanceModel:
    doc = json.loads(path.read_text(encoding="utf-8"))
    comps = {}
    for c in COMPONENTS:
        row = doc["components"][c]
        d1, d2 = (float(v) for v in row["detail_threshold"])
        comps[c] = ComponentModel(
            np.asarray(row["pixels"], dtype=np.int64), np.asarray(row["mean"], np.float64),
            np.asarray(row["basis"], np.float64).reshape(row["basis_dims"]),
            float(row["pattern_threshold"]), (d1, d2), float(row["shape_threshold"]))
    return AppearanceModel(np.asarray(doc["mean_shape"], np.float64).reshape(
        doc["mean_shape_dims"]), comps, np.asarray(doc["anchor_thresholds"], np.float64))


def model_path() -> Path:
    return Path(__file__).with_name("data") / MODEL_FILE


@lru_cache(maxsize=1)
def load_appearance() -> AppearanceModel:
    """The shipped model (``bench/component_assess_fit.py`` writes it)."""
    path = model_path()
    if not path.is_file():
        raise InvalidArgument(f"the component appearance model is missing ({path}); run "
                              "`python bench/component_assess_fit.py`")
    return read_appearance(path)
