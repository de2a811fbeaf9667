"""FAISS search: exact float equals brute force, Hamming equals popcount, and re-ranking a
short list that holds the true top-k returns exactly the float top-k."""

from __future__ import annotations

import numpy as np
import pytest

from facexplain.errors import InvalidArgument
from facexplain.search.binary import encode, hamming
from facexplain.search.codes import CodeRecipe, fit_encoder
from facexplain.search.index import FaceIndex, PQShortList, faiss_bytes, rerank


def data(n: int = 3000, d: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    m = min(n, 40)
    q = (x[:m] + 0.3 * rng.standard_normal((m, d))).astype(np.float32)
    return x, q


def brute_cosine(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    qu = q / np.linalg.norm(q, axis=1, keepdims=True)
    xu = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = qu.astype(np.float64) @ xu.T.astype(np.float64)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


def test_float_search_is_exact_cosine() -> None:
    x, q = data()
    index = FaceIndex(x, encode(x))
    sims, idx = index.search_float(q, 10)
    want_s, want_i = brute_cosine(q, x, 10)
    assert np.array_equal(idx, want_i)
    assert np.allclose(sims, want_s, atol=1e-5)


def test_faiss_hamming_distances_equal_popcount() -> None:
    x, q = data()
    codes, q_codes = encode(x), encode(q)
    assert faiss_bytes(codes).shape == (len(x), 8)  # 24 bits -> one 64-bit word
    dist, idx = FaceIndex(x, codes).search_hamming(q_codes, 15)
    for r in range(len(q)):
        all_d = hamming(q_codes.take(np.full(len(x), r)), codes)
        assert np.array_equal(all_d[idx[r]], dist[r])  # each reported distance is right
        assert np.array_equal(dist[r], np.sort(all_d)[:15])  # and they are the 15 smallest


@pytest.mark.parametrize("size", [3000, 200])
def test_rerank_returns_exactly_the_float_top_k_when_the_short_list_holds_it(size: int) -> None:
    x, q = data()
    truth_s, truth = brute_cosine(q, x, 10)
    rng = np.random.default_rng(1)
    # a short list of `size` rows: the true top-10 plus random others, shuffled
    cand = np.stack([rng.permutation(np.concatenate(
        [t, rng.choice(np.setdiff1d(np.arange(len(x)), t), size - 10, replace=False)]))
        for t in truth])
    xu = x / np.linalg.norm(x, axis=1, keepdims=True)
    qu = q / np.linalg.norm(q, axis=1, keepdims=True)
    sims, idx = rerank(qu, xu, cand, 10)
    assert np.array_equal(idx, truth)
    assert np.allclose(sims, truth_s, atol=1e-5)


def test_rerank_skips_missing_candidates() -> None:
    x, q = data(50)
    xu = x / np.linalg.norm(x, axis=1, keepdims=True)
    cand = np.full((1, 6), -1)
    cand[0, :3] = [7, 3, 9]
    sims, idx = rerank(xu[:1], xu, cand, 5)
    assert set(idx[0, :3].tolist()) == {3, 7, 9} and idx[0, 3:].tolist() == [-1, -1]
    assert np.all(np.isinf(sims[0, 3:]))


def test_a_short_list_of_everything_equals_exact_search() -> None:
    x, q = data()
    enc = fit_encoder(x, CodeRecipe("itq", 64))
    index = FaceIndex(x, enc.encode(x))
    _, exact = index.search_float(q, 10)
    _, got = index.search(q, enc.encode(q), 10, short_list=len(x))
    assert np.array_equal(got, exact)
    pq = PQShortList(index.unit, x, bytes_per_face=4)
    _, got = pq.search(q, 10, short_list=len(x))
    assert np.array_equal(got, exact)


def test_pq_short_list_keeps_the_top_10_with_a_tenth_of_the_database() -> None:
    """Not a guarantee, a sanity level: 300 of 3000 by 6-byte PQ codes keep >= 95%."""
    x, q = data()
    index = FaceIndex(x, encode(x))
    _, exact = index.search_float(q, 10)
    _, got = PQShortList(index.unit, x, bytes_per_face=6).search(q, 10, short_list=300)
    hits = np.mean([len(np.intersect1d(a, b)) for a, b in zip(got, exact, strict=True)])
    assert hits >= 9.5
    with pytest.raises(InvalidArgument, match="do not divide"):
        PQShortList(index.unit, x, bytes_per_face=5)


def test_a_short_list_from_learned_codes_finds_most_of_the_top_10() -> None:
    """Not a guarantee, a sanity level: 300 of 3000 by 64-bit ITQ codes keep >= 90%."""
    x, q = data()
    enc = fit_encoder(x, CodeRecipe("itq", 64))
    index = FaceIndex(x, enc.encode(x))
    _, exact = index.search_float(q, 10)
    _, got = index.search(q, enc.encode(q), 10, short_list=300)
    hits = np.mean([len(np.intersect1d(a, b)) for a, b in zip(got, exact, strict=True)])
    assert hits >= 9.0


def test_mismatched_inputs_are_refused() -> None:
    x, _ = data(20)
    with pytest.raises(InvalidArgument, match="codes for"):
        FaceIndex(x, encode(x[:10]))
    with pytest.raises(InvalidArgument, match="bits differ"):
        FaceIndex(x, encode(x)).search_hamming(encode(x[:, :8]), 3)
