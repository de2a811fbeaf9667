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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.backbones.spec import BackboneSpec
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.datasets.occlusion import apply_mask, face_region, random_mask
from facexplain.errors import InvalidArgument
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
from facexplain.train.features import FaceTransform

N_FOLDS = 10


@dataclass(frozen=True)
class XCosTrainConfig:
    """Everything one training run depends on (stored in the checkpoint)."""

    backbone: str = "sface"
    teacher: str | None = None  # a registered backbone; None = the backbone's own embedding
    node: str | None = None  # None = the backbone's last spatial map
    epochs: int = 12
    pairs_per_epoch: int = 16384
    batch_images: int = 128  # faces per step; each is in several of the step's pairs
    batch_pairs: int = 256
    genuine_fraction: float = 0.5
    lr: float = 1e-3
    weight_decay: float = 1e-4
    identity_loss: str = "cosface"
    identity_weight: float = 0.1
    # KL(L || U) per pair. Without it L learns to peak on the cells that fit the teacher's
    # value best, which lowered LFW fold accuracy by ~1.5 points in our runs (docs/BENCHMARKS).
    kl_weight: float = 0.05
    # Occlusion training (paper Sec. 5.1 fine-tunes on free-form-masked faces): in this share of
    # pairs one face is replaced by its brush-stroke-occluded version (area drawn uniformly from
    # ``occlusion_areas``; fixed per image by ``occlusion_seed``); the target stays the teacher's
    # cosine of the clean pair, so attention learns to look past the occluder.
    occlusion_prob: float = 0.0
    # Share of each step's impostor pairs taken as the step's most teacher-similar impostors
    # (the pairs near the decision threshold, which random pairs rarely are).
    hard_fraction: float = 0.0
    occlusion_areas: tuple[float, float] = (0.1, 0.4)
    occlusion_seed: int = 1
    margin: float = 0.35
    scale: float = 30.0
    grid_channels: int = 32
    reduced_channels: int = 16
    # A per-cell 1x1 projection (heads.xcos.CellwiseConv1x1). Chosen on development folds 1-2
    # (r with the teacher 0.967 -> 0.976); 10-fold xCos-L 98.88 -> 99.13 (docs/BENCHMARKS).
    cell_specific_grid: bool = True
    pearson_pairs: int = 20000
    seed: int = 0
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    out_root: Path | None = None  # None = the asset home (checkpoints go to <root>/xcos/...)
    # Train on at most this many LFW photos (identities with several photos, in name order):
    # the quick default head made on first use; None = every photo.
    max_images: int | None = None

    @property
    def teacher_name(self) -> str:
        return self.teacher or self.backbone

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


@dataclass(frozen=True)
class TrainingData:
    """Per image: backbone maps (float16), unit teacher embedding, identity index."""

    maps: torch.Tensor
    teacher: torch.Tensor
    identities: np.ndarray
    occluded: torch.Tensor | None = None  # maps of the occluded faces, same order


