"""x-face occlusion equals a naive loop over its patch sizes (every pairing, incremental or
not), scales the paper's settings to the crop, and the registry checks them before a model
loads."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.backbones.registry import get_spec
from facexplain.errors import InvalidArgument
from facexplain.explain.fills import gaussian_blur
from facexplain.explain.occlusion_loop import occlusion_windows
from facexplain.explain.scorer import PairScorer
from facexplain.explain.xface import XFaceOcclusion
from facexplain.method_info import ExplainOptions
from facexplain.methods.registry import get_method

S = 16


class StagedFace(FaceModel):
    """conv -> relu -> conv (stride 2) -> linear, split in stages so occlusion is incremental."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * (S // 2) ** 2, 6)
        for p in self.parameters():
            p.requires_grad_(False)

    def stages(self) -> list:  # type: ignore[type-arg]
        return [lambda x: torch.relu(self.c1(x / 64.0 - 2.0)),
                lambda t: torch.relu(self.c2(t)),
                lambda t: self.fc(t.flatten(1))]

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        t = x
        for stage in self.stages():
            t = stage(t)
        return {EMBEDDING: t}


def naive(model: FaceModel, pair: torch.Tensor, fill: torch.Tensor, patches: Sequence[int],
          stride: int) -> dict[str, torch.Tensor]:
    """The maps by a plain loop: every occluded face built whole and embedded, in float64."""
    def emb(faces: list[torch.Tensor]) -> torch.Tensor:
        return F.normalize(model(torch.stack(faces)).double(), dim=-1)

    clean = emb([pair[0], pair[1]])
    s0 = float(clean[0] @ clean[1])
    total = {p: torch.zeros(2, S, S, dtype=torch.float64) for p in ("all", "clean", "same")}
    for k in patches:
        windows = occlusion_windows(S, S, k, stride)
        occ: list[list[torch.Tensor]] = [[], []]
        for y0, y1, x0, x1 in windows:
            for side in (0, 1):
                face = pair[side].clone()
                face[:, y0:y1, x0:x1] = fill[side][:, y0:y1, x0:x1]
                occ[side].append(face)
        a, b = emb(occ[0]), emb(occ[1])
        scores = {"all": ((a @ b.T).mean(1), (a @ b.T).mean(0)),
                  "clean": (a @ clean[1], b @ clean[0]),
                  "same": ((a * b).sum(1), (a * b).sum(1))}
        for pairing, per_face in scores.items():
            for side in (0, 1):
                for i, (y0, y1, x0, x1) in enumerate(windows):
                    total[pairing][side, y0:y1, x0:x1] += (
                        (per_face[side][i] - s0) / k**2 / len(windows))
    out = {}
    for pairing, t in total.items():
        out[pairing] = gaussian_blur((t / len(patches)).unsqueeze(1).float(), float(stride),
                                     radius=stride // 2)[:, 0]
    return out


@pytest.mark.parametrize("incremental", [True, False])
def test_xface_equals_a_naive_loop_over_patch_sizes(incremental: bool) -> None:
    model = StagedFace().eval()
    g = torch.Generator().manual_seed(2)
    pair = torch.rand(2, 3, S, S, generator=g) * 255
    fill = torch.full((3, S, S), 100.0)
    before = pair.clone()
    result = XFaceOcclusion(PairScorer(model), (3, 5, 8), 2, fill=fill, batch_size=7,
                            incremental=incremental).explain(pair)
    assert torch.equal(pair, before)
    expected = naive(model, pair, fill.expand(2, -1, -1, -1), (3, 5, 8), 2)
    for name, pairing in (("delta", "all"), ("delta_clean", "clean"),
                          ("delta_same", "same")):
        torch.testing.assert_close(result.maps[name], expected[pairing], rtol=1e-4,
                                   atol=1e-7)
    torch.testing.assert_close(result.maps["difference"], result.maps["delta"].clamp(min=0))
    torch.testing.assert_close(result.maps["similarity"], (-result.maps["delta"]).clamp(min=0))
    n = sum(len(occlusion_windows(S, S, k, 2)) for k in (3, 5, 8))
    assert result.meta.n_windows == n and result.meta.n_forward == 2 * n + 2  # type: ignore


def test_paper_settings_scale_with_the_crop() -> None:
    ex = XFaceOcclusion(PairScorer(StagedFace()))
    assert ex.settings(112) == ((7, 14, 28), 5)
    assert ex.settings(224) == ((14, 28, 56), 10)
    assert ex.settings(150) == ((9, 19, 38), 7)


def test_registry_checks_patches_before_a_model_loads() -> None:
    info = get_method("xface-occlusion")
    spec = get_spec("sface")
    info.check(ExplainOptions(), spec)
    with pytest.raises(InvalidArgument):
        info.check(ExplainOptions(xface_patches=(7, 14), xface_stride=9), spec)
    with pytest.raises(InvalidArgument):
        info.check(ExplainOptions(xface_patches=(200,)), spec)
