"""What the xCos head trains on: its settings, LFW photos and their frozen-backbone maps, the
fold-honest training subsets, and the pair sampler.

Why apart from the training loop (``train.xcos``): the benchmark and the filter study read the
same features and subsets without training anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from facexplain import settings
from facexplain.backbones.spec import BackboneSpec
from facexplain.datasets.lfw import N_FOLDS, LfwPair
from facexplain.datasets.occlusion import apply_mask, face_region, random_mask
from facexplain.errors import InvalidArgument
from facexplain.train.features import FaceTransform


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
    # How the learned attention's 3x3 convs pad the 7x7 grid ("zeros" or "replicate"; see
    # heads.xcos.PADDINGS): zero padding lets W find the border and corners by position alone.
    attention_padding: str = "zeros"
    # W from its own shared 1x1 projection (heads.xcos.XCosHeadConfig.attention_shared).
    attention_shared: bool = False
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
