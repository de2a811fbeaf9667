"""Training the xCos head on a frozen backbone, with LFW's folds kept honest.

Why this shape: the backbone never changes, so its maps are extracted once (``train.features``)
and every epoch only runs the small head. The loss is Eq. 10 (MSE between xCos-L and the
teacher's cosine) plus a margin-softmax identity loss on the flattened grid features. For test
fold k, the head sees only images of identities that occur nowhere in fold k's pairs (LFW has
thousands of such identities), so fold k's scores are out-of-sample; ``fold=None`` trains on all
of LFW, the default head for explaining new photos. P is estimated after training on training
pairs (Eqs. 5-6) and stored in the checkpoint next to the weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.heads.xcos import (
    XCOS_HEADS,
    XCosHead,
    XCosHeadConfig,
    checkpoint_path,
    pearson_attention,
    save_head,
)
from facexplain.losses.margins import MarginSoftmax
from facexplain.losses.xcos import xcos_loss
from facexplain.train.first_use import ensure_head
from facexplain.train.result import TrainResult
from facexplain.train.xcos_data import (
    LfwFeatures,
    PairSampler,
    TrainingData,
    XCosTrainConfig,
    load_lfw_features,
    training_subset,
)


def train_head(
    data: TrainingData, subset: np.ndarray, cfg: XCosTrainConfig, head_config: XCosHeadConfig,
    progress: bool = True, desc: str = "train xcos",
) -> TrainResult[XCosHead]:
    """Fit grid conv + attention (and the identity classifier) on pairs from ``subset``."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    subset = np.asarray(subset)
    sampler = PairSampler(data.identities, subset, rng)
    # Identity classes: identities with at least two training images (others only serve pairs).
    classes = np.full(len(data.identities), -1, dtype=np.int64)
    for k, person in enumerate(sorted(sampler.groups)):
        classes[sampler.groups[person]] = k
    class_of = torch.from_numpy(classes)
    head = XCosHead(head_config)
    margin = MarginSoftmax(head.feature_dim, max(1, len(sampler.groups)), cfg.identity_loss,
                           cfg.margin, cfg.scale)
    params = list(head.parameters()) + list(margin.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, cfg.pairs_per_epoch // cfg.batch_pairs)
    # The paper divides the rate by 10 three times late in training (epochs 12/15/18 of ~20).
    milestones = [round(cfg.epochs * f) * steps for f in (0.6, 0.75, 0.9)]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    history: list[dict[str, float]] = []
    bar = tqdm(total=cfg.epochs * steps, desc=desc, unit="step", disable=not progress)
    head.train()
    for epoch in range(cfg.epochs):
        sums = {"loss": 0.0, "cos": 0.0, "identity": 0.0}
        for _ in range(steps):
            images, ia, ib = sampler.batch(cfg.batch_images, cfg.batch_pairs,
                                           cfg.genuine_fraction)
            idx = torch.from_numpy(images)
            unit = data.teacher[idx]
            if cfg.hard_fraction > 0:
                ia, ib = _with_hard_impostors(ia, ib, unit, data.identities[images],
                                              cfg.hard_fraction)
            a, b = torch.from_numpy(ia), torch.from_numpy(ib)
            teacher = (unit[a] * unit[b]).sum(dim=1)
            feats = head.features(data.maps[idx].float())
            pair_feats = feats
            if cfg.occlusion_prob > 0 and data.occluded is not None:
                hide = torch.from_numpy(rng.random(len(b)) < cfg.occlusion_prob)
                hidden = head.features(data.occluded[idx].float())
                pair_feats = torch.cat([feats, hidden])
                b = torch.where(hide, b + len(idx), b)
            out = head.compare_indexed(pair_feats, a, b, "L")
            labels = class_of[idx]
            keep = labels >= 0
            ident: torch.Tensor | None = None
            if cfg.identity_weight > 0 and bool(keep.any()):
                ident = margin(head.similarity_part(feats).flatten(1)[keep], labels[keep])
            parts = xcos_loss(out.score, teacher, ident, cfg.identity_weight)
            total = parts.total
            if cfg.kl_weight > 0:
                w = out.attention.flatten(1)
                kl = (w * (w.clamp_min(1e-12) * w.shape[1]).log()).sum(dim=1).mean()
                total = total + cfg.kl_weight * kl
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            values = {"loss": total, "cos": parts.cos, "identity": parts.identity}
            for name, v in values.items():
                sums[name] += float(v.detach())
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, mse=f"{float(parts.cos.detach()):.4f}",
                            id=f"{float(parts.identity.detach()):.2f}")
        history.append({"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}})
    bar.close()
    head.eval()
    p_rng = np.random.default_rng([cfg.seed, 1])
    ia, ib = PairSampler(data.identities, subset, p_rng).sample(cfg.pearson_pairs,
                                                                cfg.genuine_fraction)
    cells, teacher = pair_cells(head, data, ia, ib)
    head.set_pearson(pearson_attention(cells, teacher))
    return TrainResult(head, history, len(subset), len(sampler.groups),
                       time.perf_counter() - started)


def _with_hard_impostors(ia: np.ndarray, ib: np.ndarray, unit: torch.Tensor, ids: np.ndarray,
                         fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Replace a share of the impostor pairs by the most teacher-similar impostor pairs."""
    impostor = np.flatnonzero(ids[ia] != ids[ib])
    k = int(round(len(impostor) * fraction))
    if k == 0:
        return ia, ib
    sim = unit @ unit.T
    allowed = torch.from_numpy(ids[:, None] != ids[None, :]).triu(diagonal=1)
    sim = sim.masked_fill(~allowed, -2.0)
    top = torch.topk(sim.flatten(), k).indices.numpy()
    ia, ib = ia.copy(), ib.copy()
    n = unit.shape[0]
    ia[impostor[:k]], ib[impostor[:k]] = top // n, top % n
    return ia, ib


@torch.no_grad()
def pair_cells(head: XCosHead, data: TrainingData, ia: np.ndarray, ib: np.ndarray,
               chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """S of many pairs (N, h, w) and their teacher cosines (N,)."""
    cells, teacher = [], []
    for s in range(0, len(ia), chunk):
        a, b = torch.from_numpy(ia[s : s + chunk]), torch.from_numpy(ib[s : s + chunk])
        out = head(data.maps[a].float(), data.maps[b].float(), "U")
        cells.append(out.similarity)
        teacher.append((data.teacher[a] * data.teacher[b]).sum(dim=1))
    return torch.cat(cells), torch.cat(teacher)


def head_config_for(cfg: XCosTrainConfig, maps: torch.Tensor, node: str) -> XCosHeadConfig:
    _, c, h, w = maps.shape
    return XCosHeadConfig(in_channels=int(c), height=int(h), width=int(w),
                          grid_channels=cfg.grid_channels, reduced_channels=cfg.reduced_channels,
                          cell_specific=cfg.cell_specific_grid,
                          attention_padding=cfg.attention_padding,
                          attention_shared=cfg.attention_shared,
                          backbone=cfg.backbone, node=node, teacher=cfg.teacher_name)


# The head trained on first use when none is stored: small enough to make in a few minutes.
QUICK_HEAD_IMAGES = 1500


def ensure_default_head(backbone: str, progress: bool = True,
                        log: Callable[[str], None] | None = None) -> Path:
    """The stored default xCos head of ``backbone``; trained now (once, cached) when missing.

    A head trained with ``facexplain train xcos`` (all of LFW, or the fold heads) is preferred;
    without one, a quick head is trained on ``QUICK_HEAD_IMAGES`` LFW photos and stored under
    the model home as ``xcos/<backbone>/quick.safetensors`` (unless training is forbidden
    here: ``train.first_use``).
    """
    def train_quick(target: Path, say: Callable[[str], None]) -> Path:
        cfg = XCosTrainConfig(backbone=backbone, max_images=QUICK_HEAD_IMAGES)
        return run_xcos_training(cfg, [None], progress=progress, log=say, name=target.stem)[0]

    return ensure_head(XCOS_HEADS, backbone, train_quick, QUICK_HEAD_IMAGES, log)


def run_xcos_training(
    cfg: XCosTrainConfig, folds: list[int | None], progress: bool = True,
    log: Callable[[str], None] = print, features: LfwFeatures | None = None,
    name: str | None = None,
) -> list[Path]:
    """Train one head per entry of ``folds`` (1-10, or None for all of LFW); save each."""
    feats = features or load_lfw_features(cfg, progress)
    pairs = read_pairs(cfg.pairs)
    head_cfg = head_config_for(cfg, feats.data.maps, feats.node)
    saved: list[Path] = []
    for fold in folds:
        subset = training_subset(feats.paths, pairs, fold)
        tag = "all" if fold is None else f"fold{fold}"
        result = train_head(feats.data, subset, cfg, head_cfg, progress,
                            desc=f"xcos {cfg.backbone} {tag}")
        extra: dict[str, object] = {
            "train_config": cfg.to_json(),
            "fold": fold,
            "n_train_images": result.n_train_images,
            "n_classes": result.n_classes,
            "seconds": round(result.seconds, 1),
            "history": result.history,
            "date": time.strftime("%Y-%m-%d"),
        }
        if fold is not None:
            extra["test_fold"] = fold_check(result.head, feats, pairs, fold, cfg.images)
        path = checkpoint_path(cfg.backbone, fold, cfg.out_root)
        if name is not None:
            path = path.with_name(f"{name}.safetensors")
        path = save_head(result.head, path, extra)
        last = result.history[-1]
        msg = (f"{tag}: {result.n_train_images} images, {result.n_classes} classes, "
               f"mse {last['cos']:.5f}, id {last['identity']:.3f}, {result.seconds:.0f} s")
        if fold is not None:
            t = extra["test_fold"]
            assert isinstance(t, dict)
            msg += f"; test fold: r(xCos-L, teacher) {t['pearson_r']:.4f}, mse {t['mse']:.5f}"
        log(f"{msg} -> {path}")
        saved.append(path)
    return saved


def fold_check(head: XCosHead, feats: LfwFeatures, pairs: list[LfwPair], fold: int,
               images: Path) -> dict[str, float]:
    """Agreement of xCos-L with the teacher on the held-out fold's pairs (a report, not a
    selection criterion)."""
    index = {p: i for i, p in enumerate(feats.paths)}
    test = [p for p in pairs if p.fold == fold - 1]
    ia = np.asarray([index[p.path_a(images)] for p in test])
    ib = np.asarray([index[p.path_b(images)] for p in test])
    with torch.no_grad():
        out = head(feats.data.maps[torch.from_numpy(ia)].float(),
                   feats.data.maps[torch.from_numpy(ib)].float(), "L")
    teacher = (feats.data.teacher[ia] * feats.data.teacher[ib]).sum(dim=1)
    r = float(np.corrcoef(out.score.numpy(), teacher.numpy())[0, 1])
    return {"pearson_r": r, "mse": float(((out.score - teacher) ** 2).mean())}
