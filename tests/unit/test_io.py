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
    with pytest.raises(ImageDecodeError, match="empty file"):
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


# --- wide (16-bit, 32-bit, float) images: scaled, not clipped to white -----------------------


def _gray8() -> np.ndarray:
    return np.asarray(Image.open(REAL).convert("L"))


def _as_16bit(gray: np.ndarray) -> np.ndarray:
    """What a 16-bit export of the same photo holds: x257 plus sub-level detail."""
    noise = np.random.default_rng(0).integers(-120, 121, gray.shape)
    return np.clip(gray.astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)


def _assert_close_gray(img: np.ndarray, expected: np.ndarray, tol: int = 1) -> None:
    assert img.shape == (*expected.shape, 3) and img.dtype == np.uint8
    diff = np.abs(img.astype(np.int64) - expected.astype(np.int64)[..., None])
    assert diff.max() <= tol, diff.max()


def test_16bit_grayscale_png_is_scaled_not_white(tmp_path: Path) -> None:
    f = tmp_path / "gray16.png"
    Image.fromarray(_as_16bit(_gray8())).save(f)
    assert Image.open(f).mode == "I;16"
    img = load_image(f)
    _assert_close_gray(img, _gray8())
    assert img.std() > 10


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    f = tmp_path / "gray16b.tif"
    Image.fromarray(_as_16bit(_gray8()).astype(">u2")).save(f)
    assert Image.open(f).mode == "I;16B"
    _assert_close_gray(load_image(f), _gray8())


def test_32bit_integer_tiff_holding_16bit_values(tmp_path: Path) -> None:
    f = tmp_path / "gray32.tif"
    Image.fromarray(_as_16bit(_gray8()).astype(np.int32)).save(f)
    assert Image.open(f).mode == "I"
    _assert_close_gray(load_image(f), _gray8())


def test_32bit_integer_tiff_wide_values_use_own_range(tmp_path: Path) -> None:
    gray = _gray8().astype(np.int64)
    f = tmp_path / "wide32.tif"
    Image.fromarray((gray * 1_000_000 - 50_000_000).astype(np.int32)).save(f)
    lo, hi = gray.min(), gray.max()
    _assert_close_gray(load_image(f), np.rint((gray - lo) * 255 / (hi - lo)))


def test_float_tiff_in_unit_range_times_255(tmp_path: Path) -> None:
    f = tmp_path / "unit.tif"
    Image.fromarray((_gray8() / 255.0).astype(np.float32)).save(f)
    assert Image.open(f).mode == "F"
    _assert_close_gray(load_image(f), _gray8())


def test_float_tiff_outside_unit_range_uses_own_range(tmp_path: Path) -> None:
    gray = _gray8().astype(np.float64)
    f = tmp_path / "hdr.tif"
    Image.fromarray((gray * 4.0 - 100.0).astype(np.float32)).save(f)
    lo, hi = gray.min(), gray.max()
    _assert_close_gray(load_image(f), np.rint((gray - lo) * 255 / (hi - lo)))


def test_16bit_rgb_png(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    rgb8 = np.asarray(Image.open(REAL).convert("RGB"))
    rgb16 = np.clip(rgb8.astype(np.int64) * 257 + 90, 0, 65535).astype(np.uint16)
    f = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(f), rgb16[..., ::-1])  # OpenCV writes BGR
    img = load_image(f)
    assert img.shape == rgb8.shape
    assert np.abs(img.astype(np.int64) - rgb8).max() <= 1


# --- multi-frame files: the first frame, with a warning --------------------------------------


@pytest.mark.parametrize("suffix", [".gif", ".tif", ".png"])
def test_multi_frame_uses_first_frame_with_warning(tmp_path: Path, suffix: str) -> None:
    first = Image.open(REAL).convert("RGB")
    second = Image.new("RGB", first.size, (255, 0, 0))
    f = tmp_path / f"frames{suffix}"
    first.save(f, save_all=True, append_images=[second])  # .png: APNG
    assert getattr(Image.open(f), "n_frames", 1) == 2
    with pytest.warns(UserWarning, match="2 frames; using the first"):
        img = load_image(f)
    expected = np.asarray(Image.open(f).convert("RGB"))  # frame 0 as PIL decodes it
    assert np.array_equal(img, expected)
    assert img[..., 1].mean() > 30  # not the pure-red second frame


def test_single_frame_gives_no_warning(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(REAL)


# --- non-regular and unreadable files: refused, never read ------------------------------------


def _with_alarm(seconds: int) -> None:
    import signal

    def boom(*_: object) -> None:
        raise TimeoutError("load_image blocked")

    signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)


def test_fifo_refused_without_blocking(tmp_path: Path) -> None:
    import os
    import signal

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    _with_alarm(10)
    try:
        with pytest.raises(ImageDecodeError, match=r"FIFO .*not a regular file"):
            load_image(fifo)
    finally:
        signal.alarm(0)


def test_dev_zero_is_not_called_empty() -> None:
    with pytest.raises(ImageDecodeError, match="character device, not a regular file"):
        load_image("/dev/zero")


def test_socket_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(ImageDecodeError, match="socket, not a regular file"):
            load_image(path)


def test_unreadable_file_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    f = tmp_path / "locked.jpg"
    f.write_bytes(REAL.read_bytes())

    def deny(*_: object, **__: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)  # chmod 000 does not stop root
    with pytest.raises(ImageDecodeError, match="permission denied") as info:
        load_image(f)
    assert "\n" not in str(info.value)


def test_chmod_000_file(tmp_path: Path) -> None:
    import os

    f = tmp_path / "locked.jpg"
    f.write_bytes(REAL.read_bytes())
    f.chmod(0)
    if os.access(f, os.R_OK):
        pytest.skip("running as root: chmod 000 does not make the file unreadable")
    with pytest.raises(ImageDecodeError, match="permission denied"):
        load_image(f)


def test_random_bytes_one_line_error(tmp_path: Path) -> None:
    f = tmp_path / "noise.png"
    f.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(ImageDecodeError) as info:
        load_image(f)
    assert "\n" not in str(info.value)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_png_header_claiming_huge_size(tmp_path: Path) -> None:
    f = tmp_path / "bomb.png"
    f.write_bytes(png_claiming(100_000, 100_000))
    assert f.stat().st_size < 200
    with pytest.raises(ImageTooLarge):
        load_image(f)