class PairSampler:
    """Random genuine (same identity) and impostor pairs among a subset of images."""

    def __init__(self, identities: np.ndarray, subset: np.ndarray,
                 rng: np.random.Generator) -> None:
        self.rng = rng
        self.subset = np.asarray(subset)
        self.identities = identities
        groups: dict[int, list[int]] = {}
        for i in self.subset:
            groups.setdefault(int(identities[i]), []).append(int(i))
        self.groups = {k: np.asarray(v) for k, v in groups.items() if len(v) >= 2}
        self.multi = np.asarray([i for i in self.subset if int(identities[i]) in self.groups])

    def sample(self, n: int, genuine_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        n_gen = round(n * genuine_fraction) if len(self.multi) else 0
        a_gen = self.rng.choice(self.multi, n_gen) if n_gen else np.zeros(0, dtype=np.int64)
        b_gen = np.empty_like(a_gen)
        for k, a in enumerate(a_gen):
            g = self.groups[int(self.identities[a])]
            j = int(self.rng.integers(len(g) - 1))
            b_gen[k] = g[j] if g[j] != a else g[-1]
        n_imp = n - n_gen
        a_imp = self.rng.choice(self.subset, n_imp)
        b_imp = self.rng.choice(self.subset, n_imp)
        clash = self.identities[a_imp] == self.identities[b_imp]
        while clash.any():
            b_imp[clash] = self.rng.choice(self.subset, int(clash.sum()))
            clash = self.identities[a_imp] == self.identities[b_imp]
        return np.concatenate([a_gen, a_imp]), np.concatenate([b_gen, b_imp])

    def batch(self, n_images: int, n_pairs: int,
              genuine_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A step's faces and pairs among them: ``(images, ia, ib)`` with ``ia``/``ib``
        indexing ``images``. ``n_images / 4`` identities with several faces give up to four
        faces each (their genuine pairs), random faces fill the rest; impostors pair faces of
        different identities within the step."""
        chosen: list[int] = []
        genuine: list[tuple[int, int]] = []
        if self.groups:
            keys = np.fromiter(self.groups, dtype=np.int64)
            n_ids = min(len(keys), max(1, n_images // 4))
            for ident in self.rng.choice(keys, n_ids, replace=False):
                g = self.groups[int(ident)]
                room = n_images - len(chosen)
                if room < 2:
                    break
                take = self.rng.choice(g, min(4, len(g), room), replace=False)
                start = len(chosen)
                chosen.extend(int(i) for i in take)
                genuine.extend((start + x, start + y) for x in range(len(take))
                               for y in range(x + 1, len(take)))
        n_rest = max(0, n_images - len(chosen))
        chosen.extend(int(i) for i in self.rng.choice(self.subset, n_rest))
        images = np.asarray(chosen)
        n_gen = round(n_pairs * genuine_fraction) if genuine else 0
        pick = self.rng.integers(len(genuine), size=n_gen) if n_gen else np.zeros(0, np.int64)
        gen = np.asarray(genuine, dtype=np.int64).reshape(-1, 2)[pick]
        flip = self.rng.random(len(gen)) < 0.5
        gen[flip] = gen[flip][:, ::-1]
        n_imp = n_pairs - n_gen
        ia = self.rng.integers(len(images), size=n_imp)
        ib = self.rng.integers(len(images), size=n_imp)
        ids = self.identities[images]
        clash = ids[ia] == ids[ib]
        for _ in range(100):
            if not clash.any():
                break
            ib[clash] = self.rng.integers(len(images), size=int(clash.sum()))
            clash = ids[ia] == ids[ib]
        keep = ~clash
        return (images, np.concatenate([gen[:, 0], ia[keep]]),
                np.concatenate([gen[:, 1], ib[keep]]))


@dataclass(frozen=True)
class TrainResult:
    head: XCosHead
    history: list[dict[str, float]]
    n_train_images: int
    n_classes: int
    seconds: float


def train_head(
    data: TrainingData, subset: np.ndarray, cfg: XCosTrainConfig, head_config: XCosHeadConfig,
    progress: bool = True, desc: str = "train xcos",
) -> TrainResult:
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
                ident = margin(feats.flatten(1)[keep], labels[keep])
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


def lfw_images(images: Path, max_images: int | None = None) -> list[Path]:
    """Every LFW photo (``Name/Name_NNNN.jpg``), sorted: the training pool.

    With ``max_images``: up to 4 photos of each identity that has at least 2, in name order,
    until the cap (genuine pairs and identity classes need several photos per person).
    """
    paths = sorted(images.glob("*/*.jpg"))
    if not paths:
        raise InvalidArgument(f"no LFW images under {images}")
    if max_images is None:
        return paths
    by_name: dict[str, list[Path]] = {}
    for p in paths:
        by_name.setdefault(p.parent.name, []).append(p)
    chosen: list[Path] = []
    for photos in by_name.values():
        if len(photos) >= 2 and len(chosen) < max_images:
            chosen.extend(photos[: min(4, max_images - len(chosen))])
    return chosen


def fold_identities(pairs: list[LfwPair], fold: int) -> set[str]:
    """Names occurring in the pairs of test fold ``fold`` (1-based)."""
    return {n for p in pairs if p.fold == fold - 1 for n in (p.name_a, p.name_b)}


def training_subset(paths: list[Path], pairs: list[LfwPair], fold: int | None) -> np.ndarray:
    """Indices of images usable to train the head tested on ``fold`` (None: all images)."""
    if fold is None:
        return np.arange(len(paths))
    if not 1 <= fold <= N_FOLDS:
        raise InvalidArgument(f"fold must be 1-{N_FOLDS}, got {fold}")
    banned = fold_identities(pairs, fold)
    return np.asarray([i for i, p in enumerate(paths) if p.parent.name not in banned])


@dataclass(frozen=True)
class LfwFeatures:
    """Backbone maps and teacher embeddings of all LFW images, plus identities."""

    paths: list[Path]
    data: TrainingData
    backbone_embeddings: torch.Tensor
    node: str


def load_lfw_features(cfg: XCosTrainConfig, progress: bool = True) -> LfwFeatures:
    """Detections from the LFW cache, then backbone maps (cached) and teacher embeddings."""
    from facexplain.backbones.registry import get_spec
    from facexplain.cache import DiskCache
    from facexplain.datasets.faces import embed_all, locate_all
    from facexplain.pipeline import FacePipeline
    from facexplain.train.features import extract_features

    spec = get_spec(cfg.backbone)
    node = cfg.node or spec.last_spatial_node
    paths = lfw_images(cfg.images, cfg.max_images)
    cache = DiskCache(cfg.cache_dir)
    pipe = FacePipeline(cfg.backbone)
    located = locate_all(pipe, paths, cache, progress)
    feats = extract_features(pipe.model, spec, node, paths, located, cfg.cache_dir,
                             progress=progress)
    occluded = None
    if cfg.occlusion_prob > 0:
        lo, hi = cfg.occlusion_areas
        occluded = extract_features(
            pipe.model, spec, node, paths, located, cfg.cache_dir, progress=progress,
            transform=stroke_occluder(spec, cfg.occlusion_areas, cfg.occlusion_seed),
            tag=f"strokes-{lo:g}-{hi:g}-seed{cfg.occlusion_seed}",
        ).maps
    if cfg.teacher_name == cfg.backbone:
        teacher = feats.embeddings
    else:
        tpipe = FacePipeline(cfg.teacher_name, detector=pipe.detector)
        emb = embed_all(tpipe, located, cache, False, 32, progress)
        teacher = torch.from_numpy(np.stack([emb[p] for p in paths])).float()
    names = sorted({p.parent.name for p in paths})
    index = {n: i for i, n in enumerate(names)}
    identities = np.asarray([index[p.parent.name] for p in paths], dtype=np.int64)
    data = TrainingData(feats.maps, torch.nn.functional.normalize(teacher, dim=1), identities,
                        occluded)
    return LfwFeatures(paths, data, feats.embeddings, node)


def stroke_occluder(spec: BackboneSpec, areas: tuple[float, float],
                    seed: int) -> FaceTransform:
    """Brush strokes over a random share of each aligned face, fixed by (seed, image index)."""
    marks = spec.alignment.as_array()
    size = spec.input_size
    region = face_region(marks, size)

    def occlude(faces: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        out = faces.clone()
        for k, i in enumerate(indices):
            rng = np.random.default_rng([seed, int(i)])
            area = float(rng.uniform(*areas))
            out[k] = apply_mask(faces[k], random_mask(size, area, rng, region))
        return out

    return occlude


def head_config_for(cfg: XCosTrainConfig, maps: torch.Tensor, node: str) -> XCosHeadConfig:
    _, c, h, w = maps.shape
    return XCosHeadConfig(in_channels=int(c), height=int(h), width=int(w),
                          grid_channels=cfg.grid_channels, reduced_channels=cfg.reduced_channels,
                          cell_specific=cfg.cell_specific_grid,
                          backbone=cfg.backbone, node=node, teacher=cfg.teacher_name)


# The head trained on first use when none is stored: small enough to make in a few minutes.
QUICK_HEAD_IMAGES = 1500


def ensure_default_head(backbone: str, progress: bool = True,
                        log: Callable[[str], None] | None = None) -> Path:
    """The stored default xCos head of ``backbone``; trained now (once, cached) when missing.

    A head trained with ``facexplain train xcos`` (all of LFW, or the fold heads) is preferred;
    without one, a quick head is trained on ``QUICK_HEAD_IMAGES`` LFW photos and stored under
    the model home as ``xcos/<backbone>/quick.safetensors``.
    """
    def train_quick(target: Path, say: Callable[[str], None]) -> Path:
        cfg = XCosTrainConfig(backbone=backbone, max_images=QUICK_HEAD_IMAGES)
        return run_xcos_training(cfg, [None], progress=progress, log=say, name=target.stem)[0]

    return XCOS_HEADS.ensure_default(backbone, train_quick, QUICK_HEAD_IMAGES, log)


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
