"""Shared fixtures: where the real data and the fetched model assets live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LFW_DIR = SHARED_DATA / "lfw" / "lfw-deepfunneled"


def lfw_image(name: str, index: int) -> Path:
    """Path of an LFW image, e.g. lfw_image('Aaron_Peirsol', 1)."""
    return LFW_DIR / name / f"{name}_{index:04d}.jpg"


def centre_chips(faces: tuple[tuple[str, int], ...], size: int, crop: int = 120) -> np.ndarray:
    """Centre crops of LFW photos resized to ``size``: float32 NHWC RGB in [0, 255].

    The deep-funnelled face sits in the middle of the 250x250 image, so this is the tests'
    cheap stand-in for detection and alignment.
    """
    out = []
    for name, idx in faces:
        with Image.open(lfw_image(name, idx)) as im:
            w, h = im.size
            box = ((w - crop) // 2, (h - crop) // 2, (w + crop) // 2, (h + crop) // 2)
            chip = im.convert("RGB").crop(box).resize((size, size), Image.Resampling.BILINEAR)
        out.append(np.asarray(chip, dtype=np.float32))
    return np.stack(out)


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    assert LFW_DIR.is_dir(), f"LFW data expected at {LFW_DIR}"
    return LFW_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA
