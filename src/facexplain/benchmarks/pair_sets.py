"""Which LFW pairs a benchmark runs on: held-out folds split evenly by class, a look-alike
pair set read as LFW pairs, an order where every prefix is balanced, and a pair's stable id.

Why shared: the faithfulness, sanity and planted-difference benchmarks must draw their pairs
the same documented way, from folds no threshold or setting was tuned on.
"""

from __future__ import annotations

import math
from pathlib import Path

from facexplain.benchmarks.lookalike import read_pairs_file
from facexplain.datasets.lfw import LfwPair
from facexplain.errors import InvalidArgument

HELDOUT_FOLDS = (5, 6, 7, 8, 9)  # folds 6-10 of pairs.txt (0-based)


def select_heldout_pairs(pairs: list[LfwPair], n_pairs: int, folds: tuple[int, ...],
                         offset: int = 0) -> list[LfwPair]:
    """n/2 genuine and n/2 impostor pairs spread evenly over ``folds``, taken from the end of
    each fold's class block (disjoint from selections that take each block's first pairs).
    ``offset`` (even) skips the first offset/2 of each class: the pairs a selection of
    ``offset`` pairs took, so two selections with offsets 0 and n share no pair."""
    if offset < 0 or offset % 2:
        raise InvalidArgument(f"the pair offset must be an even number >= 0, got {offset}")
    if offset:
        both = select_heldout_pairs(pairs, n_pairs + offset, folds)
        half, skip = (n_pairs + offset) // 2, offset // 2
        return both[skip:half] + both[half + skip:]
    if n_pairs < 2 or n_pairs % 2:
        raise InvalidArgument(f"--pairs must be an even number >= 2, got {n_pairs}")
    present = sorted({p.fold for p in pairs})
    missing = [f + 1 for f in folds if f not in present]
    if missing:
        raise InvalidArgument(f"pairs file has no fold(s) {missing}")
    half = n_pairs // 2
    per_fold = math.ceil(half / len(folds))
    chosen: dict[bool, list[LfwPair]] = {True: [], False: []}
    for same in (True, False):
        pools = [[p for p in pairs if p.fold == f and p.same == same] for f in folds]
        for i in range(per_fold):  # round-robin over folds, from each block's end
            for pool in pools:
                if i < len(pool) and len(chosen[same]) < half:
                    chosen[same].append(pool[len(pool) - 1 - i])
        if len(chosen[same]) < half:
            raise InvalidArgument(f"only {len(chosen[same])} {'genuine' if same else 'impostor'}"
                                  f" pairs in folds {[f + 1 for f in folds]}, need {half}")
    return chosen[True] + chosen[False]


def study_pairs_as_lfw(path: Path) -> list[LfwPair]:
    """A study pair set (paths 'Name/Name_0003.jpg' under the LFW folder) as LFW pairs."""
    def parse(rel: str) -> tuple[str, int]:
        name, file = rel.split("/")[-2:]
        return name, int(file.rsplit("_", 1)[1].split(".")[0])

    out = []
    for sp in read_pairs_file(path)[0]:
        try:
            (na, ia), (nb, ib) = parse(sp.a), parse(sp.b)
        except (ValueError, IndexError):
            raise InvalidArgument(f"{path}: '{sp.a}' / '{sp.b}' are not LFW image paths "
                                  "(Name/Name_NNNN.jpg)") from None
        out.append(LfwPair(na, ia, nb, ib, sp.same, -1))
    return out


def interleaved(pairs: list[LfwPair]) -> list[LfwPair]:
    """Genuine and impostor pairs alternating, so the first 2k pairs of a long run are exactly
    the selection of ``--pairs 2k``: an interrupted run already answers a smaller one."""
    genuine = [p for p in pairs if p.same]
    impostor = [p for p in pairs if not p.same]
    return [p for two in zip(genuine, impostor, strict=True) for p in two]


def pair_id(p: LfwPair) -> str:
    return f"{p.name_a}_{p.index_a:04d}|{p.name_b}_{p.index_b:04d}"
