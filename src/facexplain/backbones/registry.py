"""Backbones as rows of data (timm's pretrained-cfg idea); loaders are named, imported lazily."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facexplain import assets
from facexplain.align.templates import TEMPLATES, Template
from facexplain.errors import InvalidArgument, UnknownBackbone

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel


@dataclass(frozen=True)
class BackboneSpec:
    """Everything needed to build, feed and score one pretrained face model."""

    name: str
    description: str
    template: str
    embedding_dim: int
    feature_nodes: tuple[str, ...]
    asset_names: tuple[str, ...]
    loader: str
    threshold: float
    threshold_source: str
    # user models (``backbones.user``): a crop size other than the template's, five custom
    # points instead of a named template, and whether the row came from the user
    size: int = 0
    points: tuple[tuple[float, float], ...] = ()
    user: bool = False

    @property
    def input_size(self) -> int:
        return self.alignment.size

    @property
    def alignment(self) -> Template:
        if self.points:
            return Template(f"{self.name}-points", self.size, self.points)
        base = TEMPLATES[self.template]
        if not self.size or self.size == base.size:
            return base
        k = self.size / base.size
        return Template(f"{base.name}@{self.size}", self.size,
                        tuple((x * k, y * k) for x, y in base.points))

    @property
    def last_spatial_node(self) -> str:
        if not self.feature_nodes:
            raise InvalidArgument(f"backbone '{self.name}' names no feature maps; register it "
                                  "with --feature-nodes to use map-based methods")
        return self.feature_nodes[-1]


_SPECS: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        name="sface",
        description="SFace (OpenCV zoo), MobileNet-style, 128-d; int8 ONNX dequantised to float",
        template="arcface-112",
        embedding_dim=128,
        feature_nodes=("conv_12_relu", "conv_14_relu"),
        asset_names=("sface/sface_float.onnx",),
        loader="facexplain.backbones.sface:load",
        threshold=0.363,
        threshold_source="provisional: OpenCV's documented value, not yet calibrated",
    ),
    BackboneSpec(
        name="dlib-resnet",
        description="dlib ResNet face descriptor v1, 128-d, weights from @vladmandic/face-api",
        template="dlib-150",
        embedding_dim=128,
        feature_nodes=("conv64", "conv128", "conv256", "conv256_out"),
        asset_names=(
            "dlib-resnet/face_recognition_model.bin",
            "dlib-resnet/face_recognition_model-weights_manifest.json",
        ),
        loader="facexplain.backbones.dlib_resnet:load",
        threshold=0.9,
        threshold_source="provisional, not yet calibrated",
    ),
    BackboneSpec(
        name="faceres",
        description="human-models faceres (MobileNet, 1024-d), TF.js graph run in torch",
        template="arcface-224",
        embedding_dim=1024,
        feature_nodes=("conv_pw_13_relu/clip_by_value",),
        asset_names=("faceres/faceres.json", "faceres/faceres.bin"),
        loader="facexplain.backbones.human_models:load_faceres",
        threshold=0.6,
        threshold_source="provisional, not yet calibrated",
    ),
    BackboneSpec(
        name="mobileface",
        description="human-models mobileface (MobileFace V3, 256-d), TF.js graph run in torch",
        template="arcface-112",
        embedding_dim=256,
        feature_nodes=("add_12", "add_16"),
        asset_names=("mobileface/mobileface.json", "mobileface/mobileface.bin"),
        loader="facexplain.backbones.human_models:load_mobileface",
        threshold=0.4,
        threshold_source="provisional, not yet calibrated",
    ),
)

SPECS: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}
DEFAULT_BACKBONE = "sface"


def all_specs() -> dict[str, BackboneSpec]:
    """Built-in rows, then modules registered in this process, then the user's ONNX models
    (records under the model home, read on every call so a new one is seen at once)."""
    from facexplain.backbones import user  # user imports this module

    return {**SPECS, **user.registered_specs(), **user.onnx_specs()}


def list_backbones() -> list[str]:
    return list(all_specs())


def get_spec(name: str) -> BackboneSpec:
    if name in SPECS:
        return SPECS[name]
    specs = all_specs()
    try:
        return specs[name]
    except KeyError:
        valid = ", ".join(specs)
        raise UnknownBackbone(f"unknown backbone '{name}'; valid: {valid}") from None


def _loader(spec: BackboneSpec):  # type: ignore[no-untyped-def]
    module, func = spec.loader.split(":")
    return getattr(importlib.import_module(module), func)


def load_backbone(name: str, root: Path | None = None) -> FaceModel:
    """Build the torch module for ``name`` from the asset cache (eval mode, no grad needed)."""
    spec = get_spec(name)
    root = root or assets.home()
    for asset_name in spec.asset_names:
        assets.asset_path(asset_name, root)
    model: FaceModel = _loader(spec)(spec, root)
    return model.eval()
