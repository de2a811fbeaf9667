"""LFW verification benchmark from raw photos: detect, align, embed, 10-fold protocol.

Landmarks are cached per image (shared by all backbones) and embeddings per image and
backbone, so a second run only recomputes the scores.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.cache import DiskCache, image_key
from facexplain.datasets.lfw import LfwPair, read_pairs, unique_images
from facexplain.errors import InputNotFound
from facexplain.io import load_image
from facexplain.metrics.verification import auc, kfold_accuracy, roc, tar_at_far
from facexplain.pipeline import FacePipeline, LocatedFace
from facexplain.scoring import cosine
from facexplain.types import Detection

DETECTION_VERSION = "det-v1"
EMBEDDING_VERSION = "emb-v1"


@dataclass(frozen=True)
class LfwBenchmarkConfig:
    backbone: str = "sface"
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    flip: bool = False
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    batch_size: int = 32
    progress: bool = True


@dataclass(frozen=True)
class LfwBenchmarkResult:
    summary: dict[str, object]
    scores: np.ndarray
    same: np.ndarray
    folds: np.ndarray


def _check_images_exist(paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputNotFound(f"image listed in the pairs file not found: {missing[0]}{more}")


def locate_all(
    pipe: FacePipeline, paths: list[Path], cache: DiskCache, progress: bool
) -> dict[Path, LocatedFace]:
    """The LFW-convention face (closest to centre) of every image, cached on disk."""
    located: dict[Path, LocatedFace] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MTCNN's small convs only lose time to thread hand-offs
    try:
        for path in tqdm(paths, desc="detect", unit="img", disable=not progress):
            located[path] = _locate_cached(pipe, path, cache)
    finally:
        torch.set_num_threads(threads)
    return located


def _locate_cached(pipe: FacePipeline, path: Path, cache: DiskCache) -> LocatedFace:
    key = f"{DETECTION_VERSION}:{image_key(path)}"
    hit = cache.get(key)
    if hit is not None:
        det = Detection(hit["box"], hit["landmarks"], float(hit["score"]))
        return LocatedFace(det, int(hit["n_faces"]), bool(hit["fallback"]))
    face = pipe.locate(load_image(path), policy="center", allow_fallback=True, source=str(path))
    d = face.detection
    cache.put(key, box=np.asarray(d.box, dtype=np.float64),
              landmarks=np.asarray(d.landmarks, dtype=np.float64),
              score=np.float64(d.score), n_faces=np.int64(face.n_faces),
              fallback=np.bool_(face.fallback))
    return face


def embed_all(
    pipe: FacePipeline, located: dict[Path, LocatedFace], cache: DiskCache, flip: bool,
    batch_size: int, progress: bool,
) -> dict[Path, np.ndarray]:
    """Embeddings of every image's chosen face, cached per (image, weights, flip)."""
    tag = f"{EMBEDDING_VERSION}:{pipe.spec.name}@{pipe.embedding_key()}:flip={int(flip)}"
    embeddings: dict[Path, np.ndarray] = {}
    todo: list[Path] = []
    for path in located:
        hit = cache.get(f"{tag}:{image_key(path)}")
        if hit is None:
            todo.append(path)
        else:
            embeddings[path] = hit["embedding"]
    bar = tqdm(total=len(todo), desc=f"embed {pipe.spec.name}", unit="img", disable=not progress)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        pixels = torch.stack([
            warp_face(load_image(p), located[p].detection.landmarks, pipe.spec.alignment)
            for p in chunk
        ])
        emb = pipe.embed(pixels, flip=flip, batch_size=batch_size).numpy()
        for p, e in zip(chunk, emb, strict=True):
            cache.put(f"{tag}:{image_key(p)}", embedding=e.astype(np.float32))
            embeddings[p] = e
        bar.update(len(chunk))
    bar.close()
    return embeddings


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
    paths = unique_images(pairs, cfg.images)
    _check_images_exist(paths)
    pipe = pipeline or FacePipeline(cfg.backbone)
    cache = DiskCache(cfg.cache_dir)
    located = locate_all(pipe, paths, cache, cfg.progress)
    embeddings = embed_all(pipe, located, cache, cfg.flip, cfg.batch_size, cfg.progress)
    scores, same, folds = pair_scores(pairs, cfg.images, embeddings)
    kf = kfold_accuracy(scores, same, folds)
    summary: dict[str, object] = {
        "backbone": cfg.backbone,
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
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }
    return LfwBenchmarkResult(summary, scores, same, folds)


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
