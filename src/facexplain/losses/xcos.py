"""The xCos training objective: regress xCos onto the teacher's cosine, plus an identity loss.

Why: xCos must stay a drop-in for the teacher's score (Eq. 10, L2 between xCos and the teacher
cosine), while the identity loss on the flattened grid features keeps those features
discriminative and the training stable (Sec. 3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def cosine_regression_loss(xcos: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_cos of Eq. 10: mean squared difference between xCos and the teacher cosine."""
    return F.mse_loss(xcos, teacher.to(xcos.dtype))


@dataclass(frozen=True)
class XCosLoss:
    """The total loss and its parts (for the progress bar and the training log)."""

    total: torch.Tensor
    cos: torch.Tensor
    identity: torch.Tensor


def xcos_loss(
    xcos: torch.Tensor, teacher: torch.Tensor, identity: torch.Tensor | None = None,
    identity_weight: float = 1.0,
) -> XCosLoss:
    """L = L_cos + identity_weight * L_id (the identity term is optional)."""
    cos = cosine_regression_loss(xcos, teacher)
    ident = identity if identity is not None else torch.zeros((), dtype=cos.dtype)
    return XCosLoss(cos + identity_weight * ident, cos, ident)
