"""Stored records (calibrations, Θ, mean faces): packaged defaults plus user overrides.

Why: a benchmark run with ``--write-calibration`` or ``--write-theta`` used to write into the
installed package. Now the package's copies are read-only defaults and a user's runs land under
the model home (``settings.current().records``); a user record wins over the packaged one of the
same key, so a developer who wants to ship a new default copies the user file into the package.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from facexplain import settings

Row = dict[str, object]


def packaged_dir(package: str, sub: str = "") -> Path:
    """The directory of a package's data files (read-only defaults)."""
    base = Path(str(resources.files(package)))
    return base / sub if sub else base


class RecordStore:
    """A JSON table ``{key: row}`` read from the packaged file and the user override file."""

    def __init__(self, filename: str, packaged: Path, user: Path | None = None) -> None:
        self.filename = filename
        self.packaged = packaged
        self._user = user

    @property
    def user(self) -> Path:
        """Where this store writes: explicit, else ``<model home>/records``."""
        return self._user if self._user is not None else settings.current().records

    def _read(self, directory: Path) -> dict[str, Row]:
        path = directory / self.filename
        if not path.is_file():
            return {}
        table = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): dict(v) for k, v in table.items()}

    def load(self) -> dict[str, Row]:
        """Packaged rows overlaid with the user's rows of the same key."""
        return {**self._read(self.packaged), **self._read(self.user)}

    def get(self, key: str) -> Row | None:
        return self.load().get(key)

    def save(self, key: str, row: Row) -> Path:
        """Write ``row`` under ``key`` in the user file (atomically); return its path."""
        directory = self.user
        directory.mkdir(parents=True, exist_ok=True)
        table = self._read(directory)
        table[key] = row
        path = directory / self.filename
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(sorted(table.items())), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def locate(self, name: str) -> Path | None:
        """A data file stored beside the records (user copy first), or None."""
        for directory in (self.user, self.packaged):
            if (directory / name).is_file():
                return directory / name
        return None


def store_for(filename: str, packaged: Path, path: Path | None = None) -> RecordStore:
    """The default store of ``filename``, or one bound to an explicit file (tests, tools)."""
    if path is None:
        return RecordStore(filename, packaged)
    return RecordStore(path.name, path.parent / ".no-packaged-defaults", user=path.parent)
