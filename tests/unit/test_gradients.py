"""Gradient baselines on tiny models: closed-form gradients and Grad-CAM, Captum's ReLU rules
reached through functional ReLUs, no hooks or modes left behind, inputs untouched."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.errors import InvalidArgument
from facexplain.explain.base import backbone_pair_score
from facexplain.explain.gradients import (
    GRADIENT_METHODS,
    DeconvExplainer,
    GradCamExplainer,
    GuidedBackpropExplainer,
    IntegratedGradientsExplainer,
    ReluRoutedScore,
    SaliencyExplainer,
    build_gradient_explainer,
)

S = 8  # crop size of the tiny models


class LinearFace(FaceModel):
    """embedding = W · flatten(x): the gradient of the pair cosine has a closed form."""

    def __init__(self, dim: int = 5, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(dim, 3 * S * S, generator=g) / S)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        return {EMBEDDING: x.flatten(1) @ self.weight.t()}


class ConvFace(FaceModel):
    """conv (stride 2) -> activation -> node "feat" (4, S/2, S/2) -> spatial mean -> linear.

    ``act`` picks the activation as the backbones call it: functional relu, a clamp(0, 6)
    (ReLU6 as the TF.js executor fuses it) or PReLU.
    """

    def __init__(self, act: str = "relu", seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4, 6, bias=False)
        self.act = act
        self.slope = nn.Parameter(torch.full((4,), 0.25))

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        if self.act == "relu":
            return F.relu(y)
        if self.act == "relu6":
            return torch.clamp(y, 0.0, 6.0)
        return F.prelu(y, self.slope)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        feat = self.activate(self.conv(x / 64.0 - 2.0))
        out = {"feat": feat, EMBEDDING: self.fc(feat.mean(dim=(2, 3)))}
        return {n: out[n] for n in nodes}


class ModuleReluNet(nn.Module):
    """The ConvFace "relu" model written with an ``nn.ReLU`` module, as Captum expects."""

    def __init__(self, face: ConvFace) -> None:
        super().__init__()
        self.conv = copy.deepcopy(face.conv)
        self.fc = copy.deepcopy(face.fc)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x / 64.0 - 2.0)).mean(dim=(2, 3)))


class ModulePairScore(nn.Module):
    """Reference pair score for Captum: separate copies for A and B, so each ReLU module runs
    once per forward (Captum's deconvnet hook keeps one output gradient per module)."""

    def __init__(self, face: ConvFace) -> None:
        super().__init__()
        self.net_a = ModuleReluNet(face)
        self.net_b = ModuleReluNet(face)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.net_a(a), self.net_b(b), dim=-1)


def _pair(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, S, S, generator=g) * 255


