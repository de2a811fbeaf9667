"""The CLI on real photos and bad input: one line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facexplain.cli.app import main
from tests.conftest import lfw_image

GOOD = lfw_image("Aaron_Peirsol", 1)
SAME = lfw_image("Aaron_Peirsol", 2)
OTHER = lfw_image("Dean_Barker", 1)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["facexplain", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and pattern in lines[0], lines[0]
    assert "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(["verify", str(tmp_path / "nope.jpg"), str(GOOD)], capsys)
    assert_one_line_error(code, err, "no such file")


def test_corrupt_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(GOOD.read_bytes()[:2000])
    code, _, err = run_cli(["verify", str(GOOD), str(bad)], capsys)
    assert_one_line_error(code, err, "truncated or corrupt")


def test_no_face(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    code, _, err = run_cli(["verify", str(GOOD), str(blank)], capsys)
    assert_one_line_error(code, err, "no face found")
    assert code == 3


def test_unknown_backbone(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["verify", str(GOOD), str(SAME), "--backbone", "vgg"], capsys)
    assert_one_line_error(code, err, "valid: sface")


def test_verify_json_on_real_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["verify", str(GOOD), str(SAME), "--json"], capsys)
    assert code == 0
    same = json.loads(out)
    assert {"similarity", "threshold", "same", "backbone"} <= same.keys()
    assert same["same"] is True and same["backbone"] == "sface"
    code, out, _ = run_cli(["verify", str(GOOD), str(OTHER), "--json"], capsys)
    other = json.loads(out)
    assert other["same"] is False and other["similarity"] < same["similarity"]


def test_several_faces_warns(capsys: pytest.CaptureFixture[str]) -> None:
    crowd = lfw_image("Sam_Bith", 1)  # four faces in the frame
    code, out, err = run_cli(["verify", str(crowd), str(crowd)], capsys)
    assert code == 0
    assert "faces found" in err and "largest" in err
    assert out.startswith("SAME person")


def test_explain_writes_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["explain", str(GOOD), str(OTHER), "--out", str(tmp_path), "--method",
            "occlusion,saliency", "--patch", "32", "--stride", "16"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    html = (tmp_path / "report.html").read_text()
    assert "Different people" in html and "faces.png" in html
    assert "Pairwise occlusion" in html and "Gradient saliency" in html
    assert Image.open(tmp_path / "faces.png").size[0] > 200
    delta = np.load(tmp_path / "occlusion_delta.npy")
    assert delta.shape == (2, 112, 112) and np.array_equal(delta[0], delta[1])
    assert np.load(tmp_path / "saliency_difference.npy").shape == (2, 112, 112)
    for png in ("occlusion_difference.png", "saliency_difference.png"):
        assert png in html and Image.open(tmp_path / png).size[0] > 300


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [(["--method", "no-such-method"], "unknown method"), (["--patch", "0"], "must be positive"),
     (["--patch", "500"], "larger than"), (["--fill", "pink"], "unknown fill")],
)
def test_explain_bad_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], pattern: str
) -> None:
    code, _, err = run_cli(["explain", str(GOOD), str(OTHER), "--out", str(tmp_path), *extra],
                           capsys)
    assert_one_line_error(code, err, pattern)
