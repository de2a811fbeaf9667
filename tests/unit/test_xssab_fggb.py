"""xSSAB and FGGB on tiny models: the arguments add up to the plain gradient, both maps equal
their formulas evaluated by hand on a linear embedder, and the registry's threshold rule."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.explain.fggb import FGGB, channel_gradient_maps
from facexplain.explain.fills import gaussian_blur
from facexplain.explain.scorer import PairScorer
from facexplain.explain.xssab import XSSAB, argument_gradients
from facexplain.method_info import ExplainOptions
from facexplain.methods._newer import decision_threshold

S = 8  # crop size
D = 6  # embedding size


class LinearFace(FaceModel):
    """embedding = W · flatten(x): every gradient has a closed form."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(D, 3 * S * S, generator=g) / S,
                                   requires_grad=False)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        return {EMBEDDING: x.flatten(1) @ self.weight.t()}


class ConvFace(FaceModel):
    """A non-linear embedder (conv, PReLU-like leaky ReLU, linear)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * S * S, D)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        return {EMBEDDING: self.fc(F.leaky_relu(self.conv(x / 64.0 - 2.0), 0.2).flatten(1))}


def _pair(seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(seed)) * 255


def _jacobians(model: LinearFace, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised embeddings (2, D) and d ê / d x (2, D, 3·S·S), by hand in float64."""
    w = model.weight.detach().double()
    e = pair.double().flatten(1) @ w.t()
    n = e.norm(dim=1, keepdim=True)
    u = e / n
    eye = torch.eye(D, dtype=torch.float64)
    jac = torch.stack([(eye - torch.outer(u[i], u[i])) @ w / n[i] for i in (0, 1)])
    return u, jac


@pytest.mark.parametrize("threshold", [0.0, 0.3, -0.2])
def test_xssab_arguments_add_up_to_the_plain_gradient(threshold: float) -> None:
    model = ConvFace().eval()
    pair = _pair()
    args = argument_gradients(model, pair, threshold)
    a, b = pair[0:1].clone().requires_grad_(), pair[1:2].clone().requires_grad_()
    ga, gb = torch.autograd.grad(PairScorer(model)(a, b).sum(), (a, b))
    torch.testing.assert_close(args.grad_for + args.grad_against, torch.cat([ga, gb]),
                               rtol=1e-4, atol=1e-9)
    e = F.normalize(model(pair), dim=-1)
    products = e[0] * e[1]
    assert torch.equal(args.support, products >= threshold / D)
    assert args.score_for + args.score_against == pytest.approx(float(products.sum()), abs=1e-6)


def test_xssab_maps_equal_the_split_gradient_by_hand() -> None:
    model = LinearFace()
    pair = _pair(2)
    u, jac = _jacobians(model, pair)
    ranked = (u[0] * u[1]).sort().values
    threshold = float(ranked[D // 2 - 1] + ranked[D // 2]) / 2 * D  # half argue for the match
    support = (u[0] * u[1] >= threshold / D).double()
    assert 0 < support.sum() < D, "pick a threshold that splits the dimensions"
    grads = {}
    for name, keep in (("for", support), ("against", 1 - support)):
        g = torch.stack([jac[0].t() @ (u[1] * keep), jac[1].t() @ (u[0] * keep)])
        grads[name] = g.reshape(2, 3, S, S).abs().mean(dim=1)
    before = pair.clone()
    result = XSSAB(PairScorer(model), threshold).explain(pair)
    assert torch.equal(pair, before)
    torch.testing.assert_close(result.maps["arguments_for"].double(), grads["for"],
                               rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(result.maps["arguments_against"].double(), grads["against"],
                               rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(result.maps["delta"].double(), grads["against"] - grads["for"],
                               rtol=1e-4, atol=1e-10)
    torch.testing.assert_close(result.maps["difference"], result.maps["delta"].clamp(min=0))
    torch.testing.assert_close(result.maps["similarity"], (-result.maps["delta"]).clamp(min=0))


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_fggb_equals_the_formula_by_hand(batch_size: int) -> None:
    model = LinearFace()
    pair = _pair(4)
    threshold = 0.25
    u, jac = _jacobians(model, pair)
    g = jac.reshape(2, D, 3, S, S).abs().mean(dim=2)  # (face, channel, H, W)
    g = g / g.flatten(2).norm(dim=2)[..., None, None]
    weights = u[0] * u[1] - threshold / D
    expected = torch.einsum("fkhw,k->fhw", g, weights)
    torch.testing.assert_close(channel_gradient_maps(model, pair, batch_size).double(), g,
                               rtol=1e-4, atol=1e-8)
    before = pair.clone()
    raw = FGGB(PairScorer(model), threshold, smooth=False, batch_size=batch_size).explain(pair)
    assert torch.equal(pair, before)
    torch.testing.assert_close(-raw.maps["delta"].double(), expected, rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(raw.maps["similarity"], (-raw.maps["delta"]).clamp(min=0))
    torch.testing.assert_close(raw.maps["difference"], raw.maps["delta"].clamp(min=0))
    assert raw.meta.n_backward == 2 * D  # type: ignore[attr-defined]
    smooth = FGGB(PairScorer(model), threshold, batch_size=batch_size).explain(pair)
    blurred = gaussian_blur(-raw.maps["delta"].unsqueeze(1), 5.0 * S / 112,
                            radius=round(12 * S / 112))[:, 0]
    torch.testing.assert_close(-smooth.maps["delta"], blurred, rtol=1e-4, atol=1e-8)


def test_fggb_swapping_the_faces_swaps_the_maps() -> None:
    scorer = PairScorer(ConvFace().eval())
    pair = _pair(5)
    first = FGGB(scorer, 0.2).explain(pair).maps["delta"]
    swapped = FGGB(scorer, 0.2).explain(pair.flip(0)).maps["delta"]
    torch.testing.assert_close(swapped, first.flip(0), rtol=1e-4, atol=1e-7)


def test_threshold_comes_from_options_then_calibration_then_zero() -> None:
    scorer = PairScorer(LinearFace())  # no registered backbone: no calibration
    assert decision_threshold(scorer, ExplainOptions(threshold=0.42)) == (0.42, "given")
    value, source = decision_threshold(scorer, ExplainOptions())
    assert value == 0.0 and "0" in source
