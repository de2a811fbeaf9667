"""xSSAB: similarity score argument backpropagation (Huber, Luu, Terhörst & Damer, WACV 2024).

The cosine of two L2-normalised embeddings is a sum of per-dimension products,
cos = Σ_k â_k b̂_k. The dimensions whose product reaches the threshold share,
â_k b̂_k >= threshold / D, argue *for* the match; the others argue *against* it (with
threshold 0: the positive and the negative products). Each part is backpropagated to each
face separately, the other face's embedding held fixed, so the two gradients of a face add up
to the plain gradient of the similarity. As in the authors' code, a face's argument map is the
mean over colour channels of the absolute gradient: ``arguments_for`` (their positive map) and
``arguments_against`` (negative map); their combined map is for − against.

In the project's convention ``delta`` = against − for (> 0 where the arguments against the
match dominate: the faces differ there), ``difference`` = relu(delta), ``similarity`` =
relu(−delta). One forward pass of the pair and two backward passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facexplain.errors import InvalidArgument
from facexplain.explain.base import Explainer, ExplanationMaps, MethodDetails
from facexplain.explain.gradients import check_pair, signed_maps
from facexplain.explain.scorer import PairScorer, clean_score


@dataclass(frozen=True, kw_only=True)
class XSSABDetails(MethodDetails):
    """The split: threshold used, how many dimensions argue for, and what each side sums to."""

    threshold: float
    threshold_source: str
    dims_for: int
    dims: int
    score_for: float
    score_against: float
    n_forward: int = 1
    n_backward: int = 2


@dataclass(frozen=True)
class Arguments:
    """(2, 3, H, W) gradients of the arguments for and against the match, for faces A and B."""

    grad_for: torch.Tensor
    grad_against: torch.Tensor
    support: torch.Tensor  # (D,) True where the dimension argues for the match
    score_for: float
    score_against: float


def argument_gradients(model: torch.nn.Module, pair: torch.Tensor,
                       threshold: float = 0.0) -> Arguments:
    """Backpropagate the supporting and the opposing part of the pair's cosine to both faces
    (each face's gradient with the other face's embedding fixed)."""
    x = check_pair(pair).requires_grad_(True)
    with torch.enable_grad():
        e = F.normalize(model(x), dim=-1)
        dims = e.shape[1]
        products = (e[0] * e[1]).detach()
        support = products >= threshold / dims
        # face A's terms with B fixed plus face B's with A fixed: one sum, both gradients
        terms = e[0] * e[1].detach() + e[0].detach() * e[1]
        part_for = (terms * support).sum()
        part_against = (terms * ~support).sum()
        (g_for,) = torch.autograd.grad(part_for, x, retain_graph=True)
        (g_against,) = torch.autograd.grad(part_against, x)
    return Arguments(g_for.detach(), g_against.detach(), support,
                     float(products[support].sum()), float(products[~support].sum()))


class XSSAB(Explainer):
    """xSSAB maps of a backbone's pair similarity (see the module docstring)."""

    name = "xssab"

    def __init__(self, scorer: PairScorer, threshold: float = 0.0,
                 threshold_source: str = "given") -> None:
        super().__init__(scorer)
        if threshold != threshold:
            raise InvalidArgument("the xSSAB threshold must be a number, got NaN")
        self.model = scorer.model
        self.threshold = float(threshold)
        self.threshold_source = threshold_source

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = check_pair(pair)
        score = clean_score(self.score_fn, x)
        args = argument_gradients(self.model, x, self.threshold)
        arg_for = args.grad_for.abs().mean(dim=1)
        arg_against = args.grad_against.abs().mean(dim=1)
        maps = signed_maps(arg_against - arg_for)
        maps["arguments_for"] = arg_for
        maps["arguments_against"] = arg_against
        meta = XSSABDetails(
            threshold=self.threshold, threshold_source=self.threshold_source,
            dims_for=int(args.support.sum()), dims=int(args.support.numel()),
            score_for=args.score_for, score_against=args.score_against,
            seconds=round(time.perf_counter() - started, 3))
        return ExplanationMaps(self.name, maps, score, meta)
