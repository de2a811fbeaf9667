"""Seeded degradations of source photos: what makes a face unfit for comparison.

Why: a quality measure is judged by whether it ranks degraded photos below their originals and
whether discarding low-quality pairs lowers the error (``benchmark quality``). Each kind acts
on the whole source photo, before detection and alignment, as a poor camera or a careless
copy would; its strength is drawn from a range by a seeded generator, so the set is the same
on every run (``degrade_photo(image, kind, rng, eyes)``):

- ``blur``: Gaussian blur, sigma 2.5-5 px (LFW photos are 250 px);
- ``downscale``: shrunk to 40-64 px and back (bilinear);
- ``dark``: grey levels times 0.15-0.3 (under-exposure), then rounded;
- ``jpeg``: saved as JPEG at quality 3-10;
- ``eye_band``: a dark band over both eyes (from the detector's eye points), 0.5-0.8 eye
  distances tall;
- ``combined``: blur sigma 1.5, shrunk to 56 px and back, darkened x0.35, JPEG quality 15 (the
  careless user's copy in issue 38).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from facexplain.errors import InvalidArgument

KINDS = ("blur", "downscale", "dark", "jpeg", "eye_band", "combined")


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _shrink(img: Image.Image, side: int) -> Image.Image:
    w, h = img.size
    scale = side / max(w, h)
    bilinear = Image.Resampling.BILINEAR
    small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), bilinear)
    return small.resize((w, h), bilinear)


def _band(image: np.ndarray, eyes: np.ndarray, height: float) -> np.ndarray:
    out = image.copy()
    left, right = np.asarray(eyes, dtype=np.float64)
    dist = float(np.linalg.norm(right - left))
    centre = (left + right) / 2
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    across = (right - left) / max(dist, 1e-6)
    u = (xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]
    v = -(xs - centre[0]) * across[1] + (ys - centre[1]) * across[0]
    inside = (np.abs(u) <= 0.9 * dist) & (np.abs(v) <= height * dist / 2)
    out[inside] = 20
    return out


def degrade_photo(image: np.ndarray, kind: str, rng: np.random.Generator,
                  eyes: np.ndarray | None = None) -> np.ndarray:
    """A degraded copy (H, W, 3) uint8 of an RGB photo; ``eyes`` (2, 2) for the eye band."""
    if kind not in KINDS:
        raise InvalidArgument(f"unknown degradation {kind!r}; choose from {', '.join(KINDS)}")
    img = _pil(image)
    if kind == "blur":
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(2.5, 5.0))))
    elif kind == "downscale":
        img = _shrink(img, int(rng.integers(40, 65)))
    elif kind == "dark":
        a = np.asarray(img, dtype=np.float64) * rng.uniform(0.15, 0.3)
        img = _pil(np.round(a))
    elif kind == "jpeg":
        img = _jpeg(img, int(rng.integers(3, 11)))
    elif kind == "eye_band":
        if eyes is None:
            raise InvalidArgument("the eye band needs the photo's eye points")
        return _band(np.asarray(img), eyes, float(rng.uniform(0.5, 0.8)))
    else:
        img = _shrink(img.filter(ImageFilter.GaussianBlur(1.5)), 56)
        img = _jpeg(_pil(np.round(np.asarray(img, dtype=np.float64) * 0.35)), 15)
    return np.asarray(img, dtype=np.uint8)
