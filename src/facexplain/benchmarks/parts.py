"""`facexplain benchmark interpretable`: the part-filter head's ablation, as the paper measures it.

Why: the paper claims that SAD + FAD give (i) filters tied to face parts (average peak locations
spread over the face, each filter's peak steady across faces: Figs. 5, 9) and (ii) robustness to
occlusion (a smaller accuracy drop). Each claim is measured here on real data, for the four
variants and against the backbone's own cosine:

- LFW 10-fold accuracy, clean and with one face of every pair occluded by the paper's warped
  rectangle (the face's own, drawn from the bank), and TAR at FAR 1e-2 / 1e-3. The head scoring
  folds 1-5 ('half1') never saw their identities, nor 'half2' folds 6-10; each test fold's
  threshold comes from the other four folds of its half (the same head).
- Peak statistics of LMF responses on the held-out pair photos of each half.
- EER on Yale faces: every 'glasses' photo against every photo of the other conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve
from tqdm import tqdm

from facexplain.benchmarks.parts_report import markdown_table
from facexplain.datasets.lfw import LfwPair
from facexplain.heads.parts import PartsHead
from facexplain.metrics.verification import kfold_accuracy, tar_at_far
from facexplain.train.parts import (
    HALVES,
    PartsData,
    PartsTrainConfig,
    embed_with_head,
    smoothed_responses,
)
from facexplain.train.parts_features import HeadInputs

Embedder = Callable[[HeadInputs, np.ndarray], torch.Tensor]  # (inputs, image index) -> unit f


@dataclass(frozen=True)
class HalfPairs:
    """One half's pairs as image indices into ``PartsData.paths``."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    folds: np.ndarray


def half_pairs(data: PartsData, pairs: list[LfwPair], images: Path, half: str) -> HalfPairs:
    index = {p: i for i, p in enumerate(data.paths)}
    chosen = [p for p in pairs if p.fold in HALVES[half]]
    return HalfPairs(
        np.asarray([index[p.path_a(images)] for p in chosen]),
        np.asarray([index[p.path_b(images)] for p in chosen]),
        np.asarray([p.same for p in chosen], dtype=bool),
        np.asarray([p.fold for p in chosen]))


def verification_row(embed: Embedder, data: PartsData, hp: HalfPairs) -> dict[str, np.ndarray]:
    """Scores of one half's pairs: clean, and with face B occluded."""
    fa = embed(data.clean, hp.a)
    fb = embed(data.clean, hp.b)
    fb_occ = embed(data.occluded, hp.b)
    return {"clean": (fa * fb).sum(1).numpy(), "occluded": (fa * fb_occ).sum(1).numpy()}


def backbone_embedder(inputs: HeadInputs, index: np.ndarray) -> torch.Tensor:
    return F.normalize(inputs.embedding[torch.as_tensor(index)].float(), dim=1)


def head_embedder(head: PartsHead) -> Embedder:
    return lambda inputs, index: embed_with_head(head, inputs, index)


def summarise(scores: dict[str, list[np.ndarray]], halves: list[HalfPairs]) -> dict[str, float]:
    """Accuracy (10 folds, thresholds within each half), TAR@FAR averaged over the halves."""
    row: dict[str, float] = {}
    for cond, per_half in scores.items():
        accs = np.concatenate([kfold_accuracy(s, hp.same, hp.folds).accuracies
                               for s, hp in zip(per_half, halves, strict=True)])
        row[f"{cond}_accuracy"] = float(accs.mean())
        row[f"{cond}_accuracy_std"] = float(accs.std())
        for far in (1e-2, 1e-3):
            row[f"{cond}_tar@{far:g}"] = float(np.mean([
                tar_at_far(s, hp.same, far) for s, hp in zip(per_half, halves, strict=True)]))
    row["accuracy_drop"] = row["clean_accuracy"] - row["occluded_accuracy"]
    return row


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate: where the false-accept and false-reject rates cross."""
    fpr, tpr, _ = roc_curve(same.astype(int), scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def yale_pairs(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every '.glasses' photo against every photo of the other conditions (glasses on one side
    only): (index a, index b, same person)."""
    subject = [p.name.split(".")[0] for p in paths]
    glasses = [i for i, p in enumerate(paths) if p.name.endswith(".glasses")]
    others = [i for i, p in enumerate(paths) if not p.name.endswith(".glasses")]
    grid_a, grid_b = np.meshgrid(glasses, others, indexing="ij")
    a, b = grid_a.ravel(), grid_b.ravel()
    same = np.asarray([subject[i] == subject[j] for i, j in zip(a, b, strict=True)])
    return a, b, same


def yale_inputs(data_dir: Path, backbone: str, cache_dir: Path,
                progress: bool) -> tuple[list[Path], HeadInputs]:
    """Head inputs of every Yale photo (the face nearest the centre of each)."""
    from facexplain.backbones.registry import get_spec
    from facexplain.cache import DiskCache
    from facexplain.datasets.faces import locate_all
    from facexplain.errors import InputNotFound
    from facexplain.heads.parts import nodes_for
    from facexplain.pipeline import FacePipeline
    from facexplain.train.parts_features import extract_head_inputs

    paths = sorted(p for p in data_dir.glob("subject*.*") if p.is_file())
    if not paths:
        raise InputNotFound(f"no Yale photos (subjectNN.condition) in {data_dir}")
    spec = get_spec(backbone)
    pipe = FacePipeline(backbone)
    located = locate_all(pipe, paths, DiskCache(cache_dir), progress)
    nodes = nodes_for(backbone)
    grid = int(pipe.model.forward_nodes(torch.zeros(1, 3, spec.input_size, spec.input_size),
                                        (nodes[1],))[nodes[1]].shape[-1])
    return paths, extract_head_inputs(pipe.model, spec, nodes, grid, paths, located, cache_dir,
                                      tag="yale", progress=progress)


