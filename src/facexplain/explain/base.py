"""The one interface of every explanation method, and the pair score they all explain.

Two families (as Captum's ``Attribution`` and ``LayerAttribution``): a black-box method receives
only a ``PairScore`` — a callable mapping a (possibly perturbed) batch of face pairs to their
similarity — so occlusion and the gradient methods all explain the same number (Captum's
``forward_func`` idea); a layer method (Grad-CAM, xCos) also needs the model and a named node,
and says so in its type (``LayerExplainer``). For a registered backbone the pair score is a
``PairScorer``, which owns the model, so nothing has to check that two arguments agree.
"""

from __future__ import annotations

import torch

from facexplain.backbones.base import FaceModel
from facexplain.explain.scorer import PairScorer
from facexplain.types import ExplanationMaps, MethodDetails, PairScore

__all__ = ["Explainer", "ExplanationMaps", "LayerExplainer", "MethodDetails", "PairScore",
           "backbone_pair_score"]



def backbone_pair_score(model: FaceModel) -> PairScorer:
    """The cosine similarity of the two faces' embeddings: the score verification thresholds."""
    return PairScorer(model)


class Explainer:
    """A black-box method: subclasses set ``name`` and implement ``explain``."""

    name: str = "base"

    def __init__(self, score_fn: PairScore) -> None:
        self.score_fn = score_fn

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        """Explain the score of ``pair``, a (2, 3, H, W) tensor of float RGB in [0, 255]."""
        raise NotImplementedError


class LayerExplainer(Explainer):
    """A method that reads the backbone's intermediate map ``node``, not only the pair score."""

    def __init__(self, model: FaceModel, node: str, score_fn: PairScore | None = None) -> None:
        super().__init__(score_fn if score_fn is not None else PairScorer(model))
        self.model = model
        self.node = node
