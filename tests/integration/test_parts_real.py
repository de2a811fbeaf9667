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
    landmarks68_of,
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


def _eyes_hidden_data(pipe: FacePipeline, tmp_path: Path) -> PartsData:
    """16 real photos of 4 people, clean and with both eyes blacked out."""
    spec = get_spec("sface")
    paths = [lfw_image(name, i) for name in PEOPLE for i in range(1, 5)]
    located = _locate(pipe, paths)
    nodes = nodes_for("sface")
    rects = [np.array([[40.0, 45], [77, 45], [77, 59], [40, 59]])]  # over both eyes
    marks = np.stack([aligned_landmarks(located[p], spec) for p in paths])
    clean = extract_head_inputs(pipe.model, spec, nodes, 14, paths, located, tmp_path,
                                progress=False)
    occluded = extract_head_inputs(pipe.model, spec, nodes, 14, paths, located, tmp_path,
                                   transform=rectangle_occluder(spec, spec.alignment.as_array(),
                                                                marks, lambda i: rects[0]),
                                   tag="eyes", progress=False)
    assert clean.early.shape == (16, 256, 14, 14) and clean.late.shape == (16, 1024, 7, 7)
    assert not torch.equal(clean.middle, occluded.middle)
    return PartsData(paths, clean, occluded, np.repeat(np.arange(4), 4), np.zeros(16, int),
                     rects, marks, marks)


def test_tiny_training_run_lowers_the_loss_and_round_trips(pipe: FacePipeline,
                                                          tmp_path: Path) -> None:
    data = _eyes_hidden_data(pipe, tmp_path)
    clean = data.clean
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


def test_unfrozen_trial_moves_only_the_tail_and_round_trips(pipe: FacePipeline,
                                                            tmp_path: Path) -> None:
    """--unfreeze: the backbone's layers from the middle map to the late one train with the
    head; the pipeline's own backbone stays as it was, the head computes its late map itself,
    and a checkpoint holds just the moved weights."""
    from facexplain.errors import InvalidArgument
    from facexplain.heads.parts_tail import BackboneTail

    data = _eyes_hidden_data(pipe, tmp_path)
    shared = {n: p.detach().clone() for n, p in pipe.model.named_parameters()}
    cfg = PartsTrainConfig(variant="sad+fad", n_filters=16, branch_channels=8, epochs=4,
                           batch=8, lr=3e-3, tail_lr=1e-3, unfreeze=True, cache_dir=tmp_path)
    result = train_parts_head(data, np.arange(16), cfg, progress=False)
    head = result.head
    assert head.tail is not None and cfg.checkpoint_suffix == "-f16-unfrozen-lr0.001"
    default_rate = PartsTrainConfig(n_filters=16, unfreeze=True)
    assert default_rate.checkpoint_suffix == "-f16-unfrozen"  # another rate is stored apart
    pretrained = dict(pipe.model.graph.named_parameters())
    names = sorted(head.tail.weights.keys())
    assert names and all(n.startswith(("conv_13", "conv_14")) for n in names)  # sface's tail
    moved = [float((head.tail.weights[n] - pretrained[n]).detach().abs().max()) for n in names]
    assert min(moved) > 0
    assert min(head.tail.relative_change().values()) > 0  # what bench/tail_moved.py reports
    assert all(torch.equal(p, shared[n]) for n, p in pipe.model.named_parameters())
    e, m, lt = data.clean.take(np.arange(3))
    with torch.no_grad():
        f = head(e, m, lt)[1]
        assert torch.equal(f, head(e, m, torch.zeros_like(lt))[1])  # late: the tail's own
        assert not torch.allclose(head.tail(m), lt.float(), atol=1e-3)  # and it moved
    saved = save_head(head, tmp_path / "unfrozen.safetensors")
    from safetensors.torch import load_file

    stored = load_file(str(saved))
    assert sum(k.startswith("tail.") for k in stored) == len(names)
    assert sum(v.numel() for v in stored.values()) < 2_500_000  # not the whole backbone
    with torch.inference_mode():  # as the filter study loads it
        again, _ = load_head(saved)
        assert torch.allclose(f, again(e, m, lt)[1], atol=1e-5)
    with pytest.raises(InvalidArgument, match="not a graph model"):
        BackboneTail("dlib-resnet", "conv64", "conv128")


def test_68_point_mesh_keeps_the_rectangle_on_the_eye_of_a_turned_face(pipe: FacePipeline,
                                                                      tmp_path: Path) -> None:
    """The paper's mesh: 68 landmarks (face-api's net) on every aligned crop, the template the
    mean shape of four other people; a template rectangle on the left eye lands on each face's
    own left eye (points 36-41), upright and rotated by 15 degrees, and those eye points agree
    with the five-point detector's."""
    from facexplain.align.landmarks68 import landmarks68, load_landmarks68

    net = load_landmarks68()
    photo = lfw_image("Colin_Powell", 1)
    turned = tmp_path / "turned.jpg"
    with Image.open(photo) as im:
        im.rotate(15, resample=Image.Resampling.BILINEAR).save(turned)
    others = [lfw_image(name, 1) for name in PEOPLE[1:]]
    crops = torch.from_numpy(np.stack([pipe.align_path(p).array for p in
                                       [photo, turned, *others]]).astype(np.float32))
    marks = landmarks68(crops, net).numpy().astype(np.float64)
    warper = RectangleWarper(marks[2:].mean(axis=0), pipe.spec.input_size)
    assert len(warper.mesh.simplices) > 100  # the paper's mesh has 142 triangles
    eye = marks[2:, 36:42].mean(axis=(0, 1))
    k = pipe.spec.input_size / 96
    corners = eye + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [RECT_LONG * k / 2,
                                                                      RECT_SHORT * k / 2]
    five = {p: aligned_landmarks(loc, pipe.spec) for p, loc in
            _locate(pipe, [photo, turned]).items()}
    for face, path in zip(marks[:2], (photo, turned), strict=True):
        own_eye = face[36:42].mean(axis=0)
        eye_dist = float(np.linalg.norm(face[42:48].mean(axis=0) - own_eye))
        quad = warper.warp(corners, face)
        assert np.abs((quad.mean(axis=0) - own_eye) / eye_dist).max() < 0.05, path
        assert warper.mask(corners, face)[int(own_eye[1]), int(own_eye[0])], path
        assert np.linalg.norm(five[path][0] - own_eye) / eye_dist < 0.15  # the detector agrees
    with pytest.raises(Exception, match="68 landmarks"):
        warper.warp(corners, five[photo])  # five points on a 68-point mesh: refused


