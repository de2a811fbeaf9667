"""Gradient baselines on the real backbones: Grad-CAM taps the spec's last spatial node (checked
against autograd on the node), and which backbones have ReLUs for deconvnet / guided backprop."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from facexplain.backbones.base import EMBEDDING
from facexplain.backbones.registry import get_spec, load_backbone
from facexplain.errors import AssetMissing
from facexplain.explain.gradients import GradCamExplainer, build_gradient_explainer
from facexplain.scoring import cosine

pytestmark = pytest.mark.slow

# ReLU calls per pair score (both faces): PReLU-only models have none.
RELU_SITES = {"sface": 0, "dlib-resnet": 58, "faceres": 54, "mobileface": 0}


def _model(name: str) -> torch.nn.Module:
    try:
        return load_backbone(name)
    except AssetMissing as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("name", list(RELU_SITES))
def test_gradcam_on_last_spatial_node_matches_autograd(name: str) -> None:
    spec = get_spec(name)
    model = _model(name)
    size = spec.input_size
    pair = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
    res = GradCamExplainer(model, spec.last_spatial_node).explain(pair)
    out = model.forward_nodes(pair.clone().requires_grad_(), (EMBEDDING, spec.last_spatial_node))
    act = out[spec.last_spatial_node]
    s = cosine(out[EMBEDDING][:1], out[EMBEDDING][1:]).sum()
    (grad,) = torch.autograd.grad(s, act)
    cam = (grad.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1, keepdim=True).detach()
    up = F.interpolate(cam, (size, size), mode="bilinear", align_corners=False)[:, 0]
    scale = float(up.abs().max())
    assert float((res.maps["delta"] + up).abs().max()) <= 1e-4 * scale + 1e-7


@pytest.mark.parametrize("name", list(RELU_SITES))
def test_relu_sites_per_backbone(name: str) -> None:
    spec = get_spec(name)
    model = _model(name)
    size = spec.input_size
    pair = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 255
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guided = build_gradient_explainer("guided", model, spec.last_spatial_node).explain(pair)
        plain = build_gradient_explainer("saliency", model, spec.last_spatial_node).explain(pair)
    assert guided.meta.relu_sites == RELU_SITES[name]
    same = torch.allclose(guided.maps["delta"], plain.maps["delta"])
    assert same == (RELU_SITES[name] == 0)
