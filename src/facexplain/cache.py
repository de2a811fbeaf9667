"""On-disk cache of small numpy results (landmarks, embeddings), keyed by what they depend on.

A key names the image by absolute path and mtime, so an edited photo is never served stale.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def image_key(path: Path) -> str:
    p = path.resolve()
    return f"{p}:{p.stat().st_mtime_ns}"


class DiskCache:
    """A directory of ``.npz`` files, one per key (sha1 of the key string)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, key: str) -> Path:
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        f = self._file(key)
        if not f.is_file():
            return None
        try:
            with np.load(f) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError):
            return None  # a half-written or damaged entry is recomputed

    def put(self, key: str, **arrays: np.ndarray | np.generic) -> None:
        f = self._file(key)
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
        tmp.replace(f)
