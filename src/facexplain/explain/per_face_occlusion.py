"""Per-face occlusion: hide the patch in face A only, then in face B only.

Why: the paper's pairwise occlusion hides the same region in both faces and so gives one map
for the pair; it cannot say in which face a region matters. Hiding it in one face at a time
gives a map per face: Δ_A(p) = sim(A with p hidden, B) − sim(A, B), and Δ_B likewise, with the
same sign convention (Δ > 0: hiding p in that face makes the pair look more alike, so that
face differs there). It reuses Algorithm 1's loop with a fill that leaves the other face as it
is; on a backbone's ``PairScorer`` only the occluded face is re-evaluated, incrementally, and
the other face keeps its clean embedding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from facexplain.explain.base import ExplanationMaps
from facexplain.explain.incremental import IncrementalEmbedder, Window
from facexplain.explain.occlusion import OcclusionDetails, PairwiseOcclusion
from facexplain.explain.occlusion_loop import pairwise_occlusion_delta
from facexplain.explain.scorer import PairScorer
from facexplain.scoring import cosine


class OneFaceScore:
    """Pair scores when only face ``side`` changes: that face embedded incrementally, the other
    face's clean embedding reused."""

    def __init__(self, scorer: PairScorer, pair: torch.Tensor, side: int) -> None:
        with torch.inference_mode():
            self.face = IncrementalEmbedder(scorer.model, pair[side : side + 1].detach().float(),
                                            scorer.geometry, checked=scorer.crop_checks)
        self.other = scorer.embed_pair(pair)[1 - side : 2 - side]
        self.side = side

    def __call__(self, fill: torch.Tensor, windows: Sequence[Window]) -> torch.Tensor:
        changed = self.face.embed(fill[self.side : self.side + 1], windows)
        return cosine(changed, self.other.expand(changed.shape[0], -1))


class PerFaceOcclusion(PairwiseOcclusion):
    """Occlusion of one face at a time; ``maps[...][0]`` is face A's map, ``[1]`` face B's."""

    name = "occlusion-per-face"

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = pair.detach().float()
        fill = self.fill_for(x)
        deltas, n_forward, score = [], 0, 0.0
        for side in (0, 1):
            one_sided = fill.clone()
            one_sided[1 - side] = x[1 - side]  # the other face is "filled" with itself
            window_score = (OneFaceScore(self.score_fn, x, side) if self.incremental
                            and isinstance(self.score_fn, PairScorer) else None)
            res = pairwise_occlusion_delta(self.score_fn, x, one_sided, self.patch, self.stride,
                                           self.batch_size, self.edge, self.progress,
                                           window_score)
            deltas.append(res.delta)
            n_forward += res.n_forward
            score = res.score
        delta = torch.stack(deltas)
        maps = {"delta": delta, "difference": delta.clamp(min=0),
                "similarity": (-delta).clamp(min=0)}
        meta = OcclusionDetails(
            k=self.patch, s=self.stride,
            fill=self.fill if isinstance(self.fill, str) else "custom", edge=self.edge,
            n_forward=n_forward, n_windows=n_forward - 2,  # each side: its windows + the clean pair
            batch_size=self.batch_size, incremental=self.incremental, theta=None,
            max_delta=float(delta.max()), seconds=round(time.perf_counter() - started, 3),
        )
        return ExplanationMaps(self.name, maps, score, meta)


class PerFaceSubstitution(PerFaceOcclusion):
    """Per-face occlusion whose fill is the *other* face: the patch of face A is replaced by
    the same patch of face B (and vice versa), so Δ_A(p) = sim(A with B's p, B) − sim(A, B).

    Why: hiding a region behind a neutral fill asks "does this region of A matter?", and on a
    pair whose face B carries a foreign region the answer is often "yes, in A" (A's genuine
    region is hidden, the foreign one stays). Substituting asks "do the faces disagree here?"
    without a fill the model never saw.
    """

    name = "substitution-per-face"

    def fill_for(self, pair: torch.Tensor) -> torch.Tensor:
        return pair.detach().float().flip(0).clone()
