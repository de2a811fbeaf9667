"""One FaceModel wrapper for every graph executor (ONNX or TF.js front end)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from facexplain.backbones.base import EMBEDDING, FaceModel, Stage
from facexplain.backbones.executor import GraphExecutor


class GraphFaceModel(FaceModel):
    """A FaceModel over a graph: ``"embedding"`` is an alias of one graph node.

    Checks the input shape at the boundary (a wrong crop size is a one-line error, not a shape
    mismatch deep inside) and fails at load time if a registry node is missing or unsupported.
    """

    def __init__(self, graph: GraphExecutor, embedding_node: str, input_size: int,
                 feature_nodes: Sequence[str] = ()) -> None:
        super().__init__()
        self.graph = graph
        self.embedding_node = embedding_node
        self.input_size = input_size
        self.feature_nodes = tuple(feature_nodes)
        graph.prepare((embedding_node, *self.feature_nodes))

    def node_names(self) -> tuple[str, ...]:
        return (EMBEDDING, *self.graph.node_names())

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        size = self.input_size
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (size, size):
            raise ValueError(f"expected an (N, 3, {size}, {size}) RGB batch, got {tuple(x.shape)}")
        names = [self.embedding_node if n == EMBEDDING else n for n in nodes]
        out = self.graph.forward_nodes(x, list(dict.fromkeys(names)))
        return {n: out[name] for n, name in zip(nodes, names, strict=True)}

    def forget_compiled(self) -> None:
        self.graph.forget_plans()

    def stages(self) -> list[Stage]:
        return self.graph.stages(self.embedding_node)
