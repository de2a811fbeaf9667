"""CorrRISE, RISE and LIME on toy scores: each map equals its estimator computed directly from
the same masks, LIME recovers planted superpixel weights, sampling stops once the map has
settled, and ``--method all`` leaves the slow sampling methods out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.backbones.registry import get_spec
from facexplain.explain.lime import Lime, superpixels
from facexplain.explain.rise import CorrRise, Rise
from facexplain.explain.sampling import SamplingDetails, StopRule, first_masks, patch_masks
from facexplain.explain.scorer import PairScorer
from facexplain.method_info import ExplainOptions
from facexplain.scoring import cosine

S = 12  # crop size


def _pair(seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(seed)) * 255


class ToyScore:
    """A non-linear pair score of both faces (a black box: not a ``PairScorer``)."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.wa = torch.randn(3, S, S, generator=g)
        self.wb = torch.randn(3, S, S, generator=g)
        self.calls = 0

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.calls += a.shape[0]
        za = (a * self.wa).sum(dim=(1, 2, 3)) / 2000
        zb = (b * self.wb).sum(dim=(1, 2, 3)) / 2000
        return torch.tanh(za + 0.5 * zb + za * zb)


def _scores(score: ToyScore, pair: torch.Tensor, side: int, faces: torch.Tensor) -> np.ndarray:
    other = pair[1 - side : 2 - side].expand(faces.shape[0], -1, -1, -1)
    s = score(faces, other) if side == 0 else score(other, faces)
    return s.double().numpy()


def test_corrrise_is_the_pearson_correlation_of_mask_and_score() -> None:
    score, pair = ToyScore(), _pair()
    before = pair.clone()
    explainer = CorrRise(score, max_samples=70, patch_size=4, fill="zero", seed=5)
    result = explainer.explain(pair)
    assert torch.equal(pair, before)
    masks = first_masks(explainer.draw(S, S), 5, 70).double()
    for side in (0, 1):
        s = _scores(score, pair, side, masks.unsqueeze(1).float() * pair[side])
        expected = np.zeros((S, S))
        for y in range(S):
            for x in range(S):
                m = masks[:, y, x].numpy()
                if m.std() > 0:
                    expected[y, x] = np.corrcoef(m, s)[0, 1]
        np.testing.assert_allclose(-result.maps["delta"][side].double().numpy(), expected,
                                   atol=1e-5)
    meta = result.meta
    assert isinstance(meta, SamplingDetails)
    assert (meta.samples_a, meta.samples_b) == (70, 70)
    assert meta.n_forward == 141 and meta.converged is None


def test_corrrise_masks_follow_the_released_code() -> None:
    masks = patch_masks(200, 112, 112, 3, 30, torch.Generator().manual_seed(0))
    hidden = (masks == 0).sum(dim=(1, 2))
    assert ((hidden >= 900) & (hidden <= 2700)).all()  # 3 squares of 30 px, maybe overlapping
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    assert CorrRise(ToyScore()).draw(112, 112)(4, torch.Generator()).shape == (4, 112, 112)


def test_rise_is_the_mean_score_of_the_masks_that_keep_a_pixel() -> None:
    score, pair = ToyScore(1), _pair(2)
    explainer = Rise(score, max_samples=96, fill="zero", seed=3, stop=None)
    result = explainer.explain(pair)
    masks = first_masks(explainer.draw(S, S), 3, 96).double()
    for side in (0, 1):
        s = _scores(score, pair, side, masks.unsqueeze(1).float() * pair[side])
        saliency = np.tensordot(s, masks.numpy(), axes=1) / (96 * 0.5)
        centred = np.tensordot(s - s.mean(), masks.numpy(), axes=1) / (96 * 0.5)
        np.testing.assert_allclose(result.maps["saliency"][side].numpy(), saliency, rtol=1e-5)
        np.testing.assert_allclose(-result.maps["delta"][side].numpy(), centred, atol=1e-6)


