"""The part-filter head as an explainer: the pair's distance, split exactly over the filters.

Why: each dimension of the head's representation f is one filter tied to one face part
(``heads.parts``), and the cosine distance of unit vectors is a plain sum over dimensions:

    1 - cos(f_A, f_B) = Σ_i ½ (f̂A_i - f̂B_i)²,   f̂ = f / ||f||.

So the i-th term is what filter i adds to the distance, and its share (term / total) says how
much of "these faces differ" comes from that filter's part. The maps show, on each face, where
the top-K filters respond, each weighted by its share (``difference``: high where the parts that
separate the pair are). ``score`` is the head's own cosine, 1 - Σ terms, re-added in float64
from the returned terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facexplain.backbones.base import FaceModel
from facexplain.errors import InvalidArgument
from facexplain.explain.base import ExplanationMaps, LayerExplainer, MethodDetails
from facexplain.heads.parts import PartsHead, default_checkpoint, head_inputs, load_head
from facexplain.heads.parts_readout import part_names, smoothed_responses
from facexplain.scoring import cosine

TOP_K = 10  # filters drawn in the maps
DEFAULT_VARIANT = "sad+fad"
UNKNOWN_PART = "part unknown"


def distance_terms(f_a: torch.Tensor, f_b: torch.Tensor) -> torch.Tensor:
    """Per-filter terms ½ (f̂A_i - f̂B_i)² (float64) whose sum is 1 - cos(f_A, f_B)."""
    if f_a.ndim != 1 or f_a.shape != f_b.shape:
        raise InvalidArgument(f"need two equal (N_f,) vectors, got {tuple(f_a.shape)}, "
                              f"{tuple(f_b.shape)}")
    ua = F.normalize(f_a.double(), dim=0, eps=1e-12)
    ub = F.normalize(f_b.double(), dim=0, eps=1e-12)
    return 0.5 * (ua - ub) ** 2


def shares_of(terms: torch.Tensor) -> torch.Tensor:
    """Each term's share of the sum; all zeros when the two faces give the same direction
    (a distance under 1e-12 is rounding noise, not a difference to split)."""
    total = terms.sum()
    return terms / total if float(total) > 1e-12 else torch.zeros_like(terms)


@dataclass(frozen=True, kw_only=True)
class PartsDetails(MethodDetails):
    """Per-filter terms and shares, the top filters, their parts and response grids.

    ``top`` are filter indices by decreasing share; ``responses`` (2, len(top), g, g) the
    smoothed responses ψ' of those filters on face A and face B; ``parts`` one name per filter
    (every filter, from the checkpoint's average peak locations) or None.
    """

    terms: torch.Tensor
    shares: torch.Tensor
    top: tuple[int, ...]
    responses: torch.Tensor
    parts: tuple[str, ...] | None
    cosine: float
    backbone: str
    head: str | None = None

    def part(self, index: int) -> str:
        return self.parts[index] if self.parts is not None else UNKNOWN_PART


class PartsExplainer(LayerExplainer):
    """Explain a pair by what each part filter adds to the head's cosine distance."""

    name = "parts"

    def __init__(self, model: FaceModel, head: PartsHead, parts: tuple[str, ...] | None = None,
                 top_k: int = TOP_K, source: str | None = None) -> None:
        if top_k < 1:
            raise InvalidArgument(f"top_k must be at least 1, got {top_k}")
        if parts is not None and len(parts) != head.config.n_filters:
            raise InvalidArgument(f"{len(parts)} part names for {head.config.n_filters} filters")
        super().__init__(model, head.config.nodes[1])
        self.score_fn = self._score  # the method explains the head's own cosine
        self.head = head.eval()
        self.parts = parts
        self.top_k = top_k
        self.source = source

    def _features(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.head.config
        early, middle, late, emb = head_inputs(self.model, faces, cfg.nodes, cfg.grid)
        psi = self.head.responses(early, middle, late)
        return psi, self.head.embed(psi), emb

    @torch.no_grad()
    def _score(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        _, fa, _ = self._features(a)
        _, fb, _ = self._features(b)
        return F.cosine_similarity(fa, fb, dim=1)

    @torch.no_grad()
    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        if pair.ndim != 4 or pair.shape[0] != 2:
            raise InvalidArgument(f"expected a (2, 3, H, W) pair, got {tuple(pair.shape)}")
        psi, f, emb = self._features(pair)
        terms = distance_terms(f[0], f[1])
        shares = shares_of(terms)
        k = min(self.top_k, terms.numel())
        # stable order: larger share first, lower filter index on ties
        order = sorted(range(terms.numel()), key=lambda i: (-float(terms[i]), i))[:k]
        smooth = smoothed_responses(self.head, psi)[:, order]  # (2, k, g, g)
        scale = smooth.abs().amax(dim=(0, 2, 3), keepdim=True).clamp_min(1e-12)
        weights = shares[order].float().view(1, k, 1, 1)
        grid_map = (weights * smooth.abs() / scale).sum(dim=1)  # (2, g, g)
        size = (int(pair.shape[2]), int(pair.shape[3]))
        maps = F.interpolate(grid_map[:, None], size=size, mode="nearest")[:, 0]
        return ExplanationMaps(
            method=self.name,
            maps={"difference": maps},
            score=float(1.0 - terms.sum()),
            meta=PartsDetails(terms=terms.float(), shares=shares.float(), top=tuple(order),
                              responses=smooth, parts=self.parts,
                              cosine=float(cosine(emb[0:1], emb[1:2])[0]),
                              backbone=self.head.config.backbone, head=self.source),
        )


# A filter whose peak wanders more than this share of the grid (std over faces) is not tied to
# a part: its name says so. 0.2 of a 14-cell grid is 2.8 cells, about half the eye distance.
UNLOCALISED_STD = 0.2


def parts_from_meta(meta: dict[str, object], head: PartsHead) -> tuple[str, ...] | None:
    """Part names of every filter from checkpoint metadata ``{"peaks": {"mean": [[r, c]...]}}``
    (average positive-peak locations in grid cells), or None when absent or malformed."""
    peaks = meta.get("peaks")
    mean = peaks.get("mean") if isinstance(peaks, dict) else None
    if mean is None:
        return None
    loc = np.asarray(mean, dtype=np.float64)
    if loc.shape != (head.config.n_filters, 2):
        return None
    from facexplain.backbones.registry import get_spec

    spec = get_spec(head.config.backbone)
    names = part_names(loc, spec.alignment.as_array(), head.config.grid, spec.input_size)
    std = peaks.get("std") if isinstance(peaks, dict) else None
    if std is not None and len(std) == len(names):  # a wandering peak names no part
        limit = UNLOCALISED_STD * head.config.grid
        names = [f"{n} (loose: peak std {s:.1f} cells)" if s > limit else n
                 for n, s in zip(names, std, strict=True)]
    return tuple(names)


def load_parts(backbone: str, path: Path | None = None, model: FaceModel | None = None,
               root: Path | None = None, top_k: int = TOP_K) -> PartsExplainer:
    """A ``PartsExplainer`` from a trained head (default: ``default_checkpoint``); pass
    ``model`` to reuse a loaded backbone (it must be the head's, checked by name)."""
    from facexplain.backbones.registry import load_backbone

    path = path or default_checkpoint(backbone, root)
    head, meta = load_head(path)
    if head.config.backbone != backbone:
        raise InvalidArgument(f"the part-filter head {path.name} was trained on "
                              f"'{head.config.backbone}', not '{backbone}'")
    return PartsExplainer(model or load_backbone(backbone), head, parts_from_meta(meta, head),
                          top_k=top_k, source=path.name)
