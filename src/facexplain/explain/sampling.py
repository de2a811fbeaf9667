"""What the sampling explainers (CorrRISE, RISE, LIME) share: random masks, the pair score
with one face masked and the other clean, and the rule that stops sampling.

Why one module: each method draws its masks and reads the scores its own way, but "hide part
of one face, re-score the pair" is the same loop. On a backbone's ``PairScorer`` the clean face
is embedded once and only the masked faces run through the network. Masks are drawn from a
``torch.Generator`` seeded per face with the same seed, so face A and face B see the same masks
(as CorrRISE's released code does) and swapping the faces swaps the maps exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facexplain.errors import InvalidArgument
from facexplain.explain.base import MethodDetails, PairScore
from facexplain.explain.scorer import PairScorer
from facexplain.progress import check_in
from facexplain.scoring import cosine

BLOCK = 32  # masks drawn, scored and checked together; fixed so the masks do not depend on it


@dataclass(frozen=True, kw_only=True)
class SamplingDetails(MethodDetails):
    """How many samples each face took and why sampling stopped.

    ``samples_a``/``samples_b``: per face; ``converged``: both faces' maps settled before
    ``max_samples`` (None: a fixed count, no stopping rule); ``agreement_a``/``_b``: Pearson
    correlation of the face's map with its map from half the samples when sampling stopped
    (None: not measured); ``n_forward``: pair scores computed, the clean pair included (on a
    backbone, each is one masked face through the network). Scalars, so the report's JSON
    keeps them.
    """

    samples_a: int
    samples_b: int
    max_samples: int
    converged: bool | None
    agreement_a: float | None
    agreement_b: float | None
    target: float | None
    n_forward: int
    seed: int
    fill: str


def grid_masks(n: int, height: int, width: int, cells: int, keep: float,
               generator: torch.Generator) -> torch.Tensor:
    """RISE's masks, (n, H, W) in [0, 1]: a cells x cells grid whose cells are kept with
    probability ``keep``, upsampled bilinearly to (cells + 1) cells and cropped at a random
    shift of less than one cell, so the cell borders fall anywhere."""
    ch, cw = math.ceil(height / cells), math.ceil(width / cells)
    grid = (torch.rand(n, 1, cells, cells, generator=generator) < keep).float()
    up = F.interpolate(grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear",
                       align_corners=False)[:, 0]
    dy = torch.randint(0, ch, (n,), generator=generator).tolist()
    dx = torch.randint(0, cw, (n,), generator=generator).tolist()
    return torch.stack([up[i, y : y + height, x : x + width] for i, (y, x)
                        in enumerate(zip(dy, dx, strict=True))])


def patch_masks(n: int, height: int, width: int, patches: int, size: int,
                generator: torch.Generator) -> torch.Tensor:
    """CorrRISE's masks, (n, H, W) of 0/1: ``patches`` squares of ``size`` px hidden (0) at
    random places that fit inside the crop, the rest kept (1)."""
    if not 1 <= size <= min(height, width):
        raise InvalidArgument(f"mask patch {size} px does not fit a {height}x{width} crop")
    masks = torch.ones(n, height, width)
    ys = torch.randint(0, height - size + 1, (n, patches), generator=generator).tolist()
    xs = torch.randint(0, width - size + 1, (n, patches), generator=generator).tolist()
    for i in range(n):
        for y, x in zip(ys[i], xs[i], strict=True):
            masks[i, y : y + size, x : x + size] = 0.0
    return masks


def mask_blocks(draw: Callable[[int, torch.Generator], torch.Tensor], seed: int
                ) -> Iterator[torch.Tensor]:
    """Blocks of ``BLOCK`` masks from one seeded stream (the same for either face)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield draw(BLOCK, generator)


