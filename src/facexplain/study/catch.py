"""Catch trials and the screening rule that reads them.

Why: the paper kept 90 of its 277 participants, choosing those "serious, responsible and good
at face verification (their original accuracy on the dataset is around 75%)" — a choice that
looks at the very accuracy being measured, so it can shape the result. Catch trials give a rule
fixed before the study that never looks at the real pairs: pairs nobody paying attention can
get wrong, mixed among the real pairs and shown exactly like them (same URLs, same pictures,
help in round 2); only the store knows which they are.

- identical: the same photo twice (right answer: same person);
- obviously different: a photo labelled female with one labelled male (LFW's
  ``female_names.txt`` beside the image folder) or, where no labels exist, the two photos of
  different people that the model finds least alike (right answer: different people).

The rule (``passes``): a participant is kept when at least ``min_correct`` of their catch
answers, over both rounds, are right; "not sure" counts as wrong, as for the real pairs. The
default (``default_min_correct``) allows one slip: all catch answers but one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from facexplain.errors import InvalidArgument
from facexplain.study.store import CATCH_DIFFERENT, CATCH_IDENTICAL

# Unit embeddings (N, D) of photos, for the "least alike" fallback; None: no model loaded.
Embed = Callable[[list[Path]], np.ndarray]
CANDIDATES = 24  # photos scored by the model when no gender labels exist
T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class CatchPair:
    """Paths relative to the image folder; ``how``: why the answer is obvious (for the log)."""

    a: str
    b: str
    kind: str
    how: str

    @property
    def same(self) -> bool:
        return self.kind == CATCH_IDENTICAL


def default_min_correct(n_catch: int) -> int:
    """Catch answers a participant must get right: all of both rounds but one slip."""
    return max(0, 2 * n_catch - 1)


def passes(correct: int, min_correct: int) -> bool:
    return correct >= min_correct


def rule_text(n_catch: int, min_correct: int) -> str:
    if n_catch == 0:
        return "no catch trials: every participant is kept"
    return (f"kept when at least {min_correct} of {2 * n_catch} catch answers ({n_catch} catch "
            "pairs x 2 rounds) are right; 'not sure' counts as wrong")


def female_labels(image_root: Path) -> set[str] | None:
    """LFW's gender labels (file names of female images) next to the image folder, if any."""
    path = image_root.parent / "female_names.txt"
    if not path.is_file():
        return None
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip()}


def identity(rel: str) -> str:
    """The person of an LFW-style path (``Name/Name_0001.jpg``); a flat folder: the file."""
    p = Path(rel)
    return p.parent.name or p.stem


def _by_gender(photos: list[str], n: int, labels: set[str] | None,
               rng: random.Random) -> list[CatchPair] | None:
    if labels is None:
        return None
    women = [p for p in photos if Path(p).name in labels]
    men = [p for p in photos if Path(p).name not in labels]
    if min(len(women), len(men)) < n:
        return None
    out = []
    for w, m in zip(women[:n], men[:n], strict=True):
        a, b = (w, m) if rng.random() < 0.5 else (m, w)
        out.append(CatchPair(a, b, CATCH_DIFFERENT, "different gender labels"))
    return out


def _least_alike(photos: list[str], n: int, root: Path, embed: Embed) -> list[CatchPair]:
    """Greedy: the lowest-cosine pairs of different people, each photo used once."""
    cand = photos[:CANDIDATES]
    emb = embed([root / c for c in cand])
    sims = emb @ emb.T
    order = sorted((float(sims[i, j]), i, j) for i in range(len(cand))
                   for j in range(i + 1, len(cand)) if identity(cand[i]) != identity(cand[j]))
    used: set[int] = set()
    out: list[CatchPair] = []
    for s, i, j in order:
        if len(out) == n:
            break
        if i not in used and j not in used:
            used |= {i, j}
            out.append(CatchPair(cand[i], cand[j], CATCH_DIFFERENT,
                                 f"different people, model cosine {s:.2f}"))
    return out


def _any_different(photos: list[str], n: int) -> list[CatchPair]:
    out: list[CatchPair] = []
    used: set[str] = set()
    for i, a in enumerate(photos):
        for b in photos[i + 1:]:
            if len(out) < n and not {a, b} & used and identity(a) != identity(b):
                used |= {a, b}
                out.append(CatchPair(a, b, CATCH_DIFFERENT, "different people (unchecked)"))
    return out


def choose_catch_pairs(photos: Sequence[str], n: int, root: Path, seed: int = 0,
                       embed: Embed | None = None,
                       log: Callable[[str], None] | None = None) -> list[CatchPair]:
    """``n`` catch pairs from the study's own photos: half (rounded up) identical, the rest
    obviously different (gender labels first, else the model's least alike pair, else — no
    model either — random different people, with a warning)."""
    if n < 0:
        raise InvalidArgument(f"--catch must be 0 or more, got {n}")
    if n == 0:
        return []
    rng = random.Random(seed)
    pool = sorted(set(photos))
    rng.shuffle(pool)
    n_same, n_diff = (n + 1) // 2, n // 2
    if len(pool) < n_same + 2 * n_diff:
        raise InvalidArgument(f"{len(pool)} photos are too few for {n} catch pairs; "
                              "lower --catch")
    same = [CatchPair(p, p, CATCH_IDENTICAL, "the same photo twice") for p in pool[:n_same]]
    rest = pool[n_same:]
    diff = _by_gender(rest, n_diff, female_labels(root), rng)
    if diff is None and embed is not None:
        diff = _least_alike(rest, n_diff, root, embed)
    if diff is None:
        diff = _any_different(rest, n_diff)
        if log is not None and n_diff:
            log("warning: no gender labels and no model (--no-maps): the 'different' catch "
                "pairs are random different people, not checked to look unlike")
    if len(diff) < n_diff:
        raise InvalidArgument(f"found only {len(diff)} obviously different catch pairs among "
                              f"the study's photos; lower --catch")
    return same + diff


def mix_in(real: Sequence[T], catch: Sequence[U], seed: int) -> list[T | U]:
    """The real items in their order with each catch item at a seeded random place, so a
    catch trial's index (seen in the image URLs) says nothing about it."""
    rng = random.Random(seed + 1)
    out: list[T | U] = list(real)
    for c in catch:
        out.insert(rng.randint(0, len(out)), c)
    return out
