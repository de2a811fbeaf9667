"""Gradient baselines on the pair score, computed by Captum: saliency, deconvnet, guided
backpropagation, integrated gradients and Grad-CAM.

All of them explain the same number as pairwise occlusion — the cosine similarity of the pair
(``PairScore``) — and return one map per face, (2, H, W), in aligned-crop pixels:

* ``delta``: signed first-order estimate of sim(pixel replaced by the reference) − sim(pair),
  the same sign convention as occlusion's Δ. For saliency, deconvnet and guided backprop it is
  Σ_c r_c · (ref_c − x_c) with r the method's (possibly modified) gradient; for integrated
  gradients it is −Σ_c IG_c, whose sum over pixels is exactly sim(reference) − sim(pair) (up to
  the integration error, kept in ``meta``); for Grad-CAM it is −CAM (the negated-gradient
  "counterfactual" map of the Grad-CAM paper, upsampled).
* ``difference`` = relu(delta): where removing the pixel raises the similarity (faces differ);
  ``similarity`` = relu(−delta): where removing it lowers the similarity (faces match).
* ``magnitude`` (pixel methods): the classic unsigned picture — max over channels of |r| for
  saliency / deconvnet / guided (Simonyan et al.; Zeiler & Fergus), |Σ_c IG_c| for IG.

Captum's deconvnet and guided backprop only rewrite the backward pass of ``nn.ReLU`` modules,
while our backbones call ``F.relu`` / ``torch.clamp`` (graph executors). While those two run,
a torch-function mode routes every ReLU-like call (relu, relu6, clamp/hardtanh with lower bound
0) through a fresh ``nn.ReLU`` module per call site, which Captum then hooks; the upper bound of
a ReLU6 stays a plain clamp. PReLU is not a ReLU and is left alone: on a PReLU-only model
(sface, mobileface) both methods equal the plain gradient, which ``meta.relu_sites == 0``
and a warning say. Grad-CAM needs the activation at ``spec.last_spatial_node``, a graph node
and not a module: the same mechanism passes that tensor through an ``nn.Identity`` tap that
Captum's ``LayerGradCam`` hooks (``explain.captum_routing``). Every hook is removed when a
method returns.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from facexplain.backbones.base import FaceModel
from facexplain.errors import InvalidArgument
from facexplain.explain.base import (
    Explainer,
    ExplanationMaps,
    LayerExplainer,
    MethodDetails,
    PairScore,
    backbone_pair_score,
)
from facexplain.explain.captum_routing import NodeTappedScore, ReluRoutedScore
from facexplain.explain.scorer import clean_score

GRADIENT_METHODS = ("saliency", "deconv", "guided", "ig", "gradcam")
IG_METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
              "riemann_middle")

Fill = str | torch.Tensor | float


def check_pair(pair: torch.Tensor) -> torch.Tensor:
    """A detached float copy of a (2, 3, H, W) pair, so no method can touch the caller's data."""
    if not isinstance(pair, torch.Tensor) or pair.ndim != 4 or tuple(pair.shape[:2]) != (2, 3):
        shape = tuple(pair.shape) if isinstance(pair, torch.Tensor) else type(pair).__name__
        raise InvalidArgument(f"pair must be a (2, 3, H, W) tensor, got {shape}")
    return pair.detach().float().clone()


def reference_for(pair: torch.Tensor, fill: Fill, template: str | None = None) -> torch.Tensor:
    """The reference pixels (2, 3, H, W): what "removing" a pixel replaces it with.

    A fill name is resolved by ``explain.fills.make_fill`` (the occlusion fills, so both methods
    remove pixels the same way); a number is a constant grey; a tensor (3, H, W) or
    (2, 3, H, W) is used as given.
    """
    if isinstance(fill, str):
        if fill == "zero":
            return torch.zeros_like(pair)
        from facexplain.explain.fills import make_fill

        return make_fill(pair, fill, template).to(pair.device, pair.dtype)
    if isinstance(fill, int | float):
        return torch.full_like(pair, float(fill))
    ref = fill.detach().to(pair.device, pair.dtype)
    if ref.ndim == 3:
        ref = ref.unsqueeze(0).expand(2, -1, -1, -1)
    if tuple(ref.shape) != tuple(pair.shape):
        raise InvalidArgument(f"fill shape {tuple(fill.shape)} does not match the pair "
                              f"{tuple(pair.shape)}")
    return ref.contiguous()


def signed_maps(delta: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three maps every method shares, from the signed (2, H, W) delta."""
    d = delta.detach()
    return {"delta": d, "difference": d.clamp(min=0), "similarity": (-d).clamp(min=0)}


def _pair_forward(score_fn: PairScore) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Captum's ``forward_func``: faces A and B as two inputs, one score per pair."""

    def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return score_fn(a, b).reshape(-1)

    return forward


# --- the explainers ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GradientDetails(MethodDetails):
    """Settings and diagnostics of a pixel-gradient map (fields unused by a method stay None).

    ``relu_sites``/``prelu_sites``: ReLU calls routed through hooked modules and PReLU calls
    left alone (deconvnet, guided backprop); ``convergence_delta``: IG's completeness error.
    """

    fill: str
    relu_sites: int | None = None
    prelu_sites: int | None = None
    unrouted_inplace_relu_sites: int | None = None
    n_steps: int | None = None
    quadrature: str | None = None
    convergence_delta: float | None = None
    completeness_error: float | None = None  # |convergence delta| / |similarity change|
    score_change: float | None = None  # sim(pair) - sim(reference): what IG distributes


@dataclass(frozen=True, kw_only=True)
class GradCamDetails(MethodDetails):
    """Where Grad-CAM looked: the node and its spatial size before upsampling."""

    node: str
    cam_size: tuple[int, ...]


class GradientExplainer(Explainer):
    """Shared flow: copy the pair, resolve the reference, call one Captum method (``_attribute``),
    turn its per-channel result into maps. Subclasses override ``_attribute`` (and maybe
    ``_maps``)."""

    name = "gradient"

    def __init__(self, score_fn: PairScore, fill: Fill = "zero",
                 template: str | None = None) -> None:
        super().__init__(score_fn)
        self.fill = fill
        self.template = template

    def _attribute(self, a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, object]]:
        """(2, 3, H, W) gradient-like result for faces A and B, plus method-specific meta."""
        raise NotImplementedError

    def _maps(self, r: torch.Tensor, x: torch.Tensor, ref: torch.Tensor
              ) -> dict[str, torch.Tensor]:
        maps = signed_maps((r * (ref - x)).sum(dim=1))
        maps["magnitude"] = r.abs().amax(dim=1).detach()
        return maps

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        started = time.perf_counter()
        x = check_pair(pair)
        ref = reference_for(x, self.fill, self.template)
        score = clean_score(self.score_fn, x)
        a, b = x[0:1].clone().requires_grad_(), x[1:2].clone().requires_grad_()
        r, extra = self._attribute(a, b, ref)
        maps = self._maps(r.detach(), x, ref)
        fill = str(self.fill) if isinstance(self.fill, str | int | float) else "custom"
        details = GradientDetails(fill=fill, seconds=round(time.perf_counter() - started, 3),
                                  **extra)  # type: ignore[arg-type]
        return ExplanationMaps(self.name, maps, score, details)


class SaliencyExplainer(GradientExplainer):
    """Gradient back-propagation (Simonyan et al.), Captum ``Saliency`` with signed gradients."""

    name = "saliency"

    def _attribute(self, a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, object]]:
        from captum.attr import Saliency

        ga, gb = Saliency(_pair_forward(self.score_fn)).attribute((a, b), abs=False)
        return torch.cat([ga, gb]), {}


class _ModifiedReluExplainer(GradientExplainer):
    """Deconvnet / guided backprop: Captum's ReLU-hooking methods on ``ReluRoutedScore``."""

    captum_class = "GuidedBackprop"

    def __init__(self, score_fn: PairScore, fill: Fill = "zero",
                 template: str | None = None) -> None:
        super().__init__(score_fn, fill, template)
        self.routed = ReluRoutedScore(score_fn)
        self._warned = False

    def _attribute(self, a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, object]]:
        import captum.attr

        sites = self.routed.discover(a, b)
        meta: dict[str, object] = {"relu_sites": sites, "prelu_sites": self.routed.prelu_sites}
        if sites == 0:
            note = (f"{self.name}: the score has no ReLU (PReLU sites: "
                    f"{self.routed.prelu_sites}); Captum's rule changes nothing here and the map "
                    "equals the plain gradient's")
            meta["note"] = note
            if not self._warned:
                warnings.warn(note, stacklevel=3)
                self._warned = True
        if self.routed.inplace_sites:
            meta["unrouted_inplace_relu_sites"] = self.routed.inplace_sites
        method = getattr(captum.attr, self.captum_class)(self.routed)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                ra, rb = method.attribute((a, b))
        finally:
            self.routed.relus = nn.ModuleList()  # drop the per-call modules (hooks already gone)
        return torch.cat([ra, rb]), meta


class DeconvExplainer(_ModifiedReluExplainer):
    """Deconvnet (Zeiler & Fergus): ReLUs pass relu(grad of their output), ignoring the forward
    mask. Captum ``Deconvolution``."""

    name = "deconv"
    captum_class = "Deconvolution"


class GuidedBackpropExplainer(_ModifiedReluExplainer):
    """Guided backprop (Springenberg et al.): ReLUs pass only positive gradients where their
    input was positive. Captum ``GuidedBackprop``."""

    name = "guided"
    captum_class = "GuidedBackprop"


class IntegratedGradientsExplainer(GradientExplainer):
    """Integrated gradients from the reference (a fill: mean face, zero...) to the pair, Captum
    ``IntegratedGradients`` with ``method`` quadrature.

    Completeness says the attributions add up to sim(pair) − sim(reference); Captum's
    convergence delta is how far they miss. With ``n_steps=None`` (adaptive) the number of
    steps starts at ``start_steps`` and doubles until the miss is under ``tolerance`` of the
    similarity change or ``max_steps`` is reached; a fixed ``n_steps`` runs once. The relative
    miss is kept as ``completeness_error`` and a map that stays above tolerance carries a note.
    """

    name = "ig"

    def __init__(self, score_fn: PairScore, fill: Fill = "zero", template: str | None = None,
                 n_steps: int | None = 32, method: str = "gausslegendre",
                 internal_batch_size: int | None = None, tolerance: float = 0.05,
                 start_steps: int = 32, max_steps: int = 512) -> None:
        super().__init__(score_fn, fill, template)
        if n_steps is not None and n_steps < 1:
            raise InvalidArgument(f"n_steps must be >= 1, got {n_steps}")
        if method not in IG_METHODS:
            raise InvalidArgument(f"unknown IG method '{method}'; valid: {', '.join(IG_METHODS)}")
        if not 1 <= start_steps <= max_steps:
            raise InvalidArgument(f"need 1 <= start_steps <= max_steps, got {start_steps}, "
                                  f"{max_steps}")
        self.n_steps = n_steps
        self.method = method
        self.internal_batch_size = internal_batch_size
        self.tolerance = tolerance
        self.start_steps = start_steps
        self.max_steps = max_steps

    def _attribute(self, a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, object]]:
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(_pair_forward(self.score_fn))
        with torch.no_grad():
            change = float(self.score_fn(a.detach(), b.detach()).reshape(-1)[0]
                           - self.score_fn(ref[0:1], ref[1:2]).reshape(-1)[0])
        steps = self.n_steps or self.start_steps
        while True:
            (ia, ib), conv = ig.attribute((a, b), baselines=(ref[0:1], ref[1:2]),
                                          n_steps=steps, method=self.method,
                                          internal_batch_size=self.internal_batch_size,
                                          return_convergence_delta=True)
            delta = float(conv.reshape(-1)[0])
            error = abs(delta) / max(abs(change), 1e-6)
            if self.n_steps is not None or error <= self.tolerance or steps >= self.max_steps:
                break
            steps = min(2 * steps, self.max_steps)
        meta: dict[str, object] = {"n_steps": steps, "quadrature": self.method,
                                   "convergence_delta": delta, "completeness_error": error,
                                   "score_change": change}
        if error > self.tolerance:
            meta["note"] = (f"the attributions miss the similarity change by {100 * error:.0f}% "
                            f"after {steps} steps (completeness not reached): read this map "
                            "with caution")
        return torch.cat([ia, ib]), meta

    def _maps(self, r: torch.Tensor, x: torch.Tensor, ref: torch.Tensor
              ) -> dict[str, torch.Tensor]:
        total = r.sum(dim=1)
        maps = signed_maps(-total)
        maps["magnitude"] = total.abs()
        return maps


