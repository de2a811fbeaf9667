"""Photo quality judged by what it predicts: error-versus-discard curves on LFW, look-alike
pairs and degraded copies, a model-based score chosen on folds 1-5, reported on folds 6-10.

Protocol. Every LFW pair photo is scored (``quality_data``); photo B of every held-out pair
(folds 6-10) and of every third pair of folds 1-5 gets a seeded degraded copy (six kinds, in
turn). On folds 1-5 only: the unrecognisable-face centre (degraded copies' mean direction),
the unified score's kind (lowest mean pAUC over LFW and degraded genuine pairs), the profile of
the calibration photos (``quality.profile``) and the FMR 1e-3 threshold (LFW impostors). On
folds 6-10: EDC curves and pAUC over 0-20 % discard, against random discard with a bootstrap
CI, for the unified candidates and every component, on LFW (genuine pairs, FNMR), look-alike
pairs (all pairs, errors at the calibrated threshold) and the degraded set (held-out clean
pairs plus their degraded versions); how often a degraded photo ranks below its original;
and the "not sure" rule at --max-error 0.01 with and without the quality veto.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facexplain import settings
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.benchmarks.edc import compare
from facexplain.benchmarks.pair_sets import HELDOUT_FOLDS
from facexplain.benchmarks.populations import embed_photos, lookalike_pairs
from facexplain.benchmarks.quality_data import PhotoScores, degraded_copies, score_photos
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache
from facexplain.confidence.selective import clopper_pearson
from facexplain.datasets.lfw import LfwPair, read_pairs, unique_images
from facexplain.datasets.lfw_people import read_female_names
from facexplain.pipeline import FacePipeline
from facexplain.quality.assess import unified_raw
from facexplain.quality.measures import COMPONENTS
from facexplain.quality.profile import LEVELS, QualityProfile, fit_profile, judge
from facexplain.scoring import cosine_rows, get_calibration
from facexplain.types import VerdictOptions

UNIFIED = ("ui_distance", "norm")  # free: from the verdict's own embedding
SAMPLED = "stability"  # five forward passes a photo: measured on a sample of held-out pairs


@dataclass(frozen=True)
class QualityConfig:
    backbone: str = DEFAULT_BACKBONE
    mining: str = ""  # look-alike miner; default another built-in
    lfw: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    n_boot: int = 200
    seed: int = 0
    fit_every: int = 3  # degrade every k-th pair of folds 1-5 (for the centre and the choice)
    stability_pairs: int = 200  # held-out pairs whose photos get the stability score
    progress: bool = True

    def mining_model(self) -> str:
        return self.mining or ("sface" if self.backbone == "dlib-resnet" else "dlib-resnet")


def oriented(scores: PhotoScores, name: str, centre: np.ndarray | None,
             exposure_mid: float) -> np.ndarray:
    """Per photo, the measure ``name`` turned so that higher means better."""
    if name == "stability":
        return scores.stability
    if name in ("norm", "ui_distance"):  # the very function a verdict uses
        return unified_raw(name, np.empty(0), scores.embeddings, None, centre)
    col = scores.column(name)
    if name in ("yaw", "pitch", "roll", "clipped", "landmark_error", "occluded"):
        return -np.abs(col)
    if name == "exposure":
        return -np.abs(col - exposure_mid)
    return col


@dataclass(frozen=True)
class PairSet:
    """Pairs as rows into two photo tables, with labels and similarities."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    similarity: np.ndarray
    b_table: str  # "clean" or "degraded": which table B's rows index


def _pairs(rows: list[tuple[Path, Path, bool]], idx_a: dict[Path, int], idx_b: dict[Path, int],
           emb_a: np.ndarray, emb_b: np.ndarray, table: str) -> PairSet:
    a = np.array([idx_a[r[0]] for r in rows])
    b = np.array([idx_b[r[1]] for r in rows])
    return PairSet(a, b, np.array([r[2] for r in rows]), cosine_rows(emb_a[a], emb_b[b]), table)


def _pair_quality(ps: PairSet, qa: np.ndarray, qb: dict[str, np.ndarray]) -> np.ndarray:
    return np.minimum(qa[ps.a], qb[ps.b_table][ps.b])


