"""Uploaded photos: read with a byte cap, decoded with bounded time and memory, kept small.

Why: a 60 KB PNG can hold 7000x7000 pixels, and a whole decode of such a file once held the
only worker for minutes and 6 GB. Here the header is read first (size, format) and anything
over the pixel cap is refused before a pixel is decoded; JPEGs are decoded already reduced
(``draft``), and anything larger than a face detector can use is shrunk before it is saved.
The saved file has a fixed name; the client's file name is only ever shown, never used.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, UploadFile
from PIL import Image, ImageOps, UnidentifiedImageError

from facexplain.io import to_rgb_array
from facexplain.web.safety import MiB

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")  # what browsers and phones send; no TIFF, no GIF
CHUNK = 256 * 1024


@dataclass(frozen=True)
class PhotoLimits:
    """Bytes per photo, pixels per photo (refused over it) and the longest side kept."""

    max_bytes: int = 10 * MiB
    max_pixels: int = 40_000_000
    max_side: int = 2048


def refuse(status: int, message: str) -> HTTPException:
    return HTTPException(status, message)


async def read_capped(upload: UploadFile, limit: int, which: str) -> bytes:
    """The upload's bytes, refused (413) as soon as more than ``limit`` have been read."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise refuse(413, f"{which} is over the limit of {limit / MiB:.1f} MiB")
        parts.append(chunk)
    return b"".join(parts)


def decode_photo(data: bytes, limits: PhotoLimits, which: str) -> tuple[Image.Image, str]:
    """Decode ``data`` into an RGB image no longer than ``max_side``, or refuse it in words.
    Returns the image and its format."""
    if not data:
        raise refuse(415, f"{which} is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:  # lazy: only the header is read here
            fmt = str(im.format)
            if fmt not in FORMATS:
                raise refuse(415, f"{which} is not an image of a kind this app reads "
                             f"(JPEG, PNG, WebP, BMP); it is {fmt}")
            width, height = im.size
            if width * height > limits.max_pixels:
                raise refuse(413, f"{which} has {width}x{height} pixels, over the limit of "
                             f"{limits.max_pixels / 1e6:.0f} megapixels; please send a "
                             "smaller photo")
            if max(width, height) > limits.max_side:
                im.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode reduced
            im.load()
            photo = ImageOps.exif_transpose(im) or im
            if max(photo.size) > limits.max_side:
                photo.thumbnail((limits.max_side, limits.max_side), reducing_gap=2.0)
            return Image.fromarray(to_rgb_array(photo, Path(which))), fmt
    except HTTPException:
        raise
    except UnidentifiedImageError:
        raise refuse(415, f"{which} is not an image (JPEG, PNG, WebP or BMP)") from None
    except Image.DecompressionBombError:
        raise refuse(413, f"{which} has too many pixels") from None
    except Exception:  # noqa: BLE001 - whatever a malformed file makes PIL raise: never a 500
        raise refuse(415, f"{which} is damaged or truncated; it could not be read "
                     "to the end") from None


def save_photo(data: bytes, limits: PhotoLimits, target: Path, which: str) -> Path:
    """Check and store one photo at ``target``: the original bytes when they decode whole and
    are small enough, else the reduced picture as PNG. Nothing is written for a refusal."""
    photo, _ = decode_photo(data, limits, which)
    with Image.open(io.BytesIO(data)) as header:
        reduced = photo.size != header.size and photo.size[::-1] != header.size
    if reduced:
        photo.save(target, "PNG", compress_level=1)
    else:
        target.write_bytes(data)
    return target
