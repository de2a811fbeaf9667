"""The LFW pair-list protocol (`pairs.txt`): parsing, folds, and image paths.

Format: a header ``<n_folds> <n_per_class>``, then for each fold ``n_per_class`` genuine lines
``name i j`` followed by ``n_per_class`` impostor lines ``name_a i name_b j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facexplain.errors import InputNotFound, InvalidArgument

DEFAULT_LFW_ROOT = Path("../shared/data/lfw")


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


def read_pairs(path: Path) -> list[LfwPair]:
    """Parse a pairs file; raises InvalidArgument naming the bad line."""
    if not path.is_file():
        raise InputNotFound(f"no such pairs file: {path}")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise InvalidArgument(f"{path} is empty")
    header = lines[0].split()
    if len(header) != 2 or not all(h.isdigit() for h in header):
        raise InvalidArgument(f"{path}:1: expected header '<folds> <pairs per class>'")
    n_folds, per_class = int(header[0]), int(header[1])
    expected = n_folds * 2 * per_class
    if len(lines) - 1 != expected:
        raise InvalidArgument(
            f"{path}: header promises {expected} pairs ({n_folds} folds x 2 x {per_class}), "
            f"found {len(lines) - 1}"
        )
    pairs: list[LfwPair] = []
    for offset, line in enumerate(lines[1:]):
        fold = offset // (2 * per_class)
        genuine_expected = (offset % (2 * per_class)) < per_class
        pairs.append(_parse_line(line, fold, genuine_expected, path, offset + 2))
    return pairs


def _parse_line(line: str, fold: int, genuine: bool, path: Path, lineno: int) -> LfwPair:
    parts = line.split()
    try:
        if genuine and len(parts) == 3:
            return LfwPair(parts[0], int(parts[1]), parts[0], int(parts[2]), True, fold)
        if not genuine and len(parts) == 4:
            return LfwPair(parts[0], int(parts[1]), parts[2], int(parts[3]), False, fold)
    except ValueError:
        pass
    kind = "a genuine 'name i j'" if genuine else "an impostor 'name_a i name_b j'"
    raise InvalidArgument(f"{path}:{lineno}: expected {kind} line, got {line!r}")


def unique_images(pairs: list[LfwPair], images: Path) -> list[Path]:
    """Every image the pairs need, each once, in first-use order."""
    seen: dict[Path, None] = {}
    for p in pairs:
        seen.setdefault(p.path_a(images), None)
        seen.setdefault(p.path_b(images), None)
    return list(seen)
