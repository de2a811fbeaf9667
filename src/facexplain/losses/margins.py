"""Margin softmax identity losses: CosFace (additive cosine margin) and ArcFace (angular).

Why: the xCos paper trains the flattened grid features with a face-recognition loss beside the
cosine regression "to stabilise training"; a margin on the target class's cosine makes classes
compact on the hypersphere, the geometry a cosine-based verifier relies on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facexplain.errors import InvalidArgument

MARGIN_KINDS = ("cosface", "arcface")


def margin_logits(
    cos: torch.Tensor, labels: torch.Tensor, kind: str = "cosface", margin: float = 0.35,
    scale: float = 30.0,
) -> torch.Tensor:
    """Scaled logits with the margin applied to each row's target class.

    CosFace: s * (cos(theta_y) - m). ArcFace: s * cos(theta_y + m), with the usual fallback
    cos(theta) - m * sin(m) beyond theta > pi - m, where cos(theta + m) would stop decreasing.
    """
    if cos.ndim != 2 or labels.shape != cos.shape[:1]:
        raise InvalidArgument(f"need (N, K) cosines and (N,) labels, got {tuple(cos.shape)}, "
                              f"{tuple(labels.shape)}")
    target = cos.gather(1, labels[:, None])
    if kind == "cosface":
        adjusted = target - margin
    elif kind == "arcface":
        c = target.clamp(-1 + 1e-7, 1 - 1e-7)
        sin = (1 - c * c).sqrt()
        shifted = c * math.cos(margin) - sin * math.sin(margin)
        adjusted = torch.where(c > math.cos(math.pi - margin), shifted,
                               c - margin * math.sin(margin))
    else:
        raise InvalidArgument(f"unknown margin loss '{kind}'; valid: {', '.join(MARGIN_KINDS)}")
    return scale * cos.scatter(1, labels[:, None], adjusted)


class MarginSoftmax(nn.Module):
    """Cross-entropy over margin logits against learned, normalised class centres."""

    def __init__(self, dim: int, n_classes: int, kind: str = "cosface", margin: float = 0.35,
                 scale: float = 30.0) -> None:
        super().__init__()
        if kind not in MARGIN_KINDS:
            raise InvalidArgument(f"unknown margin loss '{kind}'; valid: {', '.join(MARGIN_KINDS)}")
        self.kind, self.margin, self.scale = kind, margin, scale
        self.centres = nn.Parameter(torch.randn(n_classes, dim) / math.sqrt(dim))

    def cosines(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features, dim=1) @ F.normalize(self.centres, dim=1).T

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = margin_logits(self.cosines(features), labels, self.kind, self.margin, self.scale)
        return F.cross_entropy(logits, labels)
