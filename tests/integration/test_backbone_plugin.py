"""Adding a built-in backbone is one module in ``backbones/builtin``: a toy module dropped into
that package (through its search path, so the source tree is not touched) is listed by the
registry, loads, is scored by the pipeline's scorer, brings its files to set-up's catalogue and
its part-filter layers to the head, with nothing else edited."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from facexplain import asset_catalog
from facexplain.backbones import builtin, registry
from facexplain.errors import InvalidArgument
from facexplain.explain.base import backbone_pair_score
from facexplain.heads.parts import nodes_for

TOY = '''"""A toy built-in backbone: 112x112 faces -> 8x8 maps -> 16-d embedding."""
from collections.abc import Sequence

import torch
from torch import nn

from facexplain.assets import AssetFile, RegistryPackage
from facexplain.backbones.base import EMBEDDING, FaceModel
from facexplain.backbones.spec import BackboneSpec

PACKAGE = RegistryPackage("pypi", "toy-face-weights", "1.0")
WEIGHTS = AssetFile("toy/weights.bin", PACKAGE, "toy/weights.bin", "0" * 64)

SPEC = BackboneSpec(
    name="toy-builtin", description="toy", template="arcface-112", embedding_dim=16,
    feature_nodes=("early", "middle", "late"), asset_names=(), loader=f"{__name__}:load",
    threshold=0.5, threshold_source="test", files=(WEIGHTS,),
    part_layers=("early", "middle", "late"),
)


class Toy(FaceModel):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.early = nn.Conv2d(3, 4, 7, stride=7)
        self.fc = nn.Linear(4 * 16 * 16, 16)

    def node_names(self) -> tuple[str, ...]:
        return ("early", "middle", "late", EMBEDDING)

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        early = torch.relu(self.early(x / 255.0))
        out = {"early": early, "middle": early, "late": early,
               EMBEDDING: self.fc(early.flatten(1))}
        return {n: out[n] for n in nodes}


def load(spec: BackboneSpec, root: object) -> FaceModel:
    return Toy()
'''


@pytest.fixture
def toy_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "toy_builtin.py").write_text(TOY)
    monkeypatch.setattr(builtin, "__path__", [*builtin.__path__, str(tmp_path)])
    builtin.builtin_specs.cache_clear()
    yield "toy-builtin"
    monkeypatch.undo()
    builtin.builtin_specs.cache_clear()
    sys.modules.pop("facexplain.backbones.builtin.toy_builtin", None)


def test_a_dropped_in_backbone_module_is_a_backbone(toy_builtin: str) -> None:
    assert toy_builtin in registry.list_backbones()
    assert registry.list_backbones()[0] == registry.DEFAULT_BACKBONE
    spec = registry.get_spec(toy_builtin)
    model = registry.load_backbone(toy_builtin)
    faces = torch.rand(2, 3, spec.input_size, spec.input_size) * 255
    score = backbone_pair_score(model)(faces[:1], faces[1:]).detach()
    assert score.shape == (1,) and -1 <= float(score[0]) <= 1
    assert any(f.name == "toy/weights.bin" for f in asset_catalog.fetched_files())
    assert nodes_for(toy_builtin) == ("early", "middle", "late")


def test_without_the_module_it_is_unknown() -> None:
    assert "toy-builtin" not in registry.list_backbones()
    with pytest.raises(InvalidArgument, match="no part-filter nodes"):
        nodes_for("faceres")
