"""Likelihood ratios measured held out: Cllr, Cllr_min, Cllr_cal and EER per backbone and
population, for each of ``lir``'s calibrators.

Protocol (fold-honest, as ``benchmark calibration``): for each LFW fold k, every calibrator is
fitted on the fitting population's other nine folds and predicts fold k of each test
population (LFW and the look-alike pairs share LFW's folds and people, so a fold's people are
never seen in fitting). The held-out LRs of the ten folds are pooled; Cllr and its parts come
from ``lir``, with bootstrap 95% CIs over pairs. The kept calibrator of each fitting population
has the lowest held-out Cllr on that population; what is stored for use (``--write-calibration``)
is that calibrator fitted on all ten folds, bounded by ELUB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.populations import Population
from facexplain.benchmarks.registry import measured_on
from facexplain.confidence.likelihood import (
    LR_KINDS,
    LrFit,
    cllr_parts,
    equal_error_rate,
    fit_lr,
)

FIT_POPULATIONS = ("lfw", "lookalike")


@dataclass(frozen=True)
class LrConfig:
    backbone: str = DEFAULT_BACKBONE
    mining: str = ""  # model that mines the look-alikes; default: another built-in
    lfw: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    n_boot: int = 200
    seed: int = 0
    progress: bool = True

    def mining_model(self) -> str:
        return self.mining or ("sface" if self.backbone == "dlib-resnet" else "dlib-resnet")


def heldout_llrs(kind: str, fit_on: Population, test: Population) -> np.ndarray:
    """log10 LRs of ``test`` from fits on ``fit_on``'s other folds (fold by fold)."""
    out = np.empty(len(test))
    for k in np.unique(test.folds):
        fitted = fit_lr(kind, fit_on.scores[fit_on.folds != k], fit_on.same[fit_on.folds != k],
                        fit_on.name)
        mask = test.folds == k
        out[mask] = fitted(test.scores[mask])
    return out


def _ci(values: list[float]) -> list[float]:
    return [round(float(np.percentile(values, 2.5)), 4),
            round(float(np.percentile(values, 97.5)), 4)]


def _kept(by_kind: dict[str, dict[str, dict[str, Any]]], population: str) -> str:
    """The calibrator with the lowest held-out Cllr on its own population."""
    return min(LR_KINDS, key=lambda kind: float(by_kind[kind][population]["cllr"]))


def lr_quality(llr: np.ndarray, pop: Population, n_boot: int, seed: int) -> dict[str, Any]:
    """Cllr, Cllr_min, Cllr_cal and EER of held-out LRs, each with a bootstrap 95% CI
    (pairs resampled within each class, so every resample has both)."""
    total, minimum, cal = cllr_parts(llr, pop.same)
    eer = equal_error_rate(llr, pop.same)
    rng = np.random.default_rng(seed)
    same_idx, diff_idx = np.flatnonzero(pop.same), np.flatnonzero(~pop.same)
    boots: dict[str, list[float]] = {"cllr": [], "cllr_min": [], "cllr_cal": [], "eer": []}
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(same_idx, same_idx.size),
                              rng.choice(diff_idx, diff_idx.size)])
        t, m, c = cllr_parts(llr[idx], pop.same[idx])
        boots["cllr"].append(t)
        boots["cllr_min"].append(m)
        boots["cllr_cal"].append(c)
        boots["eer"].append(equal_error_rate(llr[idx], pop.same[idx]))
    return {"n_pairs": len(pop), "n_same": int(pop.same.sum()),
            "cllr": round(total, 4), "cllr_ci": _ci(boots["cllr"]),
            "cllr_min": round(minimum, 4), "cllr_min_ci": _ci(boots["cllr_min"]),
            "cllr_cal": round(cal, 4), "cllr_cal_ci": _ci(boots["cllr_cal"]),
            "eer": round(eer, 4), "eer_ci": _ci(boots["eer"]),
            "log10_lr_range": [round(float(llr.min()), 3), round(float(llr.max()), 3)]}


def load_populations(cfg: LrConfig) -> dict[str, Population]:
    """LFW's 6,000 pairs and the look-alike set (LFW's genuine pairs, mined impostors), scored
    by the backbone (cached like ``benchmark calibration``'s)."""
    from facexplain.benchmarks.populations import lfw_and_lookalike
    from facexplain.cache import DiskCache
    from facexplain.pipeline import FacePipeline

    lfw, _, look = lfw_and_lookalike(FacePipeline(cfg.backbone), FacePipeline(cfg.mining_model()),
                                     cfg.lfw, DiskCache(cfg.cache_dir), cfg.progress)
    return {"lfw": lfw, "lookalike": look}


def run_lr(cfg: LrConfig, populations: dict[str, Population] | None = None
           ) -> tuple[dict[str, Any], dict[str, LrFit], dict[str, dict[str, np.ndarray]]]:
    """Held-out LR quality of every calibrator for every (fitting, test) population pair, the
    fits to store (kept calibrator, all folds) and the kept held-out LRs (for the plots)."""
    started = time.perf_counter()
    pops = populations or load_populations(cfg)
    heldout: dict[str, dict[str, dict[str, Any]]] = {}
    llrs: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for fit_name in FIT_POPULATIONS:
        heldout[fit_name], llrs[fit_name] = {}, {}
        for kind in LR_KINDS:
            llrs[fit_name][kind] = {t: heldout_llrs(kind, pops[fit_name], pops[t])
                                    for t in FIT_POPULATIONS}
            heldout[fit_name][kind] = {t: lr_quality(llrs[fit_name][kind][t], pops[t],
                                                     cfg.n_boot, cfg.seed)
                                       for t in FIT_POPULATIONS}
    chosen = {f: _kept(heldout[f], f) for f in FIT_POPULATIONS}
    fits = {f: fit_lr(chosen[f], pops[f].scores, pops[f].same, f) for f in FIT_POPULATIONS}
    doc = {
        "backbone": cfg.backbone, "mining_model": cfg.mining_model(), "kinds": list(LR_KINDS),
        "populations": {n: {"n_pairs": len(p), "n_same": int(p.same.sum())}
                        for n, p in pops.items()},
        "heldout": heldout, "chosen": chosen,
        "bounds": {f: [round(fits[f].lower, 3), round(fits[f].upper, 3)] for f in fits},
        "n_boot": cfg.n_boot, "seconds": round(time.perf_counter() - started, 1),
        **measured_on(),
    }
    kept = {f: llrs[f][chosen[f]] for f in FIT_POPULATIONS}
    return doc, fits, kept
