"""Backbones: a registry of specs (data) and one small loader module per model family."""

from facexplain.backbones.registry import get_spec, list_backbones, load_backbone
from facexplain.backbones.spec import BackboneSpec

__all__ = ["BackboneSpec", "get_spec", "list_backbones", "load_backbone"]
