"""Scores of one map against a planted region: where the mass goes, where the peak is, how well
the map detects the region's pixels, and which photo it blames.

All on the difference orientation of a method's ranking map (high where the faces differ).
``share``: the map's positive mass inside the region over its positive mass on that face
(a uniform map scores the region's area fraction); ``pointing``: the face's maximum lies in the
region; ``auc``: ROC AUC of the map's values as a detector of the region's pixels (0.5:
chance); ``which``: the face whose map holds more positive mass (what "face A carries X%" in a
report says), compared with the altered face.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score


def map_scores(values: np.ndarray, mask: np.ndarray, face: int) -> dict[str, float]:
    """Scores of a (2, H, W) difference-oriented map for a region ``mask`` on ``face``."""
    v = np.asarray(values, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    on = v[face]
    pos = np.clip(on, 0.0, None)
    total = float(pos.sum())
    share = float(pos[m].sum()) / total if total > 0 else float(m.mean())
    peak = np.flatnonzero(on.ravel() == on.max())
    pointing = float(np.isin(peak, np.flatnonzero(m.ravel())).mean())
    auc = 0.5 if np.ptp(on) == 0 else float(roc_auc_score(m.ravel(), on.ravel()))
    mass = np.clip(v, 0.0, None).reshape(2, -1).sum(axis=1)
    which = -1.0 if mass[0] == mass[1] else float(int(np.argmax(mass)) == face)
    return {"share": share, "pointing": pointing, "auc": auc, "which": which,
            "peak": float(on.max()), "in_region_mean": float(on[m].mean())}


def bootstrap(values: list[float], n_boot: int = 1000, seed: int = 0
              ) -> tuple[float, float, float]:
    """Mean and 95% percentile interval over pairs (NaN-free values)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(records: list[dict[str, Any]], rows: list[str], per_face: set[str],
              n_boot: int = 1000) -> dict[str, Any]:
    """Per row and pair kind: each score's mean with its 95% CI over pairs, and the cost."""
    out: dict[str, Any] = {}
    for row in rows:
        by_kind: dict[str, Any] = {}
        for kind in ("altered", "same-person", "untouched"):
            recs = [r["scores"][row] for r in records if r["kind"] == kind and row in r["scores"]]
            if not recs:
                continue
            cell: dict[str, Any] = {"n": len(recs)}
            for key in ("share", "pointing", "auc", "in_region_mean", "peak"):
                mean, lo, hi = bootstrap([s[key] for s in recs], n_boot)
                cell[key] = {"mean": round(mean, 4), "ci": [round(lo, 4), round(hi, 4)]}
            if row in per_face and kind in ("altered", "same-person"):
                decided = [s["which"] for s in recs if s["which"] >= 0]
                mean, lo, hi = bootstrap(decided, n_boot)
                cell["which"] = {"mean": round(mean, 4), "ci": [round(lo, 4), round(hi, 4)],
                                 "n": len(decided)}
            by_kind[kind] = cell
        seconds = [r["seconds"][row] for r in records if row in r.get("seconds", {})]
        by_kind["seconds_per_pair"] = round(float(np.mean(seconds)), 3) if seconds else None
        out[row] = by_kind
    return out
