"""Pairwise occlusion (deep difference analysis, Algorithm 1 of Zhong & Deng).

Hide the *same* k x k patch in both aligned faces, re-score the pair, and give every pixel the
mean change of the similarity over the patches that covered it:

    Δ = sim(occluded pair) − sim(original pair)

Δ > 0 where hiding a region makes the faces look alike (they differ there: the *difference*
map); Δ < 0 where hiding it makes them look less alike (they match there: the *similarity*
map). Both come from the same forward passes. Eq. 1 turns Δ into a display map,
clip(Δ / Θ, 0, 1), with Θ calibrated so that genuine pairs stay dark and impostors light up;
Θ is stored per backbone and occlusion setting as a record (``theta_store``).

The method only calls the pair score, so it works as a black box on any ``PairScore``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from facexplain.backbones.base import FaceModel
from facexplain.backbones.registry import get_spec
from facexplain.errors import InvalidArgument
from facexplain.explain.approx_occlusion import ApproxSettings, approximate_occlusion_delta
from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails, PairScore
from facexplain.explain.fills import DEFAULT_FILL, FILLS, make_fill
from facexplain.explain.occlusion_loop import EDGES, normalize_delta, pairwise_occlusion_delta
from facexplain.explain.scorer import PairScorer
from facexplain.explain.theta import get_theta


@dataclass(frozen=True, kw_only=True)
class OcclusionDetails(MethodDetails):
    """Settings and counts of one pairwise-occlusion map."""

    k: int
    s: int
    fill: str
    edge: str
    n_forward: int
    n_windows: int
    batch_size: int
    incremental: bool
    theta: float | None
    max_delta: float
    # ``--approx``: the settings in words, and the measured error on sampled windows
    approx: str | None = None
    approx_error: float | None = None


class PairwiseOcclusion(Explainer):
    """Pairwise occlusion of a pair score; see the module docstring for the sign convention.

    ``fill`` is one of ``FILLS`` or an explicit (2, 3, H, W) / (3, H, W) tensor; ``template``
    picks the mean face (inferred from the crop size when omitted). With ``theta`` the maps
    include ``difference_normalized`` (Eq. 1). When the score is a backbone's ``PairScorer``
    and ``incremental`` is on (default), each occluded pair is evaluated incrementally: only
    the part of the network a patch reaches is recomputed (``explain.incremental``); any other
    pair score is treated as a black box and re-run whole.
    """

    name = "occlusion"

    def __init__(
        self,
        score_fn: PairScore,
        patch: int = 16,
        stride: int = 8,
        fill: str | torch.Tensor = DEFAULT_FILL,
        template: str | None = None,
        batch_size: int = 32,
        edge: str = "shift",
        blur_sigma: float | None = None,
        theta: float | None = None,
        progress: bool = False,
        incremental: bool = True,
        approx: ApproxSettings | None = None,
    ) -> None:
        super().__init__(score_fn)
        if isinstance(fill, str) and fill not in FILLS:
            raise InvalidArgument(f"unknown fill '{fill}'; valid: {', '.join(FILLS)}")
        if edge not in EDGES:
            raise InvalidArgument(f"unknown edge rule '{edge}'; valid: {', '.join(EDGES)}")
        if theta is not None and not theta > 0:
            raise InvalidArgument(f"Θ must be positive, got {theta}")
        self.patch = patch
        self.stride = stride
        self.fill = fill
        self.template = template
        self.batch_size = batch_size
        self.edge = edge
        self.blur_sigma = blur_sigma
        self.theta = theta
        self.progress = progress
        self.incremental = incremental and isinstance(score_fn, PairScorer)
        if approx is not None and not self.incremental:
            raise InvalidArgument("--approx works on the incremental evaluation of a "
                                  "registered backbone's score only")
        self.approx = approx

    @classmethod
    def for_backbone(
        cls, scorer: PairScorer | FaceModel, backbone: str, patch: int = 16, stride: int = 8,
        fill: str | torch.Tensor = DEFAULT_FILL, batch_size: int = 32, progress: bool = False,
        incremental: bool = True, approx: ApproxSettings | None = None,
    ) -> PairwiseOcclusion:
        """Occlusion of a registered backbone's cosine: its template's mean face, its stored Θ.

        ``incremental`` (default) recomputes only what each patch reaches; the maps are the
        same as with full re-evaluation up to float rounding.
        """
        spec = get_spec(backbone)
        score = scorer if isinstance(scorer, PairScorer) else PairScorer(scorer)
        record = (get_theta(backbone, patch, stride, fill, weights=score.fingerprint())
                  if isinstance(fill, str) else None)
        return cls(score, patch, stride, fill, template=spec.template, batch_size=batch_size,
                   theta=record.theta if record else None, progress=progress,
                   incremental=incremental, approx=approx)

    def fill_for(self, pair: torch.Tensor) -> torch.Tensor:
        if isinstance(self.fill, str):
            return make_fill(pair, self.fill, self.template, self.blur_sigma)
        f = self.fill.detach().float()
        return f.unsqueeze(0).expand(2, -1, -1, -1) if f.ndim == 3 else f

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        window_score = None
        score_fn = self.score_fn
        approx_error = None
        if self.approx is not None:
            assert isinstance(score_fn, PairScorer)
            approximate = approximate_occlusion_delta(
                score_fn, pair, self.fill_for(pair), self.patch, self.stride, self.approx,
                self.batch_size, self.edge, self.progress)
            res, approx_error = approximate.result, approximate.check_error
        else:
            if self.incremental:
                assert isinstance(score_fn, PairScorer)
                window_score = score_fn.incremental(pair)
            res = pairwise_occlusion_delta(score_fn, pair, self.fill_for(pair), self.patch,
                                           self.stride, self.batch_size, self.edge,
                                           self.progress, window_score)
        d = res.delta
        maps = {
            "delta": torch.stack([d, d]),
            "difference": torch.stack([d, d]).clamp(min=0),
            "similarity": torch.stack([-d, -d]).clamp(min=0),
        }
        if self.theta is not None:
            maps["difference_normalized"] = normalize_delta(maps["delta"], self.theta)
        meta = OcclusionDetails(
            k=self.patch, s=self.stride,
            fill=self.fill if isinstance(self.fill, str) else "custom",
            edge=self.edge, n_forward=res.n_forward, n_windows=res.n_windows,
            batch_size=self.batch_size, incremental=self.incremental, theta=self.theta,
            max_delta=float(d.max()), seconds=round(time.perf_counter() - started, 3),
            approx=None if self.approx is None else self.approx.describe(self.patch, self.stride),
            approx_error=approx_error,
        )
        return ExplanationMaps(self.name, maps, res.score, meta)
