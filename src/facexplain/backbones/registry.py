"""Backbones as rows of data (timm's pretrained-cfg idea): built-in rows, then user models.

The built-in rows come from their own modules (``backbones.builtin``); modules registered in
this process and the user's ONNX models (``backbones.user``) follow. Loaders are named
"module:function" and imported only when a model is built.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from facexplain import assets
from facexplain.backbones import user_records
from facexplain.backbones.builtin import DEFAULT_BACKBONE, builtin_specs
from facexplain.backbones.spec import BackboneSpec
from facexplain.errors import UnknownBackbone

if TYPE_CHECKING:
    from facexplain.backbones.base import FaceModel

__all__ = ["DEFAULT_BACKBONE", "SPECS", "BackboneSpec", "all_specs", "get_spec",
           "list_backbones", "load_backbone"]

# The built-in rows at import (for option help and listings); lookups call ``builtin_specs()``.
SPECS: dict[str, BackboneSpec] = builtin_specs()


def all_specs() -> dict[str, BackboneSpec]:
    """Built-in rows, then modules registered in this process, then the user's ONNX models
    (records under the model home, read on every call so a new one is seen at once)."""
    return {**builtin_specs(), **user_records.registered_specs(), **user_records.onnx_specs()}


def list_backbones() -> list[str]:
    return list(all_specs())


def get_spec(name: str) -> BackboneSpec:
    builtin = builtin_specs()
    if name in builtin:
        return builtin[name]
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
    for file in spec.load_files():
        assets.asset_path(file, root)
    model: FaceModel = _loader(spec)(spec, root)
    return model.eval()
