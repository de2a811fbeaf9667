"""Search at a million faces: exact float (FAISS flat inner product) against Hamming (FAISS
binary flat) and against a short list from the codes re-ranked exactly, in one run.

The database is every LFW face outside the queries plus synthetic embeddings drawn from a
Gaussian with the LFW embeddings' mean and covariance (as the neuron study did), so codes and
distances have realistic statistics; queries are LFW faces of people with other photos in it.
Codes come from an encoder fitted on the LFW images no pair uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from facexplain import settings
from facexplain.benchmarks.codes import lfw_embeddings, outside_pairs
from facexplain.benchmarks.registry import measured_on
from facexplain.datasets.lfw import read_pairs
from facexplain.errors import InvalidArgument
from facexplain.search.binary import encode, normalize_rows
from facexplain.search.codes import fit_encoder, parse_recipe
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
        **measured_on(f"{faiss.omp_get_max_threads()} FAISS threads"),
    }


@dataclass(frozen=True)
class SearchBenchmark:
    """Binary Hamming vs exact float cosine top-k over the same database, same run."""

    n_database: int
    n_queries: int
    k: int
    n_bits: int
    float_seconds: float
    binary_seconds: float
    recall_at_k: float
    float_bytes_per_face: int
    binary_bytes_per_face: int

    @property
    def speedup(self) -> float:
        return self.float_seconds / max(self.binary_seconds, 1e-12)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n_database": self.n_database, "n_queries": self.n_queries, "k": self.k,
            "n_bits": self.n_bits, "float_seconds": round(self.float_seconds, 4),
            "binary_seconds": round(self.binary_seconds, 4), "speedup": round(self.speedup, 2),
            f"recall_at_{self.k}": round(self.recall_at_k, 4),
            "float_bytes_per_face": self.float_bytes_per_face,
            "binary_bytes_per_face": self.binary_bytes_per_face,
        }


def synthetic_like(
    x: np.ndarray, n: int, rng: np.random.Generator, chunk: int = 65536,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` random vectors from a Gaussian with the mean and covariance of the rows of ``x``.

    Their sign codes then have (approximately) the bit frequencies and bit correlations of the
    real codes, so the search benchmark sees realistic distance distributions. ``out``, an
    (n, d) float32 array, is filled in place (a million 1024-d vectors are 4 GB: no copies).
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False) + 1e-9 * np.eye(x.shape[1])
    factor = np.linalg.cholesky(cov).astype(np.float32)
    if out is None:
        out = np.empty((n, x.shape[1]), dtype=np.float32)
    elif out.shape != (n, x.shape[1]):
        raise InvalidArgument(f"out must be ({n}, {x.shape[1]}), got {out.shape}")
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        z = rng.standard_normal((m, x.shape[1]), dtype=np.float32)
        out[start : start + m] = z @ factor.T + mean.astype(np.float32)
    return out


def search_benchmark(
    queries: np.ndarray, database: np.ndarray, k: int = 10,
    thresholds: np.ndarray | float = 0.0, in_place: bool = False,
) -> SearchBenchmark:
    """Time both exact searches over ``database`` (float rows) and the binary recall@k.

    Both run in FAISS (flat inner product on normalised rows; binary flat Hamming), which
    replaced the project's numpy popcount scan when it measured faster (docs/BENCHMARKS.md,
    issue 16). Recall@k: the share of the float search's k nearest that the Hamming search also
    returns. Both indexes are built before timing. ``in_place`` normalises ``database`` itself
    (float32) instead of a copy; codes are taken before that, from the rows as given.
    """
    db_codes = encode(database, thresholds)
    if in_place and database.dtype != np.float32:
        raise InvalidArgument("in-place normalisation needs a float32 database")
    db_unit = normalize_rows(database, in_place=in_place)
    index = FaceIndex(db_unit, db_codes, unit=True)
    q_codes = encode(queries, thresholds)
    t0 = time.perf_counter()
    _, float_idx = index.search_float(queries, k)
    t1 = time.perf_counter()
    _, bin_idx = index.search_hamming(q_codes, k)
    t2 = time.perf_counter()
    hits = [len(np.intersect1d(f, b)) for f, b in zip(float_idx, bin_idx, strict=True)]
    return SearchBenchmark(
        n_database=int(database.shape[0]), n_queries=int(queries.shape[0]), k=k,
        n_bits=int(database.shape[1]), float_seconds=t1 - t0, binary_seconds=t2 - t1,
        recall_at_k=float(np.mean(hits)) / k, float_bytes_per_face=int(database.shape[1] * 4),
        binary_bytes_per_face=db_codes.bytes_per_code,
    )
