"""Search at a million faces: exact float (FAISS flat inner product) against Hamming (FAISS
binary flat) and against a short list from the codes re-ranked exactly, in one run.

The database is every LFW face outside the queries plus synthetic embeddings drawn from a
Gaussian with the LFW embeddings' mean and covariance (as the neuron study did), so codes and
distances have realistic statistics; queries are LFW faces of people with other photos in it.
Codes come from an encoder fitted on the LFW images no pair uses.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from facexplain import settings
from facexplain.analysis.binary import normalize_rows, synthetic_like
from facexplain.analysis.codes import fit_encoder, parse_recipe
from facexplain.benchmarks.codes import lfw_embeddings, outside_pairs
from facexplain.datasets.lfw import read_pairs
from facexplain.search.index import FaceIndex, PQShortList, set_threads


@dataclass(frozen=True)
class SearchBenchmarkConfig:
    backbone: str = "sface"
    code: str = "rotation-256"  # method-bits, e.g. sign-128, itq-256, rotation-512
    size: int = 1_000_000
    queries: int = 200
    k: int = 10
    short_lists: tuple[int, ...] = (300, 1000, 3000)
    pq_bytes: tuple[int, ...] = (32, 64)  # PQ fast-scan code sizes for the short list
    threads: int | None = None
    seed: int = 0
    lfw_root: Path = field(default_factory=lambda: settings.current().lfw)
    cache_dir: Path = field(default_factory=lambda: settings.current().cache)
    progress: bool = True


def _timed(fn: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    _, idx = fn()
    return time.perf_counter() - t, idx


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of each query's true top-k that ``found`` also holds, averaged over queries."""
    hits = [len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


def run_search_benchmark(cfg: SearchBenchmarkConfig) -> dict[str, object]:
    started = time.perf_counter()
    set_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    recipe = parse_recipe(cfg.code)
    pairs = read_pairs(cfg.lfw_root / "pairs.txt")
    emb = lfw_embeddings(cfg.backbone, cfg.lfw_root, cfg.cache_dir, cfg.progress)
    people, x = emb.people, emb.matrix
    fit_rows = x[outside_pairs(pairs, cfg.lfw_root / "lfw-deepfunneled", people)]
    encoder = fit_encoder(fit_rows, recipe)
    names, counts = np.unique(people.identity, return_counts=True)
    multi = set(names[counts >= 2].tolist())
    candidates = np.flatnonzero([n in multi for n in people.identity])
    q_idx = rng.choice(candidates, size=min(cfg.queries, candidates.size), replace=False)
    keep = np.ones(len(x), dtype=bool)
    keep[q_idx] = False
    real = x[keep]
    n_db = max(cfg.size, len(real))
    db = np.empty((n_db, x.shape[1]), dtype=np.float32)
    db[: len(real)] = real
    synthetic_like(x, n_db - len(real), rng, out=db[len(real):])
    t = time.perf_counter()
    codes = encoder.encode(db)
    encode_s = time.perf_counter() - t
    normalize_rows(db, in_place=True)  # the codes were taken from the rows as given
    bit_rate_real = float(codes.take(slice(0, len(real))).bits().mean())
    t = time.perf_counter()
    index = FaceIndex(db, codes, unit=True)
    pq = {b: PQShortList(db, fit_rows, b) for b in cfg.pq_bytes}
    build_s = time.perf_counter() - t
    queries, q_codes = x[q_idx], encoder.encode(x[q_idx])
    n_q, k = len(q_idx), cfg.k

    float_s, truth = _timed(lambda: index.search_float(queries, k))
    rows: list[dict[str, object]] = []

    def add(name: str, seconds: float, found: np.ndarray, **extra: object) -> None:
        rows.append({"search": name, "ms_per_query": round(1000 * seconds / n_q, 3),
                     "speedup": round(float_s / max(seconds, 1e-12), 2),
                     f"recall_at_{k}": round(recall_at(found[:, :k], truth), 4), **extra})
        if cfg.progress:
            tqdm.write(f"  {name} {extra}: {rows[-1]}")

    add("exact float (faiss IndexFlatIP)", float_s, truth)
    sec, found = _timed(lambda: index.search_hamming(q_codes, k))
    add("Hamming flat (faiss IndexBinaryFlat)", sec, found)
    for size in cfg.short_lists:
        sec, found = _timed(partial(index.search, queries, q_codes, k, size))
        add("short list (binary flat) + exact re-rank", sec, found, short_list=size)
    for nbytes, short in pq.items():
        for size in cfg.short_lists:
            sec, found = _timed(partial(short.search, queries, k, size))
            add(f"short list (PQ fast scan, {nbytes} B) + exact re-rank", sec, found,
                short_list=size)
    return {
        "backbone": cfg.backbone, "code": recipe.label(x.shape[1]), "n_bits": codes.n_bits,
        "n_database": n_db, "n_lfw_in_database": len(real), "n_queries": n_q, "k": k,
        "rows": rows, "float_bytes_per_face": 4 * x.shape[1],
        "code_bytes_per_face": codes.n_bits // 8, "pq_bytes_per_face": list(cfg.pq_bytes),
        "pq_trained_on": f"{len(fit_rows)} LFW images no pair uses",
        "bit_rate_lfw": round(bit_rate_real, 4),
        "bit_rate_synthetic": round(float(codes.take(slice(len(real), len(real) + 65536))
                                          .bits().mean()), 4) if n_db > len(real) else None,
        "synthetic": "Gaussian with the LFW embeddings' mean and covariance",
        "encode_seconds": round(encode_s, 1), "build_seconds": round(build_s, 1),
        "faiss": faiss.__version__, "threads": faiss.omp_get_max_threads(),
        "seconds": round(time.perf_counter() - started, 1),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {faiss.omp_get_max_threads()} FAISS threads",
    }

