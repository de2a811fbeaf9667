"""How good a calibration is on pairs it was not fitted on: expected calibration error (ECE),
Brier score, log-loss, the reliability diagram's bins, and bootstrap intervals.

ECE here is the verdict-confidence form: pairs are binned by the confidence of the verdict
(max(p, 1 - p)) and the gap between mean confidence and accuracy is averaged, weighted by bin
size; 15 equal-width bins on [0.5, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15


def _arrays(p_same: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.clip(np.asarray(p_same, dtype=np.float64), 1e-12, 1 - 1e-12), np.asarray(
        same, dtype=bool)


def verdict_confidence(p_same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence of the verdict, verdict 'same') for each P(same)."""
    p = np.asarray(p_same, dtype=np.float64)
    return np.maximum(p, 1 - p), p >= 0.5


def ece(p_same: np.ndarray, same: np.ndarray, bins: int = BINS) -> float:
    p, y = _arrays(p_same, same)
    conf, says_same = verdict_confidence(p)
    correct = says_same == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def brier(p_same: np.ndarray, same: np.ndarray) -> float:
    p, y = _arrays(p_same, same)
    return float(np.mean((p - y) ** 2))


def log_loss(p_same: np.ndarray, same: np.ndarray) -> float:
    p, y = _arrays(p_same, same)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


@dataclass(frozen=True)
class ReliabilityBins:
    """Per confidence bin: mean confidence, accuracy and count (the diagram's points)."""

    confidence: list[float]
    accuracy: list[float]
    count: list[int]

    def to_json(self) -> dict[str, list[float] | list[int]]:
        return {"confidence": self.confidence, "accuracy": self.accuracy, "count": self.count}


def reliability_bins(p_same: np.ndarray, same: np.ndarray, bins: int = BINS) -> ReliabilityBins:
    p, y = _arrays(p_same, same)
    conf, says_same = verdict_confidence(p)
    correct = says_same == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    c, a, n = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            c.append(round(float(conf[m].mean()), 6))
            a.append(round(float(correct[m].mean()), 6))
            n.append(int(m.sum()))
    return ReliabilityBins(c, a, n)


def bootstrap_ci(statistic: str, p_same: np.ndarray, same: np.ndarray, n_boot: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of ``statistic`` ('ece', 'brier', 'log_loss') over pairs."""
    fn = {"ece": ece, "brier": brier, "log_loss": log_loss}[statistic]
    p, y = np.asarray(p_same), np.asarray(same)
    rng = np.random.default_rng(seed)
    stats = [fn(p[idx], y[idx]) for idx in rng.integers(0, len(p), size=(n_boot, len(p)))]
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))
