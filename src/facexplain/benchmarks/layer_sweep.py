"""DeepID2+'s three properties layer by layer: sparsity, selectivity and robustness per stage.

Why: paper 002 claims its *top* layer is sparse (about half the neurons on per image), selective
(single neurons recognise identities) and robust (binary patterns survive occlusion), and that
"neurons in higher layers are much more robust ... than neurons in lower layers". The neuron
study measures the top layer and one node; this sweep measures every stage of a backbone on the
same faces in one pass, so the three properties can be read against depth.

Protocol (one seed, everything on the same images):
- faces: every LFW image of the identities with ``min_images`` or more photos (62 identities
  at 20), aligned to the backbone's template;
- sparsity: the share of a layer's units above 0 on each image, and per unit the share of
  images on which it is above 0 (all units; both also as the paper's Fig. 1 histograms);
- selectivity: per identity, the best single unit (threshold and polarity chosen on half of that
  identity's images and half of everyone else's) scored by balanced accuracy on the other half,
  averaged over identities. Every layer offers the same number of candidate units, ``units``
  (default: the embedding's size) drawn at random, so a wide early map does not win by having
  more units to pick from;
- robustness: each face occluded by random brush strokes over ``area`` of the face ellipse:
  the share of the layer's bits (unit > 0) that flip, alone and relative to the bit distance
  between two *different* people's clean faces; and verification from the layer's bits (AUC of
  the bit distance, random genuine against random impostor pairs) with face B clean and with
  face B occluded: the paper's "robust in face verification" read per layer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facexplain import settings
from facexplain.align import warp_face
from facexplain.analysis.neurons import (
    SortedColumns,
    balanced_accuracy,
    best_single_neuron,
    split_within_groups,
)
from facexplain.backbones.base import EMBEDDING
from facexplain.benchmarks.registry import measured_on
from facexplain.cache import DiskCache
from facexplain.datasets.faces import locate_all
from facexplain.datasets.lfw_people import load_lfw_people
from facexplain.datasets.occlusion import apply_mask, default_region, random_mask
from facexplain.errors import InvalidArgument
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline

# Stages swept per built-in backbone (the outputs of its blocks, input side first); any other
# backbone sweeps its ``feature_nodes``. The embedding is always added last.
STAGES: dict[str, tuple[str, ...]] = {
    "sface": ("conv_1_relu", "conv_3_relu", "conv_5_relu", "conv_7_relu", "conv_9_relu",
              "conv_11_relu", "conv_12_relu", "conv_13_relu", "conv_14_relu"),
    "dlib-resnet": ("conv32", "conv64", "conv128", "conv256", "conv256_out"),
}


@dataclass(frozen=True)
class LayerSweepConfig:
    backbone: str = "sface"
    min_images: int = 20
    area: float = 0.4
    units: int | None = None  # candidate units per layer for selectivity (None: embedding size)
    distance_pairs: int = 2000
    batch_size: int = 32
    seed: int = 0
    lfw_root: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    progress: bool = True


@dataclass
class _Layer:
    """What the pass keeps of one layer: per-image sparsity and flips, sampled units' values,
    and the packed bits of every clean face (for the between-people distance)."""

    units: np.ndarray  # indices of the sampled units
    n_units: int = 0
    active: list[np.ndarray] = field(default_factory=list)
    flipped: list[np.ndarray] = field(default_factory=list)
    sampled: list[np.ndarray] = field(default_factory=list)
    bits: list[np.ndarray] = field(default_factory=list)
    hidden_bits: list[np.ndarray] = field(default_factory=list)


def stages_of(pipe: FacePipeline) -> tuple[str, ...]:
    """The nodes swept for this backbone, input side first, then the embedding."""
    return (*STAGES.get(pipe.spec.name, tuple(pipe.spec.feature_nodes)), EMBEDDING)


def _aligned_faces(cfg: LayerSweepConfig, pipe: FacePipeline
                   ) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    people = load_lfw_people(cfg.lfw_root)
    names = people.identities_with(cfg.min_images)
    if len(names) < 2:
        raise InvalidArgument(f"fewer than two identities have {cfg.min_images} images")
    keep = np.flatnonzero(np.isin(people.identity, names))
    paths = [people.paths[i] for i in keep]
    located = locate_all(pipe, paths, DiskCache(cfg.cache_dir), cfg.progress)
    template = pipe.spec.alignment
    faces = torch.stack([
        warp_face(load_image(p), located[p].detection.landmarks, template)
        for p in tqdm(paths, desc="align", unit="img", disable=not cfg.progress)])
    return faces, people.identity[keep], names


def _occluded(faces: torch.Tensor, area: float, seed: int, start: int) -> torch.Tensor:
    """Each face with its own brush-stroke mask (seeded by the face's index, so reruns agree)."""
    size = faces.shape[-1]
    region = default_region(size)
    return torch.stack([
        apply_mask(f, random_mask(size, area, np.random.default_rng((seed, start + i)), region))
        for i, f in enumerate(faces)])


@torch.inference_mode()
def _pass(cfg: LayerSweepConfig, pipe: FacePipeline, faces: torch.Tensor,
          nodes: Sequence[str]) -> dict[str, _Layer]:
    """One forward pass per batch, clean and occluded together, keeping every layer's stats."""
    rng = np.random.default_rng(cfg.seed)
    probe = pipe.model.forward_nodes(faces[:1], tuple(nodes))
    sizes = {n: int(probe[n][0].numel()) for n in nodes}
    k = cfg.units or sizes[EMBEDDING]
    layers = {n: _Layer(np.sort(rng.choice(sizes[n], size=min(k, sizes[n]), replace=False)),
                        sizes[n]) for n in nodes}
    n = faces.shape[0]
    for start in tqdm(range(0, n, cfg.batch_size), desc=f"layers {cfg.backbone}",
                      unit="batch", disable=not cfg.progress):
        clean = faces[start:start + cfg.batch_size]
        hidden = _occluded(clean, cfg.area, cfg.seed, start)
        out = pipe.model.forward_nodes(torch.cat([clean, hidden]), tuple(nodes))
        b = clean.shape[0]
        for name, layer in layers.items():
            x = out[name].float().flatten(1)
            on = x > 0
            layer.active.append(on[:b].float().mean(1).numpy())
            layer.flipped.append((on[:b] != on[b:]).float().mean(1).numpy())
            layer.sampled.append(x[:b, layer.units].numpy())
            layer.bits.append(np.packbits(on[:b].numpy(), axis=1))
            layer.hidden_bits.append(np.packbits(on[b:].numpy(), axis=1))
    return layers


def _bit_distance(bits: np.ndarray, n_units: int, a: np.ndarray, b: np.ndarray,
                  bits_b: np.ndarray | None = None) -> np.ndarray:
    """Share of differing bits between faces ``a`` and ``b`` (``b`` from ``bits_b`` if given)."""
    other = bits if bits_b is None else bits_b
    return np.unpackbits(bits[a] ^ other[b], axis=1, count=n_units).mean(axis=1)


HIST_BINS = np.linspace(0.0, 1.0, 41)  # the paper's Fig. 1 histograms, in 2.5% steps


def _unit_rates(bits: np.ndarray, n_units: int, chunk: int = 256) -> np.ndarray:
    """Per unit, the share of faces on which it is above 0 (every unit, chunked unpacking)."""
    counts = np.zeros(n_units, dtype=np.int64)
    for start in range(0, bits.shape[0], chunk):
        counts += np.unpackbits(bits[start:start + chunk], axis=1, count=n_units).sum(
            axis=0, dtype=np.int64)
    return counts / bits.shape[0]


def _verification_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """P(a genuine pair's bit distance < an impostor pair's), ties counting half."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(genuine.size), np.zeros(impostor.size)]
    return float(roc_auc_score(labels, -np.r_[genuine, impostor]))


def _pairs(identity: np.ndarray, n: int, same: bool, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs of distinct faces, of one person (``same``) or of two people."""
    a: list[int] = []
    b: list[int] = []
    while len(a) < n:
        i, j = rng.integers(0, identity.size, size=2)
        if i != j and (identity[i] == identity[j]) == same:
            a.append(i)
            b.append(j)
    return np.asarray(a), np.asarray(b)


def _selectivity(values: np.ndarray, identity: np.ndarray, names: list[str],
                 train: np.ndarray) -> np.ndarray:
    """Held-out balanced accuracy of the best single unit for each identity."""
    sorted_train = SortedColumns(values[train])
    out = []
    for name in names:
        y = identity == name
        rule = best_single_neuron(sorted_train, y[train])
        out.append(balanced_accuracy(rule.predict(values[~train]), y[~train]))
    return np.asarray(out)


def _mean_ci(x: np.ndarray, rng: np.random.Generator, n_boot: int = 1000) -> dict[str, object]:
    boots = [float(rng.choice(x, size=x.size).mean()) for _ in range(n_boot)]
    return {"mean": round(float(x.mean()), 4),
            "ci": [round(float(np.percentile(boots, 2.5)), 4),
                   round(float(np.percentile(boots, 97.5)), 4)]}


def run_layer_sweep(cfg: LayerSweepConfig, pipeline: FacePipeline | None = None
                    ) -> dict[str, object]:
    """Sparsity, selectivity and occlusion robustness of every swept layer (see the module)."""
    started = time.perf_counter()
    pipe = pipeline or FacePipeline(cfg.backbone)
    nodes = stages_of(pipe)
    faces, identity, names = _aligned_faces(cfg, pipe)
    layers = _pass(cfg, pipe, faces, nodes)
    rng = np.random.default_rng(cfg.seed + 1)
    train = split_within_groups(identity, rng)
    impostor = _pairs(identity, cfg.distance_pairs, False, rng)
    genuine = _pairs(identity, cfg.distance_pairs, True, rng)
    rows = []
    for depth, (name, layer) in enumerate(layers.items()):
        active = np.concatenate(layer.active)
        flipped = np.concatenate(layer.flipped)
        sampled = np.concatenate(layer.sampled)
        bits = np.concatenate(layer.bits)
        hidden = np.concatenate(layer.hidden_bits)
        between = _bit_distance(bits, layer.n_units, *impostor)
        within = _bit_distance(bits, layer.n_units, *genuine)
        # Verification from the layer's bits with face B clean, then with face B occluded.
        clean_auc = _verification_auc(within, between)
        hidden_auc = _verification_auc(_bit_distance(bits, layer.n_units, *genuine, hidden),
                                       _bit_distance(bits, layer.n_units, *impostor, hidden))
        select = _selectivity(sampled, identity, names, train)
        rates = _unit_rates(bits, layer.n_units)
        rows.append({
            "layer": name, "depth": depth, "n_units": layer.n_units,
            "sparsity_per_image": _mean_ci(active, rng),
            "sparsity_per_unit": round(float(rates.mean()), 4),
            "never_active_units": round(float((rates == 0).mean()), 4),
            "always_active_units": round(float((rates == 1).mean()), 4),
            "histogram_per_image": np.histogram(active, HIST_BINS)[0].tolist(),
            "histogram_per_unit": np.histogram(rates, HIST_BINS)[0].tolist(),
            "selectivity": _mean_ci(select, rng),
            "flipped": _mean_ci(flipped, rng),
            "impostor_distance": round(float(between.mean()), 4),
            "genuine_distance": round(float(within.mean()), 4),
            "flipped_relative_to_impostor": round(float(flipped.mean() / max(between.mean(),
                                                                              1e-12)), 4),
            "verification_auc_clean": round(clean_auc, 4),
            "verification_auc_occluded": round(hidden_auc, 4),
        })
    return {
        "backbone": pipe.spec.name, "weights": pipe.scorer.fingerprint(),
        "n_images": int(faces.shape[0]), "n_identities": len(names),
        "min_images": cfg.min_images, "area": cfg.area,
        "units_per_layer_for_selectivity": int(layers[EMBEDDING].units.size),
        "distance_pairs": cfg.distance_pairs, "seed": cfg.seed, "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
        **measured_on(f"{torch.get_num_threads()} torch threads"),
    }
