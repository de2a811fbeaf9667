"""A selective verdict: answer "same" or "different" only when the calibrated confidence is high
enough that the error rate among *answered* pairs stays at or below a chosen target; otherwise
say "not sure".

The rule is split-conformal in spirit: on calibration pairs (never the pairs it is judged on),
for each threshold λ of a fixed grid, k(λ) verdicts of the n(λ) pairs with confidence >= λ are
wrong; a new pair from the same population, answered at λ, is wrong with probability at most
(k + 1) / (n + 1) (it is one of n + 1 exchangeable answered pairs). The rule takes the lowest λ
whose bound is at most the target, which answers as many pairs as the bound allows. The bound
holds for the population the rule was calibrated on, not for photos unlike it; the benchmark
reports the held-out error and coverage (share answered) per target and population.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facexplain.errors import InvalidArgument

# Thresholds on the verdict's confidence, from answering everything (0.5) to 1 - 5e-7.
GRID = 1.0 - 0.5 * np.logspace(0.0, -6.0, 241)
TARGETS = (0.05, 0.02, 0.01, 0.005, 0.002, 0.001)


@dataclass(frozen=True)
class SelectiveRule:
    """Answer when the verdict's confidence is at least ``min_confidence``."""

    target: float
    min_confidence: float
    coverage: float  # share of the calibration pairs answered
    calibration_error: float  # error among them
    n_calibration: int
    population: str

    def answers(self, confidence: float) -> bool:
        return confidence >= self.min_confidence

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def fit_selective(confidence: np.ndarray, correct: np.ndarray, target: float,
                  population: str = "") -> SelectiveRule:
    """The rule for ``target`` from calibration pairs' verdict confidences and correctness."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if conf.ndim != 1 or conf.shape != ok.shape or conf.size == 0:
        raise InvalidArgument("selective calibration needs 1-d confidences and outcomes")
    if not 0 < target < 1:
        raise InvalidArgument(f"the target error rate must lie in (0, 1), got {target}")
    order = np.argsort(-conf)
    conf_sorted, wrong_sorted = conf[order], np.cumsum(~ok[order])
    for lam in GRID:
        n = int(np.searchsorted(-conf_sorted, -lam, side="right"))  # confidence >= lam
        k = int(wrong_sorted[n - 1]) if n else 0
        if n and (k + 1) / (n + 1) <= target:
            return SelectiveRule(target, float(lam), n / conf.size, k / n, int(conf.size),
                                 population)
    return SelectiveRule(target, 1.0 + 1e-9, 0.0, 0.0, int(conf.size), population)


def apply_rule(rule_threshold: float, confidence: np.ndarray, correct: np.ndarray
               ) -> tuple[int, int]:
    """(answered, wrong among answered) of a threshold on held-out pairs."""
    conf = np.asarray(confidence, dtype=np.float64)
    answered = conf >= rule_threshold
    return int(answered.sum()), int((answered & ~np.asarray(correct, dtype=bool)).sum())


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of an error rate k / n."""
    from scipy.stats import beta

    if n == 0:
        return 0.0, 1.0
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi
