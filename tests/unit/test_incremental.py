"""Incremental occlusion: stage geometry, crops, and equality with full re-evaluation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexplain.backbones.base import FaceModel, Stage
from facexplain.backbones.stages import single_live_cuts
from facexplain.explain.base import ExplanationMaps, backbone_pair_score
from facexplain.explain.incremental import (
    Axis,
    IncrementalEmbedder,
    IncrementalPairScore,
    probe_stage,
)
from facexplain.explain.occlusion import PairwiseOcclusion
from facexplain.explain.occlusion_loop import occlusion_windows


def test_single_live_cuts_skip_the_inside_of_a_residual_block() -> None:
    # x -> a -> b (reads a) -> c = a + b -> d
    reads = [["x"], ["a"], ["a", "b"], ["c"]]
    writes = [["a"], ["b"], ["c"], ["d"]]
    assert single_live_cuts(reads, writes, "x") == [(0, "a"), (2, "c")]


def _conv(cin: int, cout: int, k: int, s: int, p: int, seed: int) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k, s, p)


@pytest.mark.parametrize(("stage", "expected"), [
    (_conv(3, 4, 3, 1, 1, 0), Axis(1, -1, 1)),
    (_conv(3, 4, 3, 2, 1, 1), Axis(2, -1, 1)),
    (_conv(3, 4, 5, 2, 0, 2), Axis(2, 0, 4)),
    (_conv(3, 4, 1, 1, 0, 3), Axis(1, 0, 0)),
    (nn.MaxPool2d(3, 2), Axis(2, 0, 2)),
    (nn.Sequential(_conv(3, 4, 3, 1, 1, 4), nn.ReLU(), _conv(4, 4, 3, 1, 1, 5)), Axis(1, -2, 2)),
])
def test_probe_measures_the_receptive_field(stage: nn.Module, expected: Axis) -> None:
    x = torch.rand(1, 3, 20, 20) * 255
    with torch.no_grad():
        axes = probe_stage(stage, x, stage(x))
    assert axes == (expected, expected)


def test_probe_refuses_global_and_flat_stages() -> None:
    x = torch.rand(1, 3, 20, 20)

    def normalise(t: torch.Tensor) -> torch.Tensor:  # every output depends on every input
        return t / t.abs().amax(dim=(2, 3), keepdim=True)

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1)

    assert probe_stage(flat, x, flat(x)) is None
    axes = probe_stage(normalise, x, normalise(x))
    assert axes is None or all(a.hi - a.lo >= 19 for a in axes)  # never a local geometry


def test_axis_composition() -> None:
    first, second = Axis(2, -1, 1), Axis(2, -1, 1)  # two 3x3 stride-2 convs
    assert first.then(second) == Axis(4, -3, 3)
    assert Axis(1, 0, 0).pointwise and not first.pointwise


class _Block(nn.Module):
    def __init__(self, ch: int, seed: int) -> None:
        super().__init__()
        self.a = _conv(ch, ch, 3, 1, 1, seed)
        self.b = _conv(ch, ch, 3, 1, 1, seed + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(F.relu(self.a(x))))


class StagedNet(FaceModel):
    """A small residual net split into stages, with odd sizes and a valid stride-2 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv(3, 8, 5, 2, 0, 10)
        self.block1 = _Block(8, 11)
        self.down = _conv(8, 16, 3, 2, 1, 13)
        self.block2 = _Block(16, 14)
        self.fc = nn.Linear(16 * 8 * 8, 12)

    def stages(self) -> list[Stage]:
        return [lambda t: F.relu(self.stem(t / 255.0)), lambda t: t * 1.5, self.block1,
                self.down, self.block2, lambda t: self.fc(F.adaptive_avg_pool2d(t, 8).flatten(1))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages():
            x = stage(x)
        return x


@pytest.mark.parametrize(("k", "s", "edge"), [(8, 4, "shift"), (5, 3, "clip"), (16, 8, "shift"),
                                              pytest.param(3, 1, "shift",
                                                           marks=pytest.mark.long)])
def test_incremental_embeddings_equal_full_forwards(k: int, s: int, edge: str) -> None:
    torch.manual_seed(0)
    net = StagedNet().eval()
    face = torch.rand(1, 3, 37, 37) * 255
    fill = torch.full_like(face, 128.0)
    windows = occlusion_windows(37, 37, k, s, edge)
    with torch.no_grad():
        embedder = IncrementalEmbedder(net, face)
        assert len(embedder.groups) >= 3  # the pointwise stage folded, the head left whole
        for start in range(0, len(windows), 16):
            chunk = windows[start : start + 16]
            mask = torch.zeros(len(chunk), 1, 37, 37, dtype=torch.bool)
            for i, (y0, y1, x0, x1) in enumerate(chunk):
                mask[i, :, y0:y1, x0:x1] = True
            faces = torch.where(mask, fill, face)
            assert torch.allclose(embedder.embed(fill, chunk), net(faces), atol=1e-5, rtol=1e-5)


def test_both_faces_run_as_one_batch_face_major() -> None:
    torch.manual_seed(3)
    net = StagedNet().eval()
    pair = torch.rand(2, 3, 37, 37) * 255
    fill = torch.rand(2, 3, 37, 37) * 255
    chunk = occlusion_windows(37, 37, 8, 4, "clip")[:5]
    with torch.no_grad():
        both = IncrementalEmbedder(net, pair).embed(fill, chunk)
        for side in (0, 1):
            alone = IncrementalEmbedder(net, pair[side : side + 1]).embed(
                fill[side : side + 1], chunk)
            assert torch.allclose(both[side * 5 : side * 5 + 5], alone, atol=1e-5, rtol=1e-5)


def _plain_and_incremental(net: FaceModel, seed: int, patch: int, stride: int
                           ) -> tuple[ExplanationMaps, ExplanationMaps]:
    """Occlusion maps of a random pair by full re-evaluation and incrementally."""
    torch.manual_seed(seed)
    pair = torch.rand(2, 3, 37, 37) * 255
    score = backbone_pair_score(net.eval())
    plain, fast = (PairwiseOcclusion(score, patch, stride, fill="zero", edge="clip",
                                     incremental=inc).explain(pair) for inc in (False, True))
    return plain, fast


def test_occlusion_with_the_model_gives_the_black_box_map() -> None:
    torch.manual_seed(1)
    plain, fast = _plain_and_incremental(StagedNet(), 1, 6, 2)
    assert fast.meta.incremental and not plain.meta.incremental
    assert float((fast.maps["delta"] - plain.maps["delta"]).abs().max()) <= 1e-6
    assert fast.score == pytest.approx(plain.score)


def test_a_model_without_stages_falls_back_to_full_forwards() -> None:
    class Whole(FaceModel):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(x, 4).flatten(1)

    pair = torch.rand(2, 3, 16, 16) * 255
    scorer = IncrementalPairScore(Whole(), pair)
    assert not scorer.faces.groups
    fill = torch.zeros_like(pair)
    a, b = pair[:1].repeat(3, 1, 1, 1), pair[1:].repeat(3, 1, 1, 1)
    a[:, :, 0:4, 0:4] = 0
    b[:, :, 0:4, 0:4] = 0
    windows = [(0, 4, 0, 4)] * 3
    expected = backbone_pair_score(Whole())(a, b)
    assert torch.allclose(scorer(fill, windows), expected)


def test_report_says_the_map_was_computed_incrementally(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from facexplain.methods.registry import get_method
    from facexplain.report.sections import render_method

    torch.manual_seed(2)
    net = StagedNet().eval()
    pair = torch.rand(2, 3, 37, 37) * 255
    score = backbone_pair_score(net)
    for said in (True, False):
        maps = PairwiseOcclusion(score, 8, 4, fill="zero", edge="clip",
                                 incremental=said).explain(pair)
        section = render_method(get_method(maps.method), maps, pair, tmp_path / str(said))
        assert ("evaluated incrementally" in section.text) == said
        assert (f"{maps.meta.n_windows} patches" in section.text) == said


class SizeDependentPadNet(StagedNet):
    """A stage whose padding depends on its input's size, as a TF 'SAME' pad exported to ONNX
    as shape arithmetic: one extra column on the left of inputs of some widths only (the
    17-wide map has it, a 9-wide crop of it does not, so the crop's grid shifts)."""

    def stages(self) -> list[Stage]:
        def same_pad(t: torch.Tensor) -> torch.Tensor:
            extra = 1 if t.shape[3] % 3 == 2 else 0
            return self.block1.a(F.pad(t, (extra, 0, 0, 0)))

        first, *rest = super().stages()
        return [first, same_pad, *rest[2:-1],
                lambda t: self.fc(F.adaptive_avg_pool2d(t, 8).flatten(1))]


def test_a_stage_whose_padding_depends_on_the_size_is_run_on_whole_maps() -> None:
    torch.manual_seed(4)
    plain, fast = _plain_and_incremental(SizeDependentPadNet(), 4, 6, 3)
    assert float((fast.maps["delta"] - plain.maps["delta"]).abs().max()) <= 1e-6
    assert fast.maps["delta"].abs().max() > 1e-3  # the windows do change the score


def test_crop_checks_are_made_once_per_scorer_not_per_pair() -> None:
    from facexplain.explain.scorer import PairScorer

    torch.manual_seed(5)
    scorer = PairScorer(StagedNet().eval())
    explainer = PairwiseOcclusion(scorer, 6, 3, fill="zero", edge="clip")
    explainer.explain(torch.rand(2, 3, 37, 37) * 255)
    made = dict(scorer.crop_checks)
    assert made and all(made.values())  # StagedNet's stages all agree on crops
    explainer.explain(torch.rand(2, 3, 37, 37) * 255)
    assert scorer.crop_checks == made
