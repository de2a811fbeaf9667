"""dlib's ResNet face descriptor v1 (128-d) with the weights npm ``@vladmandic/face-api`` ships.

Input 150x150 RGB in [0, 255] on dlib's 5-point template; the network (``backbones.dlib_resnet``)
subtracts dlib's mean and divides by 256. Compare embeddings by cosine (or dlib's Euclidean
rule: same person below 0.6).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain import assets
from facexplain.align.landmarks68_files import FACE_API
from facexplain.assets import AssetFile
from facexplain.backbones.spec import BackboneSpec

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel

WEIGHTS = AssetFile(
    "dlib-resnet/face_recognition_model.bin", FACE_API,
    "package/model/face_recognition_model.bin",
    "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
)
MANIFEST = AssetFile(
    "dlib-resnet/face_recognition_model-weights_manifest.json", FACE_API,
    "package/model/face_recognition_model-weights_manifest.json",
    "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
)

SPEC = BackboneSpec(
    name="dlib-resnet",
    description="dlib ResNet face descriptor v1, 128-d, weights from @vladmandic/face-api",
    template="dlib-150",
    embedding_dim=128,
    feature_nodes=("conv64", "conv128", "conv256", "conv256_out"),
    asset_names=(WEIGHTS.name, MANIFEST.name),
    loader=f"{__name__}:load",
    threshold=0.9,
    threshold_source="provisional, not yet calibrated",
    files=(WEIGHTS, MANIFEST),
    runtime=True,
    part_layers=("conv32", "conv64", "conv128"),  # 35, 17, 8 cells
)


def load(spec: BackboneSpec, root: Path) -> FaceModel:
    """Build the module from the fetched face-api weight files (everything else is fixed)."""
    from facexplain.backbones.dlib_resnet import DlibResNet
    from facexplain.tfjs_weights import read_tfjs_weights

    del spec
    weights = read_tfjs_weights(assets.asset_path(WEIGHTS, root),
                                assets.asset_path(MANIFEST, root))
    return DlibResNet(weights).eval()
