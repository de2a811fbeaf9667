"""FGGB: feature-guided gradient backpropagation (Lu, Xu & Ebrahimi, arXiv 2403.04549).

Instead of the gradient of the similarity, FGGB takes the gradient of every channel k of a
face's L2-normalised embedding F with respect to that face, G^k = ∂F^k/∂I, and normalises each
one: the mean over colour channels of |G^k|, divided by its L2 norm (G̃^k, as the authors'
code). The channels are weighted by how much they add to the similarity, above an even share
of the decision threshold, and summed:

    S_A = Σ_k G̃_A^k · (w_k − threshold / N),   w = (F_A ⊙ F_B) / (|F_A| |F_B|),

S⁺ = relu(S) is the similarity map, S⁻ = relu(−S) the dissimilarity map; the same for face B.
As the authors' code, the map is smoothed by a Gaussian of sigma 5 px and a 25 px kernel on a
112 px crop (scaled to the crop); here the signed S is smoothed, then split, so ``difference``
(S⁻) and ``similarity`` (S⁺) stay the two halves of one ``delta`` = −S.

The N gradients per face run as batches of replicated faces (one backward pass per batch),
so a pair costs 2N face forward and backward passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails
from facexplain.explain.fills import gaussian_blur
from facexplain.explain.gradients import check_pair, signed_maps
from facexplain.explain.scorer import PairScorer
from facexplain.progress import check_in

REFERENCE_SIZE = 112
SIGMA, RADIUS = 5.0, 12  # the authors' blur on 112 px crops: sigma 5, kernel 25


@dataclass(frozen=True, kw_only=True)
class FGGBDetails(MethodDetails):
    """Threshold used, smoothing, and the passes the channel gradients took."""

    threshold: float
    threshold_source: str
    channels: int
    sigma: float | None
    n_forward: int
    n_backward: int


def channel_gradient_maps(model: torch.nn.Module, faces: torch.Tensor,
                          batch_size: int = 32) -> torch.Tensor:
    """(K, N, H, W): for each of K faces (K, 3, H, W) and embedding channel k, the mean over
    colour channels of |∂F^k/∂I| of the L2-normalised embedding F, divided by its L2 norm."""
    faces = faces.detach().float()
    with torch.inference_mode():
        channels = int(model(faces[:1]).shape[1])
    items = [(f, k) for f in range(faces.shape[0]) for k in range(channels)]
    out = torch.empty(faces.shape[0], channels, *faces.shape[2:])
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        check_in("channel gradients")
        which = torch.tensor([f for f, _ in chunk])
        ks = torch.tensor([k for _, k in chunk])
        with torch.enable_grad():
            x = faces[which].clone().requires_grad_(True)
            e = F.normalize(model(x), dim=-1)
            (g,) = torch.autograd.grad(e[torch.arange(len(chunk)), ks].sum(), x)
        m = g.detach().abs().mean(dim=1)
        out[which, ks] = m / (m.flatten(1).norm(dim=1) + 1e-8)[:, None, None]
    return out


class FGGB(Explainer):
    """FGGB maps of a backbone's pair similarity (see the module docstring)."""

    name = "fggb"

    def __init__(self, scorer: PairScorer, threshold: float = 0.0,
                 threshold_source: str = "given", smooth: bool = True,
                 batch_size: int = 32) -> None:
        super().__init__(scorer)
        if threshold != threshold:
            raise InvalidArgument("the FGGB threshold must be a number, got NaN")
        if batch_size < 1:
            raise InvalidArgument(f"batch size must be >= 1, got {batch_size}")
        self.scorer = scorer
        self.threshold = float(threshold)
        self.threshold_source = threshold_source
        self.smooth = smooth
        self.batch_size = batch_size

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = check_pair(pair)
        emb = F.normalize(self.scorer.embed_pair(x).double(), dim=-1)
        channels = int(emb.shape[1])
        weights = emb[0] * emb[1] - self.threshold / channels  # (N,)
        grads = channel_gradient_maps(self.scorer.model, x, self.batch_size).double()
        s = torch.einsum("fkhw,k->fhw", grads, weights).float()
        sigma = None
        if self.smooth:
            size = min(int(x.shape[2]), int(x.shape[3]))
            sigma = SIGMA * size / REFERENCE_SIZE
            s = gaussian_blur(s.unsqueeze(1), sigma,
                              radius=round(RADIUS * size / REFERENCE_SIZE))[:, 0]
        meta = FGGBDetails(
            threshold=self.threshold, threshold_source=self.threshold_source, channels=channels,
            sigma=sigma, n_forward=2 * channels, n_backward=2 * channels,
            seconds=round(time.perf_counter() - started, 3))
        return ExplanationMaps(self.name, signed_maps(-s), self.scorer.similarity(x), meta)
