"""Spatial and feature activation diversity losses (Yin et al., Eqs. 1, 2, 4, 5).

Why: SAD pushes the part filters apart, in their weights (Eq. 1) and in where they respond
(Eq. 2, on Gaussian-smoothed LMF responses), so each filter ends up tied to its own face region.
FAD asks that an occlusion change only a few dimensions of f (Eq. 4): the mask τ keeps the
dimensions the occluder barely moved, computed over a mini-batch that shares one physical
occlusion (Sec. 3.4); the occluded branch must still identify the face from τ ⊙ f(Î) (Eq. 5).

All sums are normalised to means (over filter pairs, batch), so the weights of the losses do not
depend on N_f; FAD is divided by the clean features' mean norm, so it does not reward shrinking f.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from facexplain.errors import InvalidArgument


def _off_diagonal_mean(gram: torch.Tensor) -> torch.Tensor:
    """Mean of the off-diagonal entries of (..., K, K)."""
    k = gram.shape[-1]
    if k < 2:
        return gram.sum() * 0.0
    eye = torch.eye(k, dtype=torch.bool, device=gram.device)
    return gram.masked_fill(eye, 0.0).sum(dim=(-2, -1)).mean() / (k * (k - 1))


def sad_filter_loss(weight: torch.Tensor) -> torch.Tensor:
    """Eq. 1: |Σ_p cos(F_i^p, F_j^p)| over filter pairs, for conv weights (N_f, C, kh, kw).

    Zero for filters whose columns are orthogonal at every spatial position.
    """
    if weight.ndim != 4:
        raise InvalidArgument(f"need conv weights (N_f, C, kh, kw), got {tuple(weight.shape)}")
    cols = F.normalize(weight.flatten(2).permute(2, 0, 1), dim=2, eps=1e-12)  # (P, N_f, C)
    gram = (cols @ cols.transpose(1, 2)).sum(dim=0)  # Σ_p cos, (N_f, N_f)
    return _off_diagonal_mean(gram.abs()) / cols.shape[0]


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Channel-wise Gaussian blur g_σ * maps (N, C, h, w), zero-padded."""
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    k1 = torch.exp(-0.5 * (x / sigma) ** 2)
    k1 = k1 / k1.sum()
    c = maps.shape[1]
    out = F.conv2d(maps, k1.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(out, k1.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


def sad_response_loss(responses: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Eq. 2: squared cosine between the smoothed response maps of every filter pair, per image.

    ``responses`` are LMF(ψ) (N, N_f, h, w); the Gaussian dilates each peak so nearby peaks of
    two filters still count as overlapping.
    """
    if responses.ndim != 4:
        raise InvalidArgument(f"need (N, N_f, h, w) responses, got {tuple(responses.shape)}")
    flat = F.normalize(gaussian_smooth(responses, sigma).flatten(2), dim=2, eps=1e-12)
    gram = flat @ flat.transpose(1, 2)  # (N, N_f, N_f)
    return _off_diagonal_mean(gram.pow(2))


def fad_mask(clean: torch.Tensor, occluded: torch.Tensor, keep: int | None = None,
             threshold: float | None = None) -> torch.Tensor:
    """τ (N_f,) as float 0/1 over a batch sharing one physical occlusion (Sec. 3.4).

    ``keep``: the paper's count rule (the t dimensions whose batch-mean change is smallest);
    ``threshold``: the value rule (|mean f_i(I) - mean f_i(Î)| < t, on features divided by
    their mean norm). Exactly one must be given.
    """
    if (keep is None) == (threshold is None):
        raise InvalidArgument("give exactly one of keep (count rule) or threshold (value rule)")
    if clean.shape != occluded.shape or clean.ndim != 2:
        raise InvalidArgument(f"need two (N, N_f) feature batches, got {tuple(clean.shape)}, "
                              f"{tuple(occluded.shape)}")
    scale = clean.detach().norm(dim=1).mean().clamp_min(1e-12)
    change = ((clean.detach() - occluded.detach()).mean(dim=0) / scale).abs()
    if keep is not None:
        if not 0 < keep <= change.numel():
            raise InvalidArgument(f"keep must be in 1..{change.numel()}, got {keep}")
        tau = torch.zeros_like(change)
        tau[change.argsort()[:keep]] = 1.0
        return tau
    assert threshold is not None
    return (change < threshold).to(clean.dtype)


def fad_loss(clean: torch.Tensor, occluded: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Eq. 4: Σ_i |τ_i (f_i(I) - f_i(Î))|, averaged over the batch, relative to ‖f(I)‖."""
    scale = clean.detach().norm(dim=1).mean().clamp_min(1e-12)
    return ((clean - occluded) * tau).abs().sum(dim=1).mean() / scale
