"""facexplain: explainable face verification on real pretrained face models."""

from __future__ import annotations

from facexplain.errors import (
    AssetMissing,
    FacexplainError,
    ImageDecodeError,
    ImageTooLarge,
    InputNotFound,
    NoFaceFound,
    UnknownBackbone,
)

__all__ = [
    "AssetMissing",
    "FacexplainError",
    "ImageDecodeError",
    "ImageTooLarge",
    "InputNotFound",
    "NoFaceFound",
    "UnknownBackbone",
    "verify",
]
__version__ = "0.1.0"


def verify(path_a: str, path_b: str, backbone: str = "sface"):  # type: ignore[no-untyped-def]
    """Verify two photos; see :func:`facexplain.api.verify` (imported lazily: no model at import)."""
    from facexplain.api import verify as _verify

    return _verify(path_a, path_b, backbone=backbone)
