"""Reading user photos safely: decode, EXIF-rotate, RGB, size guards, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facexplain.errors import ImageDecodeError, ImageTooLarge, InputNotFound

# Decompression-bomb guard: 50 megapixels is far beyond any face photo we need.
MAX_PIXELS = 50_000_000


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load ``path`` as an RGB uint8 array (H, W, 3), upright per its EXIF orientation.

    Transparent pixels are composited onto white (a transparent background is not a face);
    grayscale and palette images become three-channel RGB.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFound(f"no such file: {p}")
    if p.is_dir():
        raise ImageDecodeError(f"{p} is a directory, not an image")
    if p.stat().st_size == 0:
        raise ImageDecodeError(f"{p} is an empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageTooLarge(
                        f"{p} is {width}x{height} pixels, above the limit of {max_pixels:,}"
                    )
                im.load()
                upright = ImageOps.exif_transpose(im)
                return _to_rgb_array(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{p} is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{p} is not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{p} could not be decoded (truncated or corrupt: {exc})") from None


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
