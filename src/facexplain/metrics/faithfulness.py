"""Deletion and insertion curves adapted to verification (faithfulness of pair explanations).

A method's map ranks the pixels of both faces. Deletion: the top-ranked 5%, 10%, ..., 50% are
replaced by the fill (the same pixels the occlusion hides with) and the pair is re-scored. A
faithful *difference* map names the pixels whose removal makes an impostor pair look alike, so
the similarity rises fastest; a faithful *similarity* map names what a genuine pair shares, so
its similarity falls fastest. Insertion starts from the fill in both faces (identical, cosine
near 1) and restores the top-ranked pixels: a faithful difference map brings back what tells
the faces apart first (falls fastest), a similarity map what they share (stays high). The area
under the curve summarises the speed, read against a random order (``higher_is_better``).

A pairwise map (both rows equal, as occlusion's) removes the same positions in both faces; a
per-face map ranks each face on its own. Ties are broken in a seeded random order, so a map
that is flat over part of the face (a clipped relu) does not fall back to raster order.
Pure functions: tensors in, tensors / numbers out, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from facexplain.errors import InvalidArgument
from facexplain.types import PairScore

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(11))
KINDS = ("difference", "similarity")
MODES = ("deletion", "insertion")


def _check(pair: torch.Tensor, ranking: torch.Tensor) -> None:
    if pair.ndim != 4 or tuple(pair.shape[:2]) != (2, 3):
        raise InvalidArgument(f"pair must be a (2, 3, H, W) tensor, got {tuple(pair.shape)}")
    if tuple(ranking.shape) != (2, *pair.shape[2:]):
        raise InvalidArgument(f"ranking map must be (2, H, W) = {(2, *tuple(pair.shape[2:]))}, "
                              f"got {tuple(ranking.shape)}")


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or len(f) < 2 or (f < 0).any() or (f > 1).any() or (np.diff(f) <= 0).any():
        raise InvalidArgument(f"fractions must rise strictly within [0, 1], got {list(fractions)}")
    return f


def is_pairwise(ranking: torch.Tensor) -> bool:
    """Whether a (2, H, W) map is one map for both faces (rows identical)."""
    return bool(torch.equal(ranking[0], ranking[1]))


def pixel_ranks(ranking: torch.Tensor, shared: bool | None = None, seed: int = 0
                ) -> torch.Tensor:
    """Rank of every pixel (0 = removed first), (2, H, W), from a (2, H, W) map, highest first.

    ``shared`` (default: detected with ``is_pairwise``) ranks face A's row and gives face B the
    same ranks; otherwise each face is ranked separately. Ties go in a seeded random order.
    """
    if ranking.ndim != 3 or ranking.shape[0] != 2:
        raise InvalidArgument(f"ranking map must be (2, H, W), got {tuple(ranking.shape)}")
    if shared is None:
        shared = is_pairwise(ranking)
    h, w = int(ranking.shape[1]), int(ranking.shape[2])
    gen = torch.Generator().manual_seed(seed)
    rows = ranking.detach().reshape(2, -1).to("cpu", torch.float64)
    ranks = torch.empty(2, h * w, dtype=torch.long)
    for face in range(1 if shared else 2):
        perm = torch.randperm(h * w, generator=gen)
        order = perm[torch.argsort(rows[face][perm], descending=True, stable=True)]
        ranks[face, order] = torch.arange(h * w)
    if shared:
        ranks[1] = ranks[0]
    return ranks.reshape(2, h, w).to(ranking.device)


def random_ranking(height: int, width: int, seed: int, shared: bool = True) -> torch.Tensor:
    """A seeded random map (2, H, W): the baseline order (same positions in both faces when
    ``shared``, as the pairwise occlusion removes them)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(height, width, generator=gen, dtype=torch.float64)
    b = a if shared else torch.rand(height, width, generator=gen, dtype=torch.float64)
    return torch.stack([a, b])


