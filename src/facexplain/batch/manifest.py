"""The batch manifest: one JSON line per finished pair (done or failed), appended by the driver.

Why a driver-only append log: workers may die and pairs may be computed twice, but only the
driver writes here, once per pair, flushed and fsynced, so after any crash the file lists every
finished pair exactly once and a rerun skips them. A torn last line (power loss mid-write) is
ignored on reading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Finished pairs by id (the last line of an id wins; unreadable lines are skipped)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            rows[str(row["id"])] = row
    return rows


class Manifest:
    """Append-only JSONL writer (one open file, fsync per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def append(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
