"""xCos on LFW: accuracy of cosine vs xCos-U/P/L, agreement, occlusion robustness, cost.

Why each number: accuracy (paper Table 2) shows the explanation costs no verification quality;
Pearson r that xCos tracks the teacher it replaces; the occlusion table (paper Fig. 5b) whether
local similarities with attention degrade more gracefully than one global cosine; the cost per
pair what a user pays for the explanation.

Protocol: the score of each pair of test fold k comes from the head trained without fold k's
identities (``train xcos --all-folds``); thresholds are chosen on the other nine folds
(``kfold_accuracy``), as for plain cosine. Occlusion hides part of face B of every pair (fixed
seed per pair), in the aligned crop: brush strokes over 10-40% of the face ellipse, or a mask
template placed from the template landmarks; the backbone's maps and embedding of each occluded
face are cached like the clean ones.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.backbones.base import FaceModel
from facexplain.backbones.registry import get_spec
from facexplain.backbones.spec import BackboneSpec
from facexplain.benchmarks.registry import measured_on
from facexplain.datasets.lfw import N_FOLDS, LfwPair, read_pairs
from facexplain.datasets.occlusion import (
    MaskTemplate,
    apply_mask,
    face_region,
    load_mask_templates,
    place_mask_template,
    random_mask,
)
from facexplain.heads.xcos import ATTENTION_KINDS, XCosHead, checkpoint_path, load_head
from facexplain.metrics.verification import kfold_accuracy
from facexplain.scoring import cosine
from facexplain.train.features import aligned_batch, maps_and_embeddings
from facexplain.train.xcos_data import LfwFeatures, XCosTrainConfig, load_lfw_features
from facexplain.types import LocatedFace

OCCLUSION_VERSION = "occ-v1"
TEMPLATES = "templates"


@dataclass(frozen=True)
class XCosBenchmarkConfig:
    backbone: str = "sface"
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    masks: Path = field(default_factory=lambda: settings.current().masks)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    checkpoint_root: Path | None = None
    areas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)
    templates: bool = True
    occlusion_fill: float = 0.0
    seed: int = 0
    timing_pairs: int = 30
    # Folds whose test pairs were looked at to choose training settings (bench/xcos_dev.py);
    # the JSON adds the mean over the other folds, the figure untouched by those choices.
    development_folds: tuple[int, ...] = (1, 2)
    batch_size: int = 32
    progress: bool = True


@dataclass(frozen=True)
class PairScores:
    """Scores of every LFW pair under one condition: backbone cosine and each xCos."""

    cosine: np.ndarray
    xcos: dict[str, np.ndarray]


def load_fold_heads(backbone: str, root: Path | None = None) -> list[XCosHead]:
    """The ten fold heads of ``backbone``, in fold order (1..10)."""
    heads = []
    for k in range(1, N_FOLDS + 1):
        path = checkpoint_path(backbone, k, root)
        if not path.is_file():
            from facexplain.errors import AssetMissing

            raise AssetMissing(f"missing xCos fold head {path}; run `facexplain train xcos "
                               f"--backbone {backbone} --all-folds` first")
        heads.append(load_head(path)[0])
    return heads


@torch.no_grad()
def fold_scores(heads: list[XCosHead], maps_a: torch.Tensor, maps_b: torch.Tensor,
                folds: np.ndarray, chunk: int = 500) -> dict[str, np.ndarray]:
    """xCos-U/P/L of each pair from the head of its own fold (maps float16 (N, C, h, w))."""
    out = {k: np.zeros(len(folds)) for k in ATTENTION_KINDS}
    for f, head in enumerate(heads):
        idx = np.flatnonzero(folds == f)
        for s in range(0, len(idx), chunk):
            sel = torch.from_numpy(idx[s : s + chunk])
            fa = head.features(maps_a[sel].float())
            fb = head.features(maps_b[sel].float())
            for kind in ATTENTION_KINDS:
                out[kind][idx[s : s + chunk]] = head.compare(fa, fb, kind).score.double().numpy()
    return out


def _unit_cos(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return cosine(a, b).double().numpy()


def occlude(face: torch.Tensor, condition: str, spec: BackboneSpec, rng: np.random.Generator,
            templates: list[tuple[MaskTemplate, np.ndarray]], fill: float) -> torch.Tensor:
    """Face B under one condition ('0.3' = 30% brush strokes, 'templates' = a random mask)."""
    marks = spec.alignment.as_array()
    size = spec.input_size
    if condition == TEMPLATES:
        tpl, rgba = templates[int(rng.integers(len(templates)))]
        return place_mask_template(face, marks, tpl, rgba)[0]
    mask = random_mask(size, float(condition), rng, face_region(marks, size))
    return apply_mask(face, mask, fill)


def occluded_features(
    model: FaceModel, spec: BackboneSpec, node: str, pairs: list[LfwPair],
    located: dict[Path, LocatedFace], cfg: XCosBenchmarkConfig, condition: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps (float16) and embeddings of face B of every pair, occluded; cached on disk."""
    from safetensors.torch import load_file, save_file

    ident = (f"{OCCLUSION_VERSION}|{spec.name}|{node}|{condition}|{cfg.seed}|"
             f"{cfg.occlusion_fill}|" + "|".join(f"{p.name_b}:{p.index_b}" for p in pairs))
    key = hashlib.sha1(ident.encode()).hexdigest()[:16]
    file = cfg.cache_dir / "xcos" / "occluded" / spec.name / f"{condition}-{key}.safetensors"
    if file.is_file():
        try:
            got = load_file(str(file))
            return got["maps"], got["embeddings"]
        except Exception:  # damaged: recompute
            pass
    templates: list[tuple[MaskTemplate, np.ndarray]] = []
    if condition == TEMPLATES:
        templates = [(t, t.load_rgba()) for t in load_mask_templates(cfg.masks)]
    cond_id = int(hashlib.sha1(condition.encode()).hexdigest()[:8], 16)
    maps, embs = [], []
    bar = tqdm(total=len(pairs), desc=f"occluded {condition}", unit="pair",
               disable=not cfg.progress)
    for s in range(0, len(pairs), cfg.batch_size):
        chunk = pairs[s : s + cfg.batch_size]
        faces = aligned_batch([p.path_b(cfg.images) for p in chunk], located, spec)
        hidden = torch.stack([
            occlude(face, condition, spec, np.random.default_rng([cfg.seed, cond_id, s + i]),
                    templates, cfg.occlusion_fill)
            for i, face in enumerate(faces)
        ])
        m, e = maps_and_embeddings(model, hidden, node, cfg.batch_size)
        maps.append(m.half())
        embs.append(e)
        bar.update(len(chunk))
    bar.close()
    out_maps, out_embs = torch.cat(maps).contiguous(), torch.cat(embs).contiguous()
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    save_file({"maps": out_maps, "embeddings": out_embs}, str(tmp))
    tmp.replace(file)
    return out_maps, out_embs