def edc_rows(sets: dict[str, tuple[list[PairSet], str]], measures: dict[str, dict[str, np.ndarray]],
             threshold: float, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per population and measure: the EDC comparison at ``threshold`` (``metric`` fnmr: genuine
    pairs only; error: all pairs)."""
    out: dict[str, dict[str, Any]] = {}
    for pop, (parts, metric) in sets.items():
        out[pop] = {}
        for name, q in measures.items():
            pq = np.concatenate([_pair_quality(p, q["clean"], q) for p in parts])
            same = np.concatenate([p.same for p in parts])
            sim = np.concatenate([p.similarity for p in parts])
            wrong = (sim >= threshold) != same
            keep = same if metric == "fnmr" else np.ones_like(same)
            out[pop][name] = compare(pq[keep], wrong[keep], n_boot, seed)
    return out


def _rows(pairs: list[LfwPair], images: Path) -> list[tuple[Path, Path, bool]]:
    return [(p.path_a(images), p.path_b(images), p.same) for p in pairs]


def run_quality(cfg: QualityConfig) -> tuple[dict[str, Any], QualityProfile, dict[str, Any]]:
    """The benchmark's document, the calibration photos' profile (folds 1-5) and what the
    figure needs."""
    started = time.perf_counter()
    cache = DiskCache(cfg.cache_dir)
    pipe = FacePipeline(cfg.backbone)
    images = cfg.lfw / "lfw-deepfunneled"
    pairs = read_pairs(cfg.lfw / "pairs.txt")
    held = [p for p in pairs if p.fold in HELDOUT_FOLDS]
    fit = [p for p in pairs if p.fold not in HELDOUT_FOLDS]
    fit_deg = [p for i, p in enumerate(fit) if i % cfg.fit_every == 0]
    copies = degraded_copies(fit_deg + held, images, cfg.cache_dir, cache, pipe, cfg.progress,
                             cfg.seed)
    sample = held[:cfg.stability_pairs]
    sample_copies = copies[len(fit_deg):len(fit_deg) + len(sample)]
    in_sample = {q for p in sample for q in (p.path_a(images), p.path_b(images))}
    clean = score_photos(pipe, unique_images(pairs, images), cache, cfg.progress,
                         stability_for=in_sample)
    deg = score_photos(pipe, [c[2] for c in copies], cache, cfg.progress, "quality (degraded)",
                       stability_for={c[2] for c in sample_copies})
    idx, didx = clean.index(), deg.index()
    n_fit = len(fit_deg)
    centre_rows = np.array([didx[c[2]] for c in copies[:n_fit]])
    unit = deg.embeddings[centre_rows]
    centre = (unit / np.linalg.norm(unit, axis=1, keepdims=True)).mean(axis=0)
    fit_photos = np.array(sorted({idx[q] for p in fit for q in (p.path_a(images),
                                                                 p.path_b(images))}))
    exposure_mid = float(np.median(clean.column("exposure")[fit_photos]))
    measures = {name: {"clean": oriented(clean, name, centre, exposure_mid),
                       "degraded": oriented(deg, name, centre, exposure_mid)}
                for name in (*UNIFIED, SAMPLED, *COMPONENTS)}
    cal = get_calibration(cfg.backbone)
    impostor_fit = _pairs([r for r in _rows(fit, images) if not r[2]], idx, idx,
                          clean.embeddings, clean.embeddings, "clean")
    tau_fmr = float(np.quantile(impostor_fit.similarity, 1 - 1e-3))

    def sets(group: list[LfwPair], deg_rows: list[tuple[int, Path, Path, str]]
             ) -> dict[str, tuple[list[PairSet], str]]:
        base = _pairs(_rows(group, images), idx, idx, clean.embeddings, clean.embeddings,
                      "clean")
        lookup = {(pairs_index[id(p)]): p for p in group}
        drows = [(lookup[i].path_a(images), d, lookup[i].same) for i, _, d, _ in deg_rows
                 if i in lookup]
        degraded = _pairs(drows, idx, didx, clean.embeddings, deg.embeddings, "degraded")
        return {"lfw": ([base], "fnmr"), "degraded": ([base, degraded], "fnmr")}

    pairs_index = {id(p): i for i, p in enumerate(fit_deg + held)}
    fit_sets = sets(fit_deg, copies[:n_fit])
    fit_edc = edc_rows(fit_sets, {k: measures[k] for k in UNIFIED}, cal.threshold, 20, cfg.seed)
    kind = min(UNIFIED, key=lambda k: float(np.mean([fit_edc[p][k]["pauc"] /
                                                     max(fit_edc[p][k]["pauc_random"], 1e-9)
                                                     for p in fit_edc])))
    raw = measures[kind]["clean"]
    values = [dict(zip(COMPONENTS, row, strict=True)) for row in clean.values[fit_photos]]
    profiles = {level: fit_profile(values, raw[fit_photos], kind, "LFW",
                                   centre if kind == "ui_distance" else None, level)
                for level in LEVELS}
    by_level = {level: _veto_effect(fit_sets, cal, clean, deg, prof, measures[kind])
                for level, prof in profiles.items()}
    profile = profiles[_widest_safe(by_level)]
    look_rows = _lookalike_rows(cfg, held, images, cache)
    held_sets = sets(held, copies[n_fit:])
    held_sets["lookalike"] = ([_pairs(look_rows, idx, idx, clean.embeddings, clean.embeddings,
                                      "clean")], "error")
    names = {"unified": kind, **{k: k for k in UNIFIED}, **{c: c for c in COMPONENTS}}
    report = {}
    for label, tau in (("calibrated", cal.threshold), ("fmr_1e-3", tau_fmr)):
        report[label] = edc_rows(held_sets, {n: measures[m] for n, m in names.items()}, tau,
                                 cfg.n_boot, cfg.seed)
    ranks = _rank_check(copies[n_fit:], idx, didx, measures[kind])
    sampled = _stability_sample(sample, sample_copies, images, idx, didx, clean, deg,
                                {kind: measures[kind], SAMPLED: measures[SAMPLED]},
                                cal.threshold, cfg)
    lr_doc, lr_fit = degraded_lr(fit_sets["degraded"][0][1], held_sets["degraded"][0][1],
                                 cfg.n_boot, cfg.seed)
    veto = _veto_effect(held_sets, cal, clean, deg, profile, measures[kind])
    doc = {"backbone": cfg.backbone, "mining_model": cfg.mining_model(), "unified": kind,
           "choice_folds_1_5": {p: {k: v["pauc"] for k, v in r.items()}
                                for p, r in fit_edc.items()},
           "thresholds": {"calibrated": cal.threshold, "fmr_1e-3": round(tau_fmr, 6)},
           "edc": report, "degraded_below_original": ranks, "not_sure_rule": veto,
           "degraded_lr": lr_doc, "stability_sample": sampled, "level": profile.level,
           "level_choice_folds_1_5": {str(k): v for k, v in by_level.items()},
           "profile": profile.to_json(), "n_photos": len(clean.paths),
           "n_degraded": len(deg.paths), "seconds": round(time.perf_counter() - started, 1),
           **measured_on()}
    return doc, profile, {"measures": names, "lr_fit": lr_fit}


def degraded_lr(fit_pairs: PairSet, test_pairs: PairSet, n_boot: int, seed: int
                ) -> tuple[dict[str, Any], Any]:
    """An LR for pairs with a degraded photo: logistic, fitted on folds 1-5's degraded pairs
    and judged on folds 6-10's (Cllr, Cllr_min with CIs); the fit kept for use is on both."""
    from facexplain.benchmarks.lr import lr_quality
    from facexplain.benchmarks.populations import Population
    from facexplain.confidence.likelihood import fit_lr

    fitted = fit_lr("logistic", fit_pairs.similarity, fit_pairs.same, "degraded")
    test = Population("degraded", "", test_pairs.similarity, test_pairs.same,
                      np.zeros(test_pairs.same.size, dtype=int), [])
    quality = lr_quality(fitted(test_pairs.similarity), test, n_boot, seed)
    both = fit_lr("logistic", np.r_[fit_pairs.similarity, test_pairs.similarity],
                  np.r_[fit_pairs.same, test_pairs.same], "degraded")
    return {"fitted_on": int(fit_pairs.same.size), "tested_on": int(test_pairs.same.size),
            "kind": "logistic", "heldout": quality,
            "bounds": [both.lower, both.upper]}, both


def _stability_sample(sample: list[LfwPair], copies: list[tuple[int, Path, Path, str]],
                      images: Path, idx: dict[Path, int], didx: dict[Path, int],
                      clean: PhotoScores, deg: PhotoScores,
                      measures: dict[str, dict[str, np.ndarray]], threshold: float,
                      cfg: QualityConfig) -> dict[str, Any]:
    """The stability score against the chosen unified score on the sampled held-out pairs:
    rank check and EDC on those pairs plus their degraded versions."""
    rows = _rows(sample, images)
    base = _pairs(rows, idx, idx, clean.embeddings, clean.embeddings, "clean")
    drows = [(sample[k].path_a(images), d, sample[k].same) for k, (_, _, d, _) in
             enumerate(copies)]
    degraded = _pairs(drows, idx, didx, clean.embeddings, deg.embeddings, "degraded")
    sets = {"degraded": ([base, degraded], "fnmr")}
    return {"n_pairs": len(sample),
            "edc": edc_rows(sets, measures, threshold, cfg.n_boot, cfg.seed),
            "below_original": {name: _rank_check(copies, idx, didx, m)["all"]
                               for name, m in measures.items()}}


def _widest_safe(by_level: dict[float, dict[str, Any]], target: float = 0.01) -> float:
    """The widest quality range (smallest tail) whose "not sure" keeps the error on folds
    1-5's degraded pairs at the target; the strictest when none does."""
    safe = [level for level, r in by_level.items()
            if (r["degraded"]["rule+quality"]["error"] or 0.0) <= target]
    return min(safe) if safe else max(by_level)


def _lookalike_rows(cfg: QualityConfig, held: list[LfwPair], images: Path, cache: DiskCache
                    ) -> list[tuple[Path, Path, bool]]:
    mining_pipe = FacePipeline(cfg.mining_model())
    mining, _ = embed_photos(mining_pipe, unique_images(held, images), cache, cfg.progress)
    rows = lookalike_pairs(held, images, mining,
                           read_female_names(cfg.lfw / "female_names.txt"))
    return [(a, b, same) for a, b, same, _ in rows]


def _rank_check(copies: list[tuple[int, Path, Path, str]], idx: dict[Path, int],
                didx: dict[Path, int], unified: dict[str, np.ndarray]) -> dict[str, Any]:
    """How often a degraded photo's unified score is below its clean original's (per kind)."""
    out: dict[str, Any] = {}
    kinds = sorted({c[3] for c in copies})
    for kind in (*kinds, "all"):
        rows = [c for c in copies if kind in ("all", c[3])]
        below = sum(unified["degraded"][didx[d]] < unified["clean"][idx[c]]
                    for _, c, d, _ in rows)
        lo, hi = clopper_pearson(int(below), len(rows))
        out[kind] = {"n": len(rows), "below": int(below), "share": round(below / len(rows), 4),
                     "ci": [round(lo, 4), round(hi, 4)]}
    return out


def _veto_effect(sets: dict[str, tuple[list[PairSet], str]], cal: Any, clean: PhotoScores,
                 deg: PhotoScores, profile: QualityProfile, unified: dict[str, np.ndarray]
                 ) -> dict[str, Any]:
    """--max-error 0.01 with the shipped rule, with and without "not sure" for a failing photo."""
    fails = {}
    for table, scores in (("clean", clean), ("degraded", deg)):
        raw = unified[table]
        fails[table] = np.array([bool(judge(dict(zip(COMPONENTS, row, strict=True)), (),
                                            float(r), profile).failing)
                                 for row, r in zip(scores.values, raw, strict=True)])
    out: dict[str, Any] = {}
    options = VerdictOptions(max_error=0.01)
    for pop, (parts, _) in sets.items():
        rows: dict[str, list[bool]] = {"answered": [], "veto": [], "wrong": []}
        for p in parts:
            for a, b, s, sim in zip(p.a, p.b, p.same, p.similarity, strict=True):
                d = cal.decide(float(sim), options)
                rows["answered"].append(d.answered)
                rows["veto"].append(bool(fails["clean"][a] or fails[p.b_table][b]))
                rows["wrong"].append(d.same != bool(s))
        ans, veto, wrong = (np.array(rows[k]) for k in ("answered", "veto", "wrong"))
        out[pop] = {}
        for label, kept in (("rule", ans), ("rule+quality", ans & ~veto)):
            n, w = int(kept.sum()), int((kept & wrong).sum())
            lo, hi = clopper_pearson(w, n)
            out[pop][label] = {"answered": n, "coverage": round(n / ans.size, 4), "wrong": w,
                               "error": round(w / n, 5) if n else None,
                               "error_ci": [round(lo, 5), round(hi, 5)]}
        out[pop]["flagged_share"] = round(float(veto.mean()), 4)
    return out
