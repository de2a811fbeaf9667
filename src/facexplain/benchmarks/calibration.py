"""Calibrated confidence, measured held-out: which calibrator, how well it is calibrated on
which population, and how many pairs a "not sure" rule answers at each error target.

Protocol (fold-honest): for each LFW fold k, every calibrator (logistic, isotonic, beta) is
fitted on LFW's other nine folds and predicts fold k of LFW and fold k of the look-alike set
(the same people, never seen in fitting); Yale is predicted by the fit on all of LFW. ECE,
Brier and log-loss are computed on these out-of-fold predictions, with bootstrap 95% CIs. The
calibrator with the lowest held-out LFW log-loss is kept. Selective rules: for each population
with folds, the rule of each target is fitted on the other folds' confidences and judged on
fold k; errors and answered pairs add up over the ten folds (Clopper-Pearson 95% CI). What is
stored for use (``--write-calibration``) is fitted on all folds; its reported quality is the
held-out one above.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.populations import (
    Population,
    lfw_and_lookalike,
    yale_population,
)
from facexplain.benchmarks.registry import measured_on, today
from facexplain.cache import DiskCache
from facexplain.confidence import calibrators, reliability
from facexplain.confidence.scope import ScopeProfile, out_of_scope, profile
from facexplain.confidence.selective import (
    TARGETS,
    apply_rule,
    clopper_pearson,
    fit_selective,
)
from facexplain.metrics.verification import kfold_accuracy
from facexplain.pipeline import FacePipeline
from facexplain.scoring import Calibration


@dataclass(frozen=True)
class CalibrationConfig:
    backbone: str = DEFAULT_BACKBONE
    mining: str = ""  # model that mines the look-alikes; default: another built-in
    targets: tuple[float, ...] = TARGETS
    lfw: Path = field(default_factory=lambda: settings.current().lfw)
    yale: Path = field(default_factory=lambda: settings.current().yale)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    n_boot: int = 1000
    progress: bool = True

    def mining_model(self) -> str:
        return self.mining or ("sface" if self.backbone == "dlib-resnet" else "dlib-resnet")


def out_of_fold(kind: str, lfw: Population, other: Population | None) -> np.ndarray:
    """P(same) of ``other`` (or LFW itself) from fits on LFW's other folds (all of LFW for a
    population without folds)."""
    target = other or lfw
    p = np.empty(len(target))
    if (target.folds < 0).all():
        return calibrators.predictor(calibrators.fit(kind, lfw.scores, lfw.same))(target.scores)
    for k in np.unique(target.folds):
        train = lfw.folds != k
        fitted = calibrators.fit(kind, lfw.scores[train], lfw.same[train])
        test = target.folds == k
        p[test] = calibrators.predictor(fitted)(target.scores[test])
    return p


def quality(p: np.ndarray, pop: Population, n_boot: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n_pairs": len(pop)}
    for name, fn in (("ece", reliability.ece), ("brier", reliability.brier),
                     ("log_loss", reliability.log_loss)):
        lo, hi = reliability.bootstrap_ci(name, p, pop.same, n_boot)
        out[name] = round(fn(p, pop.same), 5)
        out[f"{name}_ci"] = [round(lo, 5), round(hi, 5)]
    conf, says = reliability.verdict_confidence(p)
    out["accuracy"] = round(float((says == pop.same).mean()), 5)
    out["over_999"] = round(float((conf > 0.999).mean()), 4)
    wrong_999 = (conf > 0.999) & (says != pop.same)
    out["errors_over_999"] = int(wrong_999.sum())
    out["reliability"] = reliability.reliability_bins(p, pop.same).to_json()
    return out


def selective_heldout(p: np.ndarray, pop: Population, targets: tuple[float, ...]
                      ) -> dict[str, Any]:
    """Per target: rules fitted on the other folds, judged on each fold, summed."""
    conf, says = reliability.verdict_confidence(p)
    correct = says == pop.same
    out = {}
    for t in targets:
        answered = wrong = 0
        for k in np.unique(pop.folds):
            test = pop.folds == k
            rule = fit_selective(conf[~test], correct[~test], says[~test], t, pop.name)
            n, w = apply_rule(rule, conf[test], correct[test], says[test])
            answered, wrong = answered + n, wrong + w
        lo, hi = clopper_pearson(wrong, answered)
        out[str(t)] = {"target": t, "answered": answered, "wrong": wrong,
                       "coverage": round(answered / len(pop), 4),
                       "error": round(wrong / answered, 5) if answered else None,
                       "error_ci": [round(lo, 5), round(hi, 5)]}
    return out


def selective_default_heldout(oof: dict[str, np.ndarray], pops: dict[str, Population],
                              targets: tuple[float, ...]) -> dict[str, Any]:
    """The default rule (the stricter of LFW's and the look-alike pairs' rules, each side's
    higher threshold) fitted on the other folds of both and judged on each fold of each."""
    names = ("lfw", "lookalike")
    conf = {n: reliability.verdict_confidence(oof[n]) for n in names}
    out: dict[str, Any] = {}
    for t in targets:
        counts = {n: [0, 0] for n in names}
        for k in np.unique(pops["lfw"].folds):
            rules = []
            for n in names:
                c, says = conf[n]
                train = pops[n].folds != k
                rules.append(fit_selective(c[train], (says == pops[n].same)[train], says[train],
                                           t, n))
            strict = replace(rules[0], min_same=max(r.min_same for r in rules),
                             min_different=max(r.min_different for r in rules))
            for n in names:
                c, says = conf[n]
                test = pops[n].folds == k
                a, w = apply_rule(strict, c[test], (says == pops[n].same)[test], says[test])
                counts[n][0] += a
                counts[n][1] += w
        out[str(t)] = {}
        for n in names:
            answered, wrong = counts[n]
            lo, hi = clopper_pearson(wrong, answered)
            out[str(t)][n] = {"target": t, "answered": answered, "wrong": wrong,
                              "coverage": round(answered / len(pops[n]), 4),
                              "error": round(wrong / answered, 5) if answered else None,
                              "error_ci": [round(lo, 5), round(hi, 5)]}
    return out


def scope_effect(p: np.ndarray, pop: Population, prof: ScopeProfile, n_boot: int
                 ) -> dict[str, Any]:
    """Calibration of pairs with an out-of-scope photo against the others."""
    flagged = np.array([bool(out_of_scope(a, prof) or out_of_scope(b, prof))
                        for a, b in pop.traits])
    out: dict[str, Any] = {"flagged_share": round(float(flagged.mean()), 4)}
    for name, m in (("flagged", flagged), ("in_scope", ~flagged)):
        if m.sum() >= 20 and pop.same[m].any() and not pop.same[m].all():
            sub = Population(pop.name, "", pop.scores[m], pop.same[m], pop.folds[m], [])
            q = quality(p[m], sub, n_boot)
            out[name] = {k: q[k] for k in ("n_pairs", "accuracy", "ece", "ece_ci", "brier")}
    return out


def planted_population(cfg: CalibrationConfig, pipe: FacePipeline) -> Population | None:
    """The planted-difference set of this backbone (``benchmark planted`` builds it), if built:
    every pair is one person's two photos, altered pairs with one region from a look-alike."""
    from facexplain.benchmarks.planted import PlantedConfig, built_sets
    from facexplain.benchmarks.planted_pairs import PlantedSet

    built = built_sets(PlantedConfig(backbone=cfg.backbone, mining=cfg.mining,
                                     cache_dir=cfg.cache_dir), pipe)
    if not built:
        return None
    pairs = PlantedSet.load(built[-1]).pairs
    n = len(pairs)
    return Population("planted", "planted LFW pairs (one person's two photos; altered ones "
                      "carry one region of a look-alike), labelled same person",
                      np.array([p.similarity for p in pairs]), np.ones(n, dtype=bool),
                      np.full(n, -1), [])


