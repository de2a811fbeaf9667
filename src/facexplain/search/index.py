"""Face search with FAISS: exact float inner product, Hamming on binary codes, and short lists
from compact codes re-ranked exactly on the float vectors.

Why: Hamming alone cannot order a million faces (128-1024 bits leave ties and coarse
distances), and exact float search reads every vector. The field's answer is to let compact
codes pick a short list and rank that exactly. Two code families pick it here: our binary
codes (FAISS binary flat scan) and 4-bit product-quantisation codes, which FAISS scans with
SIMD table look-ups ("fast scan") several times faster than any popcount loop.
"""

from __future__ import annotations

import faiss
import numpy as np

from facexplain.errors import InvalidArgument
from facexplain.search.binary import BinaryCodes, normalize_rows


def faiss_bytes(codes: BinaryCodes) -> np.ndarray:
    """Our packed uint64 words as the (n, bytes) uint8 rows FAISS's binary indexes read.

    Padding bits are zero in every code, so they never add to a distance.
    """
    return np.ascontiguousarray(codes.words.astype("<u8", copy=False)).view(np.uint8)


def set_threads(threads: int | None) -> None:
    """FAISS's OpenMP threads (None: leave FAISS's default, all cores)."""
    if threads is not None:
        faiss.omp_set_num_threads(max(1, threads))


class FaceIndex:
    """Unit float rows (exact search) and their binary codes (Hamming, short lists)."""

    def __init__(self, vectors: np.ndarray, codes: BinaryCodes, unit: bool = False) -> None:
        if len(codes) != len(vectors):
            raise InvalidArgument(f"{len(codes)} codes for {len(vectors)} vectors")
        self.unit = vectors if unit else normalize_rows(vectors)
        self.dim = int(self.unit.shape[1])
        self.flat = faiss.IndexFlatIP(self.dim)
        self.flat.add(np.ascontiguousarray(self.unit, dtype=np.float32))
        self.n_bits = codes.n_bits
        data = faiss_bytes(codes)
        self.hamming = faiss.IndexBinaryFlat(data.shape[1] * 8)
        self.hamming.add(data)

    def __len__(self) -> int:
        return int(self.unit.shape[0])

    def search_float(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine top-k: (similarities, indices), each (n_queries, k), best first."""
        d, i = self.flat.search(normalize_rows(queries), min(k, len(self)))
        return d, i

    def search_hamming(self, codes: BinaryCodes, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Hamming top-k over all codes: (distances, indices)."""
        if codes.n_bits != self.n_bits:
            raise InvalidArgument(f"codes of {codes.n_bits} and {self.n_bits} bits differ")
        d, i = self.hamming.search(faiss_bytes(codes), min(k, len(self)))
        return d, i

    def search(self, queries: np.ndarray, codes: BinaryCodes, k: int,
               short_list: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Short list of the nearest codes by Hamming, then exact cosine on it."""
        _, cand = self.search_hamming(codes, max(short_list, k))
        return rerank(normalize_rows(queries), self.unit, cand, k)


class PQShortList:
    """4-bit product-quantisation codes (``bytes_per_face`` bytes, FAISS fast scan) over unit
    rows; the short list they pick is re-ranked exactly by :func:`rerank`."""

    def __init__(self, unit: np.ndarray, train: np.ndarray, bytes_per_face: int = 32) -> None:
        dim = unit.shape[1]
        m = 2 * bytes_per_face  # sub-quantisers of 4 bits each
        if dim % m:
            raise InvalidArgument(f"{bytes_per_face} B/face needs {m} sub-vectors, which do "
                                  f"not divide {dim} dimensions")
        self.unit = unit
        self.bytes_per_face = bytes_per_face
        self.index = faiss.IndexPQFastScan(dim, m, 4, faiss.METRIC_INNER_PRODUCT)
        self.index.train(np.ascontiguousarray(normalize_rows(train), dtype=np.float32))
        self.index.add(np.ascontiguousarray(unit, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int,
               short_list: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        q = normalize_rows(queries)
        _, cand = self.index.search(q, max(short_list, k))
        return rerank(q, self.unit, cand, k)


def rerank(queries_unit: np.ndarray, database_unit: np.ndarray, candidates: np.ndarray,
           k: int, chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each query among its candidate rows (-1 = no candidate), best first
    (equal similarities inside the top k by database index): when the candidates hold the
    true top k, this is the exact search's answer."""
    n, width = candidates.shape
    k = min(k, width)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    idx = np.full((n, k), -1, dtype=np.int64)
    for start in range(0, n, chunk):
        cand = candidates[start : start + chunk]
        rows = database_unit[np.maximum(cand, 0)]  # (c, width, d)
        s = np.matmul(rows, queries_unit[start : start + chunk, :, None])[:, :, 0]
        s[cand < 0] = -np.inf
        top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < width else \
            np.broadcast_to(np.arange(width), s.shape)
        for r in range(cand.shape[0]):
            t = top[r]
            order = t[np.lexsort((cand[r, t], -s[r, t]))]
            sims[start + r] = s[r, order]
            idx[start + r] = np.where(np.isfinite(s[r, order]), cand[r, order], -1)
    return sims, idx
