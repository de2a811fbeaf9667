"""The XCos explainer on a tiny backbone: <S, W> is the score; checkpoints, figures, CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.cli.app import app
from facexplain.errors import AssetMissing, InvalidArgument
from facexplain.explain.base import ExplanationMaps
from facexplain.explain.xcos import XCos, load_xcos
from facexplain.heads.xcos import (
    XCosHead,
    XCosHeadConfig,
    checkpoint_path,
    default_checkpoint,
    save_head,
)
from facexplain.report.xcos_figures import save_xcos_figure


class TinyFace(FaceModel):
    """16x16 faces -> a 4x4x8 map ('grid') -> flatten + linear embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)
        self.fc = nn.Linear(8 * 4 * 4, 6)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        grid = torch.relu(self.conv(x / 255.0))
        out = {"grid": grid, EMBEDDING: self.fc(grid.flatten(1))}
        return {n: out[n] for n in nodes}


HEAD_CFG = XCosHeadConfig(in_channels=8, height=4, width=4, grid_channels=5, reduced_channels=3,
                          backbone="tiny", node="grid", teacher="tiny")


@pytest.fixture
def explainer() -> XCos:
    torch.manual_seed(0)
    head = XCosHead(HEAD_CFG)
    head.set_pearson(torch.softmax(torch.randn(16), 0).reshape(4, 4))
    return XCos(TinyFace().eval(), head)


@pytest.mark.parametrize("kind", ["U", "P", "L"])
def test_explanation_sums_to_the_score(explainer: XCos, kind: str) -> None:
    explainer.attention = kind
    pair = torch.rand(2, 3, 16, 16) * 255
    before = pair.clone()
    e = explainer.explain(pair)
    assert isinstance(e, ExplanationMaps) and e.method == "xcos"
    s, w = e.meta.S, e.meta.W
    assert isinstance(s, torch.Tensor) and isinstance(w, torch.Tensor)
    assert s.shape == w.shape == (4, 4)
    assert e.score == float((s.double() * w.double()).sum())  # exactly
    assert abs(float(w.sum()) - 1.0) < 1e-6
    # the same number as the pair score the explainer exposes to other methods
    with torch.no_grad():
        direct = float(explainer.score_fn(pair[0:1], pair[1:2])[0])
    assert abs(e.score - direct) < 1e-6
    assert e.maps["similarity"].shape == (2, 16, 16)
    assert torch.equal(e.maps["similarity"][0, :4, :4], s[0, 0].expand(4, 4))
    assert torch.equal(pair, before)


def test_explainer_validates(explainer: XCos) -> None:
    with pytest.raises(InvalidArgument):
        explainer.explain(torch.rand(3, 3, 16, 16))
    with pytest.raises(InvalidArgument):
        XCos(TinyFace(), XCosHead(HEAD_CFG), attention="Q")


def test_load_xcos_finds_default_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(AssetMissing, match="train xcos"):
        default_checkpoint("tiny", tmp_path)
    head = XCosHead(HEAD_CFG)
    save_head(head, checkpoint_path("tiny", 2, tmp_path))
    assert default_checkpoint("tiny", tmp_path).name == "fold2.safetensors"
    save_head(head, checkpoint_path("tiny", None, tmp_path))
    assert default_checkpoint("tiny", tmp_path).name == "all.safetensors"
    x = load_xcos("tiny", model=TinyFace(), root=tmp_path, attention="P")
    assert x.node == "grid" and x.attention == "P"
    with pytest.raises(InvalidArgument, match="trained on 'tiny'"):
        load_xcos("sface", path=checkpoint_path("tiny", None, tmp_path), model=TinyFace())


def test_figure_is_written(tmp_path: Path, explainer: XCos) -> None:
    pair = torch.rand(2, 3, 16, 16) * 255
    e = explainer.explain(pair)
    s, w = e.meta.S, e.meta.W
    assert isinstance(s, torch.Tensor) and isinstance(w, torch.Tensor)
    out = save_xcos_figure(tmp_path / "x.png", pair[0], pair[1], s, w, e.score, "tiny")
    assert out.stat().st_size > 10_000
    with pytest.raises(InvalidArgument):
        save_xcos_figure(tmp_path / "y.png", pair[0], pair[1], s, w[:2])


def test_cli_groups_are_registered() -> None:
    runner = CliRunner()
    for args in (["train", "xcos", "--help"], ["benchmark", "xcos", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "xcos" in result.output.lower() or "xCos" in result.output


def test_the_caption_warns_about_a_per_cell_head_only(tmp_path: Path) -> None:
    """A per-cell grid's W can weigh constant cells (an offset): the reading says so; a shared
    grid's does not."""
    import dataclasses

    from facexplain.methods.xcos import figures

    pair = torch.rand(2, 3, 16, 16) * 255
    readings = {}
    for cell_specific in (True, False):
        torch.manual_seed(0)
        head = XCosHead(dataclasses.replace(HEAD_CFG, cell_specific=cell_specific))
        result = XCos(TinyFace().eval(), head).explain(pair)
        (fig,) = figures(result, pair, tmp_path)
        readings[cell_specific] = fig.reading
    assert "--shared-grid" in readings[True] and "offset" in readings[True]
    assert "--shared-grid" not in readings[False]
