"""Faithfulness of pair explanations on held-out LFW pairs: deletion curves per method.

Pairs come from folds 6-10 (indices 5..9) of ``pairs.txt``, the *last* pairs of each class in
each fold, so they are disjoint from the occlusion-statistics set (the first pairs of every
fold) whose Θ is calibrated; the faithfulness ranking never uses Θ anyway (Θ only rescales Δ).
For every pair each method explains the pair score; impostor pairs are scored along the
difference-map deletion curve, genuine pairs along the similarity-map curve (``metrics.
faithfulness``). Signed methods rank by their ``delta`` map (difference: highest Δ first,
similarity: lowest first); the ``-abs`` rows rank by the method's unsigned ``magnitude``
picture for both curves, as the classic saliency/deconvnet figures show it.

Two seeded random orders are scored on every pair, because they differ: the same random
positions in both faces (as a pairwise map removes them) and independent positions per face.
Hiding the same scattered pixels in both faces stamps a shared pattern on them and by itself
raises an impostor pair's similarity, so each method is compared with the random order of its
own structure (occlusion: shared; per-face maps: per face), recorded in ``baseline_of_row``.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.benchmarks.lfw import _check_images_exist, locate_all
from facexplain.cache import DiskCache
from facexplain.datasets.lfw import LfwPair, read_pairs, unique_images
from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer
from facexplain.explain.gradients import reference_for
from facexplain.explain.registry import ExplainOptions, MethodInfo, all_methods, get_method
from facexplain.io import load_image
from facexplain.metrics.faithfulness import (
    DEFAULT_FRACTIONS,
    CurveSummary,
    curve_aucs,
    deletion_curve,
    is_pairwise,
    random_ranking,
    summarize,
)
from facexplain.pipeline import FacePipeline


def ranked_methods() -> tuple[str, ...]:
    """Every registered method with a map that ranks pixels (``MethodInfo.ranking_map``)."""
    return tuple(name for name, info in all_methods().items() if info.ranking_map)

HELDOUT_FOLDS = (5, 6, 7, 8, 9)  # folds 6-10 of pairs.txt
RANDOM_SHARED = "random-shared"  # same random positions in both faces
RANDOM_PER_FACE = "random-per-face"  # independent random positions per face


@dataclass(frozen=True)
class FaithfulnessConfig:
    backbone: str = "sface"
    n_pairs: int = 300
    methods: tuple[str, ...] = field(default_factory=ranked_methods)
    fill: str = "mean-face"
    patch: int = 16
    stride: int = 8
    ig_steps: int = 32
    block: int = 1
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    folds: tuple[int, ...] = HELDOUT_FOLDS
    seed: int = 0
    device: str = "cpu"
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    progress: bool = True


@dataclass(frozen=True)
class FaithfulnessResult:
    summary: dict[str, object]
    rows: list[CurveSummary]
    curves: dict[str, dict[str, np.ndarray]]  # kind -> row name -> (P, K) curves


def select_heldout_pairs(pairs: list[LfwPair], n_pairs: int, folds: tuple[int, ...]
                         ) -> list[LfwPair]:
    """n/2 genuine and n/2 impostor pairs spread evenly over ``folds``, taken from the end of
    each fold's class block (disjoint from selections that take each block's first pairs)."""
    if n_pairs < 2 or n_pairs % 2:
        raise InvalidArgument(f"--pairs must be an even number >= 2, got {n_pairs}")
    present = sorted({p.fold for p in pairs})
    missing = [f + 1 for f in folds if f not in present]
    if missing:
        raise InvalidArgument(f"pairs file has no fold(s) {missing}")
    half = n_pairs // 2
    per_fold = math.ceil(half / len(folds))
    chosen: dict[bool, list[LfwPair]] = {True: [], False: []}
    for same in (True, False):
        pools = [[p for p in pairs if p.fold == f and p.same == same] for f in folds]
        for i in range(per_fold):  # round-robin over folds, from each block's end
            for pool in pools:
                if i < len(pool) and len(chosen[same]) < half:
                    chosen[same].append(pool[len(pool) - 1 - i])
        if len(chosen[same]) < half:
            raise InvalidArgument(f"only {len(chosen[same])} {'genuine' if same else 'impostor'}"
                                  f" pairs in folds {[f + 1 for f in folds]}, need {half}")
    return chosen[True] + chosen[False]


def _explainers(cfg: FaithfulnessConfig, pipe: FacePipeline, fill: torch.Tensor
                ) -> dict[str, Explainer]:
    """One explainer per method (from the registry), all removing pixels with the same ``fill``
    (2, 3, H, W)."""
    options = ExplainOptions(patch=cfg.patch, stride=cfg.stride, fill=fill, gradient_fill=fill,
                             ig_steps=cfg.ig_steps)
    return {m: get_method(m).build(pipe.scorer, options) for m in cfg.methods}


def run_faithfulness(cfg: FaithfulnessConfig, pipeline: FacePipeline | None = None
                     ) -> FaithfulnessResult:
    """Deletion curves of every method (and random order) on the held-out pairs."""
    started = time.perf_counter()
    valid = ranked_methods()
    unknown = [m for m in cfg.methods if m not in valid]
    if unknown or not cfg.methods:
        raise InvalidArgument(f"unknown or unranked method(s) {unknown}; valid: "
                              f"{', '.join(valid)}")
    infos: dict[str, MethodInfo] = {m: get_method(m) for m in cfg.methods}
    from facexplain.explain.fills import FILLS

    if cfg.fill not in FILLS:
        raise InvalidArgument(f"unknown fill '{cfg.fill}'; valid: {', '.join(FILLS)}")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgument("--device cuda requested but torch sees no CUDA device")
    pairs = select_heldout_pairs(read_pairs(cfg.pairs), cfg.n_pairs, cfg.folds)
    paths = unique_images(pairs, cfg.images)
    _check_images_exist(paths)
    pipe = pipeline or FacePipeline(cfg.backbone)
    located = locate_all(pipe, paths, DiskCache(cfg.cache_dir), progress=False)
    pipe.model.to(device)
    score_fn = pipe.scorer
    template = pipe.spec.template
    size = pipe.spec.input_size
    if cfg.block < 1 or size % cfg.block:
        raise InvalidArgument(f"--block {cfg.block} does not divide the {size}x{size} crop")
    per_pair_fill = cfg.fill not in ("mean-face", "zero")  # channel-mean, blur: from the pair
    fill = reference_for(torch.zeros(2, 3, size, size), "zero" if per_pair_fill else cfg.fill,
                         template).to(device)
    explainers = _explainers(cfg, pipe, fill)

    rows = [*cfg.methods, *(f"{m}-abs" for m in cfg.methods if infos[m].magnitude_map)]
    baselines = (RANDOM_SHARED, RANDOM_PER_FACE)
    curves: dict[str, dict[str, list[np.ndarray]]] = {
        kind: {r: [] for r in [*rows, *baselines]} for kind in ("difference", "similarity")
    }
    pairwise: dict[str, bool] = {}  # row -> its maps are one map for both faces
    notes: dict[str, dict[str, object]] = {}
    seconds: dict[str, float] = {m: 0.0 for m in cfg.methods}
    original: list[float] = []
    bar = tqdm(pairs, desc=f"faithfulness {cfg.backbone}", unit="pair", disable=not cfg.progress)
    for i, p in enumerate(bar):
        pair = torch.stack([
            warp_face(load_image(q), located[q].detection.landmarks, pipe.spec.alignment)
            for q in (p.path_a(cfg.images), p.path_b(cfg.images))
        ])
        if per_pair_fill:  # fills are built on the CPU, then follow the pair
            fill = reference_for(pair, cfg.fill, template).to(device)
            explainers = _explainers(cfg, pipe, fill)
        pair = pair.to(device)
        kind = "similarity" if p.same else "difference"
        sign = 1.0 if kind == "difference" else -1.0
        seed = cfg.seed + i

        def curve(ranking: torch.Tensor, pair: torch.Tensor = pair, fill: torch.Tensor = fill,
                  seed: int = seed) -> np.ndarray:
            return deletion_curve(score_fn, pair, ranking, fill, cfg.fractions, seed=seed,
                                  block=cfg.block)

        for name, shared in ((RANDOM_SHARED, True), (RANDOM_PER_FACE, False)):
            curves[kind][name].append(curve(random_ranking(size, size, seed, shared).to(device)))
        base = curves[kind][RANDOM_SHARED][-1]
        original.append(float(base[0]))
        for method, explainer in explainers.items():
            t0 = time.perf_counter()
            explained = explainer.explain(pair)
            seconds[method] += time.perf_counter() - t0
            maps = explained.maps
            if method not in notes:
                notes[method] = {k: v for k, v in explained.meta.to_json().items()
                                 if k != "seconds" and not isinstance(v, list)}
            info = infos[method]
            assert info.ranking_map is not None
            magnitude = maps.get(info.magnitude_map) if info.magnitude_map else None
            for row, ranking in ((method, sign * maps[info.ranking_map]),
                                 (f"{method}-abs", magnitude)):
                if ranking is not None and row in curves[kind]:
                    pairwise.setdefault(row, is_pairwise(ranking))
                    curves[kind][row].append(curve(ranking.to(device)))
        bar.set_postfix(kind=kind[:3], sim=f"{base[0]:.3f}")

    arrays = {k: {r: np.stack(v) for r, v in d.items() if v} for k, d in curves.items()}
    summaries: list[CurveSummary] = []
    for kind, by_row in arrays.items():
        for row in rows:
            if row in by_row:
                base_row = RANDOM_SHARED if pairwise.get(row) else RANDOM_PER_FACE
                summaries.append(summarize(row, kind, cfg.fractions, by_row[row], by_row[base_row]))
    same = np.asarray([p.same for p in pairs])
    summary: dict[str, object] = {
        "backbone": cfg.backbone,
        "n_pairs": len(pairs),
        "n_genuine": int(same.sum()),
        "n_impostor": int((~same).sum()),
        "folds": [f + 1 for f in cfg.folds],
        "pair_selection": "last pairs of each class block in each fold, round-robin over folds",
        "methods": list(cfg.methods),
        "fill": cfg.fill,
        "occlusion": {"patch": cfg.patch, "stride": cfg.stride},
        "ig_steps": cfg.ig_steps,
        "block": cfg.block,
        "fractions": list(cfg.fractions),
        "seed": cfg.seed,
        "device": str(device),
        "baseline_of_row": {r: RANDOM_SHARED if pairwise.get(r) else RANDOM_PER_FACE
                            for r in rows},
        "method_meta_first_pair": notes,
        "rows": [s.to_dict() for s in summaries],
        "random": {k: {b: {"auc_mean": float(curve_aucs(cfg.fractions, v[b]).mean()),
                           "mean_curve": [round(float(x), 6) for x in v[b].mean(axis=0)]}
                       for b in baselines if b in v}
                   for k, v in arrays.items()},
        "seconds_per_pair": {m: round(s / len(pairs), 3) for m, s in seconds.items()},
        "original_similarity_mean": {
            "genuine": float(np.mean([s for s, g in zip(original, same, strict=True) if g])),
            "impostor": float(np.mean([s for s, g in zip(original, same, strict=True) if not g])),
        },
        "per_pair_auc": {k: {r: [round(float(a), 5) for a in curve_aucs(cfg.fractions, v[r])]
                             for r in v} for k, v in arrays.items()},
        "pairs": [f"{p.name_a}_{p.index_a:04d}|{p.name_b}_{p.index_b:04d}" for p in pairs],
        "seconds": round(time.perf_counter() - started, 1),
        "date": dt.date.today().isoformat(),
        "machine": (f"{platform.machine()}, {torch.get_num_threads()} torch threads"
                    + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda"
                       else "")),
    }
    return FaithfulnessResult(summary, summaries, arrays)


def format_table(result: FaithfulnessResult) -> str:
    """Plain-text table: per method the AUC of each curve, its gain over random and win rate."""
    by = {(s.method, s.kind): s for s in result.rows}
    methods = list(dict.fromkeys(s.method for s in result.rows))
    rnd = result.summary["random"]
    assert isinstance(rnd, dict)
    secs = result.summary["seconds_per_pair"]
    assert isinstance(secs, dict)
    head = (f"{'method':<16}{'diff AUC↑':>10}{'gain':>9}{'>rnd':>6}"
            f"{'sim AUC↓':>10}{'gain':>9}{'>rnd':>6}{'s/pair':>8}")
    lines = [head, "-" * len(head)]

    def cells(s: CurveSummary | None) -> str:
        if s is None:
            return f"{'-':>10}{'-':>9}{'-':>6}"
        return f"{s.auc_mean:>10.4f}{s.gain:>+9.4f}{100 * s.better_than_random:>5.0f}%"

    for m in methods:
        t = secs.get(m.removesuffix("-abs"))
        lines.append(f"{m:<16}{cells(by.get((m, 'difference')))}"
                     f"{cells(by.get((m, 'similarity')))}{'' if t is None else f'{t:>8.2f}'}")
    for b in (RANDOM_SHARED, RANDOM_PER_FACE):
        d = rnd.get("difference", {}).get(b, {}).get("auc_mean", float("nan"))
        s = rnd.get("similarity", {}).get(b, {}).get("auc_mean", float("nan"))
        lines.append(f"{b:<16}{d:>10.4f}{'':>15}{s:>10.4f}")
    return "\n".join(lines)


def plot_curves(result: FaithfulnessResult, path: Path) -> Path:
    """Mean deletion curves: impostor difference curves left, genuine similarity curves right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = np.asarray(result.summary["fractions"], dtype=np.float64) * 100
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    titles = {"difference": "impostor pairs: remove top of difference map (↑ better)",
              "similarity": "genuine pairs: remove top of similarity map (↓ better)"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(s.method.removesuffix("-abs") for s in result.rows))
    for ax, kind in zip(axes, ("difference", "similarity"), strict=True):
        by_row = result.curves.get(kind, {})
        for j, m in enumerate(methods):
            for row, style in ((m, "-"), (f"{m}-abs", ":")):
                if row in by_row:
                    ax.plot(fractions, by_row[row].mean(axis=0), style,
                            color=colors[j % len(colors)], label=row)
        n = 0
        for b, style in ((RANDOM_SHARED, "--"), (RANDOM_PER_FACE, "-.")):
            if b in by_row:
                ax.plot(fractions, by_row[b].mean(axis=0), style, color="k", label=b)
                n = by_row[b].shape[0]
        ax.set_title(f"{titles[kind]} (n={n})", fontsize=8)
        ax.set_xlabel("pixels removed per face (%)")
        ax.set_ylabel("cosine similarity")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    unit = int(result.summary.get("block", 1))  # type: ignore[call-overload]
    fig.suptitle(f"{result.summary['backbone']}: deletion curves, fill {result.summary['fill']}, "
                 + ("single pixels" if unit == 1 else f"{unit}x{unit} blocks"), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
