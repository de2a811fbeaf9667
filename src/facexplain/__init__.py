"""facexplain: explainable face verification on real pretrained face models."""

from __future__ import annotations

from pathlib import Path

from facexplain.errors import (
    AssetMissing,
    FacexplainError,
    ImageDecodeError,
    ImageTooLarge,
    InputNotFound,
    NoFaceFound,
    UnknownBackbone,
)
from facexplain.types import Verdict

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


def verify(path_a: str | Path, path_b: str | Path, backbone: str = "sface") -> Verdict:
    """Are two photos the same person? See :func:`facexplain.api.verify` (imported lazily)."""
    from facexplain.api import verify as _verify

    return _verify(path_a, path_b, backbone=backbone)
