"""Pairwise-occlusion statistics on LFW (the paper's Fig. 3), Θ calibration, and the mean face.

``run_occlusion_stats`` computes the Δ map of 150 genuine + 150 impostor LFW pairs (spread
evenly over the ten folds), then asks how well the maximum of Δ separates the two classes:
Θ is chosen on nine folds and judged on the tenth, as the LFW protocol chooses thresholds.
Δ maps are cached per (pair, backbone, setting, fill), so re-runs only redo the statistics.

``build_mean_faces`` averages aligned LFW faces that appear in no pair of ``pairs.txt``: a
reference set disjoint from every evaluation fold, so the fill never saw a test face.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.align.templates import TEMPLATES
from facexplain.backbones.registry import get_spec
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache, image_key
from facexplain.datasets.faces import check_images_exist, locate_all
from facexplain.datasets.lfw import LfwPair, read_pairs, unique_images
from facexplain.errors import InvalidArgument
from facexplain.explain.fills import DEFAULT_FILL, FILLS, mean_face_digest
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.occlusion_loop import occlusion_windows
from facexplain.io import load_image
from facexplain.metrics.verification import auc, kfold_accuracy
from facexplain.pipeline import FacePipeline

DELTA_VERSION = "occ-v1"
HIST_BIN = 0.001  # the paper's histogram interval


@dataclass(frozen=True)
class OcclusionStatsConfig:
    backbone: str = "sface"
    patch: int = 16
    stride: int = 8
    fill: str = DEFAULT_FILL
    pairs_per_class: int = 150
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    batch_size: int = 32
    progress: bool = True
    device: str = "cpu"
    # a study pair set (look-alike pairs, ``facexplain study pairs``) instead of LFW's folds:
    # ``pairs_per_class`` of each class evenly spaced, ten pseudo-folds (``study_selection``)
    study_pairs: Path | None = None


@dataclass(frozen=True)
class OcclusionStatsResult:
    summary: dict[str, object]
    separation: MaxDeltaSeparation
    deltas: np.ndarray  # (n, H, W) raw signed Δ
    max_delta: np.ndarray  # (n,)
    scores: np.ndarray  # (n,) original pair similarity
    same: np.ndarray
    folds: np.ndarray


def select_pairs(pairs: list[LfwPair], per_class: int) -> list[LfwPair]:
    """``per_class`` genuine and impostor pairs, spread evenly over the folds, in file order."""
    folds = sorted({p.fold for p in pairs})
    if per_class < len(folds):
        raise InvalidArgument(f"--pairs-per-class must be >= the {len(folds)} folds "
                              f"(each fold needs both classes), got {per_class}")
    base, extra = divmod(per_class, len(folds))
    chosen: list[LfwPair] = []
    for i, fold in enumerate(folds):
        want = base + (1 if i < extra else 0)
        for same in (True, False):
            pool = [p for p in pairs if p.fold == fold and p.same == same]
            if len(pool) < want:
                raise InvalidArgument(f"fold {fold + 1} has only {len(pool)} "
                                      f"{'genuine' if same else 'impostor'} pairs, need {want}")
            chosen.extend(pool[:want])
    return chosen


def study_selection(path: Path, per_class: int, n_folds: int = 10) -> list[LfwPair]:
    """``per_class`` genuine and impostor pairs of a study pair set, evenly spaced over each
    class in file order (a mined pool lists impostors from the most alike down: the choice
    spans it); pair i of a class gets pseudo-fold i mod 10, so Θ is still chosen on nine
    tenths and judged on the rest."""
    from facexplain.benchmarks.pair_sets import study_pairs_as_lfw

    every = study_pairs_as_lfw(path)
    chosen: list[LfwPair] = []
    for same in (True, False):
        pool = [p for p in every if p.same == same]
        if len(pool) < max(per_class, n_folds):
            raise InvalidArgument(f"{path} has {len(pool)} {'genuine' if same else 'impostor'}"
                                  f" pairs, need {max(per_class, n_folds)}")
        spaced = np.linspace(0, len(pool) - 1, per_class).round().astype(int)
        chosen += [replace(pool[k], fold=i % n_folds) for i, k in enumerate(spaced)]
    return chosen


@dataclass(frozen=True)
class MaxDeltaSeparation:
    """How well max Δ tells impostors (high) from genuine pairs (low), on held-out folds."""

    heldout_auc_mean: float
    heldout_auc_std: float
    pooled_auc: float
    heldout_accuracy_mean: float
    heldout_accuracy_std: float
    fold_thetas: list[float]
    theta_mean: float
    genuine_dark_fraction: float
    impostor_lit_fraction: float


def max_delta_separation(
    max_delta: np.ndarray, same: np.ndarray, folds: np.ndarray
) -> MaxDeltaSeparation:
    """Θ per fold chosen on the other folds, judged on the fold itself (the LFW protocol).

    Θ is ``kfold_accuracy``'s threshold with impostors as the positive class (the rule of
    ``calibrate_theta``); a genuine pair counts as *dark* when its max Δ stays below its
    fold's Θ (no pixel reaches 1 after Eq. 1), an impostor as *lit* when it reaches Θ.
    """
    impostor = ~same.astype(bool)
    kf = kfold_accuracy(max_delta, impostor, folds)
    fold_ids = np.unique(folds)
    theta_of = dict(zip(fold_ids.tolist(), kf.thresholds.tolist(), strict=True))
    pair_theta = np.asarray([theta_of[int(f)] for f in folds])
    lit = max_delta >= pair_theta
    fold_aucs = [auc(max_delta[folds == f], impostor[folds == f]) for f in fold_ids
                 if 0 < impostor[folds == f].sum() < (folds == f).sum()]
    return MaxDeltaSeparation(
        heldout_auc_mean=float(np.mean(fold_aucs)),
        heldout_auc_std=float(np.std(fold_aucs)),
        pooled_auc=auc(max_delta, impostor),
        heldout_accuracy_mean=kf.accuracy_mean,
        heldout_accuracy_std=kf.accuracy_std,
        fold_thetas=[round(float(t), 6) for t in kf.thresholds],
        theta_mean=kf.threshold_mean,
        genuine_dark_fraction=float((~lit[~impostor]).mean()),
        impostor_lit_fraction=float(lit[impostor].mean()),
    )


def delta_histogram(deltas: np.ndarray, same: np.ndarray) -> dict[str, object]:
    """Counts of Δ clipped at 0 (as the paper plots it), per class, in 0.001-wide bins."""
    clipped = np.maximum(deltas, 0.0)
    top = max(float(clipped.max()), HIST_BIN)
    edges = np.arange(0.0, top + HIST_BIN, HIST_BIN)
    return {
        "bin_width": HIST_BIN,
        "n_bins": len(edges) - 1,
        "genuine": np.histogram(clipped[same], edges)[0].tolist(),
        "impostor": np.histogram(clipped[~same], edges)[0].tolist(),
        "negative_fraction_genuine": float((deltas[same] < 0).mean()),
        "negative_fraction_impostor": float((deltas[~same] < 0).mean()),
    }


def _fill_tag(fill: str, template: str) -> str:
    return f"{fill}@{mean_face_digest(template)}" if fill == "mean-face" else fill


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidArgument(f"unknown torch device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument(f"device '{name}' requested but CUDA is not available")
    return device


def run_occlusion_stats(
    cfg: OcclusionStatsConfig, pipeline: FacePipeline | None = None
) -> OcclusionStatsResult:
    started = time.perf_counter()
    if cfg.fill not in FILLS:
        raise InvalidArgument(f"unknown fill '{cfg.fill}'; valid: {', '.join(FILLS)}")
    if cfg.batch_size < 1:
        raise InvalidArgument(f"batch size must be >= 1, got {cfg.batch_size}")
    device = _device(cfg.device)
    size = get_spec(cfg.backbone).input_size
    n_windows = len(occlusion_windows(size, size, cfg.patch, cfg.stride))  # validates k, s
    pairs = (select_pairs(read_pairs(cfg.pairs), cfg.pairs_per_class) if cfg.study_pairs is None
             else study_selection(cfg.study_pairs, cfg.pairs_per_class))
    pipe = pipeline or FacePipeline(cfg.backbone)
    paths = unique_images(pairs, cfg.images)
    check_images_exist(paths)
    cache = DiskCache(cfg.cache_dir)
    located = locate_all(pipe, paths, cache, progress=False)
    pipe.model.to(device)
    explainer = PairwiseOcclusion(pipe.scorer, cfg.patch, cfg.stride,
                                  cfg.fill, pipe.spec.template, cfg.batch_size)
    # Keyed by the weights themselves: a modified model never gets another's maps back.
    tag = (f"{DELTA_VERSION}:{pipe.spec.name}@{pipe.scorer.fingerprint()[:16]}:k{cfg.patch}:"
           f"s{cfg.stride}:{_fill_tag(cfg.fill, pipe.spec.template)}")
    deltas, scores, computed_seconds, n_computed = [], [], 0.0, 0
    for p in tqdm(pairs, desc=f"occlusion {pipe.spec.name} k{cfg.patch} s{cfg.stride}",
                  unit="pair", disable=not cfg.progress):
        pa, pb = p.path_a(cfg.images), p.path_b(cfg.images)
        key = f"{tag}:{image_key(pa)}|{image_key(pb)}"
        hit = cache.get(key)
        if hit is None:
            t0 = time.perf_counter()
            pair = torch.stack([
                warp_face(load_image(q), located[q].detection.landmarks, pipe.spec.alignment)
                for q in (pa, pb)
            ]).to(device)
            maps = explainer.explain(pair)
            hit = {"delta": maps.maps["delta"][0].cpu().numpy(), "score": np.asarray(maps.score)}
            cache.put(key, **hit)
            computed_seconds += time.perf_counter() - t0
            n_computed += 1
        deltas.append(hit["delta"])
        scores.append(float(hit["score"]))
    d = np.stack(deltas).astype(np.float64)
    same = np.asarray([p.same for p in pairs])
    folds = np.asarray([p.fold for p in pairs])
    max_delta = d.reshape(len(pairs), -1).max(axis=1)
    score_arr = np.asarray(scores)
    sep = max_delta_separation(max_delta, same, folds)
    summary: dict[str, object] = {
        "backbone": pipe.spec.name,
        "weights": pipe.scorer.fingerprint(),
        "patch": cfg.patch,
        "stride": cfg.stride,
        "fill": cfg.fill,
        "edge": explainer.edge,
        "n_windows": n_windows,
        "n_pairs": len(pairs),
        "pair_set": (f"LFW {cfg.pairs.name}" if cfg.study_pairs is None else
                     f"study pair set {cfg.study_pairs.name}, {cfg.pairs_per_class} of each "
                     "class evenly spaced, pseudo-folds by position"),
        "n_genuine": int(same.sum()),
        "n_impostor": int((~same).sum()),
        **asdict(sep),
        "similarity_auc": auc(score_arr, same),
        "max_delta_genuine_mean": float(max_delta[same].mean()),
        "max_delta_impostor_mean": float(max_delta[~same].mean()),
        "delta_max": float(d.max()),
        "delta_min": float(d.min()),
        "histogram": delta_histogram(d, same),
        "max_delta": [round(float(m), 6) for m in max_delta],
        "same": same.astype(int).tolist(),
        "folds": folds.tolist(),
        "seconds_per_pair": round(computed_seconds / n_computed, 2) if n_computed else None,
        "n_computed": n_computed,
        "seconds": round(time.perf_counter() - started, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"),
        "device": cfg.device,
    }
    return OcclusionStatsResult(summary, sep, d, max_delta, score_arr, same, folds)


def plot_occlusion_stats(result: OcclusionStatsResult, path: Path) -> Path:
    """Fig. 3 of the paper: (a) histogram of Δ ≥ 0, log y; (b) max Δ per pair with Θ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    hist = s["histogram"]
    assert isinstance(hist, dict)
    edges = np.arange(hist["n_bins"] + 1) * HIST_BIN
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    for name, colour in (("impostor", "tab:red"), ("genuine", "tab:blue")):
        counts = np.asarray(hist[name], dtype=float)
        ax1.stairs(np.where(counts > 0, counts, np.nan), edges, color=colour,
                   label=f"{name} ({s[f'n_{name}']} pairs)")
    ax1.set_yscale("log")
    ax1.set_xlabel("Δ (negatives set to 0), bins of 0.001")
    ax1.set_ylabel("pixels")
    ax1.set_title(f"(a) Δ over all pixels: {s['backbone']}, k={s['patch']}, s={s['stride']}, "
                  f"{s['fill']}", fontsize=9)
    ax1.legend(fontsize=8)
    sep = result.separation
    theta = sep.theta_mean
    for flag, name, colour in ((False, "impostor", "tab:red"), (True, "genuine", "tab:blue")):
        m = result.same == flag
        ax2.scatter(np.arange(m.sum()), result.max_delta[m], s=8, color=colour, label=name)
    ax2.axhline(theta, color="k", lw=1, ls="--", label=f"Θ = {theta:.4f} (mean over folds)")
    ax2.set_xlabel("pair (per class)")
    ax2.set_ylabel("max Δ")
    ax2.set_title(f"(b) max Δ per pair: held-out AUC {sep.heldout_auc_mean:.3f}, "
                  f"genuine dark {100 * sep.genuine_dark_fraction:.0f}%, "
                  f"impostor lit {100 * sep.impostor_lit_fraction:.0f}%", fontsize=9)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# --- the mean face -------------------------------------------------------------------------


