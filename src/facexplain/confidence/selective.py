"""A selective verdict: answer "same" or "different" only when the calibrated confidence is high
enough that the error rate among *answered* pairs stays at or below a chosen target; otherwise
say "not sure".

The rule is split-conformal in spirit: on calibration pairs (never the pairs it is judged on),
for each verdict side ("same", "different": their errors differ, e.g. look-alike impostors make
confident "same" errors) and each threshold λ of a fixed grid, k(λ) of the n(λ) verdicts of
that side with confidence >= λ are wrong; a new pair of that side, answered at λ, is wrong with
probability at most (k + 1) / (n + 1) (one of n + 1 exchangeable answered pairs). Each side
takes the lowest λ whose bound is at most the target, so the error among answered pairs is
bounded on each side and so on both together. The guarantee is on average over calibration
sets (a marginal one): a held-out estimate scatters around it. It holds for the population
the rule was calibrated on, not for photos unlike it; the benchmark reports the held-out error
and coverage (share answered) per target and population.
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
    """Answer "same" when its confidence is at least ``min_same``, "different" when its
    confidence is at least ``min_different``; otherwise "not sure"."""

    target: float
    min_same: float
    min_different: float
    coverage: float  # share of the calibration pairs answered
    calibration_error: float  # error among them
    n_calibration: int
    population: str

    def answers(self, confidence: float, says_same: bool) -> bool:
        return confidence >= (self.min_same if says_same else self.min_different)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


NEVER = 1.0 + 1e-9  # a threshold no confidence reaches: that side is never answered


def _threshold(conf: np.ndarray, wrong: np.ndarray, target: float) -> float:
    """The lowest grid threshold whose bound (k + 1) / (n + 1) is at most ``target`` for the
    verdicts of one side (NEVER when none is)."""
    order = np.argsort(-conf)
    c, w = conf[order], np.concatenate([[0], np.cumsum(wrong[order])])
    n = np.searchsorted(-c, -GRID, side="right")  # confidence >= each threshold
    ok = (n > 0) & ((w[n] + 1) / (n + 1) <= target)
    return float(GRID[np.argmax(ok)]) if ok.any() else NEVER


def fit_selective(confidence: np.ndarray, correct: np.ndarray, says_same: np.ndarray,
                  target: float, population: str = "") -> SelectiveRule:
    """The rule for ``target`` from calibration pairs: each verdict's confidence, whether it
    was right, and whether it said "same". Each side gets the lowest threshold whose bound is
    at most the target, so the error among answered pairs is bounded on each side, and so on
    both together."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    same = np.asarray(says_same, dtype=bool)
    if conf.ndim != 1 or conf.shape != ok.shape or conf.shape != same.shape or conf.size == 0:
        raise InvalidArgument("selective calibration needs 1-d confidences and outcomes")
    if not 0 < target < 1:
        raise InvalidArgument(f"the target error rate must lie in (0, 1), got {target}")
    t_same = _threshold(conf[same], ~ok[same], target)
    t_diff = _threshold(conf[~same], ~ok[~same], target)
    answered = conf >= np.where(same, t_same, t_diff)
    n = int(answered.sum())
    error = int((answered & ~ok).sum()) / n if n else 0.0
    return SelectiveRule(target, t_same, t_diff, n / conf.size, error, int(conf.size),
                         population)


def apply_rule(rule: SelectiveRule, confidence: np.ndarray, correct: np.ndarray,
               says_same: np.ndarray) -> tuple[int, int]:
    """(answered, wrong among answered) of a rule on held-out pairs."""
    conf = np.asarray(confidence, dtype=np.float64)
    same = np.asarray(says_same, dtype=bool)
    answered = conf >= np.where(same, rule.min_same, rule.min_different)
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
