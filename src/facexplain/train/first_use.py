"""Heads trained on first use, and the switch that forbids it where training must not happen.

Why: a method whose head is missing trains a quick one on first use (minutes of CPU). That is
right for a person at the command line and wrong inside a web server: the only worker would
train for minutes, deaf to cancel, writing into the shared model home. A front end asks
``head_missing`` before it accepts work (no torch, no training: it looks for files), and runs
its jobs inside ``training_forbidden`` so that any path which would still train raises one line
instead (belt and braces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

from facexplain.errors import AssetMissing

if TYPE_CHECKING:
    from facexplain.heads.store import HeadStore, Log

# Why the training is forbidden here (None: allowed). A ContextVar: per thread and per task.
_FORBIDDEN: ContextVar[str | None] = ContextVar("facexplain_training_forbidden", default=None)


@contextmanager
def training_forbidden(why: str) -> Iterator[None]:
    """Within the block (this thread), a missing head raises ``AssetMissing`` at once."""
    token = _FORBIDDEN.set(why)
    try:
        yield
    finally:
        _FORBIDDEN.reset(token)


def train_command(store: HeadStore, backbone: str) -> str:
    """The commands that make the default head of ``store`` for ``backbone``."""
    return (f"`facexplain setup --heads --backbone {backbone}` (or `{store.train} --backbone "
            f"{backbone}`)")


def head_missing(store: HeadStore, backbone: str) -> str | None:
    """One line naming the command that trains the missing default head; None when a head is
    stored. Cheap: it only looks for the checkpoint files (nothing is trained or written)."""
    try:
        store.default(backbone)
    except AssetMissing:
        return (f"the {store.title} for '{backbone}' is not trained on this machine; the "
                f"operator makes it once with {train_command(store, backbone)}")
    return None


def ensure_head(store: HeadStore, backbone: str, train_quick: Callable[[Path, Log], Path],
                images: int, log: Log | None = None) -> Path:
    """``store.ensure_default``, unless no head is stored and training is forbidden here:
    then ``AssetMissing`` in one line, before anything is trained or written."""
    why = _FORBIDDEN.get()
    if why is not None:
        missing = head_missing(store, backbone)
        if missing is not None:
            raise AssetMissing(f"{missing} ({why})")
    return store.ensure_default(backbone, train_quick, images, log)
