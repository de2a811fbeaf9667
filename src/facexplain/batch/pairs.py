"""Pair lists for a batch: LFW's ``pairs.txt`` or plain lines ``photo_a<TAB or comma>photo_b``.

Why stable ids: a rerun must recognise the pairs already done, so each pair's id (and its output
folder) is its line number plus a digest of its two paths, the same on every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from facexplain.errors import InputNotFound, PairsFileError


@dataclass(frozen=True)
class BatchPair:
    """One pair of a batch: its stable id, the two photos, and LFW's label if known."""

    id: str
    a: str
    b: str
    same: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "a": self.a, "b": self.b, "label": self.same}


def pair_id(index: int, a: str, b: str) -> str:
    digest = hashlib.sha1(f"{a}\n{b}".encode()).hexdigest()[:8]
    return f"{index:05d}-{digest}"


def _is_lfw(first_line: str) -> bool:
    parts = first_line.split()
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def read_batch_pairs(path: Path, images: Path, limit: int | None = None) -> list[BatchPair]:
    """The pairs of ``path`` (LFW format resolved against ``images``, else two paths a line,
    relative ones resolved against the file's folder); the first ``limit`` if given."""
    if not path.is_file():
        raise InputNotFound(f"pair list {path}: no such file")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise PairsFileError(f"pair list {path} is empty")
    out: list[BatchPair] = []
    if _is_lfw(lines[0]):
        from facexplain.datasets.lfw import read_pairs

        for i, p in enumerate(read_pairs(path)):
            a, b = str(p.path_a(images)), str(p.path_b(images))
            out.append(BatchPair(pair_id(i, a, b), a, b, bool(p.same)))
    else:
        for i, line in enumerate(lines):
            parts = [s.strip() for s in (line.split("\t") if "\t" in line else line.split(","))]
            if len(parts) != 2 or not all(parts):
                raise PairsFileError(f"{path} line {i + 1}: expected 'photo_a<TAB>photo_b' "
                                     f"(or a comma), got {line!r}")
            a, b = (str(p if Path(p).is_absolute() else path.parent / p) for p in parts)
            out.append(BatchPair(pair_id(i, a, b), a, b))
    return out[:limit] if limit else out