class GradCamExplainer(LayerExplainer):
    """Grad-CAM (Selvaraju et al.) of the pair similarity on the backbone's ``node`` (its last
    spatial map), Captum ``LayerGradCam``, upsampled bilinearly to the crop.

    ``similarity`` is the usual Grad-CAM (relu of the gradient-weighted activations: what
    supports the match), ``difference`` the counterfactual one (relu of the negated CAM).
    """

    name = "gradcam"

    def __init__(self, model: FaceModel, node: str, score_fn: PairScore | None = None) -> None:
        super().__init__(model, node, score_fn)
        self.tapped = NodeTappedScore(model, node)

    def explain(self, pair: torch.Tensor) -> ExplanationMaps:
        from captum.attr import LayerAttribution, LayerGradCam

        started = time.perf_counter()
        x = check_pair(pair)
        h, w = int(x.shape[2]), int(x.shape[3])
        score = clean_score(self.score_fn, x)
        cam = LayerGradCam(self.tapped, self.tapped.tap).attribute(
            (x[0:1].clone().requires_grad_(), x[1:2].clone().requires_grad_()),
            relu_attributions=False)
        assert isinstance(cam, torch.Tensor)
        if cam.shape[:2] != (2, 1):
            raise RuntimeError(f"unexpected Grad-CAM shape {tuple(cam.shape)}")
        up = LayerAttribution.interpolate(cam.detach(), (h, w), interpolate_mode="bilinear")
        maps = signed_maps(-up[:, 0])
        details = GradCamDetails(node=self.node, cam_size=tuple(int(v) for v in cam.shape[2:]),
                                 seconds=round(time.perf_counter() - started, 3))
        return ExplanationMaps(self.name, maps, score, details)


def build_gradient_explainer(method: str, model: FaceModel, node: str, fill: Fill = "zero",
                             template: str | None = None, n_steps: int | None = 32,
                             score_fn: PairScore | None = None) -> Explainer:
    """One explainer by name (``GRADIENT_METHODS``) on ``model``'s pair score (``score_fn``:
    the model's own ``PairScorer`` when the caller has one, so clean pairs embed once)."""
    score_fn = score_fn if score_fn is not None else backbone_pair_score(model)
    if method == "saliency":
        return SaliencyExplainer(score_fn, fill, template)
    if method == "deconv":
        return DeconvExplainer(score_fn, fill, template)
    if method == "guided":
        return GuidedBackpropExplainer(score_fn, fill, template)
    if method == "ig":
        return IntegratedGradientsExplainer(score_fn, fill, template, n_steps=n_steps)
    if method == "gradcam":
        return GradCamExplainer(model, node, score_fn)
    raise InvalidArgument(f"unknown gradient method '{method}'; valid: "
                          f"{', '.join(GRADIENT_METHODS)}")
