"""Calibrators: maps from a cosine similarity to P(same person), fitted on labelled pairs.

Why three: a logistic (Platt) fit is smooth but assumes a sigmoid shape; isotonic regression
assumes only monotonicity (and overfits small sets); beta calibration (Kull et al., 2017) fits a
family that contains the sigmoid and suits scores on a bounded range. The benchmark fits each on
training folds and keeps the one with the lowest held-out log-loss (``benchmarks.calibration``).
A fitted calibrator is a plain dict of parameters, so records can store and rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from facexplain.errors import InvalidArgument

EPS = 1e-6
KINDS = ("logistic", "isotonic", "beta")


def _logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, max_iter=1000)
    model.fit(x, y.astype(int))
    return model.coef_[0].astype(float), float(model.intercept_[0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def _beta_features(scores: np.ndarray) -> np.ndarray:
    """Cosine in [-1, 1] -> x in (0, 1) -> (ln x, -ln(1 - x)), the beta-calibration features."""
    x = np.clip((np.asarray(scores, dtype=np.float64) + 1.0) / 2.0, EPS, 1.0 - EPS)
    return np.stack([np.log(x), -np.log1p(-x)], axis=1)


def fit(kind: str, scores: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    """Parameters of calibrator ``kind`` fitted on (scores, same)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if s.ndim != 1 or s.shape != y.shape or s.size < 2 or y.all() or not y.any():
        raise InvalidArgument("calibration needs 1-d scores with both same and different pairs")
    if kind == "logistic":
        coef, intercept = _logistic(s.reshape(-1, 1), y)
        return {"kind": kind, "slope": float(coef[0]), "intercept": intercept}
    if kind == "beta":
        coef, intercept = _logistic(_beta_features(s), y)
        return {"kind": kind, "a": float(coef[0]), "b": float(coef[1]), "c": intercept}
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=EPS, y_max=1.0 - EPS, out_of_bounds="clip")
        iso.fit(s, y.astype(float))
        return {"kind": kind, "x": [float(v) for v in iso.X_thresholds_],
                "y": [float(v) for v in iso.y_thresholds_]}
    raise InvalidArgument(f"unknown calibrator '{kind}'; valid: {', '.join(KINDS)}")


def predictor(params: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """The function scores -> P(same) of fitted ``params``."""
    kind = params.get("kind")
    if kind == "logistic":
        slope, intercept = float(params["slope"]), float(params["intercept"])
        return lambda s: _sigmoid(slope * np.asarray(s, dtype=np.float64) + intercept)
    if kind == "beta":
        a, b, c = float(params["a"]), float(params["b"]), float(params["c"])
        return lambda s: _sigmoid(_beta_features(np.atleast_1d(s)) @ np.array([a, b]) + c)
    if kind == "isotonic":
        xs, ys = np.asarray(params["x"]), np.asarray(params["y"])
        return lambda s: np.clip(np.interp(np.asarray(s, dtype=np.float64), xs, ys),
                                 EPS, 1.0 - EPS)
    raise InvalidArgument(f"unknown calibrator '{kind}'; valid: {', '.join(KINDS)}")


def probability_same(params: dict[str, Any], score: float) -> float:
    return float(predictor(params)(np.array([score]))[0])
