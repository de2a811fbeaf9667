"""Error-versus-discard characteristic (EDC; ISO/IEC 29794-1, Schlett et al. 2023).

Pairs are ordered by pair quality, the lower of the two photos' qualities; discarding the
lowest fraction x of them, the error among the rest is read at a fixed threshold. A quality
measure that predicts errors makes the curve fall; random discarding leaves it flat in
expectation. ``pauc`` is the curve's mean over x in [0, 0.2] (the area divided by 0.2, so it
reads as an average error), compared with random discard's by a bootstrap over pairs.
"""

from __future__ import annotations

import numpy as np

DISCARD = np.linspace(0.0, 0.2, 41)


def edc(pair_quality: np.ndarray, wrong: np.ndarray, discard: np.ndarray = DISCARD) -> np.ndarray:
    """Error rate among the pairs kept after discarding each fraction of the lowest-quality
    ones (ties broken by position, so a constant quality is random discard)."""
    q = np.asarray(pair_quality, dtype=np.float64)
    w = np.asarray(wrong, dtype=bool)[np.argsort(q, kind="stable")]
    n = w.size
    tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0]])  # errors from rank r to the end
    start = np.minimum(np.floor(discard * n).astype(int), n - 1)
    return tail[start] / (n - start)


def pauc(curve: np.ndarray, discard: np.ndarray = DISCARD) -> float:
    """Mean of an EDC over the discard range (trapezoid area over the range's width)."""
    return float(np.trapezoid(curve, discard) / (discard[-1] - discard[0]))


def random_curve(wrong: np.ndarray, rng: np.random.Generator, repeats: int = 100) -> np.ndarray:
    """Random discard's EDC, averaged over random orders."""
    n = len(wrong)
    return np.mean([edc(rng.permutation(n).astype(float), wrong) for _ in range(repeats)], axis=0)


def compare(pair_quality: np.ndarray, wrong: np.ndarray, n_boot: int, seed: int
            ) -> dict[str, object]:
    """pAUC of the quality order and of random discard, and the bootstrap 95% CI of their
    difference (pairs resampled; each resample's random discard is its own average)."""
    rng = np.random.default_rng(seed)
    q, w = np.asarray(pair_quality, dtype=np.float64), np.asarray(wrong, dtype=bool)
    curve = edc(q, w)
    base = float(w.mean())  # random discard keeps the error rate, in expectation
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, q.size, q.size)
        diffs.append(pauc(edc(q[idx], w[idx])) - float(w[idx].mean()))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"pauc": round(pauc(curve), 6), "pauc_random": round(base, 6),
            "difference": round(pauc(curve) - base, 6),
            "difference_ci": [round(float(lo), 6), round(float(hi), 6)],
            "curve": [round(float(v), 6) for v in curve], "n_pairs": int(q.size),
            "n_errors": int(w.sum())}