def fold_accuracies(scores: PairScores, same: np.ndarray,
                    folds: np.ndarray) -> dict[str, list[float]]:
    """Each score's accuracy on each test fold (threshold from the other nine)."""
    out = {"cosine": kfold_accuracy(scores.cosine, same, folds).accuracies.tolist()}
    for kind, s in scores.xcos.items():
        out[f"xcos_{kind}"] = kfold_accuracy(s, same, folds).accuracies.tolist()
    return out


def accuracy_row(scores: PairScores, same: np.ndarray, folds: np.ndarray) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in fold_accuracies(scores, same, folds).items()}


def mean_over_folds(per_fold: dict[str, list[float]], keep: tuple[int, ...]) -> dict[str, float]:
    """Mean accuracy over the 1-based folds ``keep`` (those no training choice looked at)."""
    return {k: float(np.mean([v[f - 1] for f in keep])) for k, v in per_fold.items()}


def time_per_pair(model: FaceModel, head: XCosHead, node: str, pairs: torch.Tensor,
                  repeats: int = 3) -> dict[str, float]:
    """Median milliseconds per pair (batch of one pair): backbone to embedding + cosine; to the
    map + xCos-L head; both at once (the explainer); and the head alone."""
    from facexplain.backbones.base import EMBEDDING

    def run_cosine(pair: torch.Tensor) -> None:
        e = model.forward_nodes(pair, (EMBEDDING,))[EMBEDDING]
        cosine(e[0:1], e[1:2])

    def run_xcos(pair: torch.Tensor) -> None:
        m = model.forward_nodes(pair, (node,))[node]
        head(m[0:1], m[1:2], "L")

    def run_both(pair: torch.Tensor) -> None:  # what the explainer runs: S, W and the cosine
        out = model.forward_nodes(pair, (node, EMBEDDING))
        head(out[node][0:1], out[node][1:2], "L")
        cosine(out[EMBEDDING][0:1], out[EMBEDDING][1:2])

    def run_head(maps: torch.Tensor) -> None:
        head(maps[0:1], maps[1:2], "L")

    def ms(fn: Callable[[torch.Tensor], None], x: torch.Tensor) -> float:
        t = time.perf_counter()
        fn(x)
        return 1000 * (time.perf_counter() - t)

    with torch.inference_mode():
        items = [pairs[i : i + 2] for i in range(0, pairs.shape[0] - 1, 2)]
        maps = [model.forward_nodes(x, (node,))[node] for x in items]
        run_cosine(items[0])  # warm-up
        run_xcos(items[0])
        cos_ms, xcos_ms, both_ms, head_ms = [], [], [], []
        for _ in range(repeats):
            for x, m in zip(items, maps, strict=True):
                # Interleaved, so that load from other processes hits both alike.
                cos_ms.append(ms(run_cosine, x))
                xcos_ms.append(ms(run_xcos, x))
                both_ms.append(ms(run_both, x))
                head_ms.append(ms(run_head, m))
    return {"cosine_ms": statistics.median(cos_ms), "xcos_ms": statistics.median(xcos_ms),
            "xcos_and_cosine_ms": statistics.median(both_ms),
            "head_only_ms": statistics.median(head_ms), "n_pairs": float(len(items)),
            "threads": float(torch.get_num_threads())}


