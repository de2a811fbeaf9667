"""read_pairs on the real LFW pairs.txt and on every malformed pair list a user can pass.

Each bad file must give PairsFileError with one line naming the file and the line number.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from facexplain.datasets.lfw import n_folds_of, read_pairs, require_folds
from facexplain.errors import InputNotFound, PairsFileError
from tests.conftest import SHARED_DATA

REAL_PAIRS = SHARED_DATA / "lfw" / "pairs.txt"

GOOD = "1\t2\nAaron_Peirsol\t1\t2\nAaron_Peirsol\t3\t4\nA_B\t1\tC_D\t2\nE_F\t3\tG_H\t1\n"


def write(tmp_path: Path, text: str | bytes, name: str = "pairs.txt") -> Path:
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    return f


def assert_error(path: Path, pattern: str, line: int | None) -> str:
    with pytest.raises(PairsFileError) as info:
        read_pairs(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip(), msg
    assert str(path) in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    assert re.search(pattern, msg), msg
    return msg


def test_real_lfw_pairs_file() -> None:
    pairs = read_pairs(REAL_PAIRS, folds=10)
    assert len(pairs) == 6000 and n_folds_of(pairs) == 10
    assert sum(p.same for p in pairs) == 3000
    assert pairs[0].same and pairs[0].name_a == pairs[0].name_b
    assert pairs[300].fold == 0 and not pairs[300].same and pairs[600].fold == 1


def test_small_good_file_and_blank_lines(tmp_path: Path) -> None:
    pairs = read_pairs(write(tmp_path, "\n" + GOOD.replace("\n", "\n\n")))
    assert [p.same for p in pairs] == [True, True, False, False]
    assert pairs[2].name_b == "C_D" and pairs[2].index_b == 2


def test_single_number_header_is_one_fold(tmp_path: Path) -> None:
    """LFW's View 1 files (pairsDevTrain.txt) have a one-number header."""
    pairs = read_pairs(write(tmp_path, GOOD.replace("1\t2\n", "2\n", 1)))
    assert len(pairs) == 4 and n_folds_of(pairs) == 1


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    text = "1 2\n\n\nAaron_Peirsol 1 2\nAaron_Peirsol 3 x\nA_B 1 C_D 2\nE_F 3 G_H 1\n"
    assert_error(write(tmp_path, text), "'x'", 5)


def test_empty_file(tmp_path: Path) -> None:
    assert_error(write(tmp_path, ""), "empty", None)


def test_only_whitespace(tmp_path: Path) -> None:
    assert_error(write(tmp_path, "\n \n\t\n"), "empty", 1)


@pytest.mark.parametrize("header", ["ten 300", "10 300 5", "10 -3", "0 300", "10 0",
                                    "1.5 2", "name 1 2", "+1 2", "1_0 2"])
def test_bad_header(tmp_path: Path, header: str) -> None:
    text = GOOD.replace("1\t2\n", header + "\n", 1)
    msg = assert_error(write(tmp_path, text), "header", 1)
    assert "'<folds> <pairs per class>'" in msg or "at least 1" in msg


def test_header_promises_more_lines(tmp_path: Path) -> None:
    assert_error(write(tmp_path, GOOD.replace("1\t2", "2\t2", 1)), "promises 8 .*found 4", 5)


def test_one_number_header_promising_more(tmp_path: Path) -> None:
    text = GOOD.replace("1\t2\n", "10\n", 1)
    assert_error(write(tmp_path, text), r"promises 20 pair lines \(1 fold x 2 x 10\)", 5)


def test_header_promises_fewer_lines(tmp_path: Path) -> None:
    text = GOOD + "X_Y\t1\tZ_W\t1\n"
    assert_error(write(tmp_path, text), "promises 4 .*found 5", 6)


def test_not_utf8(tmp_path: Path) -> None:
    data = GOOD.encode().replace(b"A_B", b"A\xff\xfeB")
    assert_error(write(tmp_path, data), "not UTF-8", 4)


def test_binary_file(tmp_path: Path) -> None:
    data = (REAL_PAIRS.parent / "lfw-deepfunneled" / "Aaron_Peirsol" /
            "Aaron_Peirsol_0001.jpg").read_bytes()
    assert_error(write(tmp_path, data, "photo.txt"), "not UTF-8", 1)


@pytest.mark.parametrize(("line", "pattern"), [
    ("Aaron_Peirsol\t1", "genuine"),
    ("Aaron_Peirsol\t1\t2\t3\t4", "genuine"),
    ("Aaron_Peirsol\t1\tB_C\t2", "genuine"),
])
def test_bad_genuine_line_shape(tmp_path: Path, line: str, pattern: str) -> None:
    text = GOOD.replace("Aaron_Peirsol\t3\t4", line)
    assert_error(write(tmp_path, text), pattern, 3)


@pytest.mark.parametrize("line", ["A_B\t1\tC_D", "A_B\t1\t2", "A_B 1 C_D 2 E"])
def test_bad_impostor_line_shape(tmp_path: Path, line: str) -> None:
    text = GOOD.replace("A_B\t1\tC_D\t2", line)
    assert_error(write(tmp_path, text), "impostor", 4)


@pytest.mark.parametrize("token", ["x", "0", "-1", "1.0", "+2", "٣"])
def test_bad_index(tmp_path: Path, token: str) -> None:
    text = GOOD.replace("E_F\t3\tG_H\t1", f"E_F\t3\tG_H\t{token}")
    assert_error(write(tmp_path, text), "integers from 1", 5)


def test_long_garbage_line_is_clipped(tmp_path: Path) -> None:
    text = GOOD.replace("A_B\t1\tC_D\t2", "x" * 5000)
    msg = assert_error(write(tmp_path, text), "impostor", 4)
    assert len(msg) < 400


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(PairsFileError, match="directory, not a regular file"):
        read_pairs(tmp_path)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pairs.txt"
    os.mkfifo(fifo)

    def boom(*_: object) -> None:
        raise TimeoutError("read_pairs blocked on a FIFO")

    signal.signal(signal.SIGALRM, boom)
    signal.alarm(10)
    try:
        with pytest.raises(PairsFileError, match="FIFO"):
            read_pairs(fifo)
    finally:
        signal.alarm(0)


def test_dev_zero() -> None:
    with pytest.raises(PairsFileError, match="character device"):
        read_pairs(Path("/dev/zero"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="no such file"):
        read_pairs(tmp_path / "nope.txt")


def test_huge_file_refused_unread(tmp_path: Path) -> None:
    f = tmp_path / "big.txt"
    with f.open("wb") as fh:
        fh.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(PairsFileError, match="larger than 16 MiB"):
        read_pairs(f)


def test_one_fold_refused_when_ten_needed(tmp_path: Path) -> None:
    f = write(tmp_path, GOOD)
    assert len(read_pairs(f)) == 4
    with pytest.raises(PairsFileError,
                       match="has 1 fold; the 10-fold protocol needs 10"):
        read_pairs(f, folds=10)


def test_require_folds_directly(tmp_path: Path) -> None:
    pairs = read_pairs(REAL_PAIRS)
    require_folds(pairs, 10)
    with pytest.raises(PairsFileError, match="has 2 folds; the 10-fold protocol needs 10"):
        require_folds(pairs[:1200], 10, "mine.txt")
