"""facexplain: explainable face verification on real pretrained face models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from facexplain.version import __version__

if TYPE_CHECKING:
    from facexplain.results import PairExplanation

__all__ = [
    "AssetMissing",
    "FacexplainError",
    "ImageDecodeError",
    "ImageTooLarge",
    "InputNotFound",
    "NoFaceFound",
    "UnknownBackbone",
    "__version__",
    "explain_pair",
    "verify",
]


def verify(path_a: str | Path, path_b: str | Path, backbone: str = "sface") -> Verdict:
    """Are two photos the same person? See :func:`facexplain.api.verify` (imported lazily)."""
    from facexplain.api import verify as _verify

    return _verify(path_a, path_b, backbone=backbone)


def explain_pair(photo_a: str | Path, photo_b: str | Path, **kwargs: Any) -> PairExplanation:
    """Verify and explain a pair. See :func:`facexplain.api.explain_pair` (imported lazily)."""
    from facexplain.api import explain_pair as _explain_pair

    return _explain_pair(photo_a, photo_b, **kwargs)