def run_xcos_benchmark(
    cfg: XCosBenchmarkConfig, log: Callable[[str], None] = print
) -> dict[str, object]:
    """Everything the issue asks to show, as one JSON-ready dict."""
    started = time.perf_counter()
    heads = load_fold_heads(cfg.backbone, cfg.checkpoint_root)
    hc = heads[0].config
    node = hc.node
    train_cfg = XCosTrainConfig(backbone=cfg.backbone, teacher=hc.teacher or None, node=node,
                                images=cfg.images, pairs=cfg.pairs, cache_dir=cfg.cache_dir)
    feats = load_lfw_features(train_cfg, cfg.progress)
    pairs = read_pairs(cfg.pairs)
    index = {p: i for i, p in enumerate(feats.paths)}
    ia = torch.from_numpy(np.asarray([index[p.path_a(cfg.images)] for p in pairs]))
    ib = torch.from_numpy(np.asarray([index[p.path_b(cfg.images)] for p in pairs]))
    same = np.asarray([p.same for p in pairs])
    folds = np.asarray([p.fold for p in pairs])

    maps = feats.data.maps
    clean = PairScores(
        _unit_cos(feats.backbone_embeddings[ia], feats.backbone_embeddings[ib]),
        fold_scores(heads, maps[ia], maps[ib], folds),
    )
    teacher = (feats.data.teacher[ia] * feats.data.teacher[ib]).sum(dim=1).double().numpy()
    per_fold = fold_accuracies(clean, same, folds)
    per_fold["teacher"] = kfold_accuracy(teacher, same, folds).accuracies.tolist()
    accuracy = {k: float(np.mean(v)) for k, v in per_fold.items()}
    untouched = tuple(f for f in range(1, N_FOLDS + 1) if f not in cfg.development_folds)
    pearson = {k: float(np.corrcoef(v, teacher)[0, 1]) for k, v in clean.xcos.items()}
    log(_fmt_row("clean", accuracy))

    occlusion: dict[str, dict[str, float]] = {}
    conditions = [f"{a:g}" for a in cfg.areas] + ([TEMPLATES] if cfg.templates else [])
    spec = get_spec(cfg.backbone)
    model, located = _backbone_and_detections(cfg, feats)
    if conditions:
        for cond in conditions:
            occ_maps, occ_embs = occluded_features(model, spec, node, pairs, located, cfg, cond)
            scores = PairScores(
                _unit_cos(feats.backbone_embeddings[ia], occ_embs),
                fold_scores(heads, maps[ia], occ_maps, folds),
            )
            occlusion[cond] = accuracy_row(scores, same, folds)
            log(_fmt_row(f"occluded {cond}", occlusion[cond]))
    timing = {} if cfg.timing_pairs <= 0 else time_per_pair(
        model, heads[0], node, aligned_batch(feats.paths[: 2 * cfg.timing_pairs], located, spec))
    return {
        "backbone": cfg.backbone,
        "teacher": hc.teacher or cfg.backbone,
        "node": node,
        "grid": [hc.height, hc.width, hc.grid_channels],
        "n_pairs": len(pairs),
        "accuracy": accuracy,
        "fold_accuracy": per_fold,
        "development_folds": list(cfg.development_folds),
        "accuracy_untouched_folds": mean_over_folds(per_fold, untouched),
        "pearson_r_vs_teacher": pearson,
        "occlusion_accuracy": occlusion,
        "occlusion_drop": {c: {k: accuracy[k] - v for k, v in row.items()}
                           for c, row in occlusion.items()},
        "timing": timing,
        "seed": cfg.seed,
        "seconds": round(time.perf_counter() - started, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"),
    }


def _backbone_and_detections(
    cfg: XCosBenchmarkConfig, feats: LfwFeatures
) -> tuple[FaceModel, dict[Path, LocatedFace]]:
    from facexplain.cache import DiskCache
    from facexplain.datasets.faces import locate_all
    from facexplain.pipeline import FacePipeline

    pipe = FacePipeline(cfg.backbone)
    located = locate_all(pipe, feats.paths, DiskCache(cfg.cache_dir), False)
    return pipe.model, located


def _fmt_row(name: str, row: dict[str, float]) -> str:
    cells = ", ".join(f"{k} {100 * v:.2f}" for k, v in row.items())
    return f"{name}: {cells}"


def cell_masks(points: np.ndarray, size: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(face cells, border ring) boolean (h, w) masks for a template's landmarks in pixels:
    face cells have their centre in the landmarks' box widened by half a cell."""
    ch, cw = size / h, size / w
    cy = (np.arange(h) + 0.5) * ch
    cx = (np.arange(w) + 0.5) * cw
    x0, y0 = points.min(axis=0) - (cw / 2, ch / 2)
    x1, y1 = points.max(axis=0) + (cw / 2, ch / 2)
    face = ((cy[:, None] >= y0) & (cy[:, None] <= y1)) & ((cx[None] >= x0) & (cx[None] <= x1))
    border = np.zeros((h, w), dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    return face, border
