"""The LFW pair-list protocol (`pairs.txt`): parsing, folds, and image paths.

Format: a header ``<n_folds> <n_per_class>``, then for each fold ``n_per_class`` genuine lines
``name i j`` followed by ``n_per_class`` impostor lines ``name_a i name_b j``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from facexplain.errors import PairsFileError
from facexplain.validate import open_regular

# LFW view 2 ("pairs.txt"): ten folds of 300 genuine and 300 impostor pairs.
N_FOLDS = 10


@dataclass(frozen=True)
class LfwPair:
    name_a: str
    index_a: int
    name_b: str
    index_b: int
    same: bool
    fold: int

    def path_a(self, images: Path) -> Path:
        return image_path(images, self.name_a, self.index_a)

    def path_b(self, images: Path) -> Path:
        return image_path(images, self.name_b, self.index_b)


def image_path(images: Path, name: str, index: int) -> Path:
    return images / name / f"{name}_{index:04d}.jpg"


# LFW's pairs.txt is ~100 kB; anything this large is the wrong file, not a pair list.
MAX_PAIRS_FILE_BYTES = 16 * 1024 * 1024

_UINT = re.compile(r"[0-9]+")
_HEADER_HELP = "expected LFW's header '<folds> <pairs per class>' (e.g. '10 300')"


def read_pairs(path: Path, folds: int | None = None) -> list[LfwPair]:
    """Parse a pairs file; every malformed file raises PairsFileError naming file and line.

    The header is ``<folds> <pairs per class>``, or a single ``<pairs>`` (LFW's View 1 files
    pairsDevTrain/pairsDevTest: one fold). With ``folds``, fewer folds than that is refused
    here (see ``require_folds``), before anything expensive starts. A missing file raises
    InputNotFound; a directory, FIFO or device is refused without being read.
    """
    with open_regular(path, "pairs file", PairsFileError) as fh:
        data = fh.read(MAX_PAIRS_FILE_BYTES + 1)
    if len(data) > MAX_PAIRS_FILE_BYTES:
        raise PairsFileError(
            f"{path} is larger than {MAX_PAIRS_FILE_BYTES // 2**20} MiB; not a pairs file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise PairsFileError(
            f"{path}:{lineno}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "is this a pairs.txt file?"
        ) from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        raise PairsFileError(f"{path}:1: file is empty; {_HEADER_HELP}")
    n_folds, per_class = _parse_header(lines[0], path)
    expected = n_folds * 2 * per_class
    body = lines[1:]
    if len(body) != expected:
        where = body[expected][0] if len(body) > expected else (lines[-1][0])
        more = "more" if len(body) > expected else "fewer"
        raise PairsFileError(
            f"{path}:{where}: header promises {expected} pair lines ({_folds(n_folds)} x 2 x "
            f"{per_class}), found {len(body)} ({more} lines than promised)"
        )
    pairs: list[LfwPair] = []
    for offset, (lineno, line) in enumerate(body):
        fold = offset // (2 * per_class)
        genuine_expected = (offset % (2 * per_class)) < per_class
        pairs.append(_parse_line(line, fold, genuine_expected, path, lineno))
    if folds is not None:
        require_folds(pairs, folds, path)
    return pairs


def check_pairs_file(path: str | Path, folds: int | None = None) -> Path:
    """Check a pair list fully (readable, LFW ``pairs.txt`` format, at least ``folds`` folds).

    Parsing LFW's 6,000-line file takes milliseconds, so front ends check the whole format
    before any model loads. Raises ``InputNotFound`` or ``PairsFileError``.
    """
    read_pairs(Path(path), folds=folds)
    return Path(path)


def n_folds_of(pairs: Sequence[LfwPair]) -> int:
    """How many folds a parsed pair list holds."""
    return len({p.fold for p in pairs})


def require_folds(pairs: Sequence[LfwPair], n: int, source: Path | str = "pairs file") -> None:
    """Refuse a pair list with fewer than ``n`` folds (the k-fold protocol needs them all)."""
    have = n_folds_of(pairs)
    if have < n:
        raise PairsFileError(
            f"{source} has {_folds(have)}; "
            f"the {n}-fold protocol needs {n}"
        )


def _parse_header(first: tuple[int, str], path: Path) -> tuple[int, int]:
    lineno, line = first
    tokens = line.split()
    if not 1 <= len(tokens) <= 2 or not all(_UINT.fullmatch(t) for t in tokens):
        raise PairsFileError(f"{path}:{lineno}: {_HEADER_HELP}, got {_clip(line)}")
    numbers = [int(t) for t in tokens]
    if min(numbers) < 1:
        raise PairsFileError(
            f"{path}:{lineno}: header counts must be at least 1, got {_clip(line)}"
        )
    return (1, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])


def _parse_line(line: str, fold: int, genuine: bool, path: Path, lineno: int) -> LfwPair:
    parts = line.split()
    kind = "a genuine 'name i j'" if genuine else "an impostor 'name_a i name_b j'"
    shape_ok = len(parts) == 3 if genuine else len(parts) == 4
    if not shape_ok:
        raise PairsFileError(
            f"{path}:{lineno}: expected {kind} line (fold {fold + 1}), got {_clip(line)}"
        )
    index_tokens = parts[1:] if genuine else [parts[1], parts[3]]
    for token in index_tokens:
        if not _UINT.fullmatch(token) or int(token) < 1:
            raise PairsFileError(
                f"{path}:{lineno}: image numbers are integers from 1, got {token!r} in "
                f"{_clip(line)}"
            )
    if genuine:
        return LfwPair(parts[0], int(parts[1]), parts[0], int(parts[2]), True, fold)
    return LfwPair(parts[0], int(parts[1]), parts[2], int(parts[3]), False, fold)


def _folds(n: int) -> str:
    return f"{n} fold" if n == 1 else f"{n} folds"


def _clip(line: str, limit: int = 60) -> str:
    """The line as a short one-line quote for an error message."""
    return repr(line if len(line) <= limit else line[:limit] + "...")


def unique_images(pairs: list[LfwPair], images: Path) -> list[Path]:
    """Every image the pairs need, each once, in first-use order."""
    seen: dict[Path, None] = {}
    for p in pairs:
        seen.setdefault(p.path_a(images), None)
        seen.setdefault(p.path_b(images), None)
    return list(seen)
