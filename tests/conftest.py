"""Shared fixtures: where the real data and the fetched model assets live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LFW_DIR = SHARED_DATA / "lfw" / "lfw-deepfunneled"


def lfw_image(name: str, index: int) -> Path:
    """Path of an LFW image, e.g. lfw_image('Aaron_Peirsol', 1)."""
    return LFW_DIR / name / f"{name}_{index:04d}.jpg"


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    assert LFW_DIR.is_dir(), f"LFW data expected at {LFW_DIR}"
    return LFW_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA
