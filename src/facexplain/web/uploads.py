"""Uploaded photos: read with a byte cap, decoded with bounded time and memory, kept small.

Why: a 60 KB PNG can hold 7000x7000 pixels, and a whole decode of such a file once held the
only worker for minutes and 6 GB. Here the header is read first (size, format) and anything
over the pixel cap is refused before a pixel is decoded; then the decode waits for a slot of
the app's ``admission.DecodeGate`` (decodes and megapixels in flight are bounded). JPEGs are
decoded already reduced (``draft``), anything larger than a face detector can use is shrunk in
place before any copy is made (EXIF rotation comes after the shrink), and the freed memory is
handed back. The saved file has a fixed name; the client's file name is only ever shown.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, UploadFile
from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from facexplain.io import to_rgb_array
from facexplain.web.admission import SEAT
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


def check_header(im: Image.Image, limits: PhotoLimits, which: str) -> str:
    """The format of a lazily opened photo, refused in words when this app does not read it
    or when it has more pixels than the cap (nothing decoded yet)."""
    fmt = str(im.format)
    if fmt not in FORMATS:
        raise refuse(415, f"{which} is not an image of a kind this app reads "
                     f"(JPEG, PNG, WebP, BMP); it is {fmt}")
    width, height = im.size
    if width * height > limits.max_pixels:
        raise refuse(413, f"{which} has {width}x{height} pixels, over the limit of "
                     f"{limits.max_pixels / 1e6:.0f} megapixels; please send a smaller photo")
    return fmt


@contextlib.contextmanager
def _opened(which: str) -> Iterator[None]:
    """Turn whatever a malformed file makes PIL raise into a refusal in words (never a 500)."""
    try:
        yield
    except HTTPException:
        raise
    except UnidentifiedImageError:
        raise refuse(415, f"{which} is not an image (JPEG, PNG, WebP or BMP)") from None
    except Image.DecompressionBombError:
        raise refuse(413, f"{which} has too many pixels") from None
    except Exception:  # noqa: BLE001 - any malformed file: a refusal, never a 500
        raise refuse(415, f"{which} is damaged or truncated; it could not be read "
                     "to the end") from None


def peek_pixels(file: BinaryIO, limits: PhotoLimits, which: str) -> int:
    """The photo's pixel count from its header alone (checked like ``check_header``)."""
    file.seek(0, io.SEEK_END)
    if file.tell() == 0:
        raise refuse(415, f"{which} is empty")
    file.seek(0)
    try:
        with _opened(which), Image.open(file) as im:  # lazy: only the header is read
            check_header(im, limits, which)
            return int(im.size[0] * im.size[1])
    finally:
        file.seek(0)


def decode_photo(data: bytes, limits: PhotoLimits, which: str) -> tuple[Image.Image, str]:
    """Decode ``data`` into an RGB image no longer than ``max_side``, or refuse it in words.
    Returns the image and its format. At most one full-size frame is in memory at a time."""
    if not data:
        raise refuse(415, f"{which} is empty")
    with _opened(which), Image.open(io.BytesIO(data)) as im:  # lazy: header only
        fmt = check_header(im, limits, which)
        side = limits.max_side
        if max(im.size) > side:
            im.draft("RGB", (side, side))  # JPEG: decode reduced
        im.load()
        if max(im.size) > side:
            im.thumbnail((side, side), reducing_gap=2.0)  # in place: the full frame is freed
        ImageOps.exif_transpose(im, in_place=True)  # on the small picture: no full copy
        return Image.fromarray(to_rgb_array(im, Path(which))), fmt


async def store_upload(upload: UploadFile, limits: PhotoLimits, target: Path,
                       which: str) -> Path:
    """Check, decode and save one upload under the app's decode gate (``admission``): bytes
    and pixels are checked from the upload's size and header first; its bytes are read into
    memory only once a decode slot is held."""
    if upload.size is not None and upload.size > limits.max_bytes:
        raise refuse(413, f"{which} is over the limit of {limits.max_bytes / MiB:.1f} MiB")
    pixels = await run_in_threadpool(peek_pixels, upload.file, limits, which)
    seat = SEAT.get()
    gate = (seat.gate.slot(seat.client, pixels, which) if seat is not None
            else contextlib.nullcontext())  # no admission layer (a bare app): no gate
    async with gate:
        data = await read_capped(upload, limits.max_bytes, which)
        return await run_in_threadpool(save_photo, data, limits, target, which)


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
