"""Verification metrics on similarity scores: k-fold accuracy (LFW protocol), ROC, AUC, TAR@FAR.

Pure functions of (scores, labels, folds); dataset I/O lives in ``datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from facexplain.scoring import best_threshold


@dataclass(frozen=True)
class KFoldResult:
    accuracies: np.ndarray
    thresholds: np.ndarray

    @property
    def accuracy_mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def accuracy_std(self) -> float:
        return float(self.accuracies.std())

    @property
    def threshold_mean(self) -> float:
        return float(self.thresholds.mean())


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """For each fold, pick the threshold on the other folds and measure accuracy on it."""
    accs, ths = [], []
    for f in np.unique(folds):
        test = folds == f
        th = best_threshold(scores[~test], same[~test])
        pred = scores[test] >= th
        accs.append(float((pred == same[test].astype(bool)).mean()))
        ths.append(th)
    return KFoldResult(np.asarray(accs), np.asarray(ths))


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> float:
    """True-accept rate at the largest threshold whose false-accept rate is <= ``far``."""
    fpr, tpr, _ = roc_curve(same.astype(int), scores)
    ok = fpr <= far
    return float(tpr[ok].max()) if ok.any() else 0.0


def auc(scores: np.ndarray, same: np.ndarray) -> float:
    return float(roc_auc_score(same.astype(int), scores))


def roc(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr, _ = roc_curve(same.astype(int), scores)
    return fpr, tpr
