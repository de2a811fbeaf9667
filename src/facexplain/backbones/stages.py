"""Where a graph executor can be split into a chain of stages (see ``FaceModel.stages``).

A step list can be cut after step i when exactly one runtime tensor produced so far is still
read later: everything after the cut is then a function of that tensor alone.
"""

from __future__ import annotations

from collections.abc import Sequence


def single_live_cuts(reads: Sequence[Sequence[str]], writes: Sequence[Sequence[str]],
                     source: str) -> list[tuple[int, str]]:
    """(step index, the one live tensor) after each step that leaves a single tensor live.

    ``reads``/``writes`` list the runtime tensor names of each step, in execution order;
    ``source`` is the graph input, live before the first step. The last step is never a cut.
    """
    last_read: dict[str, int] = {}
    for i, names in enumerate(reads):
        for name in names:
            last_read[name] = i
    live = {source} if last_read.get(source, -1) >= 0 else set()
    cuts: list[tuple[int, str]] = []
    for i in range(len(reads) - 1):
        live.update(n for n in writes[i] if last_read.get(n, -1) > i)
        live = {n for n in live if last_read.get(n, -1) > i}
        if len(live) == 1:
            cuts.append((i, next(iter(live))))
    return cuts
