"""Progress of long loops, to a terminal bar or to whoever asked for it in this thread.

Why: the CLI wants tqdm bars, the web app wants "320/784 patches, about 6 s left" in a page and
a way to stop a job between batches (cancel, time limit, shutdown). Threading a callback
through every explainer would touch every method's signature; instead a loop asks
``progress_bar`` for its bar, and a front end that called ``reporting_to(listener)`` in the
same thread hears every update. A listener may raise to stop the loop at that point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

# (what the loop does, units done, units in all); raising stops the loop.
ProgressListener = Callable[[str, int, int], None]

_local = threading.local()


@contextmanager
def reporting_to(listener: ProgressListener) -> Iterator[None]:
    """Within the block, every ``progress_bar`` of this thread also tells ``listener``."""
    previous = getattr(_local, "listener", None)
    _local.listener = listener
    try:
        yield
    finally:
        _local.listener = previous


def current_listener() -> ProgressListener | None:
    return getattr(_local, "listener", None)


def check_in(step: str = "") -> None:
    """A point where a long computation without a bar may be stopped (tells 0 of 0 units)."""
    listener = current_listener()
    if listener is not None:
        listener(step, 0, 0)


class _ReportingBar(tqdm):
    """A tqdm bar that also counts for the thread's listener (even when not drawn)."""

    def __init__(self, listener: ProgressListener, total: int, desc: str, **kwargs: Any) -> None:
        # tqdm keeps neither desc nor counts when disabled, so the bar keeps its own.
        self._listener, self._step, self._total, self._done = listener, desc, total, 0
        super().__init__(total=total, desc=desc, **kwargs)
        self._listener(desc, 0, total)

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        self._done += int(n or 0)
        self._listener(self._step, self._done, self._total)
        return shown


def progress_bar(total: int, desc: str, unit: str = "it", enabled: bool = False,
                 leave: bool = True) -> tqdm:
    """A tqdm bar (drawn when ``enabled``) that also reports to the thread's listener."""
    listener = current_listener()
    if listener is None:
        return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=leave)
    return _ReportingBar(listener, total=total, desc=desc, unit=unit, disable=not enabled,
                         leave=leave)
