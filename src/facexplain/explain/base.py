"""The one interface of every explanation method, and the pair score they all explain.

Two families (as Captum's ``Attribution`` and ``LayerAttribution``): a black-box method receives
only a ``PairScore`` — a callable mapping a (possibly perturbed) batch of face pairs to their
similarity — so occlusion and the gradient methods all explain the same number (Captum's
``forward_func`` idea); a layer method (Grad-CAM, xCos) also needs the model and a named node,
and says so in its type (``LayerExplainer``). For a registered backbone the pair score is a
``PairScorer``, which owns the model, so nothing has to check that two arguments agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch

from facexplain.backbones.base import FaceModel
from facexplain.explain.scorer import PairScorer
from facexplain.types import PairScore

__all__ = ["Explainer", "ExplanationMaps", "LayerExplainer", "MethodDetails", "PairScore",
           "backbone_pair_score"]



def backbone_pair_score(model: FaceModel) -> PairScorer:
    """The cosine similarity of the two faces' embeddings: the score verification thresholds."""
    return PairScorer(model)


@dataclass(frozen=True, kw_only=True)
class MethodDetails:
    """Typed settings and diagnostics of one explanation (each method subclasses it).

    ``note`` is a sentence for the reader (a caveat the method found), ``seconds`` wall time.
    """

    seconds: float | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain values for JSON (tensors become nested lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, torch.Tensor) else value
        return out


@dataclass(frozen=True)
class ExplanationMaps:
    """What one method says about one pair, in aligned-crop pixel coordinates.

    ``maps`` holds named tensors of shape (2, H, W): index 0 is face A, index 1 face B (for
    pairwise occlusion both rows are the same map, since the same patch is hidden in both).
    ``score`` is the pair score being explained; ``meta`` the method's typed details.
    """

    method: str
    maps: dict[str, torch.Tensor]
    score: float
    meta: MethodDetails = field(default_factory=MethodDetails)


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