def test_68_point_occlusion_and_the_augmented_baseline(pipe: FacePipeline,
                                                      tmp_path: Path) -> None:
    """The paper's mesh in training: face-api's 68 points on every aligned crop (cached: a
    second call reads the same points back), an eye rectangle warped through them blacks out
    each face's own left eye; 'base-aug' learns identity from the occluded faces too, without
    SAD or FAD."""
    spec = get_spec("sface")
    paths = [lfw_image(name, i) for name in PEOPLE for i in range(1, 5)]
    located = _locate(pipe, paths)
    marks = landmarks68_of(spec, paths, located, tmp_path, progress=False)
    assert marks.shape == (16, 68, 2)
    assert np.array_equal(marks, landmarks68_of(spec, paths, located, tmp_path, progress=False))
    template = marks.mean(axis=0)
    eye = template[36:42].mean(axis=0)
    k = spec.input_size / 96
    rect = eye + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [RECT_LONG * k / 2,
                                                                    RECT_SHORT * k / 2]
    occlude = rectangle_occluder(spec, template, marks, lambda i: rect)
    from facexplain.train.features import aligned_batch

    faces = aligned_batch(paths, located, spec)
    hidden = occlude(faces, np.arange(16))
    for i in range(16):
        x, y = marks[i, 36:42].mean(axis=0).astype(int)
        assert float(hidden[i, :, y, x].abs().max()) == 0.0, paths[i]  # own left eye: black
        assert not torch.equal(hidden[i, :, 100:, :], hidden[i, :, 100:, :] * 0)  # chin: kept
    nodes = nodes_for("sface")
    clean = extract_head_inputs(pipe.model, spec, nodes, 14, paths, located, tmp_path,
                                progress=False)
    occluded = extract_head_inputs(pipe.model, spec, nodes, 14, paths, located, tmp_path,
                                   transform=occlude, tag="eye68", progress=False)
    data = PartsData(paths, clean, occluded, np.repeat(np.arange(4), 4), np.zeros(16, int),
                     [rect], marks[:, :5], marks)
    cfg = PartsTrainConfig(variant="base-aug", n_filters=16, branch_channels=8, epochs=8,
                           batch=8, lr=3e-3, cache_dir=tmp_path, mesh=68)
    result = train_parts_head(data, np.arange(16), cfg, progress=False)
    first, last = result.history[0], result.history[-1]
    assert set(first) == {"epoch", "id", "id_occluded"}  # no SAD, no FAD
    assert last["id_occluded"] < first["id_occluded"]
    assert cfg.checkpoint_suffix == "-f16-mesh68" and cfg.occlusion_tag.endswith("-mesh68")
    with pytest.raises(Exception, match="mesh must be one of 5, 68"):
        PartsTrainConfig(mesh=12)


def test_filter_study_draws_fig7_with_its_numbers(tmp_path: Path) -> None:
    """`analyze filters` end to end on real held-out LFW photos and the real backbone, with two
    small heads of another N_f (stored apart by their suffix): Fig. 7 is drawn, and every one of
    the six occluded places has its largest change, mean change and rank correlation with
    distance in filters.json."""
    from facexplain import settings
    from facexplain.benchmarks.filter_study import FilterStudyConfig, run_filter_study
    from facexplain.heads.parts import PartsHead, PartsHeadConfig, checkpoint_path

    home = tmp_path / "home"
    home.mkdir()
    for entry in settings.current().home.iterdir():  # the real models; heads of our own
        if entry.name not in ("parts", "records"):
            (home / entry.name).symlink_to(entry)
    torch.manual_seed(0)
    for variant in ("base", "sad+fad"):
        head = PartsHead(PartsHeadConfig(
            backbone="sface", nodes=nodes_for("sface"), in_channels=(256, 512, 1024), grid=14,
            late_size=7, n_filters=16, branch_channels=8, lmf_drop=0.8, n_classes=4))
        save_head(head.eval(), checkpoint_path("sface", variant, "half1-f16", home))
    lfw = settings.current().lfw
    cfg = FilterStudyConfig(backbone="sface", fold="half1", n_images=6,
                            lfw_images=lfw / "lfw-deepfunneled", lfw_pairs=lfw / "pairs.txt",
                            cache_dir=tmp_path / "cache", heads_suffix="-f16", home=home,
                            progress=False)
    doc = run_filter_study(cfg, tmp_path / "out")
    assert (tmp_path / "out" / "fig7_occlusion_locations.png").stat().st_size > 10_000
    for variant in ("base", "sad+fad"):
        occlusion = doc["variants"][variant]["occlusion"]  # type: ignore[index]
        assert list(occlusion) == list(cfg.occlusions)
        for place in occlusion.values():
            assert place["max_abs_change"] >= place["mean_abs_change"] > 0
            assert -1 <= place["spearman_change_vs_distance"] <= 1
    with pytest.raises(Exception, match="no 'base' part-filter head"):
        run_filter_study(FilterStudyConfig(backbone="sface", fold="half1", home=home,
                                           lfw_images=cfg.lfw_images, lfw_pairs=cfg.lfw_pairs),
                         tmp_path / "none")
