"""Training the part-filter head on a frozen backbone (Yin et al.), LFW folds kept honest.

Why this shape: the backbone never changes, so its three maps are extracted once for clean and
for occluded faces (``train.parts_features``); every epoch only runs the small head. Each face
has one fixed physical occlusion drawn from a bank of template rectangles; a mini-batch holds
faces sharing the same rectangle, so FAD's mask τ is computed over a batch with one physical
occlusion (Sec. 3.4).

Fold honesty: LFW's ten folds are split in two halves. The head that scores folds 1-5
('half1') never saw an image of any identity in those folds' pairs, nor did 'half2' for folds
6-10; 'all' trains on every identity (the head for explaining new photos). Identity classes are
the training identities with at least two photos.

Variants (the paper's ablation): 'base' identity loss only; 'base-aug' the identity loss on
the clean and on the occluded face (the paper's augmented baseline); 'sad' + SAD (Eqs. 1-2);
'fad' + the occluded branch with FAD and the masked identity loss (Eqs. 4-5); 'sad+fad' all.
The occluding rectangle is warped through a mesh over five detected landmarks (``mesh=5``) or,
as the paper, over face-api's 68 (``mesh=68``, found on every aligned crop, cached).

The unfrozen trial (``unfreeze=True``): the backbone's layers from the middle map to the late
one (``heads.parts_tail``) train with the head, so the features may move; the cached middle
maps stay the inputs and the late map is recomputed at every step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from facexplain import settings
from facexplain.backbones.spec import BackboneSpec
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.datasets.occlusion import default_region
from facexplain.datasets.warped_occlusion import random_rectangles
from facexplain.errors import InvalidArgument
from facexplain.heads.parts import (
    PARTS_HEADS,
    VARIANTS,
    PartsHead,
    PartsHeadConfig,
    checkpoint_path,
    lmf,
    nodes_for,
    save_head,
)
from facexplain.losses.diversity import fad_loss, fad_mask, sad_filter_loss, sad_response_loss
from facexplain.losses.margins import MarginSoftmax
from facexplain.train.first_use import ensure_head
from facexplain.train.parts_features import HeadInputs
from facexplain.train.result import TrainResult

HALVES: dict[str, tuple[int, ...]] = {"half1": (0, 1, 2, 3, 4), "half2": (5, 6, 7, 8, 9),
                                      "all": (), "quick": ()}
MESHES, DEFAULT_FILTERS = (5, 68), 128  # paper: 320 (~2.5x the CPU time; 128: 8 runs an hour)
PEAK_IMAGES = 1500  # photos the stored peak statistics are computed over
QUICK_HEAD_IMAGES = 800


@dataclass(frozen=True)
class PartsTrainConfig:
    """Everything one training run depends on (stored in the checkpoint)."""

    backbone: str = "sface"
    variant: str = "sad+fad"
    n_filters: int = DEFAULT_FILTERS
    branch_channels: int = 48
    # LMF's d: chosen among 0.5 and 0.8 on development identities of half1's training pool
    # (bench/parts_dev.py: accuracy 0.956 vs 0.951, TAR@1e-2 0.892 vs 0.843)
    lmf_drop: float = 0.8
    epochs: int = 6
    batch: int = 64
    lr: float = 1e-3
    sad_filter_weight: float = 1.0
    sad_response_weight: float = 1.0
    sigma: float = 1.0  # Gaussian of the SAD response loss, in grid cells
    fad_weight: float = 1.0
    # τ count rule: the share of N_f dimensions kept (paper: t = 260 of 320)
    fad_keep: float = 260 / 320
    n_rectangles: int = 16
    rectangle_seed: int = 0
    mesh: int = 5  # landmarks the rectangle is warped through: 5 (detector) or 68 (face-api)
    margin: float = 0.35
    scale: float = 30.0
    # Not in the paper: pull the in-batch cosines of f towards the frozen backbone's (MSE), so
    # a head trained on LFW's few thousand photos keeps the backbone's verification skill.
    teacher_weight: float = 0.0
    # The unfrozen trial: the backbone's layers from the middle map to the late one train with
    # the head (at ``tail_lr``, pretrained weights move gently); the rest stays frozen.
    unfreeze: bool = False
    tail_lr: float = 1e-4
    seed: int = 0
    images: Path = field(default_factory=lambda: settings.current().lfw_images)
    pairs: Path = field(default_factory=lambda: settings.current().lfw_pairs)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    # Train on at most this many photos (up to 4 of each person with 2+, name order) and skip
    # the pair photos: the quick default head made on first use; None = the full pool.
    max_images: int | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InvalidArgument(f"unknown variant '{self.variant}'; valid: "
                                  f"{', '.join(VARIANTS)}")
        if self.mesh not in MESHES:
            raise InvalidArgument(f"mesh must be one of {', '.join(map(str, MESHES))} "
                                  f"landmarks, got {self.mesh}")
        if not 0 < self.fad_keep <= 1:
            raise InvalidArgument(f"fad_keep must be in (0, 1], got {self.fad_keep}")

    @property
    def uses_sad(self) -> bool:
        return "sad" in self.variant

    @property
    def uses_fad(self) -> bool:
        return "fad" in self.variant

    @property
    def uses_augmentation(self) -> bool:
        return self.variant == "base-aug"

    @property
    def occlusion_tag(self) -> str:
        """Names the occluded faces' feature cache: the bank, its seed and the mesh."""
        mesh = "" if self.mesh == 5 else f"-mesh{self.mesh}"
        return f"rect{self.n_rectangles}-seed{self.rectangle_seed}{mesh}"

    @property
    def checkpoint_suffix(self) -> str:
        """Tells apart heads trained away from the default N_f, mesh and frozen backbone."""
        tail = ("-unfrozen" + (f"-lr{self.tail_lr:g}" if self.tail_lr != 1e-4 else "")
                if self.unfreeze else "")
        return ((f"-f{self.n_filters}" if self.n_filters != DEFAULT_FILTERS else "")
                + (f"-mesh{self.mesh}" if self.mesh != 5 else "") + tail)

    def to_json(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PartsData:
    """Everything training and evaluation read, for the images in ``paths`` (sorted)."""

    paths: list[Path]
    clean: HeadInputs
    occluded: HeadInputs
    identities: np.ndarray  # index of each image's person
    rectangle_of: np.ndarray  # which template rectangle occludes each image
    rectangles: list[np.ndarray]
    landmarks: np.ndarray  # (N, 5, 2) in the aligned crop
    mesh_landmarks: np.ndarray  # (N, 5 or 68, 2): what the rectangles were warped through


def parts_images(images: Path, pairs: list[LfwPair]) -> list[Path]:
    """Photos of people with at least two (the identity classes) plus every pair photo."""
    from facexplain.train.xcos_data import lfw_images

    every = lfw_images(images)
    counts: dict[str, int] = {}
    for p in every:
        counts[p.parent.name] = counts.get(p.parent.name, 0) + 1
    wanted = {p for p in every if counts[p.parent.name] >= 2}
    wanted |= {x for p in pairs for x in (p.path_a(images), p.path_b(images))}
    return sorted(wanted)


def rectangle_bank(spec: BackboneSpec, n: int, seed: int) -> list[np.ndarray]:
    return random_rectangles(n, spec.input_size, default_region(spec.input_size), seed)


def rectangle_assignment(n_images: int, n_rectangles: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, n_images]).integers(n_rectangles, size=n_images)


