"""MTCNN with the real facenet-pytorch weights on real LFW images."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facexplain import assets
from facexplain.align import MTCNN, align_image, choose_face, transform_points
from facexplain.align.mtcnn_files import WEIGHTS
from facexplain.align.templates import ARCFACE_112
from facexplain.align.warp import alignment_matrix
from facexplain.errors import AssetMissing, InvalidArgument, NoFaceFound
from facexplain.types import Detection
from tests.conftest import lfw_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector() -> Iterator[MTCNN]:
    # One thread: these small nets gain little from more, and on a busy machine extra OpenMP
    # threads made single calls 10-30x slower. Restored afterwards for the other tests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = MTCNN()
    except AssetMissing as exc:  # the set-up step has not fetched the weights here
        torch.set_num_threads(threads)
        pytest.skip(str(exc))
    yield net
    torch.set_num_threads(threads)


def _rgb(name: str, index: int) -> np.ndarray:
    return np.asarray(Image.open(lfw_image(name, index)).convert("RGB"))


def _assert_upright_face(det: Detection) -> None:
    lm = det.landmarks
    assert lm.shape == (5, 2)
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # left before right, as seen
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])  # eyes, nose, mouth
    x1, y1, x2, y2 = det.box
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))


def test_finds_the_face_in_a_normal_lfw_image(detector: MTCNN) -> None:
    image = _rgb("Aaron_Peirsol", 1)
    dets = detector.detect(image)
    assert len(dets) == 1
    det = dets[0]
    assert det.score > 0.99
    _assert_upright_face(det)
    # Deep-funneled LFW faces sit in the central region of the 250x250 image.
    centre = (det.box[:2] + det.box[2:]) / 2
    assert np.all(np.abs(centre - 125) < 30)
    assert 60 < det.box[2] - det.box[0] < 160
    assert np.all((det.landmarks > 62) & (det.landmarks < 188))


def test_detect_is_deterministic_and_leaves_the_input_alone(detector: MTCNN) -> None:
    image = _rgb("Aaron_Peirsol", 1).copy()
    before = image.copy()
    a, b = detector.detect(image), detector.detect(image)
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(a[0].landmarks, b[0].landmarks)


def test_several_faces_and_the_centre_policy(detector: MTCNN) -> None:
    # Sam_Bith_0001: the subject in the middle and three other people beside him.
    image = _rgb("Sam_Bith", 1)
    dets = detector.detect(image)
    assert len(dets) > 1
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    chosen = choose_face(dets, image.shape, "center")
    _assert_upright_face(chosen)
    centres = [np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - 125) for d in dets]
    assert np.linalg.norm((chosen.box[:2] + chosen.box[2:]) / 2 - 125) == min(centres) < 25
    aligned = align_image(image, detector, ARCFACE_112, policy="center", source="Sam_Bith_0001")
    assert aligned.n_faces == len(dets)
    assert aligned.detection is not None
    np.testing.assert_array_equal(aligned.detection.box, chosen.box)
    assert aligned.warnings == (
        f"{len(dets)} faces found in Sam_Bith_0001; using the one nearest the centre",
    )


def test_blank_image_has_no_face(detector: MTCNN) -> None:
    blank = np.full((250, 250, 3), 128, dtype=np.uint8)
    assert detector.detect(blank) == []
    with pytest.raises(NoFaceFound, match="blank.png"):
        align_image(blank, detector, ARCFACE_112, source="blank.png")


def test_lfw_miss_uses_the_fallback_only_when_allowed(detector: MTCNN) -> None:
    # The one image among LFW's pair images where MTCNN finds nothing (DESIGN.md).
    image = _rgb("Marilyn_Monroe", 1)
    with pytest.raises(NoFaceFound, match="Marilyn_Monroe_0001"):
        align_image(image, detector, ARCFACE_112, source="Marilyn_Monroe_0001")
    aligned = align_image(image, detector, ARCFACE_112, source="Marilyn_Monroe_0001",
                          allow_fallback=True)
    assert aligned.n_faces == 0 and aligned.detection is not None
    assert aligned.detection.score == 0.0
    assert "fallback" in aligned.warnings[0]
    assert aligned.pixels.shape == (3, 112, 112)


def test_aligned_crop_puts_the_landmarks_on_the_template(detector: MTCNN) -> None:
    # End to end: align, then detect again in the 112x112 crop; the new landmarks must sit
    # where the similarity put the old ones (checks the warp's pixel convention too).
    image = _rgb("Aaron_Peirsol", 1)
    aligned = align_image(image, detector, ARCFACE_112, source="Aaron_Peirsol_0001")
    assert aligned.n_faces == 1 and aligned.warnings == ()
    assert aligned.detection is not None
    expected = transform_points(aligned.detection.landmarks,
                                alignment_matrix(aligned.detection.landmarks, ARCFACE_112))
    crop = aligned.pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    again = detector.detect(np.ascontiguousarray(crop))
    assert again
    found = choose_face(again, crop.shape, "largest").landmarks
    assert np.abs(found - expected).mean() < 2.0


def test_rejects_non_rgb_input(detector: MTCNN) -> None:
    with pytest.raises(InvalidArgument):
        detector.detect(np.zeros((50, 50), dtype=np.uint8))


def test_exported_nets_detect_exactly_what_the_torch_modules_detect(
        detector: MTCNN, tmp_path: Path) -> None:
    """Set-up exports the three nets for onnxruntime; a model home without those files runs the
    torch modules (the source of truth): same faces, same landmarks to float precision."""
    if detector.runtime != "onnxruntime":
        pytest.skip("no exported MTCNN nets in this model home; run make setup")
    home = tmp_path / "home"
    (home / "mtcnn").mkdir(parents=True)
    for name in ("pnet", "rnet", "onet"):
        (home / "mtcnn" / f"{name}.pt").symlink_to(assets.asset_path(WEIGHTS[name]))
    plain = MTCNN(root=home)
    assert plain.runtime == "torch"
    for name, index in (("Aaron_Peirsol", 1), ("George_W_Bush", 10), ("Abdel_Madi_Shabneh", 1)):
        image = _rgb(name, index)
        ours, ref = detector.detect(image), plain.detect(image)
        assert len(ours) == len(ref) >= 1
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_cold_verify_never_imports_torch(detector: MTCNN) -> None:
    """Verification is forward-only (numpy + onnxruntime): a cold start must not pay for torch."""
    from facexplain.backbones.runtime import load_runtime

    if detector.runtime != "onnxruntime" or load_runtime("sface", assets.home(), 1) is None:
        pytest.skip("no exported graphs in this model home; run make setup")
    code = ("import sys; sys.argv = ['facexplain', 'verify', *sys.argv[1:]]\n"
            "from facexplain.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch loaded:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(lfw_image("Abdel_Madi_Shabneh", 1)),
                          str(lfw_image("Dean_Barker", 1))], capture_output=True, text=True,
                         timeout=300)
    assert "DIFFERENT people" in out.stdout, out.stderr
    assert "torch loaded: False" in out.stdout
