"""The part-filter head on real faces: warped occlusion follows pose, a tiny training learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facexplain.backbones.registry import get_spec
from facexplain.datasets.warped_occlusion import RECT_LONG, RECT_SHORT, RectangleWarper
from facexplain.heads.parts import load_head, nodes_for, save_head
from facexplain.io import load_image
from facexplain.pipeline import FacePipeline
from facexplain.train.parts import PartsData, PartsTrainConfig, train_parts_head
from facexplain.train.parts_features import (
    aligned_landmarks,
    extract_head_inputs,
    rectangle_occluder,
)
from facexplain.types import LocatedFace
from tests.conftest import lfw_image

PEOPLE = ("Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder")


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline("sface")


def _locate(pipe: FacePipeline, paths: list[Path]) -> dict[Path, LocatedFace]:
    return {p: pipe.locate(load_image(p), policy="center", source=str(p)) for p in paths}


def test_warped_rectangle_stays_on_the_eye_of_a_turned_face(pipe: FacePipeline,
                                                           tmp_path: Path) -> None:
    """The same template rectangle (on the left eye) on a real face and on the same face
    rotated by 15 degrees: both quadrilaterals sit on the detected left eye."""
    spec = get_spec("sface")
    photo = lfw_image("Colin_Powell", 1)
    turned = tmp_path / "turned.jpg"
    with Image.open(photo) as im:
        im.rotate(15, resample=Image.Resampling.BILINEAR).save(turned)
    warper = RectangleWarper(spec.alignment.as_array(), spec.input_size)
    eye = spec.alignment.as_array()[0]
    k = spec.input_size / 96
    corners = eye + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [RECT_LONG * k / 2,
                                                                      RECT_SHORT * k / 2]
    offsets = []
    for path, loc in _locate(pipe, [photo, turned]).items():
        marks = aligned_landmarks(loc, spec)
        # the similarity alignment leaves residual pose: the crop's eye is not the template's
        quad = warper.warp(corners, marks)
        eye_dist = float(np.linalg.norm(marks[1] - marks[0]))
        offsets.append((quad.mean(axis=0) - marks[0]) / eye_dist)
        assert warper.mask(corners, marks)[int(marks[0][1]), int(marks[0][0])], path
    for off in offsets:
        assert np.abs(off).max() < 0.05  # centred on the eye within 5% of the eye distance


def test_tiny_training_run_lowers_the_loss_and_round_trips(pipe: FacePipeline,
                                                          tmp_path: Path) -> None:
    spec = get_spec("sface")
    paths = [lfw_image(name, i) for name in PEOPLE for i in range(1, 5)]
    located = _locate(pipe, paths)
    nodes = nodes_for("sface")
    rects = [np.array([[40.0, 45], [77, 45], [77, 59], [40, 59]])]  # over both eyes
    clean = extract_head_inputs(pipe.model, spec, nodes, 14, paths, located, tmp_path,
                                progress=False)
    occluded = extract_head_inputs(pipe.model, spec, nodes, 14, paths, located, tmp_path,
                                   transform=rectangle_occluder(spec, paths, located,
                                                                lambda i: rects[0]),
                                   tag="eyes", progress=False)
    assert clean.early.shape == (16, 256, 14, 14) and clean.late.shape == (16, 1024, 7, 7)
    assert not torch.equal(clean.middle, occluded.middle)
    data = PartsData(paths, clean, occluded, np.repeat(np.arange(4), 4), np.zeros(16, int),
                     rects, np.stack([aligned_landmarks(located[p], spec) for p in paths]))
    cfg = PartsTrainConfig(variant="sad+fad", n_filters=16, branch_channels=8, epochs=12,
                           batch=8, lr=3e-3, cache_dir=tmp_path)
    result = train_parts_head(data, np.arange(16), cfg, progress=False)
    first, last = result.history[0], result.history[-1]
    assert {"id", "sad_filter", "sad_response", "fad", "id_occluded"} <= set(first)
    assert last["id"] < first["id"] and last["id_occluded"] < first["id_occluded"]
    saved = save_head(result.head, tmp_path / "head.safetensors", {"split": "test"})
    again, meta = load_head(saved)
    e, m, lt = clean.take(np.arange(3))
    assert meta["split"] == "test"
    assert torch.allclose(result.head(e, m, lt)[1], again(e, m, lt)[1], atol=1e-6)
