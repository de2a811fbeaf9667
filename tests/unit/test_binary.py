"""Binary codes: packing round-trips, Hamming = popcount of xor, storage, the search benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facexplain.benchmarks.search import search_benchmark, synthetic_like
from facexplain.errors import InvalidArgument
from facexplain.search.binary import (
    BinaryCodes,
    encode,
    hamming,
    hamming_similarity,
    load_codes,
    pack_bits,
    save_codes,
    unpack_bits,
)


def naive_hamming(a: np.ndarray, b: np.ndarray) -> int:
    """Bit count of the xor the slow way: one Python bit at a time."""
    return sum(int(x) != int(y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("n_bits", [1, 7, 64, 65, 128, 200])
def test_pack_unpack_round_trip(n_bits: int) -> None:
    bits = np.random.default_rng(n_bits).random((9, n_bits)) > 0.5
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (9, (n_bits + 63) // 64)
    assert np.array_equal(unpack_bits(words, n_bits), bits)


def test_bit_layout_is_little_endian_per_word() -> None:
    bits = np.zeros((1, 70), dtype=bool)
    bits[0, [0, 3, 64]] = True
    words = pack_bits(bits)
    assert words[0, 0] == np.uint64(1 | 8) and words[0, 1] == np.uint64(1)


@pytest.mark.parametrize("n_bits", [5, 64, 100, 256])
def test_hamming_equals_naive_bit_count(n_bits: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.random((50, n_bits)) > 0.5
    b = rng.random((50, n_bits)) > 0.3
    got = hamming(BinaryCodes(pack_bits(a), n_bits), BinaryCodes(pack_bits(b), n_bits))
    want = [naive_hamming(x, y) for x, y in zip(a, b, strict=True)]
    assert got.tolist() == want


def test_hamming_similarity_is_cosine_of_sign_vectors() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((20, 96)), rng.standard_normal((20, 96))
    sx, sy = np.where(x > 0, 1.0, -1.0), np.where(y > 0, 1.0, -1.0)
    want = (sx * sy).sum(axis=1) / 96
    assert np.allclose(hamming_similarity(encode(x), encode(y)), want)


def test_encode_uses_thresholds_per_neuron() -> None:
    x = np.array([[1.0, 5.0], [3.0, 1.0]])
    codes = encode(x, np.array([2.0, 2.0]))
    assert codes.bits().tolist() == [[False, True], [True, False]]


def test_save_load_round_trip(tmp_path: Path) -> None:
    codes = encode(np.random.default_rng(6).standard_normal((4, 70)))
    path = save_codes(tmp_path / "codes.npz", codes, ["a", "b", "c", "d"])
    back, ids = load_codes(path)
    assert back.n_bits == 70 and np.array_equal(back.words, codes.words)
    assert ids == ["a", "b", "c", "d"]


def test_load_refuses_other_npz(tmp_path: Path) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(InvalidArgument, match="not a facexplain binary-code file"):
        load_codes(other)


def test_codes_check_their_shape() -> None:
    with pytest.raises(InvalidArgument):
        BinaryCodes(np.zeros((2, 1), dtype=np.uint64), 65)
    with pytest.raises(InvalidArgument):
        hamming(encode(np.ones((2, 8))), encode(np.ones((2, 9))))


def test_synthetic_codes_keep_bit_statistics() -> None:
    rng = np.random.default_rng(7)
    real = rng.standard_normal((4000, 16)) + np.linspace(-1, 1, 16)
    fake = synthetic_like(real, 50_000, rng)
    assert np.allclose((fake > 0).mean(axis=0), (real > 0).mean(axis=0), atol=0.03)


def test_search_benchmark_on_planted_neighbours() -> None:
    rng = np.random.default_rng(8)
    db = rng.standard_normal((20_000, 64)).astype(np.float32)
    queries = db[:20] + 0.01 * rng.standard_normal((20, 64)).astype(np.float32)
    result = search_benchmark(queries, db, k=1)
    assert result.recall_at_k == 1.0  # a near-copy is the nearest in both spaces
    assert result.binary_bytes_per_face == 8 and result.float_bytes_per_face == 256
