"""LFW verification benchmark from raw photos: detect, align, embed, 10-fold protocol.

Landmarks are cached per image (shared by all backbones) and embeddings per image and
backbone, so a second run only recomputes the scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facexplain import settings
from facexplain.backbones import user_records
from facexplain.benchmarks.lfw_report import lfw_table
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache
from facexplain.datasets.faces import check_images_exist, embed_all, locate_all
from facexplain.datasets.lfw import LfwPair, read_pairs, unique_images
from facexplain.errors import InvalidArgument
from facexplain.metrics.verification import auc, kfold_accuracy, roc, tar_at_far
from facexplain.pipeline import FacePipeline
from facexplain.scoring import Calibration, cosine, fit_platt


@dataclass(frozen=True)
class LfwBenchmarkConfig:
    backbone: str = "sface"
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    flip: bool = False
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    batch_size: int = 32
    progress: bool = True
    folds: tuple[int, ...] | None = None  # 1-based folds to use (None: all)


@dataclass(frozen=True)
class LfwBenchmarkResult:
    """The run's summary (its JSON) and the per-pair scores its ROC and calibration need."""

    summary: dict[str, Any]
    scores: np.ndarray
    same: np.ndarray
    folds: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return dict(self.summary)

    def table(self) -> str:
        return lfw_table([self.summary])

    def figure(self, path: Path) -> Path:
        return plot_roc(self, path)


def pair_scores(
    pairs: list[LfwPair], images: Path, embeddings: dict[Path, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = torch.from_numpy(np.stack([embeddings[p.path_a(images)] for p in pairs]))
    b = torch.from_numpy(np.stack([embeddings[p.path_b(images)] for p in pairs]))
    scores = cosine(a, b).numpy().astype(np.float64)
    same = np.asarray([p.same for p in pairs])
    folds = np.asarray([p.fold for p in pairs])
    return scores, same, folds


def run_lfw_benchmark(
    cfg: LfwBenchmarkConfig, pipeline: FacePipeline | None = None
) -> LfwBenchmarkResult:
    started = time.perf_counter()
    pairs = read_pairs(cfg.pairs)
    if cfg.folds is not None:
        pairs = [p for p in pairs if p.fold + 1 in cfg.folds]
        if len({p.fold for p in pairs}) < 2:
            raise InvalidArgument("the k-fold protocol needs at least two folds of the pairs file")
    paths = unique_images(pairs, cfg.images)
    check_images_exist(paths)
    pipe = pipeline or FacePipeline(cfg.backbone)
    cache = DiskCache(cfg.cache_dir)
    located = locate_all(pipe, paths, cache, cfg.progress)
    embeddings = embed_all(pipe, located, cache, cfg.flip, cfg.batch_size, cfg.progress)
    scores, same, folds = pair_scores(pairs, cfg.images, embeddings)
    kf = kfold_accuracy(scores, same, folds)
    summary: dict[str, Any] = {
        "backbone": cfg.backbone,
        "weights": pipe.scorer.fingerprint(),
        "flip": cfg.flip,
        "pairs_file": str(cfg.pairs),
        "n_pairs": len(pairs),
        "n_images": len(paths),
        "n_folds": int(len(np.unique(folds))),
        "accuracy_mean": kf.accuracy_mean,
        "accuracy_std": kf.accuracy_std,
        "fold_accuracies": [round(float(a), 6) for a in kf.accuracies],
        "auc": auc(scores, same),
        "tar_at_far_1e-3": tar_at_far(scores, same, 1e-3),
        "threshold_mean": kf.threshold_mean,
        "fold_thresholds": [round(float(t), 6) for t in kf.thresholds],
        "n_no_face": int(sum(f.fallback for f in located.values())),
        "n_multi_face": int(sum(f.n_faces > 1 for f in located.values())),
        "seconds": round(time.perf_counter() - started, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"),
    }
    return LfwBenchmarkResult(summary, scores, same, folds)


def calibration_from(result: LfwBenchmarkResult, command: str, population: str = ""
                     ) -> Calibration:
    """A calibration record from a benchmark run: the mean fold threshold and a Platt fit, for
    the weights the run measured."""
    s = result.summary
    slope, intercept = fit_platt(result.scores, result.same)
    return Calibration(
        backbone=str(s["backbone"]), threshold=round(float(s["threshold_mean"]), 6),
        platt_slope=round(slope, 4), platt_intercept=round(intercept, 4), command=command,
        date=str(s["date"]), lfw_accuracy=round(float(s["accuracy_mean"]), 6),
        weights=str(s["weights"]),
        population=population or f"LFW View 2 (pairs.txt), {s['n_pairs']:,} pairs",
        source_sha256=user_records.read_records().get(str(s["backbone"]), {}).get("sha256"))


def plot_roc(result: LfwBenchmarkResult, path: Path) -> Path:
    """ROC curve (log FAR axis), with AUC and accuracy in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr = roc(result.scores, result.same)
    s = result.summary
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    label = f"{s['backbone']}: AUC {s['auc']:.4f}, acc {s['accuracy_mean']:.4f}"
    ax.plot(np.maximum(fpr, 1e-4), tpr, label=label)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0.5, 1.0)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("LFW verification ROC (10 folds pooled)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
