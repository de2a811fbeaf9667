"""The user's own face models: ONNX files registered under the model home, torch modules
registered from Python.

Why: people want to explain *their* model. An ONNX file runs through the same differentiable
graph executor as SFace, so every method (occlusion, gradients, Grad-CAM on named nodes) works
on it; its record (``<home>/user-backbones/<name>.json``, next to a copy of the file whose
sha256 it holds) becomes a ``BackboneSpec`` row like the built-in ones, so ``--backbone NAME``
works in every command. Registration itself (the check against onnxruntime on real faces) is
``backbones.user_add``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facexplain import assets
from facexplain.backbones.base import EMBEDDING, FaceModel, Stage, unknown_nodes
from facexplain.backbones.graph_face import GraphFaceModel
from facexplain.backbones.spec import BackboneSpec
from facexplain.backbones.user_records import (
    _REGISTERED,
    TORCH_LOADER,
    check_name,
    read_records,
    three_values,
    user_dir,
    user_spec,
)
from facexplain.errors import AssetCorrupt, AssetMissing, UnknownBackbone


class Normalised(GraphFaceModel):
    """A graph fed the model's own pixels: RGB [0, 255] in, optional BGR order, (x - mean) / std.

    The normalisation is part of the differentiable module, so gradients and occlusion see the
    same [0, 255] RGB input as every built-in backbone.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, graph: Any, embedding_node: str, input_size: int,
                 feature_nodes: Sequence[str], mean: Sequence[float], std: Sequence[float],
                 bgr: bool) -> None:
        super().__init__(graph, embedding_node, input_size, feature_nodes)
        self.bgr = bgr
        self.register_buffer("mean", torch.tensor(three_values(mean)).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(three_values(std)).reshape(1, 3, 1, 1))
        self.identity = (not bgr and three_values(mean) == [0.0] * 3
                         and three_values(std) == [1.0] * 3)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        if self.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        size = self.input_size
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (size, size):
            raise ValueError(f"expected an (N, 3, {size}, {size}) RGB batch, got {tuple(x.shape)}")
        return super().forward_nodes(self.preprocess(x), nodes)

    def stages(self) -> list[Stage]:
        stages = super().stages()
        if self.identity:
            return stages
        first = stages[0]
        return [lambda x: first(self.preprocess(x)), *stages[1:]]


def build_onnx_model(path: Path, row: dict[str, Any]) -> Normalised:
    """The torch module of a user ONNX file described by ``row`` (a record or its draft)."""
    from facexplain.backbones.onnx_graph import OnnxGraph

    graph = OnnxGraph(path, channels_last=True, keep=tuple(row.get("feature_nodes") or ()))
    size = int(row["size"])
    return Normalised(graph, str(row["output"]), size, tuple(row.get("feature_nodes") or ()),
                      row.get("mean", [0.0]), row.get("std", [1.0]), bool(row.get("bgr")))


def load_onnx(spec: BackboneSpec, root: Path) -> FaceModel:
    """Loader of user ONNX rows: the stored copy, its sha256 checked first."""
    row = read_records(root).get(spec.name)
    if row is None:
        raise UnknownBackbone(f"no user backbone '{spec.name}' under {user_dir(root)}")
    path = user_dir(root) / str(row["file"])
    if not path.is_file():
        raise AssetMissing(f"{path}: the user model file is gone; add it again with "
                           f"`facexplain backbones add {spec.name} --onnx FILE`")
    if assets.sha256_of(path) != row["sha256"]:
        raise AssetCorrupt(f"{path}: sha256 differs from the one recorded at registration")
    return build_onnx_model(path, row)


class TorchFaceModel(FaceModel):
    """A plain torch module as a FaceModel: RGB [0, 255] in, embedding out; feature maps are
    the outputs of named submodules (``named_modules()`` names), caught by hooks that are
    always removed again."""

    def __init__(self, module: nn.Module, input_size: int) -> None:
        super().__init__()
        self.module = module
        self.input_size = input_size

    def node_names(self) -> tuple[str, ...]:
        return (EMBEDDING, *(n for n, _ in self.module.named_modules() if n))

    @contextmanager
    def _catch(self, names: Sequence[str], out: dict[str, torch.Tensor]) -> Iterator[None]:
        modules = dict(self.module.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise unknown_nodes(missing, list(self.node_names()))
        handles = []
        for name in names:
            def hook(_m: nn.Module, _i: Any, y: Any, name: str = name) -> None:
                out[name] = y
            handles.append(modules[name].register_forward_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def forward_nodes(self, x: torch.Tensor, nodes: Sequence[str]) -> dict[str, torch.Tensor]:
        size = self.input_size
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (size, size):
            raise ValueError(f"expected an (N, 3, {size}, {size}) RGB batch, got {tuple(x.shape)}")
        out: dict[str, torch.Tensor] = {}
        with self._catch([n for n in nodes if n != EMBEDDING], out):
            embedding = self.module(x)
        return {n: embedding if n == EMBEDDING else out[n] for n in nodes}


def register_backbone(name: str, module: nn.Module, spec: BackboneSpec | None = None
                      ) -> BackboneSpec:
    """Make a torch module usable as ``backbone=name`` in this process (``explain_pair``,
    ``verify``, benchmarks). ``module`` maps aligned RGB [0, 255] faces (N, 3, H, W) to
    embeddings; ``spec`` (e.g. from ``user_spec``) gives the template and feature nodes.
    A ``FaceModel`` is used as it is."""
    check_name(name)
    base = spec or user_spec(name)
    spec = replace(base, name=name, loader=TORCH_LOADER, asset_names=(), user=True)
    model = module if isinstance(module, FaceModel) else TorchFaceModel(module, spec.input_size)
    model.eval()
    if spec.embedding_dim <= 0:
        with torch.no_grad():
            probe = torch.full((1, 3, spec.input_size, spec.input_size), 127.5)
            spec = replace(spec, embedding_dim=int(model(probe).reshape(1, -1).shape[1]))
    if spec.feature_nodes:
        missing = [n for n in spec.feature_nodes if n not in model.node_names()]
        if missing:
            raise unknown_nodes(missing, list(model.node_names()))
    _REGISTERED[name] = (spec, model)
    return spec


def load_registered(spec: BackboneSpec, root: Path) -> FaceModel:
    found = _REGISTERED.get(spec.name)
    if found is None:
        raise UnknownBackbone(f"backbone '{spec.name}' is not registered in this process")
    return found[1]
