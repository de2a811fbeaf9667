"""Alignment building blocks with closed-form answers: NMS, similarity fit, warp vs OpenCV."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from facexplain.align import (
    choose_face,
    detect,
    estimate_similarity,
    fallback_detection,
    nms,
    transform_points,
    warp_affine,
    warp_face,
)
from facexplain.align.detect import square_boxes
from facexplain.align.templates import ARCFACE_112, DLIB_150
from facexplain.errors import InvalidArgument, NoFaceFound
from facexplain.types import Detection
from tests.conftest import lfw_image


def _rgb(path: object) -> np.ndarray:
    return np.asarray(Image.open(str(path)).convert("RGB"))


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


# --- NMS -----------------------------------------------------------------------------------------


def test_nms_keeps_the_closed_form_set() -> None:
    # Boxes (score): A 10x10 at the origin (0.9); B = A shifted right by 1 (0.95);
    # C = A shifted by 5 (0.8); D far away (0.1); E the top-left quarter of A (0.7).
    # Greedy order B, A, C, E, D. Overlaps with B: A 90/110 = 0.82, C 60/140 = 0.43,
    # E 20/105 = 0.19 (IoU); by 'min' area: C 60/100 = 0.6, E 20/25 = 0.8.
    boxes = np.array([
        [0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [50, 50, 60, 60], [0, 0, 5, 5]
    ], dtype=np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.1, 0.7], dtype=np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 4, 3]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [1, 3]
    assert nms(boxes, scores, 0.2).tolist() == [1, 4, 3]


def test_nms_equal_scores_keep_the_earlier_box_and_empty_input() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    assert nms(boxes, np.array([0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


def test_nms_loop_path_matches_matrix_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Large inputs skip the all-pairs matrix (memory); both paths must keep the same boxes.
    gen = np.random.default_rng(0)
    xy = (gen.random((1500, 2)) * 500).astype(np.float32)
    boxes = np.concatenate([xy, xy + 10 + (gen.random((1500, 2)) * 40).astype(np.float32)], 1)
    scores = gen.random(1500).astype(np.float32)
    with_matrix = nms(boxes, scores, 0.5)
    monkeypatch.setattr(detect, "_NMS_MATRIX_MAX", 0)
    assert 100 < with_matrix.size < 1500
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), with_matrix)


def test_square_boxes_keeps_the_centre() -> None:
    sq = square_boxes(np.array([[10.0, 20.0, 30.0, 60.0]]))
    assert sq.tolist() == [[0.0, 20.0, 40.0, 60.0]]


# --- similarity ---------------------------------------------------------------------------------


def test_similarity_recovers_a_known_transform_exactly() -> None:
    truth = _similarity(1.7, 0.3, -12.5, 40.25)
    src = DLIB_150.as_array()
    dst = transform_points(src, truth)
    np.testing.assert_allclose(estimate_similarity(src, dst), truth, atol=1e-10)


def test_similarity_never_reflects() -> None:
    src = ARCFACE_112.as_array()
    mirrored = src * np.array([-1.0, 1.0])
    m = estimate_similarity(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_similarity_rejects_bad_points() -> None:
    with pytest.raises(InvalidArgument):
        estimate_similarity(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(InvalidArgument):
        estimate_similarity(np.zeros((5, 2)), np.ones((4, 2)))


# --- warp ----------------------------------------------------------------------------------------


def test_warp_matches_cv2_warp_affine_on_a_real_image() -> None:
    image = _rgb(lfw_image("Aaron_Peirsol", 1))
    marks = np.array([[102.2, 112.3], [144.8, 111.6], [126.2, 141.8], [104.5, 156.5],
                      [147.3, 154.6]])
    m = estimate_similarity(marks, ARCFACE_112.as_array())
    ours = warp_face(image, marks, ARCFACE_112).permute(1, 2, 0).numpy()
    ref = cv2.warpAffine(image, m, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
    assert ours.shape == ref.shape
    assert float(np.abs(ours - ref.astype(np.float32)).mean()) < 1.0


def test_warp_matches_cv2_with_rotation_and_border() -> None:
    # A rotation that pulls in pixels from outside the image checks the zero border too.
    image = _rgb(lfw_image("Aaron_Peirsol", 1))
    m = _similarity(0.8, 0.6, 60.0, -40.0)
    ours = warp_affine(image.transpose(2, 0, 1).astype(np.float32), m, (200, 180))
    ref = cv2.warpAffine(image, m, (180, 200), flags=cv2.INTER_LINEAR, borderValue=0)
    diff = np.abs(ours.transpose(1, 2, 0) - ref.astype(np.float32))
    assert float(diff.mean()) < 1.0
    assert (ref == 0).all(axis=2).mean() > 0.05  # the border really is in view


def test_warp_moves_a_dot_onto_the_template_point() -> None:
    # A single bright pixel at a landmark must land on the template point (pixel-centre rule).
    image = np.zeros((120, 120, 3), dtype=np.uint8)
    dst = ARCFACE_112.as_array()
    truth = _similarity(0.9, 0.0, 3.0, 2.0)
    src = transform_points(dst, np.linalg.inv(np.vstack([truth, [0, 0, 1]]))[:2])
    x, y = np.round(src[2]).astype(int)
    image[y, x] = 255
    src[2] = (x, y)
    m = estimate_similarity(src, dst)
    out = warp_face(image, src, ARCFACE_112)[0]
    peak = np.unravel_index(int(out.argmax()), out.shape)
    u, v = transform_points(np.array([[x, y]], dtype=float), m)[0]
    assert abs(peak[1] - u) <= 0.5 and abs(peak[0] - v) <= 0.5


def test_warped_landmarks_land_on_the_template() -> None:
    marks = np.array([[102.2, 112.3], [144.8, 111.6], [126.2, 141.8], [104.5, 156.5],
                      [147.3, 154.6]])
    m = estimate_similarity(marks, ARCFACE_112.as_array())
    moved = transform_points(marks, m)
    target = ARCFACE_112.as_array()
    # A similarity cannot fit five real points exactly: the least-squares fit puts their
    # centroid exactly on the template's and each point within a few pixels of its target.
    np.testing.assert_allclose(moved.mean(axis=0), target.mean(axis=0), atol=1e-9)
    assert np.linalg.norm(moved - target, axis=1).max() < 8.0


def test_area_resize_equals_torch_area_interpolation() -> None:
    """The numpy pyramid/crop resize is torch's interpolate(mode='area') (the nets' training
    pipeline), also for sizes that do not divide."""
    image = _rgb(lfw_image("Aaron_Peirsol", 1)).transpose(2, 0, 1).astype(np.float32)
    for size in ((150, 150), (61, 97), (24, 24), (250, 13)):
        ours = detect.area_resize(image, *size)
        ref = torch.nn.functional.interpolate(torch.from_numpy(image)[None], size=size,
                                              mode="area")[0].numpy()
        np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_warp_face_output_and_no_input_mutation() -> None:
    image = _rgb(lfw_image("Aaron_Peirsol", 1)).copy()
    before = image.copy()
    out = warp_face(image, DLIB_150.as_array() + 50, DLIB_150)
    assert out.shape == (3, 150, 150) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 255.0
    np.testing.assert_array_equal(image, before)
    with pytest.raises(InvalidArgument):
        warp_face(image, np.zeros((4, 2)), DLIB_150)


# --- choosing a face ----------------------------------------------------------------------------


def _det(box: tuple[float, float, float, float], score: float = 0.99) -> Detection:
    return Detection(box=np.array(box, dtype=np.float32), landmarks=np.zeros((5, 2)), score=score)


def test_choose_face_policies_differ() -> None:
    big_corner = _det((0, 0, 120, 120))
    small_centre = _det((110, 110, 140, 140))
    faces = [small_centre, big_corner]
    assert choose_face(faces, (250, 250, 3), "largest") is big_corner
    assert choose_face(faces, (250, 250, 3), "center") is small_centre
    with pytest.raises(InvalidArgument):
        choose_face(faces, (250, 250, 3), "leftmost")
    with pytest.raises(NoFaceFound):
        choose_face([], (250, 250, 3), "center")


def test_fallback_detection_is_a_centred_upright_face() -> None:
    det = fallback_detection((250, 250, 3))
    lm = det.landmarks
    assert det.score == 0.0
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()
    centre = (det.box[:2] + det.box[2:]) / 2
    assert np.all(np.abs(centre - 125) < 15)
    # Scales with the image size.
    np.testing.assert_allclose(fallback_detection((500, 500, 3)).landmarks, 2 * lm, rtol=1e-6)
