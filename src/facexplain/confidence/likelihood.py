"""Strength of evidence: a likelihood ratio from a similarity, prior-free, with its bounds.

Why an LR and not P(same): P(same) fitted on LFW's pairs hides LFW's even prior; at a border
gate nearly every claimant is genuine, in a watch-list search nearly none is. Forensic practice
(ENFSI guideline for evaluative reporting, ISO/IEC 21043) reports LR = p(score | same person) /
p(score | different people) and leaves the prior to the person who decides.

The calibrators are ``lir``'s (Netherlands Forensic Institute): logistic, KDE and isotonic (PAV).
A fit is stored as a table of log10 LR on a grid of similarities (one form for every kind,
readable without lir or sklearn at verify time) and bounded by the empirical lower and upper
bounds (ELUB, Vergeer et al. 2016) of the pairs it was fitted on: beyond what the data can
support, the LR is not extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from facexplain.types import Verdict

LR_KINDS = ("logistic", "kde", "isotonic")
GRID_POINTS = 801

# ENFSI guideline for evaluative reporting (2015), verbal equivalents of an LR's size.
VERBAL_SCALE = (
    (1.0, "no support for either proposition"),
    (10.0, "weak support"),
    (100.0, "moderate support"),
    (1_000.0, "moderately strong support"),
    (10_000.0, "strong support"),
    (1_000_000.0, "very strong support"),
    (math.inf, "extremely strong support"),
)


@dataclass(frozen=True)
class LrFit:
    """A fitted score-to-LR map: log10 LR on ``grid`` similarities, bounded to [lower, upper].

    ``population`` names the pairs it was fitted on; ``n_same``/``n_different`` how many.
    """

    kind: str
    population: str
    grid: tuple[float, ...]
    log10_lr: tuple[float, ...]
    lower: float
    upper: float
    n_same: int
    n_different: int

    def __call__(self, similarity: np.ndarray | float) -> np.ndarray:
        """Bounded log10 LR of each similarity (interpolated on the grid, flat outside it)."""
        raw = np.interp(np.asarray(similarity, np.float64), self.grid, self.log10_lr)
        return np.clip(raw, self.lower, self.upper)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["grid"] = [round(g, 6) for g in self.grid]
        out["log10_lr"] = [round(v, 5) for v in self.log10_lr]
        return out

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> LrFit:
        return cls(row["kind"], row["population"], tuple(row["grid"]), tuple(row["log10_lr"]),
                   float(row["lower"]), float(row["upper"]), int(row["n_same"]),
                   int(row["n_different"]))


def _calibrator(kind: str) -> Any:
    from lir.algorithms.isotonic_regression import IsotonicCalibrator
    from lir.algorithms.kde import KDECalibrator
    from lir.algorithms.logistic_regression import LogitCalibrator

    if kind == "logistic":
        return LogitCalibrator()
    if kind == "kde":
        return KDECalibrator(bandwidth="silverman")
    if kind == "isotonic":
        return IsotonicCalibrator(add_misleading=1)  # one misleading pair each side: no ±inf
    raise ValueError(f"unknown LR calibrator '{kind}'; valid: {', '.join(LR_KINDS)}")


def fit_lr(kind: str, scores: np.ndarray, same: np.ndarray, population: str) -> LrFit:
    """Fit ``kind`` on (similarity, same-person) pairs and bound it by ELUB."""
    from lir.algorithms.bayeserror import elub

    x = np.asarray(scores, np.float64)
    y = np.asarray(same, bool).astype(int)
    if y.min() == y.max():
        raise ValueError("an LR fit needs both same-person and different-person pairs")
    model = _calibrator(kind).fit(x, y)
    lo, hi = max(-1.0, float(x.min()) - 0.05), min(1.0, float(x.max()) + 0.05)
    grid = np.linspace(lo, hi, GRID_POINTS)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        table = np.asarray(model.transform(grid), np.float64).reshape(-1)
        fitted = np.asarray(model.transform(x), np.float64).reshape(-1)
    table = np.nan_to_num(table, nan=0.0, posinf=9.0, neginf=-9.0)
    lower, upper = elub(np.nan_to_num(fitted, nan=0.0, posinf=9.0, neginf=-9.0), y)
    return LrFit(kind, population, tuple(float(g) for g in grid),
                 tuple(float(v) for v in table), float(lower), float(upper),
                 int(y.sum()), int((1 - y).sum()))


def cllr_parts(log10_lr: np.ndarray, same: np.ndarray) -> tuple[float, float, float]:
    """Cllr, Cllr_min (after PAV: discrimination) and Cllr_cal = Cllr - Cllr_min (calibration
    loss), in bits; computed by ``lir``."""
    from lir.data.models import LLRData
    from lir.metrics import cllr, cllr_min

    data = LLRData(features=np.asarray(log10_lr, np.float64), labels=np.asarray(same, int))
    total, minimum = cllr(data), cllr_min(data)
    return float(total), float(minimum), float(total - minimum)


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> float:
    """The error rate where false matches equal false non-matches (ROC crossing)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(same, int), np.asarray(scores, np.float64))
    fnr = 1.0 - tpr
    k = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[k] + fnr[k]) / 2)


