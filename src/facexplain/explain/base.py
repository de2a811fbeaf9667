"""The one interface of every explanation method, and the pair score they all explain.

A method never sees the backbone directly: it receives a ``PairScore`` — a callable mapping a
(possibly perturbed) batch of face pairs to their similarity — so occlusion, gradients and
Grad-CAM all explain the same number (Captum's ``forward_func`` idea).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from facexplain.backbones.base import FaceModel
from facexplain.scoring import cosine

# (N, 3, H, W) faces A, (N, 3, H, W) faces B  ->  (N,) similarity of each pair.
PairScore = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def backbone_pair_score(model: FaceModel) -> PairScore:
    """The cosine similarity of the two faces' embeddings: the score verification thresholds."""

    def score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cosine(model(a), model(b))

    return score


@dataclass(frozen=True)
class ExplanationMaps:
    """What one method says about one pair, in aligned-crop pixel coordinates.

    ``maps`` holds named tensors of shape (2, H, W): index 0 is face A, index 1 face B (for
    pairwise occlusion both rows are the same map, since the same patch is hidden in both).
    ``score`` is the pair score being explained; ``meta`` records the settings used.
    """

    method: str
    maps: dict[str, torch.Tensor]
    score: float
    meta: dict[str, object] = field(default_factory=dict)


class Explainer:
    """Base class: subclasses set ``name`` and implement ``explain``."""

    name: str = "base"

    def __init__(self, score_fn: PairScore) -> None:
        self.score_fn = score_fn

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        """Explain the score of ``pair``, a (2, 3, H, W) tensor of float RGB in [0, 255]."""
        raise NotImplementedError