def test_rise_stops_once_its_map_has_settled() -> None:
    score, pair = ToyScore(2), _pair(3)
    explainer = Rise(score, max_samples=4000, fill="zero", seed=0)
    result = explainer.explain(pair)
    meta = result.meta
    assert isinstance(meta, SamplingDetails)
    assert meta.converged is True
    assert all(r is not None and r >= 0.99 for r in (meta.agreement_a, meta.agreement_b))
    assert all(128 <= n < 4000 for n in (meta.samples_a, meta.samples_b))
    assert meta.n_forward == meta.samples_a + meta.samples_b + 1 == score.calls
    # the map is the estimator of exactly the samples reported
    n = meta.samples_a
    masks = first_masks(explainer.draw(S, S), 0, n).double()
    s = _scores(ToyScore(2), pair, 0, masks.unsqueeze(1).float() * pair[0])
    centred = np.tensordot(s - s.mean(), masks.numpy(), axes=1) / (n * 0.5)
    np.testing.assert_allclose(-result.maps["delta"][0].numpy(), centred, atol=1e-6)
    capped = Rise(ToyScore(2), max_samples=100, fill="zero",
                  stop=StopRule(target=0.999999, min_samples=64)).explain(pair).meta
    assert isinstance(capped, SamplingDetails)
    assert (capped.samples_a, capped.samples_b, capped.converged) == (100, 100, False)


class PlantedScore:
    """sim = Σ_j w_j · [superpixel j of face A kept]: linear in the superpixels, blind to B."""

    def __init__(self, face: torch.Tensor, seg: np.ndarray, weights: np.ndarray) -> None:
        per_pixel = torch.from_numpy(weights[seg] / np.bincount(seg.ravel())[seg]).float()
        self.w = per_pixel / face.sum(dim=0).clamp(min=1e-6)  # sums to w_j per segment

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * self.w).sum(dim=(1, 2, 3)) + 0.0 * b.sum(dim=(1, 2, 3))


def test_lime_recovers_planted_superpixel_weights() -> None:
    pair = _pair(6) * 0.5 + 60
    seg = superpixels(pair[0], n_segments=6)
    n_seg = int(seg.max()) + 1
    assert n_seg >= 3
    weights = np.linspace(-0.4, 0.5, n_seg)
    score = PlantedScore(pair[0], seg, weights)
    exact = Lime(score, max_samples=256, n_segments=6, alpha=1e-9, fill="zero",
                 stop=None).explain(pair)
    np.testing.assert_allclose(-exact.maps["delta"][0].double().numpy(), weights[seg],
                               atol=1e-4)
    np.testing.assert_allclose(exact.maps["delta"][1].numpy(), 0.0, atol=1e-6)
    ridge = Lime(score, max_samples=1000, n_segments=6, fill="zero", stop=None).explain(pair)
    np.testing.assert_allclose(-ridge.maps["delta"][0].double().numpy(), weights[seg],
                               rtol=0.05, atol=5e-3)
    settled = Lime(score, max_samples=1000, n_segments=6, alpha=1e-9, fill="zero").explain(pair)
    assert isinstance(settled.meta, SamplingDetails)
    assert settled.meta.samples_a == 128  # an exact fit settles at the first check


class TinyFace(FaceModel):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * S * S, 5)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        return {EMBEDDING: self.fc(torch.relu(self.conv(x / 64.0 - 2.0)).flatten(1))}


@pytest.mark.parametrize("make", [
    lambda f: CorrRise(f, max_samples=40, patch_size=3, seed=1),
    lambda f: Rise(f, max_samples=64, seed=1, stop=None),
    lambda f: Lime(f, max_samples=64, n_segments=6, fill="zero", stop=None),
])
def test_a_backbone_scorer_gives_the_black_box_maps(make) -> None:  # type: ignore[no-untyped-def]
    """On a ``PairScorer`` the clean face is embedded once; the maps do not change."""
    model = TinyFace().eval()
    pair = _pair(7)
    fast = make(PairScorer(model)).explain(pair)
    slow = make(lambda a, b: cosine(model(a), model(b))).explain(pair)
    for name, values in fast.maps.items():
        torch.testing.assert_close(values, slow.maps[name], rtol=1e-4, atol=1e-6)


def test_all_leaves_out_the_slow_sampling_methods() -> None:
    from facexplain.api import resolve_methods

    spec = get_spec("sface")
    every = {m.name for m in resolve_methods("all", ExplainOptions(), spec)}
    assert "xssab" in every
    assert not every & {"fggb", "corrrise", "rise", "lime", "xface-occlusion"}
    named = resolve_methods("rise,lime", ExplainOptions(samples=50), spec)
    assert [m.name for m in named] == ["rise", "lime"]
    from facexplain.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        resolve_methods("corrrise", ExplainOptions(samples=2), spec)