def peak_row(head: PartsHead, data: PartsData, index: np.ndarray) -> dict[str, float]:
    """Spread of the filters' average peak locations and their per-filter std, in cells."""
    from facexplain.heads.parts_readout import peak_locations, peak_statistics

    maps = smoothed_responses(head, data.clean, index)
    pos, _ = peak_locations(maps)
    stats = peak_statistics(pos, head.config.grid)
    return {"peak_spread": float(stats.spread), "peak_std_median": float(stats.median_std)}


def evaluate(embedders: dict[str, dict[str, Embedder]], heads: dict[str, dict[str, PartsHead]],
             data: PartsData, pairs: list[LfwPair], images: Path,
             yale: tuple[list[Path], HeadInputs] | None) -> dict[str, dict[str, float]]:
    """One row per model: ``embedders[name][half]`` scores that half's pairs."""
    halves = ["half1", "half2"]
    hps = [half_pairs(data, pairs, images, h) for h in halves]
    rows: dict[str, dict[str, float]] = {}
    for name, per_half in tqdm(embedders.items(), desc="evaluate", unit="model"):
        scores: dict[str, list[np.ndarray]] = {"clean": [], "occluded": []}
        for h, hp in zip(halves, hps, strict=True):
            for cond, s in verification_row(per_half[h], data, hp).items():
                scores[cond].append(s)
        row = summarise(scores, hps)
        if name in heads:
            peaks = [peak_row(heads[name][h], data, np.unique(np.r_[hp.a, hp.b])[:1500])
                     for h, hp in zip(halves, hps, strict=True)]
            row |= {k: float(np.mean([p[k] for p in peaks])) for k in peaks[0]}
        if yale is not None:
            paths, inputs = yale
            ia, ib, same = yale_pairs(paths)
            fa, fb = per_half["half1"](inputs, ia), per_half["half1"](inputs, ib)
            row["yale_eer"] = eer((fa * fb).sum(1).numpy(), same)
        rows[name] = row
    return rows


def _trained_as(path: Path, cfg: PartsTrainConfig) -> bool:
    """Whether ``path`` holds a head trained with exactly ``cfg`` (then it is reused)."""
    import json

    meta_file = path.with_suffix(".json")
    if not path.is_file() or not meta_file.is_file():
        return False
    stored = json.loads(meta_file.read_text()).get("train") or {}
    # heads trained before a setting existed were trained at its default
    added = {"mesh": 5, "unfreeze": False, "tail_lr": PartsTrainConfig.tail_lr}
    return bool({**added, **stored} == cfg.to_json())


def keep_label(cfg: PartsTrainConfig) -> str:
    return f"t={round(cfg.fad_keep * cfg.n_filters)}/{cfg.n_filters}"


def run_interpretable_benchmark(
    base: PartsTrainConfig, variants: list[str], extra_keeps: list[float] | None = None,
    yale_dir: Path | None = None, retrain: bool = False, progress: bool = True,
    root: Path | None = None, log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Train (or reuse) the half heads of every variant, then measure them all (module doc)."""
    from dataclasses import replace

    from facexplain.datasets.lfw import read_pairs
    from facexplain.heads.parts import checkpoint_path, load_head
    from facexplain.train.parts import load_parts_data, run_parts_training

    data = load_parts_data(base, progress)
    pairs = read_pairs(base.pairs)
    halves = ["half1", "half2"]
    tail = base.checkpoint_suffix  # heads of another N_f or mesh never replace the defaults
    runs = [(v, replace(base, variant=v), tail) for v in variants]
    runs += [(f"sad+fad ({keep_label(replace(base, fad_keep=k))})",
              replace(base, variant="sad+fad", fad_keep=k), f"{tail}-keep{k:.3f}")
             for k in (extra_keeps or []) if k != base.fad_keep]
    heads: dict[str, dict[str, PartsHead]] = {}
    trained: dict[str, dict[str, object]] = {}
    for name, cfg, suffix in runs:
        heads[name] = {}
        for half in halves:
            path = checkpoint_path(base.backbone, cfg.variant, half + suffix, root)
            if retrain or not _trained_as(path, cfg):
                log(f"training {name} for {half} ...")
                run_parts_training(cfg, [half], data, progress, root, suffix=suffix)
            heads[name][half], meta = load_head(path)
            trained[f"{name}/{half}"] = {k: meta[k] for k in ("n_train_images", "n_classes",
                                                              "seconds", "history")}
    embedders: dict[str, dict[str, Embedder]] = {
        f"{base.backbone} cosine": {h: backbone_embedder for h in halves}}
    for name in heads:
        embedders[name] = {h: head_embedder(heads[name][h]) for h in halves}
    yale = yale_inputs(yale_dir, base.backbone, base.cache_dir, progress) if yale_dir else None
    rows = evaluate(embedders, heads, data, pairs, base.images, yale)
    return {"backbone": base.backbone, "config": base.to_json(), "rows": rows,
            "training": trained, "n_images": len(data.paths),
            "table": markdown_table(rows)}