def run_calibration(cfg: CalibrationConfig) -> tuple[dict[str, Any], Calibration]:
    """Held-out quality of every calibrator on every population, the selective rules, and
    the record to store (fitted on all folds)."""
    started = time.perf_counter()
    cache = DiskCache(cfg.cache_dir)
    pipe = FacePipeline(cfg.backbone)
    lfw, traits, look = lfw_and_lookalike(pipe, FacePipeline(cfg.mining_model()), cfg.lfw,
                                          cache, cfg.progress)
    yale = yale_population(pipe, cfg.yale, cache, cfg.progress)
    populations = {"lfw": lfw, "lookalike": look, "yale": yale}
    planted = planted_population(cfg, pipe)
    if planted is not None:
        populations["planted"] = planted
    heldout: dict[str, dict[str, Any]] = {}
    for kind in calibrators.KINDS:
        heldout[kind] = {name: quality(out_of_fold(kind, lfw, None if name == "lfw" else pop),
                                       pop, cfg.n_boot) for name, pop in populations.items()}
    chosen = min(calibrators.KINDS, key=lambda k: heldout[k]["lfw"]["log_loss"])
    oof = {name: out_of_fold(chosen, lfw, None if name == "lfw" else pop)
           for name, pop in populations.items()}
    prof = profile(list(traits.values()), "LFW")
    selective = {name: selective_heldout(oof[name], populations[name], cfg.targets)
                 for name in ("lfw", "lookalike")}
    cross = {str(t): _cross_rule(oof, populations, t) for t in cfg.targets}
    default_rule = selective_default_heldout(oof, populations, cfg.targets)
    scope = {name: scope_effect(oof[name], pop, prof, cfg.n_boot)
             for name, pop in populations.items() if pop.traits}
    record = _record(cfg, pipe, lfw, look, chosen, heldout[chosen], prof)
    doc = {
        "backbone": cfg.backbone, "mining_model": cfg.mining_model(), "chosen": chosen,
        "populations": {n: {"description": p.description, "n_pairs": len(p)}
                        for n, p in populations.items()},
        "heldout": heldout, "selective_heldout": selective,
        "selective_lfw_rule_on_lookalike": cross, "selective_default": default_rule,
        "scope": scope,
        "scope_profile": prof.to_json(), "threshold": record.threshold,
        "weights": record.weights, "seconds": round(time.perf_counter() - started, 1),
        **measured_on(),
    }
    return doc, record