def first_masks(draw: Callable[[int, torch.Generator], torch.Tensor], seed: int,
                n: int) -> torch.Tensor:
    """The first ``n`` masks an explainer with this ``draw`` and ``seed`` uses (for tests)."""
    blocks = mask_blocks(draw, seed)
    return torch.cat([next(blocks) for _ in range(-(-n // BLOCK))])[:n]


class OneFaceScore:
    """Similarity of the pair with face ``side`` replaced by given images, the other clean.

    On a ``PairScorer`` the clean face's embedding is reused and only the given faces are
    embedded; any other pair score is called with the clean face repeated.
    """

    def __init__(self, score_fn: PairScore, pair: torch.Tensor, side: int) -> None:
        self.score_fn = score_fn
        self.side = side
        self.other = pair[1 - side : 2 - side]
        self.other_emb = (score_fn.embed_pair(pair)[1 - side : 2 - side]
                          if isinstance(score_fn, PairScorer) else None)
        self.calls = 0

    def __call__(self, faces: torch.Tensor) -> torch.Tensor:
        """(N,) float64 similarities for (N, 3, H, W) replacements of face ``side``."""
        n = faces.shape[0]
        self.calls += n
        with torch.inference_mode():
            if self.other_emb is not None:
                assert isinstance(self.score_fn, PairScorer)
                emb = self.score_fn.model(faces)
                s = cosine(emb, self.other_emb.expand(n, -1))
            else:
                other = self.other.expand(n, -1, -1, -1).clone()
                s = (self.score_fn(faces, other) if self.side == 0
                     else self.score_fn(other, faces))
        if s.numel() != n:
            raise InvalidArgument(f"the pair score must return one value per pair: got shape "
                                  f"{tuple(s.shape)} for {n} pairs")
        return s.detach().reshape(-1).double().cpu()


def blend(face: torch.Tensor, fill: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) faces: ``face`` where the mask is 1, ``fill`` where it is 0, mixed between."""
    m = masks.to(face.dtype).unsqueeze(1)
    return m * face.unsqueeze(0) + (1.0 - m) * fill.unsqueeze(0)


def map_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (1.0 when both are flat and equal)."""
    x, y = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    if den == 0.0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float((x * y).sum() / den)


@dataclass(frozen=True)
class StopRule:
    """Stop adding samples once the map correlates at ``target`` with the map of half the
    samples (checked when the count doubles a block boundary, from ``min_samples`` on)."""

    target: float = 0.99
    min_samples: int = 128


DEFAULT_STOP = StopRule()


@dataclass(frozen=True)
class Sampled:
    samples: int
    converged: bool | None
    agreement: float | None


def sampling_details(runs: list[Sampled], max_samples: int, stop: StopRule | None
                     ) -> dict[str, object]:
    """The ``SamplingDetails`` fields of the two faces' runs."""
    a, b = runs
    return {"samples_a": a.samples, "samples_b": b.samples, "max_samples": max_samples,
            "converged": None if stop is None else bool(a.converged and b.converged),
            "agreement_a": a.agreement, "agreement_b": b.agreement,
            "target": None if stop is None else stop.target}


def sample(step: Callable[[int], None], estimate: Callable[[int], np.ndarray],
           max_samples: int, stop: StopRule | None) -> Sampled:
    """Call ``step(count)`` (draw and score the next block, cut to ``count``) until
    ``max_samples`` or, with ``stop``, until ``estimate(n)`` (the map from the first n
    samples) agrees with ``estimate(n // 2)``."""
    n, agreement = 0, None
    while n < max_samples:
        count = min(BLOCK, max_samples - n)
        check_in("sampling")
        step(count)
        n += count
        if stop is not None and n >= stop.min_samples and n % (2 * BLOCK) == 0:
            agreement = map_agreement(estimate(n), estimate(n // 2))
            if agreement >= stop.target:
                return Sampled(n, True, agreement)
    if stop is None:
        return Sampled(n, None, None)
    if n >= 2 * BLOCK and agreement is None:
        agreement = map_agreement(estimate(n), estimate((n // (2 * BLOCK)) * BLOCK))
    return Sampled(n, False, agreement)


class MaskMoments:
    """Running sums of masks m and scores s, kept at every block boundary, so the map of the
    first n samples (n a multiple of ``BLOCK``) can be read back for the stopping rule."""

    def __init__(self, height: int, width: int) -> None:
        zero = np.zeros((height, width))
        self.n = 0
        self.m, self.mm, self.sm = zero, zero.copy(), zero.copy()
        self.s = self.ss = 0.0
        self.kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, float, float]] = {}

    def add(self, masks: torch.Tensor, scores: torch.Tensor) -> None:
        m = masks.double().numpy()
        s = scores.double().numpy()
        self.n += len(s)
        self.m = self.m + m.sum(0)
        self.mm = self.mm + (m * m).sum(0)
        self.sm = self.sm + np.tensordot(s, m, axes=1)
        self.s += float(s.sum())
        self.ss += float((s * s).sum())
        self.kept[self.n] = (self.m, self.mm, self.sm, self.s, self.ss)

    def pearson(self, n: int | None = None) -> np.ndarray:
        """Per pixel, the Pearson correlation of the mask value with the score (0 where either
        does not vary)."""
        n = self.n if n is None else n
        m, mm, sm, s, ss = self.kept[n]
        cov = n * sm - m * s
        var_m = n * mm - m * m
        var_s = n * ss - s * s
        out = np.zeros_like(cov)
        if var_s <= 1e-12 * n * ss:  # the score never changed
            return out
        ok = var_m > 1e-12 * n * mm
        out[ok] = cov[ok] / np.sqrt(var_m[ok] * var_s)
        return out

    def rise(self, keep: float, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """RISE's saliency sum_i s_i m_i / (n keep) and its centred, signed form
        sum_i (s_i - mean s) m_i / (n keep) (> 0 where keeping the pixel raises the score)."""
        n = self.n if n is None else n
        m, _, sm, s, _ = self.kept[n]
        return sm / (n * keep), (sm - (s / n) * m) / (n * keep)
