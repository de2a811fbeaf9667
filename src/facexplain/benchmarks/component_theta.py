"""Θ_c of the component comparison: each component's score over genuine pairs of LFW folds 1-5.

Why these pairs: Θ_c answers "does this component differ more than it does between two photos
of one person?", so it is a high quantile (``explain.component_theta.QUANTILE``) of the
component's score over genuine pairs; only calibration folds 1-5 are used, so the planted game
and every held-out figure (folds 6-10) are not tuned on. A component the assessability check
flags in a pair is left out of that pair's scores (the method never scores it either).
Population "lfw" only: the look-alike population (``benchmarks.populations``) mines donors over
every LFW photo, hours of detection on this machine's two cores; its Θ_c is left to a run with
the faces already cached (``--population`` refuses it until then).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cache import DiskCache
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.explain.component_theta import QUANTILE, ComponentTheta, calibrate
from facexplain.explain.components import (
    DEFAULT_VARIANT,
    ComponentComparison,
    ComponentDetails,
    landmarks_of,
)
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.types import COMPONENTS

CALIBRATION_FOLDS = (0, 1, 2, 3, 4)  # folds 1-5 of pairs.txt (0-based)


@dataclass(frozen=True)
class ComponentThetaConfig:
    backbone: str = DEFAULT_BACKBONE
    variant: str = DEFAULT_VARIANT
    population: str = "lfw"
    pairs_per_fold: int = 60  # genuine pairs per calibration fold
    quantile: float = QUANTILE
    lfw: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    progress: bool = True


@dataclass(frozen=True)
class ComponentThetaResult:
    config: ComponentThetaConfig
    weights: str
    scores: dict[str, list[float]]
    not_assessable: dict[str, int]
    n_pairs: int
    seconds: float

    def theta(self, command: str = "", day: str = "") -> ComponentTheta:
        return ComponentTheta(self.config.backbone, self.weights, self.config.population,
                              self.config.variant, calibrate(self.scores, self.config.quantile),
                              self.config.quantile, self.n_pairs, command, day)

    def to_json(self) -> dict[str, object]:
        def q(c: str, p: float) -> float | None:
            v = self.scores.get(c)
            return round(float(np.quantile(v, p)), 5) if v else None

        return {
            "backbone": self.config.backbone, "weights": self.weights[:16],
            "population": self.config.population, "variant": self.config.variant,
            "folds": "1-5", "n_pairs": self.n_pairs, "quantile": self.config.quantile,
            "theta": calibrate(self.scores, self.config.quantile),
            "per_component": {c: {"n": len(self.scores.get(c, [])), "median": q(c, 0.5),
                                  "q95": q(c, 0.95), "q99": q(c, 0.99), "max": q(c, 1.0),
                                  "not_assessable": self.not_assessable.get(c, 0)}
                              for c in COMPONENTS},
            "seconds": round(self.seconds, 1),
            "seconds_per_pair": round(self.seconds / max(self.n_pairs, 1), 3),
        }

    def table(self) -> str:
        theta = calibrate(self.scores, self.config.quantile)
        rows = ["| component | Θ_c | median | max | not assessable |", "|---|---|---|---|---|"]
        for c in COMPONENTS:
            v = self.scores.get(c, [])
            rows.append(f"| {c} | {theta.get(c, float('nan')):.4f} | "
                        f"{float(np.median(v)) if v else float('nan'):.4f} | "
                        f"{max(v) if v else float('nan'):.4f} | "
                        f"{self.not_assessable.get(c, 0)} |")
        return "\n".join(rows)


def calibration_pairs(pairs: list[LfwPair], per_fold: int) -> list[LfwPair]:
    """The first ``per_fold`` genuine pairs of each calibration fold (pairs.txt order)."""
    out: list[LfwPair] = []
    for fold in CALIBRATION_FOLDS:
        out += [p for p in pairs if p.same and p.fold == fold][:per_fold]
    return out


def run_component_theta(cfg: ComponentThetaConfig) -> ComponentThetaResult:
    """Score every component of the calibration genuine pairs (assessable ones only)."""
    from facexplain.align.landmarks68 import load_landmarks68
    from facexplain.errors import InvalidArgument

    if cfg.population != "lfw":
        raise InvalidArgument(f"component Θ_c is calibrated on population 'lfw' only, got "
                              f"'{cfg.population}'")
    start = time.perf_counter()
    pipe = FacePipeline(cfg.backbone)
    images = cfg.lfw / "lfw-deepfunneled"
    chosen = calibration_pairs(read_pairs(cfg.lfw / "pairs.txt"), cfg.pairs_per_fold)
    paths = sorted({q for p in chosen for q in (p.path_a(images), p.path_b(images))})
    located = locate_all(pipe, paths, DiskCache(cfg.cache_dir), cfg.progress)
    comp = ComponentComparison(pipe.scorer, landmarks_of(load_landmarks68()), None,
                               cfg.variant, template=pipe.spec.alignment)
    scores: dict[str, list[float]] = {c: [] for c in COMPONENTS}
    hidden: dict[str, int] = {}
    for p in tqdm(chosen, desc=f"component Θ_c ({cfg.backbone})", disable=not cfg.progress):
        pair = torch.stack([warp_face(load_image(q), located[q].detection.landmarks,
                                      pipe.spec.alignment) for q in (p.path_a(images),
                                                                      p.path_b(images))])
        details = comp.explain(pair).meta
        assert isinstance(details, ComponentDetails)
        for f in details.components:
            if f.score is None:
                hidden[f.component] = hidden.get(f.component, 0) + 1
            else:
                scores[f.component].append(float(f.score))
    return ComponentThetaResult(cfg, pipe.scorer.fingerprint(), scores, hidden, len(chosen),
                                time.perf_counter() - start)