def verbal(log10_lr: float) -> str:
    """The ENFSI verbal equivalent, naming the proposition the evidence supports."""
    lr = 10.0 ** abs(log10_lr)
    words = next(w for bound, w in VERBAL_SCALE if lr <= bound)
    if lr <= 1.0 + 1e-9:
        return words
    side = "same person" if log10_lr > 0 else "different people"
    return f"{words} for '{side}'"


def posterior_same(log10_lr: float, prior_odds: float) -> float:
    """P(same | evidence) for stated prior odds of same : different (Bayes in odds form)."""
    log_odds = log10_lr + math.log10(prior_odds)
    return 1.0 / (1.0 + 10.0 ** (-max(-300.0, min(300.0, log_odds))))


def lr_text(log10_lr: float) -> str:
    """'log10 LR +3.20 (LR about 1,600)': the number and its size in plain digits."""
    lr = 10.0 ** log10_lr
    size = f"{lr:,.0f}" if lr >= 10 else (f"1/{1 / lr:,.0f}" if lr <= 0.1 else f"{lr:.2f}")
    return f"log10 LR {log10_lr:+.2f} (LR about {size})"


PROVISIONAL_LR = "lfw-provisional"  # a user model's fit at registration (LFW folds 1-2)
POPULATION_WORDS = {"lfw": "LFW folds (6,000 pairs)",
                    "lookalike": "look-alike pairs (LFW's genuine pairs, mined impostors)",
                    PROVISIONAL_LR: "LFW folds 1-2 (1,200 pairs; provisional, fitted when the "
                    "model was registered)",
                    "degraded": "LFW pairs with one photo degraded (blur, down-scaling, "
                    "darkness, JPEG, eye band)"}


def odds_text(odds: float) -> str:
    """Prior odds as people say them: '1 : 1,000', '1 : 1', '20 : 1'."""
    return f"1 : {1 / odds:,.4g}" if odds < 1 else f"{odds:,.4g} : 1"


def evidence_lines(verdict: Verdict) -> list[str]:
    """The strength of evidence in words, for the CLI and the report (empty without an LR)."""
    if verdict.log10_lr is None:
        return []
    where = POPULATION_WORDS.get(verdict.lr_population, verdict.lr_population)
    lines = [f"strength of evidence: {lr_text(verdict.log10_lr)}, {verdict.verbal} "
             f"(LR fitted on {where})"]
    if verdict.p_same is not None and verdict.prior_odds is not None:
        p = 100 * verdict.p_same
        pct = "> 99.9%" if p > 99.9 else ("< 0.1%" if p < 0.1 else f"{p:.1f}%")
        lines.append(f"with your prior odds {odds_text(verdict.prior_odds)} (same : "
                     f"different): P(same person) {pct}")
    return lines
