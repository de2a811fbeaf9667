"""Statistics of the randomisation sanity check: map similarity measures, chance from
unrelated pairings, verdicts with bootstrap intervals, and maps that are the same map.

Why intervals: a verdict from six pairs flipped with the pair set (Grad-CAM "FAIL" on one
set, "pass" on the packaged one). The statistic of a method and measure is the *excess* of
the randomised map's similarity to the real map over chance: mean over pairs of
sim(real_i, randomised_i) minus the mean over unrelated pairings (i, j), i != j, of
sim(real_i, real_j). It passes when the excess is at most ``margin``. Pairs are resampled
(chance is recomputed on each resample's pairings), and a verdict is given only when the
whole 95% interval lies on one side of the margin; otherwise it is "inconclusive".
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np
import torch

MIN_PAIRS = 30  # fewer pairs: every verdict is "inconclusive"
MIN_PAIRINGS = 100


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation of two maps (flattened)."""
    from scipy.stats import spearmanr

    r = spearmanr(a.flatten().double().numpy(), b.flatten().double().numpy()).statistic
    return 0.0 if not np.isfinite(r) else float(r)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM over the two faces of two (2, H, W) maps, each scaled to [0, 1]."""
    from skimage.metrics import structural_similarity

    def unit(m: torch.Tensor) -> np.ndarray:
        v = m.double().numpy()
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else np.zeros_like(v)

    return float(np.mean([structural_similarity(unit(a[i]), unit(b[i]), data_range=1.0)
                          for i in range(a.shape[0])]))


MEASURES: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "spearman_signed": spearman,
    "spearman_abs": lambda a, b: spearman(a.abs(), b.abs()),
    "ssim_abs": lambda a, b: ssim(a.abs(), b.abs()),
}


def pairing_matrix(real: list[torch.Tensor], fn: Callable[[torch.Tensor, torch.Tensor], float]
                   ) -> np.ndarray:
    """sim(real_i, real_j) for every i != j (symmetric measures: computed once per pair)."""
    n = len(real)
    out = np.full((n, n), np.nan)
    for i, j in combinations(range(n), 2):
        out[i, j] = out[j, i] = fn(real[i], real[j])
    return out


def excess_with_ci(own: np.ndarray, pairings: np.ndarray, n_boot: int = 1000, seed: int = 0
                   ) -> dict[str, Any]:
    """Mean of ``own`` (sim of each pair's real and randomised map) minus chance (mean of the
    off-diagonal ``pairings``), with a 95% bootstrap interval over pairs."""
    n = own.size
    off = ~np.eye(n, dtype=bool)
    value = float(own.mean() - pairings[off].mean())
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        sub = pairings[np.ix_(idx, idx)]
        keep = idx[:, None] != idx[None, :]
        draws.append(own[idx].mean() - sub[keep].mean())
    return {"value": round(value, 4), "chance": round(float(pairings[off].mean()), 4),
            "ci": [round(float(np.percentile(draws, 2.5)), 4),
                   round(float(np.percentile(draws, 97.5)), 4)],
            "n_pairings": int(off.sum()) // 2}


def verdict(excess: dict[str, Any], margin: float, n_pairs: int) -> str:
    """'pass' (randomised maps no closer than chance + margin), 'fail', or 'inconclusive'."""
    lo, hi = excess["ci"]
    if n_pairs < MIN_PAIRS or excess["n_pairings"] < MIN_PAIRINGS:
        return "inconclusive"
    if hi <= margin:
        return "pass"
    if lo > margin:
        return "fail"
    return "inconclusive"


def identical_groups(maps: dict[str, list[torch.Tensor]], tol: float = 1e-5
                     ) -> list[list[str]]:
    """Methods whose maps are the same on every pair (up to ``tol`` of the map's scale): one
    group each, in the given order (deconv = guided = saliency on a network without ReLU)."""
    groups: list[list[str]] = []
    for name, ms in maps.items():
        for g in groups:
            ref = maps[g[0]]
            if len(ref) == len(ms) and all(
                    a.shape == b.shape and float((a - b).abs().max())
                    <= tol * max(float(a.abs().max()), 1e-12) for a, b in zip(ref, ms,
                                                                               strict=True)):
                g.append(name)
                break
        else:
            groups.append([name])
    return groups