def _cross_rule(oof: dict[str, np.ndarray], pops: dict[str, Population], t: float
                ) -> dict[str, Any]:
    """The rule fitted on all LFW pairs, applied to the look-alike pairs (out of its scope)."""
    conf, says = reliability.verdict_confidence(oof["lfw"])
    rule = fit_selective(conf, says == pops["lfw"].same, says, t, "lfw")
    c2, s2 = reliability.verdict_confidence(oof["lookalike"])
    n, w = apply_rule(rule, c2, s2 == pops["lookalike"].same, s2)
    return {"answered": n, "wrong": w, "error": round(w / n, 5) if n else None,
            "coverage": round(n / len(pops["lookalike"]), 4)}


def _record(cfg: CalibrationConfig, pipe: FacePipeline, lfw: Population, look: Population,
            chosen: str, heldout: dict[str, Any], prof: ScopeProfile) -> Calibration:
    params = calibrators.fit(chosen, lfw.scores, lfw.same)
    platt = calibrators.fit("logistic", lfw.scores, lfw.same)
    rules: dict[str, dict[str, dict[str, Any]]] = {}
    for pop in (lfw, look):
        p = calibrators.predictor(params)(pop.scores)
        conf, says = reliability.verdict_confidence(p)
        rules[pop.name] = {str(t): fit_selective(conf, says == pop.same, says, t,
                                                 pop.description).to_json()
                           for t in cfg.targets}
    kf = kfold_accuracy(lfw.scores, lfw.same, lfw.folds)
    return Calibration(
        backbone=cfg.backbone, threshold=round(float(kf.threshold_mean), 6),
        platt_slope=round(float(platt["slope"]), 4),
        platt_intercept=round(float(platt["intercept"]), 4), command="",
        date=today(), lfw_accuracy=round(float(kf.accuracy_mean), 6),
        weights=pipe.scorer.fingerprint(), calibrator=params, population=lfw.description,
        heldout={n: {k: v for k, v in q.items() if k != "reliability"}
                 for n, q in heldout.items()},
        selective=rules, scope=prof.to_json(),
    )
