"""The binary-code part of the neuron study (DeepID2+ Sec. 5): LFW verification with Hamming
distances on sign codes, per-neuron thresholds that never saw a test pair, and search at scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from facexplain.benchmarks.lfw import pair_scores
from facexplain.benchmarks.search import search_benchmark, synthetic_like
from facexplain.datasets.lfw import LfwPair
from facexplain.datasets.lfw_people import LfwPeople
from facexplain.metrics.verification import kfold_accuracy
from facexplain.search.binary import encode, hamming, hamming_similarity


class SearchSettings(Protocol):
    """What the search part reads of the analysis config (``neurons.NeuronAnalysisConfig``)."""

    @property
    def search_queries(self) -> int: ...

    @property
    def search_size(self) -> int: ...

    @property
    def k(self) -> int: ...

    @property
    def codes(self) -> str: ...


def outside_pair_medians(
    pairs: list[LfwPair], images: Path, emb_map: dict[Path, np.ndarray], people: LfwPeople,
) -> tuple[np.ndarray, int]:
    """Each neuron's median over the LFW images no pair uses (thresholds without test leakage)."""
    in_pairs = {p.path_a(images) for p in pairs} | {p.path_b(images) for p in pairs}
    outside = np.stack([emb_map[p] for p in people.paths if p not in in_pairs])
    return np.median(outside, axis=0), int(outside.shape[0])


def binary_verification(
    pairs: list[LfwPair], images: Path, emb_map: dict[Path, np.ndarray], medians: np.ndarray,
    n_outside: int,
) -> tuple[dict[str, object], np.ndarray, np.ndarray]:
    """LFW 10-fold accuracy: cosine on floats vs Hamming on codes (at 0 and at the medians)."""
    real, same, folds = pair_scores(pairs, images, emb_map)
    a = np.stack([emb_map[p.path_a(images)] for p in pairs])
    b = np.stack([emb_map[p.path_b(images)] for p in pairs])
    real_acc = kfold_accuracy(real, same, folds).accuracy_mean
    result: dict[str, object] = {"real_cosine": round(real_acc, 4)}
    dist = np.zeros(0)
    for rule, th in (("zero", 0.0), ("median", medians)):
        ca, cb = encode(a, th), encode(b, th)
        kf = kfold_accuracy(hamming_similarity(ca, cb), same, folds)
        result[f"binary_{rule}"] = round(kf.accuracy_mean, 4)
        result[f"binary_{rule}_std"] = round(kf.accuracy_std, 4)
        result[f"drop_points_{rule}"] = round(100 * (real_acc - kf.accuracy_mean), 2)
        if rule == "zero":
            dist = hamming(ca, cb)
    d = a.shape[1]
    result.update({
        "median_thresholds_from": f"{n_outside} LFW images outside pairs.txt",
        "bytes_per_face_float32": 4 * d,
        "bytes_per_face_binary": (d + 7) // 8,
        "n_pairs": len(pairs),
    })
    same_b = same.astype(bool)
    return result, dist[same_b], dist[~same_b]


def search_lfw(cfg: SearchSettings, people: LfwPeople, emb: np.ndarray,
            rng: np.random.Generator, thresholds: np.ndarray | float) -> dict[str, object]:
    """Hamming vs float cosine top-k over LFW codes plus synthetic ones up to search_size.

    Queries are LFW images of people with other images in the database; the database holds
    every other LFW face and random vectors drawn with the LFW embeddings' mean and covariance.
    """
    names, counts = np.unique(people.identity, return_counts=True)
    multi = set(names[counts >= 2].tolist())
    candidates = np.flatnonzero([n in multi for n in people.identity])
    q_idx = rng.choice(candidates, size=min(cfg.search_queries, candidates.size), replace=False)
    keep = np.ones(len(people.paths), dtype=bool)
    keep[q_idx] = False
    real = emb[keep]
    n_db = max(cfg.search_size, int(real.shape[0]))
    db = np.empty((n_db, emb.shape[1]), dtype=np.float32)
    db[: real.shape[0]] = real
    synthetic_like(emb, n_db - real.shape[0], rng, out=db[real.shape[0]:])
    rate_synthetic = float(np.mean([(db[s : s + 65536] > thresholds).mean()
                                    for s in range(real.shape[0], n_db, 65536)]))
    bench = search_benchmark(emb[q_idx], db, cfg.k, thresholds, in_place=True)
    return {**bench.to_dict(), "n_lfw_in_database": int(real.shape[0]), "codes": cfg.codes,
            "threads": torch.get_num_threads(),
            "synthetic": "Gaussian with the LFW embeddings' mean and covariance",
            "bit_rate_lfw": round(float((real > thresholds).mean()), 4),
            "bit_rate_synthetic": round(rate_synthetic, 4)}
