"""Backbones: a registry of specs (data) and one small loader module per model family."""

from facexplain.backbones.registry import BackboneSpec, get_spec, list_backbones, load_backbone

__all__ = ["BackboneSpec", "get_spec", "list_backbones", "load_backbone"]
