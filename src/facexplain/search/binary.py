"""Binary face codes: sign-binarised activations, packed 64 bits a word, compared by Hamming.

DeepID2+ found that *which* top neurons fire carries almost all the identity information, so a
code of one bit per neuron verifies nearly as well as the float vector at 1/32 of the storage,
and Hamming distance (xor + popcount) is far cheaper to search than float cosine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facexplain.errors import InputNotFound, InvalidArgument

WORD_BITS = 64
CODES_FORMAT = "facexplain-binary-codes-v1"


@dataclass(frozen=True)
class BinaryCodes:
    """``n`` codes of ``n_bits`` bits, packed little-endian into (n, words) uint64.

    Bits past ``n_bits`` in the last word are zero, so they never add to a Hamming distance.
    """

    words: np.ndarray
    n_bits: int

    def __post_init__(self) -> None:
        if self.words.ndim != 2 or self.words.dtype != np.uint64:
            raise InvalidArgument("BinaryCodes.words must be a 2-d uint64 array")
        if self.words.shape[1] != n_words(self.n_bits):
            raise InvalidArgument(
                f"{self.n_bits} bits need {n_words(self.n_bits)} words, got {self.words.shape[1]}"
            )

    def __len__(self) -> int:
        return int(self.words.shape[0])

    @property
    def bytes_per_code(self) -> int:
        """Storage of one code as packed here (whole 64-bit words)."""
        return int(self.words.shape[1] * 8)

    def bits(self) -> np.ndarray:
        """The codes back as an (n, n_bits) bool array."""
        return unpack_bits(self.words, self.n_bits)

    def take(self, index: np.ndarray | slice) -> BinaryCodes:
        return BinaryCodes(np.ascontiguousarray(self.words[index]), self.n_bits)


def n_words(n_bits: int) -> int:
    return (n_bits + WORD_BITS - 1) // WORD_BITS


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, d) bool -> (n, ceil(d / 64)) uint64; bit j of a code is bit j % 64 of word j // 64."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise InvalidArgument(f"expected (n, d) bits, got shape {bits.shape}")
    n, d = bits.shape
    padded = np.zeros((n, n_words(d) * WORD_BITS), dtype=bool)
    padded[:, :d] = bits.astype(bool)
    as_bytes = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64, copy=False)


def unpack_bits(words: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`."""
    as_bytes = np.ascontiguousarray(words.astype("<u8", copy=False)).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little", count=n_bits).astype(bool)


def encode(x: np.ndarray, thresholds: np.ndarray | float = 0.0,
           chunk: int = 65536) -> BinaryCodes:
    """Bit j is on where ``x[:, j] > thresholds[j]`` (0 by default: the paper's 'activated').

    Rows are packed a chunk at a time, so a million codes never exist as bools at once.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise InvalidArgument(f"expected (n, d) activations, got shape {x.shape}")
    words = np.zeros((x.shape[0], n_words(x.shape[1])), dtype=np.uint64)
    for start in range(0, x.shape[0], chunk):
        words[start : start + chunk] = pack_bits(x[start : start + chunk] > thresholds)
    return BinaryCodes(words, int(x.shape[1]))


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per element of an unsigned integer array (hardware popcount in numpy >= 2)."""
    return np.bitwise_count(words)


def hamming(a: BinaryCodes, b: BinaryCodes) -> np.ndarray:
    """Row-wise Hamming distance of two equally long code sets (pairs a[i], b[i])."""
    _check_compatible(a, b)
    if len(a) != len(b):
        raise InvalidArgument(f"row-wise Hamming needs equal counts, got {len(a)} and {len(b)}")
    return popcount(a.words ^ b.words).sum(axis=1, dtype=np.int64)


def hamming_similarity(a: BinaryCodes, b: BinaryCodes) -> np.ndarray:
    """1 - 2 * Hamming / bits: the cosine of the two codes read as +-1 vectors, for thresholds."""
    return 1.0 - 2.0 * hamming(a, b) / a.n_bits


def _check_compatible(a: BinaryCodes, b: BinaryCodes) -> None:
    if a.n_bits != b.n_bits:
        raise InvalidArgument(f"codes of {a.n_bits} and {b.n_bits} bits cannot be compared")


def normalize_rows(x: np.ndarray, in_place: bool = False, chunk: int = 65536) -> np.ndarray:
    """Rows scaled to unit length (a copy, or ``x`` itself, a chunk at a time, if in_place)."""
    out = x if in_place else np.array(x, dtype=np.float32)
    for start in range(0, out.shape[0], chunk):
        part = out[start : start + chunk]
        part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return out


def save_codes(path: Path, codes: BinaryCodes, ids: list[str] | None = None) -> Path:
    """Store codes (and optional string ids, one per code) in one ``.npz`` file."""
    if ids is not None and len(ids) != len(codes):
        raise InvalidArgument(f"{len(ids)} ids for {len(codes)} codes")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "format": np.asarray(CODES_FORMAT), "words": codes.words,
        "n_bits": np.asarray(codes.n_bits, dtype=np.int64),
    }
    if ids is not None:
        arrays["ids"] = np.asarray(ids, dtype=str)
    with path.open("wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    return path


def load_codes(path: Path) -> tuple[BinaryCodes, list[str] | None]:
    """Read what :func:`save_codes` wrote; refuses other files with a clear error."""
    if not path.is_file():
        raise InputNotFound(f"no such code file: {path}")
    try:
        with np.load(path) as data:
            if "format" not in data.files or str(data["format"]) != CODES_FORMAT:
                raise InvalidArgument(f"{path} is not a facexplain binary-code file")
            codes = BinaryCodes(data["words"].astype(np.uint64), int(data["n_bits"]))
            ids = [str(s) for s in data["ids"]] if "ids" in data.files else None
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read code file {path}: {exc}") from None
    return codes, ids
