"""docs/BENCHMARKS.md's numeric tables, written from the result files in ``docs/results``.

A generated table sits between two markers; the prose around it is never touched::

    <!-- table: planted planted-sface.json -->
    | sface map | share in region | ...
    <!-- /table -->

The first word names a registered table kind (``table_kinds.TABLE_KINDS``), the rest are result
files (relative to the results folder) it reads. ``facexplain benchmark tables`` rewrites every
block from its files; ``--check`` rewrites nothing and lists the blocks whose numbers differ
from their files (a test runs it on the committed docs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facexplain.benchmarks.table_kinds import SOURCE, TABLE_KINDS
from facexplain.errors import InputNotFound, InvalidArgument

_BLOCK = re.compile(r"(?P<open><!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)"
                    r"(?P<close><!-- /table -->)", re.S)


@dataclass(frozen=True)
class Block:
    """One generated table of a document: its marker, where it sits, what it holds now."""

    spec: str
    line: int
    body: str

    @property
    def kind(self) -> str:
        return self.spec.split()[0] if self.spec.split() else ""

    @property
    def files(self) -> list[str]:
        return self.spec.split()[1:]


def blocks(text: str) -> list[Block]:
    """Every marker block of ``text`` (in order)."""
    return [Block(m["spec"].strip(), text.count("\n", 0, m.start()) + 1, m["body"])
            for m in _BLOCK.finditer(text)]


def _load(results: Path, name: str) -> dict[str, Any]:
    path = results / name
    if not path.is_file():
        raise InputNotFound(f"table source {path}: no such file")
    doc = json.loads(path.read_text())
    if isinstance(doc, list):  # a bench script's list of rows
        return {"rows": doc}
    if not isinstance(doc, dict):
        raise InvalidArgument(f"table source {path}: not a JSON object or list")
    return doc


def render(spec: str, results: Path) -> str:
    """The table one marker asks for, from its files under ``results`` (ends with a newline)."""
    kind, *files = spec.split()
    if kind not in TABLE_KINDS:
        raise InvalidArgument(f"unknown table kind {kind!r}; known: {', '.join(TABLE_KINDS)}")
    if not files:
        raise InvalidArgument(f"table {spec!r} names no result file")
    docs = [{**_load(results, f), SOURCE: f} for f in files]
    return TABLE_KINDS[kind](docs).rstrip("\n") + "\n"


def regenerate(text: str, results: Path) -> tuple[str, list[Block]]:
    """``text`` with every block rewritten from ``results``, and the blocks that changed."""
    changed: list[Block] = []

    def one(m: re.Match[str]) -> str:
        body = render(m["spec"].strip(), results)
        if body != m["body"]:
            changed.append(Block(m["spec"].strip(), text.count("\n", 0, m.start()) + 1,
                                 m["body"]))
        return m["open"] + body + m["close"]

    return _BLOCK.sub(one, text), changed


def update_file(doc: Path, results: Path, check: bool = False) -> list[Block]:
    """Rewrite ``doc``'s blocks from ``results`` (nothing written with ``check``); returns the
    blocks that differed."""
    text = doc.read_text()
    new, changed = regenerate(text, results)
    if changed and not check:
        doc.write_text(new)
    return changed