def pixel_curves(
    score_fn: PairScore,
    pair: torch.Tensor,
    rankings: Sequence[torch.Tensor],
    fill: torch.Tensor,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    shared: bool | None = None,
    seed: int = 0,
    batch_size: int = 16,
    block: int = 1,
    mode: str = "deletion",
    first_score: float | None = None,
) -> list[np.ndarray]:
    """Similarity of ``pair`` as the top ``fractions`` of pixels by each ranking are removed
    (``mode`` 'deletion': replaced by the fill) or restored (``mode`` 'insertion': start from
    the fill in both faces and put back the top-ranked pixels); one curve per ranking.

    ``pair`` and ``fill`` are (2, 3, H, W) (``fill`` may also be (3, H, W) or broadcastable);
    each ranking is (2, H, W), highest first; every fraction touches round(fraction · H · W)
    pixels (all channels) of each face. With ``block`` > 1 the unit is a block x block square
    ranked by the map's mean over it (H and W must be multiples): scattered single pixels and
    whole regions test different things, and a patch-level map such as occlusion's is only
    meant to order regions. ``first_score``: the known score at a fraction of 0 (the clean or
    the all-fill pair, the same for every map), saved a forward pass. The masked pairs of all
    rankings go through the model together, ``batch_size`` pairs at a time.
    """
    frac = _check_fractions(fractions)
    if batch_size < 1:
        raise InvalidArgument(f"batch size must be >= 1, got {batch_size}")
    if mode not in MODES:
        raise InvalidArgument(f"unknown curve mode '{mode}'; valid: {', '.join(MODES)}")
    x = pair.detach().float()
    f = torch.as_tensor(fill, dtype=x.dtype, device=x.device).detach().expand_as(x)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if block < 1 or h % block or w % block:
        raise InvalidArgument(f"block must be >= 1 and divide the {h}x{w} crop, got {block}")
    counts = np.rint(frac * (h // block) * (w // block)).astype(np.int64)
    jobs: list[tuple[int, int, torch.Tensor]] = []  # (ranking index, count, ranks)
    for i, ranking in enumerate(rankings):
        _check(pair, ranking)
        units = ranking.detach().double()
        if block > 1:
            units = F.avg_pool2d(units.unsqueeze(1), block).squeeze(1)
        pairwise = is_pairwise(ranking) if shared is None else shared
        ranks = pixel_ranks(units, pairwise, seed).to(x.device)
        if block > 1:
            ranks = ranks.repeat_interleave(block, dim=1).repeat_interleave(block, dim=2)
        jobs += [(i, int(c), ranks) for c in dict.fromkeys(counts.tolist())
                 if not (c == 0 and first_score is not None)]
    known: dict[tuple[int, int], float] = {}
    with torch.no_grad():
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            top = torch.stack([r < c for _, c, r in chunk]).unsqueeze(2)  # (K, 2, 1, H, W)
            hide = top if mode == "deletion" else ~top
            batch = torch.where(hide, f.unsqueeze(0), x.unsqueeze(0))
            s = score_fn(batch[:, 0], batch[:, 1]).reshape(-1)
            known.update(zip([(i, c) for i, c, _ in chunk], (float(v) for v in s.detach().cpu()),
                             strict=True))
    return [np.asarray([first_score if (c == 0 and first_score is not None) else known[(i, c)]
                        for c in counts.tolist()], dtype=np.float64)
            for i in range(len(rankings))]


def pixel_curve(score_fn: PairScore, pair: torch.Tensor, ranking: torch.Tensor,
                fill: torch.Tensor, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                shared: bool | None = None, seed: int = 0, batch_size: int = 16, block: int = 1,
                mode: str = "deletion", first_score: float | None = None) -> np.ndarray:
    """``pixel_curves`` of one ranking."""
    return pixel_curves(score_fn, pair, [ranking], fill, fractions, shared, seed, batch_size,
                        block, mode, first_score)[0]


# The two protocols, same arguments as ``pixel_curve`` otherwise.
deletion_curve = partial(pixel_curve, mode="deletion")
insertion_curve = partial(pixel_curve, mode="insertion")


def higher_is_better(kind: str, mode: str = "deletion") -> bool:
    """Direction of a good curve: deleting the top of a difference map makes an impostor pair
    look alike (rises), restoring it first makes the all-fill pair differ fast (falls); the
    similarity map is the mirror image."""
    if kind not in KINDS or mode not in MODES:
        raise InvalidArgument(f"unknown curve kind/mode '{kind}'/'{mode}'; valid: "
                              f"{', '.join(KINDS)} / {', '.join(MODES)}")
    return (kind == "difference") == (mode == "deletion")


def curve_auc(fractions: Sequence[float], scores: np.ndarray) -> float:
    """Area under a deletion curve over the fraction range, divided by that range: the mean
    similarity along the curve (trapezoid rule), comparable across ranges."""
    f = _check_fractions(fractions)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[-1] != len(f):
        raise InvalidArgument(f"{s.shape[-1]} scores for {len(f)} fractions")
    widths = np.diff(f)
    area = ((s[..., 1:] + s[..., :-1]) / 2 * widths).sum(axis=-1)
    return float(area / (f[-1] - f[0]))


def curve_aucs(fractions: Sequence[float], curves: np.ndarray) -> np.ndarray:
    """``curve_auc`` of every row of a (P, K) array of curves."""
    c = np.asarray(curves, dtype=np.float64)
    return np.asarray([curve_auc(fractions, row) for row in c.reshape(-1, c.shape[-1])])


@dataclass(frozen=True)
class CurveSummary:
    """One method's deletion curves of one kind over P pairs, against the random order.

    ``better_than_random`` is the share of pairs whose AUC beats random's on the same pair
    (higher AUC for difference curves, lower for similarity curves); ``gain`` is the mean
    per-pair AUC difference signed so that positive means better than random.
    """

    method: str
    kind: str
    n_pairs: int
    mode: str
    protocol: str  # mode and unit, e.g. 'deletion-px', 'insertion-b8'
    mean_curve: list[float]
    auc_mean: float
    auc_sem: float
    random_auc_mean: float
    gain: float
    gain_sem: float
    better_than_random: float

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _sem(v: np.ndarray) -> float:
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def summarize(method: str, kind: str, fractions: Sequence[float], curves: np.ndarray,
              random_curves: np.ndarray, mode: str = "deletion", protocol: str = ""
              ) -> CurveSummary:
    """Mean curve and AUC statistics of ``curves`` (P, K) against ``random_curves`` (P, K)
    of the same pairs."""
    sign = 1.0 if higher_is_better(kind, mode) else -1.0
    c, r = np.asarray(curves, np.float64), np.asarray(random_curves, np.float64)
    if c.shape != r.shape or c.ndim != 2 or c.shape[0] == 0:
        raise InvalidArgument(f"curves {c.shape} and random curves {r.shape} must be the same "
                              "non-empty (P, K) shape")
    auc_m, auc_r = curve_aucs(fractions, c), curve_aucs(fractions, r)
    gain = sign * (auc_m - auc_r)
    return CurveSummary(
        method=method,
        kind=kind,
        n_pairs=int(c.shape[0]),
        mode=mode,
        protocol=protocol or mode,
        mean_curve=[round(float(v), 6) for v in c.mean(axis=0)],
        auc_mean=float(auc_m.mean()),
        auc_sem=_sem(auc_m),
        random_auc_mean=float(auc_r.mean()),
        gain=float(gain.mean()),
        gain_sem=_sem(gain),
        better_than_random=float((gain > 0).mean()),
    )
