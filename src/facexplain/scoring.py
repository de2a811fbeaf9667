"""Similarity, threshold calibration and the verdict's confidence.

The threshold of each backbone is calibrated on LFW by ``facexplain benchmark lfw
--write-calibration`` (mean of the ten fold thresholds, each chosen on the other nine folds)
and stored, with that command and its date, as a record (``records``: the packaged
``backbones/calibration.json``, overridden by the user's runs under the model home). A logistic
(Platt) fit of same/not-same on the LFW scores turns a similarity into a confidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facexplain.errors import InvalidArgument
from facexplain.records import RecordStore, packaged_dir, store_for
from facexplain.types import VerdictOptions

if TYPE_CHECKING:
    import torch

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """A backbone's decision rule on cosine similarity, with where it came from and its scope.

    ``threshold`` decides same / different; ``calibrator`` (parameters of a fitted map, see
    ``confidence.calibrators``; None: the Platt pair) turns a similarity into P(same);
    ``heldout`` is that map's quality on pairs it was not fitted on; ``selective`` holds the
    "not sure" rules by population and target error; ``scope`` the calibration photos'
    profile; ``weights`` the fingerprint (``explain.scorer.model_fingerprint``) of the weights
    measured: a model with other weights never uses this record. ``provisional``: no measured
    calibration (a threshold without a confidence).
    """

    backbone: str
    threshold: float
    platt_slope: float
    platt_intercept: float
    command: str
    date: str
    lfw_accuracy: float | None = None
    weights: str | None = None
    calibrator: dict[str, Any] | None = None
    population: str = "LFW View 2 (pairs.txt)"
    heldout: dict[str, Any] | None = None
    selective: dict[str, dict[str, dict[str, Any]]] | None = None
    scope: dict[str, Any] | None = None
    provisional: bool = False
    source_sha256: str | None = None  # a user model's file, for its forward-only runtime
    lr: dict[str, Any] | None = None  # population -> LR fit (confidence.likelihood.LrFit)
    quality: dict[str, Any] | None = None  # the calibration photos' profile (quality.profile)

    @classmethod
    def uncalibrated(cls, backbone: str, threshold: float, reason: str) -> Calibration:
        """A threshold with no measured confidence (``reason`` says why, for the report)."""
        return cls(backbone, threshold, 0.0, 0.0, reason, "", provisional=True,
                   population="none")

    def probability_same(self, similarity: float) -> float | None:
        if self.provisional:
            return None
        if self.calibrator is not None:
            from facexplain.confidence.calibrators import probability_same

            return probability_same(self.calibrator, similarity)
        z = self.platt_slope * similarity + self.platt_intercept
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def confidence(self, similarity: float) -> float | None:
        """Probability of the verdict given (same or not same); None when uncalibrated."""
        p = self.probability_same(similarity)
        if p is None:
            return None
        return p if similarity >= self.threshold else 1.0 - p

    def selective_rule(self, max_error: float, population: str | None = None
                       ) -> dict[str, Any] | None:
        """The stored "not sure" rule of the largest target at or below ``max_error`` for
        ``population``, or None when there is none. Without a population, the stricter of
        every stored population's rule (each side's higher threshold): a user who does not know
        their pairs are hard (look-alikes) still gets the bound, at the cost of answering fewer
        easy pairs (held-out figures: ``benchmark calibration``)."""
        if population is not None:
            return _largest_target((self.selective or {}).get(population) or {}, max_error)
        rules = [r for r in (_largest_target(by_target, max_error)
                             for by_target in (self.selective or {}).values()) if r is not None]
        if len(rules) <= 1:
            return rules[0] if rules else None
        return {"target": min(float(r["target"]) for r in rules),
                "min_same": max(float(r["min_same"]) for r in rules),
                "min_different": max(float(r["min_different"]) for r in rules),
                "coverage": min(float(r["coverage"]) for r in rules),
                "population": " and ".join(str(r["population"]) for r in rules),
                "combined": True}

    def likelihood(self, similarity: float, population: str | None = None
                   ) -> tuple[float, str] | None:
        """Bounded log10 LR of ``similarity`` and the population its fit came from (the named
        one if stored, else LFW's, else the first); None when no LR was fitted."""
        fits = {k: v for k, v in (self.lr or {}).items() if isinstance(v, dict) and "grid" in v}
        if not fits:
            return None
        from facexplain.confidence.likelihood import LrFit

        name = population if population in fits else ("lfw" if "lfw" in fits else next(iter(fits)))
        return float(LrFit.from_json(fits[name])(similarity)), name

    def decide(self, similarity: float, options: VerdictOptions | None = None) -> Decision:
        """The decision on one similarity: same or not, its confidence and, with
        ``options.max_error``, whether the stored selective rule answers (and that rule in
        words). The one place a verdict is decided: pairs, batch rows, search candidates."""
        options = options or VerdictOptions()
        same = similarity >= self.threshold
        confidence = self.confidence(similarity)
        evidence = self.likelihood(similarity, options.population)
        if options.max_error is None:
            return Decision(same, confidence, evidence=evidence)
        rule = self.selective_rule(options.max_error, options.population)
        if rule is None or confidence is None:
            where = "these weights" if self.provisional else (
                f"{self.backbone} on {self.population}")
            return Decision(same, confidence, False, f"no rule keeps errors at or below "
                            f"{options.max_error:g} for {where}", evidence)
        needed = float(rule["min_same" if same else "min_different"])
        share = ("the stricter of each population's rule" if rule.get("combined") else
                 f"{100 * float(rule['coverage']):.0f}% of them answered")
        return Decision(same, confidence, confidence >= needed, (
            f"answers a '{'same' if same else 'different'}' verdict when its confidence is at "
            f"least {needed:.6f}: at most {float(rule['target']):g} errors among answered "
            f"pairs of {rule['population']} ({share}; held-out figures: docs/BENCHMARKS.md)"),
            evidence)


def _largest_target(rules: dict[str, dict[str, Any]], max_error: float) -> dict[str, Any] | None:
    fitting = [r for r in rules.values() if float(r["target"]) <= max_error + 1e-12]
    return max(fitting, key=lambda r: float(r["target"])) if fitting else None


@dataclass(frozen=True)
class Decision:
    """Same or not on one similarity, its confidence, and whether a selective rule answers."""

    same: bool
    confidence: float | None
    answered: bool = True
    rule: str = ""
    evidence: tuple[float, str] | None = None  # (bounded log10 LR, its fit's population)

    @property
    def answer(self) -> str:
        return "not sure" if not self.answered else ("same" if self.same else "different")

    @property
    def log10_lr(self) -> float | None:
        return None if self.evidence is None else self.evidence[0]


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two (N, D) embedding batches (differentiable)."""
    import torch.nn.functional as F

    return F.cosine_similarity(a, b, dim=-1, eps=1e-12)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``cosine`` for numpy rows (forward-only code that never loads torch)."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.maximum(np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1), 1e-12)
    return (a64 * b64).sum(-1) / norms


def confidence_text(confidence: float | None) -> str:
    """A percentage that never claims certainty: a fitted probability is not 100%."""
    if confidence is None:
        return "not calibrated"
    pct = 100 * confidence
    if pct > 99.9:
        return "> 99.9%"
    if pct < 0.1:
        return "< 0.1%"
    return f"{pct:.1f}%"


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The accuracy-maximising threshold (midpoint between neighbouring sorted scores)."""
    if scores.shape != same.shape or scores.ndim != 1 or scores.size == 0:
        raise InvalidArgument("scores and labels must be non-empty 1-d arrays of equal length")
    order = np.argsort(scores)
    s = scores[order]
    y = same[order].astype(bool)
    # Threshold just above s[i] classifies 0..i as 'not same': correct = negatives among
    # them + positives after them.
    neg_cum = np.cumsum(~y)
    pos_after = y.sum() - np.cumsum(y)
    correct = np.concatenate([[y.sum()], neg_cum + pos_after])
    k = int(np.argmax(correct))
    if k == 0:
        return float(s[0] - 1e-6)
    if k == len(s):
        return float(s[-1] + 1e-6)
    return float((s[k - 1] + s[k]) / 2)


def fit_platt(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Logistic fit P(same | score) = sigmoid(a * score + b) (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4)
    model.fit(scores.reshape(-1, 1), same.astype(int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def calibration_store(path: Path | None = None) -> RecordStore:
    return store_for(CALIBRATION_FILE, packaged_dir("facexplain.backbones"), path)


def load_calibrations(path: Path | None = None) -> dict[str, Calibration]:
    return {name: Calibration(**row) for name, row in  # type: ignore[arg-type]
            calibration_store(path).load().items()}


def calibration_for(backbone: str, weights: str | None = None, path: Path | None = None,
                    source: str | None = None) -> Calibration | None:
    """The stored calibration of ``backbone``, or None. With ``weights`` (the fingerprint of the
    weights in use), only a record measured on those very weights counts: an edited or
    re-trained model never reads another's threshold and confidence. ``source`` (a user model
    file's sha256, for its forward-only runtime) must match the record's likewise."""
    cal = load_calibrations(path).get(backbone)
    if cal is None or (weights is not None and cal.weights != weights):
        return None
    if source is not None and cal.source_sha256 != source:
        return None
    return cal


def get_calibration(backbone: str, path: Path | None = None,
                    weights: str | None = None, source: str | None = None) -> Calibration:
    cal = calibration_for(backbone, weights, path, source)
    if cal is None:
        stored = load_calibrations(path).get(backbone)
        why = ("the stored calibration was measured on other weights" if stored is not None
               else "it has no calibrated threshold")
        raise InvalidArgument(
            f"backbone '{backbone}': {why}; run "
            f"`facexplain benchmark calibration --backbone {backbone} --write-calibration`"
        )
    return cal


def save_calibration(cal: Calibration, path: Path | None = None) -> Path:
    """Store ``cal`` in the user's records (or ``path``); return the file written."""
    return calibration_store(path).save(cal.backbone, asdict(cal))


def store_lr_fits(backbone: str, fits: dict[str, Any], command: str,
                  path: Path | None = None, keep_others: bool = False) -> Path:
    """Store LR fits (population -> ``LrFit``) in ``backbone``'s calibration record (replacing
    the stored ones, or beside them with ``keep_others``)."""
    import datetime as dt

    cal = load_calibrations(path).get(backbone)
    if cal is None or cal.provisional:
        raise InvalidArgument(f"backbone '{backbone}' has no calibration record to add LRs to; "
                              f"run `facexplain benchmark calibration --backbone {backbone} "
                              "--write-calibration` first")
    lr: dict[str, Any] = dict(cal.lr or {}) if keep_others else {}
    lr.update({name: fit.to_json() for name, fit in fits.items()})
    lr["command"], lr["date"] = command, dt.date.today().isoformat()
    from dataclasses import replace

    return save_calibration(replace(cal, lr=lr), path)


def store_quality_profile(backbone: str, profile: dict[str, Any], command: str,
                          path: Path | None = None) -> Path:
    """Add the calibration photos' quality profile to ``backbone``'s stored record."""
    cal = load_calibrations(path).get(backbone)
    if cal is None or cal.provisional:
        raise InvalidArgument(f"backbone '{backbone}' has no calibration record to add a quality "
                              f"profile to; run `facexplain benchmark calibration --backbone "
                              f"{backbone} --write-calibration` first")
    from dataclasses import replace

    return save_calibration(replace(cal, quality={**profile, "command": command}), path)
