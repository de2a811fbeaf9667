"""The DeepID2+ neuron study of one backbone on LFW: sparsity, selectivity, binary codes,
occlusion robustness. ``run_neuron_analysis`` computes; ``write_neuron_report`` writes the
JSON, the PNG plots and the HTML page.

Cost control on a small CPU: detections and embeddings of all 13,233 images come from the
shared per-image caches (``benchmarks.lfw``); LBP descriptors are cached once per image set.
The intermediate node is only computed for the faces of the occlusion test (a subset of the
pairs, ``robust_pairs`` genuine + impostor per fold), and kept as packed activation bits.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.align.templates import ARCFACE_112, Template
from facexplain.analysis.lbp import DEFAULT_LBP, LbpConfig, lbp_histograms, to_gray
from facexplain.analysis.neurons import (
    SortedColumns,
    Sparsity,
    balanced_accuracy,
    best_single_neuron,
    constant_neurons,
    linear_probe_accuracy,
    sparsity,
    sparsity_of_codes,
    split_by_group,
    split_within_groups,
)
from facexplain.analysis.robustness import LayerProbe, RobustnessCurve, robustness_curve
from facexplain.benchmarks.neuron_codes import (
    binary_verification,
    outside_pair_medians,
    search_lfw,
)
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache, image_key
from facexplain.datasets.faces import embed_all, locate_all
from facexplain.datasets.lfw import LfwPair, read_pairs
from facexplain.datasets.lfw_people import LfwPeople, load_lfw_people
from facexplain.datasets.occlusion import face_region
from facexplain.errors import InvalidArgument
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.types import LocatedFace

LBP_VERSION = "lbp-v1"


@dataclass(frozen=True)
class NeuronAnalysisConfig:
    backbone: str = "sface"
    layer: str | None = None  # default: the backbone's last spatial map
    lfw_root: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    batch_size: int = 32
    min_images: int = 20
    constant_level: float = 0.9
    lbp_identities: int = 5  # LBP baseline for the N largest identities (0: all of them)
    search_size: int = 1_000_000
    search_queries: int = 200
    k: int = 10
    robust_pairs: int = 50  # genuine and impostor pairs per fold in the occlusion test
    codes: str = "zero"  # top-layer bits for search and robustness: > 0, or > neuron median
    areas: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    seed: int = 0
    progress: bool = True
    lbp: LbpConfig = DEFAULT_LBP


@dataclass(frozen=True)
class SelectiveNeuron:
    """A neuron to draw: its responses over all images and the groups it was chosen for."""

    neuron: int
    label: str


@dataclass
class NeuronAnalysis:
    """Everything the report draws; ``summary`` is the JSON-ready part."""

    summary: dict[str, object]
    people: LfwPeople
    embeddings: np.ndarray
    top: Sparsity
    node: Sparsity
    node_name: str
    selective: list[SelectiveNeuron]
    group_of_interest: str
    genuine_hamming: np.ndarray
    impostor_hamming: np.ndarray
    robustness: RobustnessCurve


def _log(cfg: NeuronAnalysisConfig, msg: str) -> None:
    if cfg.progress:
        tqdm.write(msg)


def run_neuron_analysis(cfg: NeuronAnalysisConfig) -> NeuronAnalysis:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    people = load_lfw_people(cfg.lfw_root)
    images = cfg.lfw_root / "lfw-deepfunneled"
    pipe = FacePipeline(cfg.backbone)
    node = cfg.layer or pipe.spec.last_spatial_node
    _check_node(pipe, node)
    cache = DiskCache(cfg.cache_dir)

    t = time.perf_counter()
    located = locate_all(pipe, people.paths, cache, cfg.progress)
    emb_map = embed_all(pipe, located, cache, False, cfg.batch_size, cfg.progress)
    emb = np.stack([emb_map[p] for p in people.paths]).astype(np.float32)
    timings["embed_all"] = time.perf_counter() - t

    top = sparsity(emb)
    t = time.perf_counter()
    lbp = lfw_lbp(people, located, cache, cfg.lbp, cfg.progress)
    timings["lbp_all"] = time.perf_counter() - t

    t = time.perf_counter()
    selectivity, selective = _selectivity(cfg, people, emb, lbp, rng)
    timings["selectivity"] = time.perf_counter() - t

    pairs = read_pairs(cfg.lfw_root / "pairs.txt")
    medians, n_outside = outside_pair_medians(pairs, images, emb_map, people)
    thresholds: np.ndarray | float = medians if cfg.codes == "median" else 0.0
    t = time.perf_counter()
    binary, gen_h, imp_h = binary_verification(pairs, images, emb_map, medians, n_outside)
    timings["binary_verification"] = time.perf_counter() - t

    t = time.perf_counter()
    search = search_lfw(cfg, people, emb, rng, thresholds)
    timings["search"] = time.perf_counter() - t

    t = time.perf_counter()
    curve, node_sparsity, robust_info = _robustness(cfg, pipe, node, pairs, images, located,
                                                    thresholds)
    timings["robustness"] = time.perf_counter() - t

    summary: dict[str, object] = {
        "backbone": cfg.backbone,
        "embedding_dim": int(emb.shape[1]),
        "node": node,
        "n_images": len(people.paths),
        "n_no_face": int(sum(located[p].fallback for p in people.paths)),
        "sparsity": {"top": top.summary(), "node": node_sparsity.summary(),
                     "node_images": "clean faces of the occlusion subset"},
        "selectivity": selectivity,
        "binary": binary,
        "search": search,
        "robustness": {**robust_info, "points": [p.to_dict() for p in curve.points]},
        "config": _config_dict(cfg, node),
        "seconds": {k: round(v, 1) for k, v in {**timings,
                                                 "total": time.perf_counter() - started}.items()},
        **measured_on(f"{torch.get_num_threads()} torch threads"),
    }
    group = str(selectivity["largest_identity"])
    return NeuronAnalysis(summary, people, emb, top, node_sparsity, node, selective, group,
                          gen_h, imp_h, curve)


def _check_node(pipe: FacePipeline, node: str) -> None:
    """Fail early, with the valid names, when --layer names no node of this backbone."""
    size = pipe.spec.input_size
    try:
        with torch.inference_mode():
            pipe.model.forward_nodes(torch.zeros(1, 3, size, size), (node,))
    except (KeyError, ValueError, InvalidArgument) as exc:
        valid = ", ".join(pipe.spec.feature_nodes)
        raise InvalidArgument(
            f"backbone '{pipe.spec.name}' has no node '{node}' ({exc}); its feature maps: {valid}"
        ) from None


def _config_dict(cfg: NeuronAnalysisConfig, node: str) -> dict[str, object]:
    return {
        "layer": node, "codes": cfg.codes, "min_images": cfg.min_images,
        "constant_level": cfg.constant_level,
        "lbp_identities": cfg.lbp_identities, "search_size": cfg.search_size,
        "search_queries": cfg.search_queries, "k": cfg.k, "robust_pairs": cfg.robust_pairs,
        "areas": list(cfg.areas), "seed": cfg.seed,
        "lbp": {"size": cfg.lbp.size, "scales": list(cfg.lbp.scales), "cell": cfg.lbp.cell,
                "radius": cfg.lbp.radius, "dim": cfg.lbp.dim},
    }


def lfw_lbp(people: LfwPeople, located: dict[Path, LocatedFace], cache: DiskCache,
            cfg: LbpConfig, progress: bool, template: Template = ARCFACE_112) -> np.ndarray:
    """LBP descriptors of every image's aligned face (ArcFace 112 crop, backbone-independent),
    cached as one float16 array keyed by the image set, the landmarks version and the config."""
    digest = hashlib.sha1()
    for p in people.paths:
        digest.update(image_key(p).encode())
    key = f"{LBP_VERSION}:{template.name}:{cfg}:{digest.hexdigest()}"
    hit = cache.get(key)
    if hit is not None:
        return hit["features"].astype(np.float32)
    out = np.zeros((len(people.paths), cfg.dim), dtype=np.float16)
    for i, p in enumerate(tqdm(people.paths, desc="lbp", unit="img", disable=not progress)):
        face = warp_face(load_image(p), located[p].detection.landmarks, template)
        out[i] = lbp_histograms(to_gray(face), cfg)
    cache.put(key, features=out)
    return out.astype(np.float32)


def _selectivity(
    cfg: NeuronAnalysisConfig, people: LfwPeople, emb: np.ndarray, lbp: np.ndarray,
    rng: np.random.Generator,
) -> tuple[dict[str, object], list[SelectiveNeuron]]:
    """Best single neuron vs linear classifiers, per identity (>= min_images) and for gender."""
    names = people.identities_with(cfg.min_images)
    if not names:
        raise InvalidArgument(f"no identity has {cfg.min_images} or more images")
    lbp_names = set(names if cfg.lbp_identities <= 0 else names[: cfg.lbp_identities])
    train = split_within_groups(people.identity, rng)
    sorted_train = SortedColumns(emb[train])
    rows: list[TaskResult] = []
    selective: list[SelectiveNeuron] = []
    for rank, name in enumerate(tqdm(names, desc="identities", disable=not cfg.progress)):
        y = people.identity == name
        row = _task(name, y, train, sorted_train, emb, lbp if name in lbp_names else None,
                    cfg.constant_level)
        rows.append(row)
        if rank < 2:
            selective.append(SelectiveNeuron(row.neuron, f"best for {name}"))
    g_train = split_by_group(people.identity, rng)
    gender = _task("female", people.female, g_train, SortedColumns(emb[g_train]), emb, lbp,
                   cfg.constant_level)
    selective.append(SelectiveNeuron(gender.neuron, "best for gender"))
    # A neuron constantly excited by the largest identity, if any: the paper's Fig. 1 example.
    excited = rows[0].excited_neurons
    if excited and excited[0] not in {s.neuron for s in selective}:
        selective.append(SelectiveNeuron(excited[0], f"excited by {names[0]}"))
    lbp_accs = [r.lbp_linear for r in rows if r.lbp_linear is not None]
    summary: dict[str, object] = {
        "n_identities": len(names),
        "largest_identity": names[0],
        "split": "identities: half of each identity's images held out; gender: half of the "
                 "identities held out (no person on both sides)",
        "identities": [r.to_dict() for r in rows],
        "gender": {**gender.to_dict(), "n_female": int(people.female.sum()),
                   "n_male": int((~people.female).sum())},
        "mean_single_neuron_accuracy": round(float(np.mean([r.single_neuron for r in rows])),
                                             4),
        "mean_lbp_linear_accuracy": round(float(np.mean(lbp_accs)), 4) if lbp_accs else None,
        "n_lbp_identities": len(lbp_accs),
    }
    return summary, selective


@dataclass(frozen=True)
class TaskResult:
    """One selectivity task (an identity vs the rest, or female vs male), held-out scores."""

    name: str
    n_images: int
    neuron: int
    polarity: int
    threshold: float
    single_neuron: float
    single_neuron_train: float
    all_neurons_linear: float
    lbp_linear: float | None
    n_excited: int
    n_inhibited: int
    excited_neurons: list[int]
    inhibited_neurons: list[int]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _task(
    name: str, y: np.ndarray, train: np.ndarray, sorted_train: SortedColumns, emb: np.ndarray,
    lbp: np.ndarray | None, level: float,
) -> TaskResult:
    test = ~train
    rule = best_single_neuron(sorted_train, y[train])
    const = constant_neurons(emb, y, level)
    lbp_acc = None if lbp is None else linear_probe_accuracy(lbp[train], y[train], lbp[test],
                                                             y[test])
    return TaskResult(
        name=name, n_images=int(y.sum()), neuron=rule.neuron, polarity=rule.polarity,
        threshold=round(rule.threshold, 5),
        single_neuron=round(balanced_accuracy(rule.predict(emb[test]), y[test]), 4),
        single_neuron_train=round(rule.train_accuracy, 4),
        all_neurons_linear=round(
            linear_probe_accuracy(emb[train], y[train], emb[test], y[test]), 4),
        lbp_linear=None if lbp_acc is None else round(lbp_acc, 4),
        n_excited=int(const.excited.size), n_inhibited=int(const.inhibited.size),
        excited_neurons=const.excited[:10].tolist(),
        inhibited_neurons=const.inhibited[:10].tolist(),
    )


def robust_pair_subset(pairs: list[LfwPair], per_class: int) -> list[LfwPair]:
    """The first ``per_class`` genuine and impostor pairs of every fold (0: all pairs)."""
    if per_class <= 0:
        return pairs
    taken: dict[tuple[int, bool], int] = {}
    out = []
    for p in pairs:
        n = taken.get((p.fold, p.same), 0)
        if n < per_class:
            out.append(p)
            taken[(p.fold, p.same)] = n + 1
    return out


def _robustness(
    cfg: NeuronAnalysisConfig, pipe: FacePipeline, node: str, pairs: list[LfwPair],
    images: Path, located: dict[Path, LocatedFace], thresholds: np.ndarray | float,
) -> tuple[RobustnessCurve, Sparsity, dict[str, object]]:
    subset = robust_pair_subset(pairs, cfg.robust_pairs)
    paths: dict[Path, int] = {}
    for p in subset:
        paths.setdefault(p.path_a(images), len(paths))
        paths.setdefault(p.path_b(images), len(paths))
    template = pipe.spec.alignment
    faces = torch.zeros((len(paths), 3, template.size, template.size), dtype=torch.uint8)
    for path, i in tqdm(paths.items(), desc="align subset", disable=not cfg.progress):
        face = warp_face(load_image(path), located[path].detection.landmarks, template)
        faces[i] = face.round().clamp(0, 255).to(torch.uint8)
    probe = LayerProbe(pipe.model, node, cfg.batch_size, cfg.lbp)
    region = face_region(template.as_array(), template.size)
    pair_a = np.asarray([paths[p.path_a(images)] for p in subset])
    pair_b = np.asarray([paths[p.path_b(images)] for p in subset])
    same = np.asarray([p.same for p in subset])
    folds = np.asarray([p.fold for p in subset])
    say: Callable[[float], None] = lambda a: _log(cfg, f"occlusion area {a:.2f}")  # noqa: E731
    curve = robustness_curve(probe, faces, pair_a, pair_b, same, folds, cfg.areas, cfg.seed,
                             region, progress=say, top_thresholds=thresholds)
    info: dict[str, object] = {
        "n_pairs": len(subset), "n_faces": len(paths),
        "node_shape": list(probe.node_shape(faces[:1])),
        "protocol": "face A clean, face B occluded by random brush strokes covering the given "
                    "share of the face ellipse (black fill); k-fold accuracy over the subset's "
                    "folds; flips: each face against its clean self",
        "lbp_bits": "each LBP dimension thresholded at its median over the clean faces",
        "impostor_bit_distance": {k: round(v, 4) for k, v in curve.impostor_distance.items()},
        "genuine_bit_distance": {k: round(v, 4) for k, v in curve.genuine_distance.items()},
        "flipped_relative_to_impostor": [
            {k: round(p.flipped[k] / max(curve.impostor_distance[k], 1e-12), 4)
             for k in p.flipped} for p in curve.points],
    }
    return curve, sparsity_of_codes(curve.clean.node_bits), info
