"""Reading user photos safely: decode, EXIF-rotate, RGB, size guards, clear errors."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facexplain.errors import ImageDecodeError, ImageTooLarge
from facexplain.validate import open_regular

# Decompression-bomb guard: 50 megapixels is far beyond any face photo we need.
MAX_PIXELS = 50_000_000

# Modes whose samples are wider than 8 bits; PIL's convert("RGB") clips them at 255 (a 16-bit
# face becomes a white image), so they are rescaled here first.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load ``path`` as an RGB uint8 array (H, W, 3), upright per its EXIF orientation.

    Transparent pixels are composited onto white (a transparent background is not a face);
    grayscale and palette images become three-channel RGB; 16-bit, 32-bit and float images are
    scaled to 0-255 (see ``_wide_to_uint8``); a multi-frame file (GIF, TIFF, APNG) gives its
    first frame with a warning. Only regular files are opened (never a FIFO or a device).
    """
    p = Path(path)
    n_frames = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(p, "photo", ImageDecodeError) as fh, Image.open(fh) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageTooLarge(
                        f"{p} is {width}x{height} pixels, above the limit of {max_pixels:,}"
                    )
                n_frames = int(getattr(im, "n_frames", 1) or 1)
                if n_frames > 1:
                    im.seek(0)
                im.load()
                upright = ImageOps.exif_transpose(im)
                rgb = to_rgb_array(upright, p)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{p} is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{p} is not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        detail = " ".join(str(exc).split())  # one line, whatever PIL says
        raise ImageDecodeError(
            f"{p} could not be decoded (truncated or corrupt: {detail})"
        ) from None
    if n_frames > 1:
        warnings.warn(f"{p} has {n_frames} frames; using the first", stacklevel=2)
    return rgb


def to_rgb_array(im: Image.Image, source: Path) -> np.ndarray:
    """Any PIL mode as RGB uint8: wide samples rescaled, transparency on white."""
    if im.mode in _WIDE_MODES:
        gray = _wide_to_uint8(np.asarray(im), im.mode, source)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _wide_to_uint8(a: np.ndarray, mode: str, source: Path) -> np.ndarray:
    """Scale one wide channel to uint8 the way a viewer would show it.

    Integer types by their full range (16-bit: /257). PIL's mode "I" holds 32-bit integers but
    is also what some readers give for 16-bit data, so values within 0..65535 are read as 16-bit
    and anything wider by its own min..max. Floats in [0, 1] are multiplied by 255; floats
    outside it are stretched over their own range.
    """
    x = a.astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and x.size and x.min() >= 0 and x.max() <= 65535):
        return np.rint(x / 257.0).astype(np.uint8)
    finite = np.isfinite(x)
    if not finite.any():
        raise ImageDecodeError(f"{source} has no finite pixel values")
    x = np.where(finite, x, 0.0)
    lo, hi = float(x[finite].min()), float(x[finite].max())
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        return np.rint(x * 255.0).astype(np.uint8)
    if hi == lo:
        return np.full(x.shape, int(np.clip(lo, 0, 255)), dtype=np.uint8)
    return np.rint((x - lo) * (255.0 / (hi - lo))).astype(np.uint8)
