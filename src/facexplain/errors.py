"""One exception hierarchy: every error a person can cause or fix derives from FacexplainError.

The CLI turns these into a one-line message and a non-zero exit; anything else is a bug.
"""

from __future__ import annotations


class FacexplainError(Exception):
    """Base of all errors meant for the user (bad input, missing set-up, no face)."""

    exit_code: int = 2


class ImageDecodeError(FacexplainError):
    """The file exists but is not a decodable image (corrupt, truncated, empty, not an image)."""


class ImageTooLarge(FacexplainError):
    """The image has more pixels than the decompression-bomb guard allows."""


class InputNotFound(FacexplainError):
    """A path given by the user does not exist."""


class NoFaceFound(FacexplainError):
    """The detector found no face in the image."""

    exit_code = 3


class AssetMissing(FacexplainError):
    """A model file is not in the asset cache; the set-up command fetches it."""


class AssetCorrupt(FacexplainError):
    """A model file is present but its sha256 differs from the one on record."""


class UnknownBackbone(FacexplainError):
    """A backbone name that is not in the registry."""


class InvalidArgument(FacexplainError):
    """A user-supplied option is out of range or inconsistent."""


class UnknownNode(FacexplainError, KeyError):
    """A node (intermediate map) name that the backbone does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownMethod(InvalidArgument):
    """An explanation method name that is not in the method registry."""


class PairsFileError(InvalidArgument):
    """A pair list that cannot be read as LFW's pairs.txt format."""


class UserModelError(FacexplainError):
    """A user's model file that cannot be registered (not ONNX, an operator the executor lacks,
    outputs that differ from its own runtime's)."""
