"""The range of the calibration photos' quality, and one photo's quality against it.

Why ranges of real photos rather than fixed limits: a backbone's calibration (its threshold,
confidence, "not sure" rule and likelihood ratios) is a statement about photos like LFW's. A
component beyond what 99 % of those photos show (``LOW``/``HIGH`` percentiles, per backbone
since the crops differ) puts the photo outside that statement, and the verdict says so in
plain words; any hidden eye, nose or mouth does too. The unified score is the photo's rank
among the calibration photos (``quality.unified``); below the same tail it fails. How far out
"beyond" starts (``level``: the 1, 0.5, 0.2 or 0.1 % tails) is chosen by ``benchmark quality``
on folds 1-5: the widest range whose "not sure" keeps the errors on degraded pairs at the
rule's target, so clean photos are not flagged for nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from facexplain.quality.measures import COMPONENTS, UNITS
from facexplain.quality.unified import rank_score

LEVELS = (1.0, 0.5, 0.2, 0.1)  # tail percentiles tried; ``benchmark quality`` picks on folds 1-5
# Which side of each component fails: "abs" (its size above the high end), "low", "both".
SIDES = {"yaw": "abs", "pitch": "abs", "roll": "abs", "sharpness": "low", "exposure": "both",
         "contrast": "low", "clipped": "high", "eye_distance": "low", "landmark_error": "high",
         "occluded": "fixed"}
POSE = ("yaw", "pitch")  # read off the 68 points: not judged when those are unreliable


@dataclass(frozen=True)
class QualityProfile:
    """Bounds of each component on the calibration photos, and the unified score's reference:
    ``kind`` (stability or ui_distance), its 101 percentiles, and the unrecognisable-face
    centre where the kind needs one."""

    population: str
    n_photos: int
    bounds: dict[str, list[float]]  # component -> [low, high] (abs-sided: [0, high])
    kind: str
    quantiles: list[float]
    centre: list[float] | None = None
    level: float = 1.0  # tail percentile of the bounds (1.0: the middle 98% of photos)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QualityProfile:
        known = {"population", "n_photos", "bounds", "kind", "quantiles", "centre", "level"}
        return cls(**{k: v for k, v in d.items() if k in known})


def fit_profile(values: list[dict[str, float]], raw_unified: np.ndarray, kind: str,
                population: str, centre: np.ndarray | None = None, level: float = 1.0
                ) -> QualityProfile:
    """Percentile bounds of every component and of the unified raw score."""
    bounds: dict[str, list[float]] = {}
    for name in COMPONENTS:
        col = np.array([v[name] for v in values], dtype=np.float64)
        if SIDES[name] == "abs":
            col = np.abs(col)
        low, high = np.percentile(col, level), np.percentile(col, 100 - level)
        bounds[name] = [round(float(low), 5), round(float(high), 5)]
    quantiles = [round(float(q), 6) for q in np.percentile(raw_unified, np.arange(101))]
    return QualityProfile(population, len(values), bounds, kind, quantiles,
                          None if centre is None else [round(float(c), 6) for c in centre],
                          level)


def _reason(name: str, value: float, low: float, high: float, population: str,
            share: str) -> str:
    unit = UNITS[name]
    shown = f"{value:.0f}" if abs(value) >= 10 else f"{value:.3g}"
    label = {"eye_distance": "face", "clipped": "clipped pixels"}.get(name, name)
    if name == "eye_distance":
        return (f"face {shown} px between the eyes ({share} of the {population} calibration photos "
                f"have at least {low:.0f} px)")
    if name == "clipped":
        return (f"{100 * value:.1f}% of the face's pixels clipped black or white ({share} of the "
                f"{population} calibration photos: at most {100 * high:.1f}%)")
    if SIDES[name] == "abs":
        return f"{label} {shown} {unit} ({share} of the {population} calibration photos: within " \
               f"±{high:.0f})"
    side = "at least" if value < low else "at most"
    limit = low if value < low else high
    return (f"{label} {shown}{' ' + unit if unit else ''} ({share} of the {population} calibration "
            f"photos: {side} {limit:.3g})")


@dataclass(frozen=True)
class PhotoQuality:
    """One photo's fitness for comparison: unified score (0-1, higher = better), its
    components, those outside the calibration photos' range, and why in plain words."""

    score: float | None
    components: dict[str, float | None]
    failing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"score": self.score, "components": dict(self.components),
                "failing": list(self.failing), "reasons": list(self.reasons),
                "hidden": list(self.hidden)}


def judge(values: dict[str, float | None], hidden: tuple[str, ...], raw_unified: float | None,
          profile: QualityProfile) -> PhotoQuality:
    """The photo's components against the profile (each failing one with its reason)."""
    failing: list[str] = []
    reasons: list[str] = []
    share = f"{100 - profile.level:g}%"
    error = values["landmark_error"]
    unreliable = error is not None and error > profile.bounds["landmark_error"][1]
    if unreliable:
        values = {**values, **{name: None for name in POSE}}
    for name in COMPONENTS:
        value = values[name]
        if value is None:
            continue
        low, high = profile.bounds[name]
        side = SIDES[name]
        if side == "fixed":
            bad = value > 0
        elif side == "abs":
            bad = abs(value) > high
        elif side == "low":
            bad = value < low
        elif side == "high":
            bad = value > high
        else:
            bad = not low <= value <= high
        if name == "eye_distance" and value <= 0:
            bad = False  # no detection: the scope note says so
        if bad:
            failing.append(name)
            reasons.append(f"{', '.join(hidden)} hidden" if name == "occluded" else (
                f"facial landmarks unreliable (the 68-point fit is {value:.2f} eye distances "
                f"off the detector's points; {share} of the {profile.population} calibration "
                f"photos: at most {high:.2f}), so pose is not judged") if name == "landmark_error"
                else _reason(name, value, low, high, profile.population, share))
    score = None if raw_unified is None else round(rank_score(raw_unified, profile.quantiles), 4)
    if score is not None and score < profile.level / 100:
        failing.append("unified")
        reasons.append(f"model-based quality below {share} of the "
                       f"{profile.population} calibration photos ({profile.kind})")
    return PhotoQuality(score, values, tuple(failing), tuple(reasons), hidden)