def _cosine_grads(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d cos(u, v) / du and / dv, in closed form."""
    nu, nv = u.norm(), v.norm()
    c = (u @ v) / (nu * nv)
    return v / (nu * nv) - c * u / nu**2, u / (nu * nv) - c * v / nv**2


def _hooks(modules: Sequence[nn.Module]) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for root in modules for m in root.modules())


def test_saliency_equals_closed_form_gradient() -> None:
    model = LinearFace()
    pair = _pair()
    ref = torch.full_like(pair, 100.0)
    maps = SaliencyExplainer(backbone_pair_score(model), fill=100.0).explain(pair).maps
    w = model.weight.detach().double()
    x = pair.double()
    du, dv = _cosine_grads(w @ x[0].flatten(), w @ x[1].flatten())
    grad = torch.stack([(w.t() @ du).reshape(3, S, S), (w.t() @ dv).reshape(3, S, S)])
    torch.testing.assert_close(maps["magnitude"].double(), grad.abs().amax(dim=1),
                               rtol=1e-4, atol=1e-9)
    delta = (grad * (ref.double() - x)).sum(dim=1)
    torch.testing.assert_close(maps["delta"].double(), delta, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(maps["difference"], maps["delta"].clamp(min=0))
    torch.testing.assert_close(maps["similarity"], (-maps["delta"]).clamp(min=0))


def test_integrated_gradients_complete_and_signed_like_occlusion() -> None:
    """Σ delta = sim(reference) − sim(pair): replacing every pixel by the fill."""
    model = LinearFace()
    score = backbone_pair_score(model)
    pair = _pair(3)
    ref = torch.full((3, S, S), 40.0)
    res = IntegratedGradientsExplainer(score, fill=ref, n_steps=64).explain(pair)
    with torch.no_grad():
        expected = float(score(ref[None], ref[None])[0]) - res.score
    assert float(res.maps["delta"].sum()) == pytest.approx(expected, abs=1e-4)
    assert abs(float(res.meta.convergence_delta)) < 1e-4  # type: ignore[arg-type]
    torch.testing.assert_close(res.maps["magnitude"], res.maps["delta"].abs())


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
@pytest.mark.parametrize("explainer_cls, captum_name",
                         [(GuidedBackpropExplainer, "GuidedBackprop"),
                          (DeconvExplainer, "Deconvolution")])
def test_functional_relu_gets_captum_rule(explainer_cls: type, captum_name: str) -> None:
    """F.relu in the model is routed through nn.ReLU: same result as Captum on a module net,
    and different from the plain gradient."""
    import captum.attr

    face = ConvFace("relu")
    pair = _pair(5)
    res = explainer_cls(backbone_pair_score(face), fill="zero").explain(pair)
    assert res.meta.relu_sites == 2  # one F.relu per face
    a, b = (pair[i : i + 1].clone().requires_grad_() for i in (0, 1))
    ra, rb = getattr(captum.attr, captum_name)(ModulePairScore(face)).attribute((a, b))
    r = torch.cat([ra, rb]).detach()
    torch.testing.assert_close(res.maps["magnitude"], r.abs().amax(dim=1))
    torch.testing.assert_close(res.maps["delta"], (r * (0 - pair)).sum(dim=1))
    plain = SaliencyExplainer(backbone_pair_score(face), fill="zero").explain(pair)
    assert not torch.allclose(plain.maps["magnitude"], res.maps["magnitude"])


def test_relu6_clamp_is_routed_and_forward_unchanged() -> None:
    face = ConvFace("relu6")
    score = backbone_pair_score(face)
    routed = ReluRoutedScore(score)
    pair = _pair(6)
    a, b = pair[0:1], pair[1:2]
    assert routed.discover(a, b) == 2
    torch.testing.assert_close(routed(a, b), score(a, b).reshape(-1))
    guided = GuidedBackpropExplainer(score).explain(pair)
    plain = SaliencyExplainer(score).explain(pair)
    assert not torch.allclose(plain.maps["magnitude"], guided.maps["magnitude"])


def test_prelu_model_reports_no_relu() -> None:
    face = ConvFace("prelu")
    pair = _pair(7)
    with pytest.warns(UserWarning, match="no ReLU"):
        res = GuidedBackpropExplainer(backbone_pair_score(face)).explain(pair)
    assert res.meta.relu_sites == 0 and res.meta.prelu_sites == 2
    plain = SaliencyExplainer(backbone_pair_score(face)).explain(pair)
    torch.testing.assert_close(plain.maps["delta"], res.maps["delta"])


def test_gradcam_matches_hand_computation() -> None:
    """CAM = Σ_k mean(∂s/∂A_k) A_k on the 4x4 node, bilinearly upsampled to 8x8; the gradient
    of the cosine through mean-pool and a linear layer is written out by hand."""
    face = ConvFace("relu")
    pair = _pair(8)
    res = GradCamExplainer(face, "feat").explain(pair)
    with torch.no_grad():
        feat = face.forward_nodes(pair, ("feat",))["feat"].double()  # (2, 4, 4, 4)
        w = face.fc.weight.double()  # (6, 4)
        emb = feat.mean(dim=(2, 3)) @ w.t()
    du, dv = _cosine_grads(emb[0], emb[1])
    h, wd = feat.shape[2:]
    alpha = torch.stack([w.t() @ du, w.t() @ dv]) / (h * wd)  # (2, 4): constant over space
    cam = (alpha[:, :, None, None] * feat).sum(dim=1, keepdim=True)
    up = F.interpolate(cam, (S, S), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(res.maps["similarity"].double(), up.clamp(min=0),
                               rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(res.maps["delta"].double(), -up, rtol=1e-4, atol=1e-8)
    assert res.meta.cam_size == (4, 4)
    with torch.no_grad():
        assert res.score == pytest.approx(float(backbone_pair_score(face)(pair[:1], pair[1:])))


@pytest.mark.parametrize("method", GRADIENT_METHODS)
@pytest.mark.parametrize("act", ["relu", "prelu"])
def test_no_hooks_modes_or_mutation_left(method: str, act: str) -> None:
    face = ConvFace(act)
    explainer = build_gradient_explainer(method, face, "feat", fill="zero", n_steps=4)
    pair = _pair(9)
    before = pair.clone()
    depth = torch._C._len_torch_function_stack()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = explainer.explain(pair)
    assert torch.equal(pair, before) and not pair.requires_grad and pair.grad is None
    assert torch._C._len_torch_function_stack() == depth
    owned = [m for m in vars(explainer).values() if isinstance(m, nn.Module)]
    assert _hooks([face, *owned]) == 0
    assert all(p.grad is None for p in face.parameters())
    for name in ("delta", "difference", "similarity"):
        assert res.maps[name].shape == (2, S, S) and torch.isfinite(res.maps[name]).all()
    again = explainer.explain(pair)  # deterministic, and still works after the clean-up
    torch.testing.assert_close(again.maps["delta"], res.maps["delta"])


def test_bad_input_and_names() -> None:
    explainer = SaliencyExplainer(backbone_pair_score(LinearFace()))
    with pytest.raises(InvalidArgument):
        explainer.explain(torch.zeros(3, S, S))
    with pytest.raises(InvalidArgument):
        build_gradient_explainer("lime", LinearFace(), "feat")
    with pytest.raises(InvalidArgument):
        IntegratedGradientsExplainer(backbone_pair_score(LinearFace()), n_steps=0)
    with pytest.raises(InvalidArgument):
        SaliencyExplainer(backbone_pair_score(LinearFace()),
                          fill=torch.zeros(3, 4, 4)).explain(_pair())
    with pytest.raises(InvalidArgument, match="not produced"):
        GradCamExplainer(_Detached(), "feat").explain(_pair())


class _Detached(ConvFace):
    """A node that is a fresh leaf tensor, not produced by any torch call: cannot be tapped."""

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        out = super().forward_nodes(x, (EMBEDDING,))
        out["feat"] = torch.Tensor._make_subclass(torch.Tensor, torch.zeros(2, 4, 4, 4))
        return {n: out[n] for n in nodes}
