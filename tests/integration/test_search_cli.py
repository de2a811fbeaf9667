"""`facexplain gallery build` and `facexplain search` on real LFW photos: the right person
first with a SAME verdict, the explained report of the best match, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facexplain.search.gallery import load_gallery
from tests.conftest import lfw_image
from tests.integration.test_cli import assert_one_line_error, run_cli

PEOPLE = {"Colin_Powell": (1, 2), "Laura_Bush": (1, 2), "Tony_Blair": (1, 2)}
PROBE = lfw_image("Tony_Blair", 10)


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    for name, indices in PEOPLE.items():
        (root / name).mkdir()
        for i in indices:
            (root / name / f"{name}_{i:04d}.jpg").symlink_to(lfw_image(name, i))
    (root / "Nobody").mkdir()
    Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(root / "Nobody" / "wall.png")
    return root


@pytest.mark.slow
@pytest.mark.long
def test_build_search_and_explain(gallery_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    g = tmp_path / "g.npz"
    code, out, err = run_cli(["gallery", "build", str(gallery_dir), "--out", str(g)], capsys)
    assert code == 0, err
    assert "skipped" in err and "wall.png" in err  # the photo without a face, not a failure
    gallery = load_gallery(g)
    assert sorted(set(gallery.identities)) == sorted(PEOPLE) and len(gallery) == 6
    assert gallery.backbone == "sface"

    report = tmp_path / "report"
    code, out, err = run_cli(["search", str(PROBE), "--gallery", str(g), "--top", "3",
                              "--explain", "--out", str(report), "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    ranked = doc["candidates"]
    assert [c["identity"] for c in ranked][0] == "Tony_Blair" and len(ranked) == 3
    assert ranked[0]["same"] and not ranked[1]["same"]
    assert ranked[0]["similarity"] > ranked[1]["similarity"]
    assert Path(doc["report"]) == (report / "report.html").resolve()
    explanation = json.loads((report / "explanation.json").read_text())
    assert Path(explanation["verdict"]["path_b"]).name.startswith("Tony_Blair_")


@pytest.mark.slow
def test_search_errors_are_one_line(gallery_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    not_gallery = tmp_path / "x.npz"
    np.savez(not_gallery, a=np.zeros(2))
    code, _, err = run_cli(["search", str(PROBE), "--gallery", str(not_gallery)], capsys)
    assert_one_line_error(code, err, "not a facexplain gallery")
    code, _, err = run_cli(["search", str(PROBE), "--gallery", str(not_gallery), "--top", "0"],
                           capsys)
    assert_one_line_error(code, err, "--top must be >= 1")
    code, _, err = run_cli(["gallery", "build", str(tmp_path / "none"), "--out",
                            str(tmp_path / "g.npz")], capsys)
    assert_one_line_error(code, err, "no such directory")
    code, _, err = run_cli(["gallery", "build", str(gallery_dir), "--out",
                            str(tmp_path / "g.npz"), "--code", "lsh-9"], capsys)
    assert_one_line_error(code, err, "METHOD or METHOD-BITS")