def reference_images(pairs_file: Path, images: Path) -> list[Path]:
    """LFW images used by no pair of ``pairs_file``, sorted: the fill's reference set."""
    used = set(unique_images(read_pairs(pairs_file), images))
    return sorted(p for p in images.glob("*/*.jpg") if p not in used)


def build_mean_faces(
    templates: list[str],
    pairs_file: Path | None = None,
    images: Path | None = None,
    max_images: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    pipeline: FacePipeline | None = None,
) -> dict[str, tuple[torch.Tensor, int]]:
    """Mean aligned face per template over the reference set (cached LFW detections)."""
    bad = [t for t in templates if t not in TEMPLATES]
    if bad:
        raise InvalidArgument(f"unknown template '{bad[0]}'; valid: {', '.join(TEMPLATES)}")
    pairs_file = pairs_file or settings.current().lfw_pairs
    images = images or settings.current().lfw_images
    paths = reference_images(pairs_file, images)
    if max_images is not None and max_images < len(paths):
        if max_images < 1:
            raise InvalidArgument(f"--max-images must be >= 1, got {max_images}")
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).astype(int)]
    if not paths:
        raise InvalidArgument(f"no reference images under {images} outside {pairs_file}")
    pipe = pipeline or FacePipeline("sface")
    located = locate_all(pipe, paths, DiskCache(cache_dir or settings.current().cache), progress)
    sums: dict[str, torch.Tensor] = {}
    for path in tqdm(paths, desc="mean face", unit="img", disable=not progress):
        image = load_image(path)
        for t in templates:
            face = warp_face(image, located[path].detection.landmarks, TEMPLATES[t]).double()
            sums[t] = sums[t] + face if t in sums else face
    return {t: ((sums[t] / len(paths)).float(), len(paths)) for t in templates}
