"""validate.py: the argument checks front ends run before any model loads."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from facexplain.datasets.lfw import check_pairs_file as pairs_file
from facexplain.errors import (
    ImageDecodeError,
    InputNotFound,
    InvalidArgument,
    PairsFileError,
)
from facexplain.validate import output_dir, readable_file
from tests.conftest import SHARED_DATA, lfw_image

PHOTO = lfw_image("Aaron_Peirsol", 1)
REAL_PAIRS = SHARED_DATA / "lfw" / "pairs.txt"


# --- readable_file -------------------------------------------------------------------------


def test_readable_file_returns_path() -> None:
    assert readable_file(str(PHOTO)) == PHOTO


def test_readable_file_missing_names_what(tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match=r"^model file .*nope\.onnx: no such file$"):
        readable_file(tmp_path / "nope.onnx", what="model file")


def test_readable_file_under_a_file_is_missing() -> None:
    with pytest.raises(InputNotFound, match="no such file"):
        readable_file("/dev/null/photo.jpg")


@pytest.mark.parametrize(("target", "kind"), [
    ("dir", "a directory"), ("fifo", "a FIFO"), ("socket", "a socket"),
    ("/dev/zero", "a character device"),
])
def test_readable_file_refuses_non_regular(tmp_path: Path, target: str, kind: str) -> None:
    path = tmp_path / "x.jpg"
    if target == "dir":
        path.mkdir()
    elif target == "fifo":
        os.mkfifo(path)  # would block forever if opened for reading
    elif target == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    else:
        path = Path(target)
    try:
        with pytest.raises(ImageDecodeError, match=f"is {kind}.*, not a regular file"):
            readable_file(path)
    finally:
        if target == "socket":
            sock.close()


def test_readable_file_empty(tmp_path: Path) -> None:
    f = tmp_path / "empty.jpg"
    f.touch()
    with pytest.raises(ImageDecodeError, match=r"empty file \(0 bytes\)"):
        readable_file(f)


def test_readable_file_uses_given_error_type(tmp_path: Path) -> None:
    f = tmp_path / "empty.txt"
    f.touch()
    with pytest.raises(PairsFileError, match="^pairs file .* empty"):
        readable_file(f, what="pairs file", error=PairsFileError)


def test_readable_file_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "locked.jpg"
    f.write_bytes(b"x")

    def deny(*_: object, **__: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)  # chmod 000 does not stop root
    with pytest.raises(ImageDecodeError, match="permission denied"):
        readable_file(f)


def test_readable_file_chmod_000(tmp_path: Path) -> None:
    f = tmp_path / "locked.jpg"
    f.write_bytes(b"x")
    f.chmod(0)
    if os.access(f, os.R_OK):
        pytest.skip("running as root: chmod 000 does not make the file unreadable")
    with pytest.raises(ImageDecodeError, match="permission denied"):
        readable_file(f)


# --- output_dir ----------------------------------------------------------------------------


def test_output_dir_creates_nested_and_leaves_no_probe(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    assert output_dir(out) == out
    assert out.is_dir() and list(out.iterdir()) == []


def test_output_dir_existing_dir_kept(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert output_dir(tmp_path) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_output_dir_refuses_existing_file(tmp_path: Path) -> None:
    f = tmp_path / "report.html"
    f.write_text("x")
    with pytest.raises(InvalidArgument, match="existing file, not a directory"):
        output_dir(f)
    assert f.read_text() == "x"


def test_output_dir_under_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidArgument, match="is under .*file, which is not a directory"):
        output_dir(f / "sub" / "out")


def test_output_dir_under_dev_null() -> None:
    with pytest.raises(InvalidArgument, match="under /dev/null, which is not a directory"):
        output_dir("/dev/null/x")


@pytest.mark.parametrize("path", ["/proc/facexplain-test", "/sys/facexplain/x", "/proc"])
def test_output_dir_refuses_proc_and_sys(path: str) -> None:
    with pytest.raises(InvalidArgument, match="where results cannot be written"):
        output_dir(path)
    assert not Path(path).exists() or path == "/proc"


def test_output_dir_proc_via_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    with pytest.raises(InvalidArgument, match="under /proc"):
        output_dir("proc/self/x")


def test_output_dir_not_writable_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    def deny(*_: object, **__: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", deny)  # a read-only dir does not stop root
    with pytest.raises(InvalidArgument, match=r"not writable \(Permission denied\)"):
        output_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # what the check created is removed again


def test_output_dir_read_only_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("running as root: a read-only directory is still writable")
    with pytest.raises(InvalidArgument, match="not writable"):
        output_dir(ro / "out")


# --- pairs_file ----------------------------------------------------------------------------


def test_pairs_file_real() -> None:
    assert pairs_file(REAL_PAIRS, folds=10) == REAL_PAIRS


def test_pairs_file_checks_format(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("10 300\nnot a pair line at all\n")
    with pytest.raises(PairsFileError, match=f"{f}:"):
        pairs_file(f)


def test_pairs_file_one_fold(tmp_path: Path) -> None:
    f = tmp_path / "one.txt"
    f.write_text("1 1\nA_B 1 2\nA_B 1 C_D 1\n")
    assert pairs_file(f) == f
    with pytest.raises(PairsFileError, match="has 1 fold; the 10-fold protocol needs 10"):
        pairs_file(f, folds=10)


def test_pairs_file_directory(tmp_path: Path) -> None:
    with pytest.raises(PairsFileError, match="directory, not a regular file"):
        pairs_file(tmp_path)
