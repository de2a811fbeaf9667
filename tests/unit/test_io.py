"""load_image on real LFW photos and on every kind of bad input a user can hand us."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facexplain.errors import ImageDecodeError, ImageTooLarge, InputNotFound
from facexplain.io import load_image
from tests.conftest import lfw_image

REAL = lfw_image("Aaron_Peirsol", 1)


def test_real_jpeg_is_rgb_uint8() -> None:
    img = load_image(REAL)
    assert img.shape == (250, 250, 3) and img.dtype == np.uint8
    assert img.std() > 10  # a photo, not a blank


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="directory"):
        load_image(tmp_path)


def test_zero_byte(tmp_path: Path) -> None:
    f = tmp_path / "empty.jpg"
    f.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(f)


def test_not_an_image(tmp_path: Path) -> None:
    f = tmp_path / "notes.jpg"
    f.write_text("these are not pixels\n" * 20)
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(f)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = REAL.read_bytes()
    f = tmp_path / "cut.jpg"
    f.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        load_image(f)


def test_png_with_alpha_composited_on_white(tmp_path: Path) -> None:
    rgb = Image.open(REAL).convert("RGBA")
    alpha = np.full((250, 250), 255, dtype=np.uint8)
    alpha[:, :50] = 0  # left strip fully transparent
    rgb.putalpha(Image.fromarray(alpha))
    f = tmp_path / "alpha.png"
    rgb.save(f)
    img = load_image(f)
    assert img.shape == (250, 250, 3)
    assert (img[:, :50] == 255).all()
    assert np.array_equal(img[:, 60:], np.asarray(Image.open(REAL).convert("RGB"))[:, 60:])


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    f = tmp_path / "gray.png"
    Image.open(REAL).convert("L").save(f)
    img = load_image(f)
    assert img.shape == (250, 250, 3)
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    src = Image.open(REAL).convert("RGB").crop((0, 0, 250, 180))  # non-square to see rotation
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    f = tmp_path / "rotated.jpg"
    src.save(f, exif=exif, quality=95)
    img = load_image(f)
    assert img.shape == (250, 180, 3)
    expected = np.asarray(src.transpose(Image.Transpose.ROTATE_270), dtype=np.float64)
    assert np.abs(img.astype(np.float64) - expected).mean() < 3.0  # JPEG noise only


def test_huge_dimensions_refused(tmp_path: Path) -> None:
    f = tmp_path / "bomb.png"
    Image.new("1", (12000, 6000)).save(f)  # 72 MP, a few kB on disk
    with pytest.raises(ImageTooLarge, match="above the limit"):
        load_image(f)