def load_parts_data(cfg: PartsTrainConfig, progress: bool = True) -> PartsData:
    """Detections from the LFW cache, then the head inputs of clean and occluded faces."""
    from facexplain.backbones.registry import get_spec
    from facexplain.cache import DiskCache
    from facexplain.datasets.faces import locate_all
    from facexplain.pipeline import FacePipeline
    from facexplain.train.parts_features import (
        aligned_landmarks,
        extract_head_inputs,
        landmarks68_of,
        rectangle_occluder,
    )

    spec = get_spec(cfg.backbone)
    nodes = nodes_for(cfg.backbone)
    pairs = read_pairs(cfg.pairs)
    if cfg.max_images is None:
        paths = parts_images(cfg.images, pairs)
    else:
        from facexplain.train.xcos_data import lfw_images

        paths = lfw_images(cfg.images, cfg.max_images)
    pipe = FacePipeline(cfg.backbone)
    located = locate_all(pipe, paths, DiskCache(cfg.cache_dir), progress)
    grid = int(pipe.model.forward_nodes(torch.zeros(1, 3, spec.input_size, spec.input_size),
                                        (nodes[1],))[nodes[1]].shape[-1])
    clean = extract_head_inputs(pipe.model, spec, nodes, grid, paths, located, cfg.cache_dir,
                                progress=progress)
    marks = np.stack([aligned_landmarks(located[p], spec) for p in paths])
    if cfg.mesh == 68:  # the template: the mean shape over the photos (labels play no part)
        mesh_marks = landmarks68_of(spec, paths, located, cfg.cache_dir, progress)
        template = mesh_marks.mean(axis=0)
    else:
        mesh_marks, template = marks, spec.alignment.as_array()
    rects = rectangle_bank(spec, cfg.n_rectangles, cfg.rectangle_seed)
    which = rectangle_assignment(len(paths), cfg.n_rectangles, cfg.rectangle_seed)
    occluded = extract_head_inputs(
        pipe.model, spec, nodes, grid, paths, located, cfg.cache_dir,
        transform=rectangle_occluder(spec, template, mesh_marks, lambda i: rects[which[i]]),
        tag=cfg.occlusion_tag, progress=progress)
    names = sorted({p.parent.name for p in paths})
    index = {n: i for i, n in enumerate(names)}
    identities = np.asarray([index[p.parent.name] for p in paths], dtype=np.int64)
    return PartsData(paths, clean, occluded, identities, which, rects, marks, mesh_marks)


def training_subset(data: PartsData, pairs: list[LfwPair], half: str) -> np.ndarray:
    """Images of people with >= 2 training photos, none of them in the half's test pairs."""
    if half not in HALVES:
        raise InvalidArgument(f"unknown split '{half}'; valid: {', '.join(HALVES)}")
    banned = {n for p in pairs if p.fold in HALVES[half] for n in (p.name_a, p.name_b)}
    names = np.asarray([p.parent.name for p in data.paths])
    ok = ~np.isin(names, sorted(banned))
    ids, counts = np.unique(data.identities[ok], return_counts=True)
    multi = set(ids[counts >= 2].tolist())
    return np.flatnonzero(ok & np.isin(data.identities, sorted(multi)))


def epoch_batches(subset: np.ndarray, rectangle_of: np.ndarray, batch: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Mini-batches of images that share one occluding rectangle, in random order."""
    out = []
    for r in np.unique(rectangle_of[subset]):
        members = rng.permutation(subset[rectangle_of[subset] == r])
        out += [members[i : i + batch] for i in range(0, len(members), batch)
                if len(members[i : i + batch]) >= max(8, batch // 4)]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


PartsTrainResult = TrainResult[PartsHead]


def train_parts_head(data: PartsData, subset: np.ndarray, cfg: PartsTrainConfig,
                     progress: bool = True) -> PartsTrainResult:
    """Fit the head (and its identity classifier) on the images in ``subset``."""
    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a lent GPU is used
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    persons = np.unique(data.identities[subset])
    label_of = {int(p): k for k, p in enumerate(persons)}
    labels = torch.as_tensor([label_of.get(int(i), -1) for i in data.identities])
    e, m, lt = data.clean.early, data.clean.middle, data.clean.late
    config = PartsHeadConfig(
        backbone=cfg.backbone, nodes=nodes_for(cfg.backbone),
        in_channels=(e.shape[1], m.shape[1], lt.shape[1]), grid=int(m.shape[-1]),
        late_size=int(lt.shape[-1]), n_filters=cfg.n_filters,
        branch_channels=cfg.branch_channels, lmf_drop=cfg.lmf_drop, n_classes=len(persons),
        tail=cfg.unfreeze)
    head = PartsHead(config).to(device)
    classifier = MarginSoftmax(cfg.n_filters, len(persons), "cosface", cfg.margin,
                               cfg.scale).to(device)
    moving = list(head.tail.parameters()) if head.tail is not None else []
    own = [p for p in [*head.parameters(), *classifier.parameters()]
           if all(p is not q for q in moving)]
    rates = [cfg.lr] + ([cfg.tail_lr] if moving else [])
    opt = torch.optim.Adam([{"params": ps, "lr": lr}
                            for ps, lr in zip([own, moving], rates, strict=False)])
    keep = max(1, round(cfg.fad_keep * cfg.n_filters))
    history: list[dict[str, float]] = []
    n_steps = len(epoch_batches(subset, data.rectangle_of, cfg.batch, rng)) * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, rates, total_steps=max(1, n_steps + 8))
    bar = tqdm(total=n_steps, desc=f"train parts {cfg.variant}", unit="step",
               disable=not progress)
    head.train()
    for epoch in range(cfg.epochs):
        sums: dict[str, float] = {}
        batches = epoch_batches(subset, data.rectangle_of, cfg.batch, rng)
        for idx in batches:
            terms = _step_losses(head, classifier, data, idx, labels[idx].to(device), cfg, keep)
            loss = torch.stack(list(terms.values())).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.3f}")
        history.append({"epoch": epoch + 1, **{k: v / max(1, len(batches))
                                               for k, v in sums.items()}})
    bar.close()
    return PartsTrainResult(head.cpu().eval(), history, len(subset), len(persons),
                            time.perf_counter() - started)


def _step_losses(head: PartsHead, classifier: MarginSoftmax, data: PartsData, idx: np.ndarray,
                 y: torch.Tensor, cfg: PartsTrainConfig, keep: int) -> dict[str, torch.Tensor]:
    """The weighted loss terms of one mini-batch, by name."""
    device = y.device
    psi = lmf(head.responses(*(t.to(device) for t in data.clean.take(idx))), cfg.lmf_drop)
    f = psi.mean(dim=(2, 3))
    terms = {"id": classifier(f, y)}
    if cfg.teacher_weight > 0:
        e = F.normalize(data.clean.embedding[torch.as_tensor(idx)].to(device), dim=1)
        fn = F.normalize(f, dim=1)
        terms["teacher"] = cfg.teacher_weight * F.mse_loss(fn @ fn.T, e @ e.T)
    if cfg.uses_sad:
        terms["sad_filter"] = cfg.sad_filter_weight * sad_filter_loss(head.filters.weight)
        terms["sad_response"] = cfg.sad_response_weight * sad_response_loss(psi, cfg.sigma)
    if cfg.uses_fad:
        f_occ = head.embed(head.responses(*(t.to(device) for t in data.occluded.take(idx))))
        tau = fad_mask(f, f_occ, keep=keep)
        terms["fad"] = cfg.fad_weight * fad_loss(f, f_occ, tau)
        terms["id_occluded"] = classifier(f_occ * tau, y)
    elif cfg.uses_augmentation:  # the occluded face is one more training sample
        f_occ = head.embed(head.responses(*(t.to(device) for t in data.occluded.take(idx))))
        terms["id_occluded"] = classifier(f_occ, y)
    return terms


@torch.no_grad()
def smoothed_responses(head: PartsHead, inputs: HeadInputs, index: np.ndarray,
                       batch: int = 256) -> torch.Tensor:
    """ψ' = g_σ * LMF(ψ) of the images in ``index`` (N, N_f, g, g): what peaks are read from."""
    from facexplain.heads.parts_readout import smoothed_responses as smooth

    return torch.cat([smooth(head, head.responses(*inputs.take(index[s : s + batch])))
                      for s in range(0, len(index), batch)])


def peaks_metadata(head: PartsHead, inputs: HeadInputs, index: np.ndarray) -> dict[str, object]:
    """``{"peaks": ...}`` for the checkpoint: each filter's average peak location (what the
    ``parts`` method names its part from), spread and per-filter std, positive and negative."""
    from facexplain.heads.parts_readout import peak_locations, peak_statistics

    pos, neg = peak_locations(smoothed_responses(head, inputs, index))
    sp, sn = (peak_statistics(x, head.config.grid) for x in (pos, neg))
    return {"peaks": {**sp.to_json(), "negative": sn.to_json(), "n_images": len(index)}}


@torch.no_grad()
def embed_with_head(head: PartsHead, inputs: HeadInputs, index: np.ndarray,
                    batch: int = 256) -> torch.Tensor:
    """Unit f of the images in ``index``."""
    out = []
    for s in range(0, len(index), batch):
        _, f = head(*inputs.take(index[s : s + batch]))
        out.append(F.normalize(f, dim=1))
    return torch.cat(out) if out else torch.empty(0, head.config.n_filters)


def run_parts_training(cfg: PartsTrainConfig, halves: list[str], data: PartsData | None = None,
                       progress: bool = True, root: Path | None = None,
                       suffix: str = "") -> list[Path]:
    """Train and save one head per split in ``halves``; returns the checkpoint paths.

    ``suffix`` tells apart heads of one variant trained with other settings (τ's threshold)."""
    data = data or load_parts_data(cfg, progress)
    pairs = read_pairs(cfg.pairs)
    saved = []
    for half in halves:
        subset = training_subset(data, pairs, half)
        result = train_parts_head(data, subset, cfg, progress)
        path = checkpoint_path(cfg.backbone, cfg.variant, half + suffix, root)
        # peaks over photos the head never trained on where there are any
        unseen = np.setdiff1d(np.arange(len(data.paths)), subset)
        peak_images = (unseen if len(unseen) >= 200 else subset)[:PEAK_IMAGES]
        save_head(result.head, path, {
            "train": cfg.to_json(), "split": half, "history": result.history,
            "n_train_images": result.n_train_images, "n_classes": result.n_classes,
            "seconds": round(result.seconds, 1),
            "rectangles": [r.tolist() for r in data.rectangles],
            **peaks_metadata(result.head, data.clean, peak_images),
        })
        saved.append(path)
    return saved


def ensure_default_head(backbone: str, progress: bool = True) -> Path:
    """The default part-filter head of ``backbone``; without one, a quick head is trained now
    (once, as ``parts/<backbone>/sad+fad-quick``) where allowed (``train.first_use``)."""
    def train_quick(target: Path, say: Callable[[str], None]) -> Path:
        del target, say  # stored by run_parts_training under the "quick" half
        cfg = PartsTrainConfig(backbone=backbone, variant="sad+fad", epochs=4,
                               max_images=QUICK_HEAD_IMAGES)
        return run_parts_training(cfg, ["quick"], progress=progress)[0]

    return ensure_head(PARTS_HEADS, backbone, train_quick, QUICK_HEAD_IMAGES)
