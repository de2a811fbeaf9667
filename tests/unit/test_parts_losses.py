"""The part-filter head's building blocks: SAD, LMF, FAD and the warped rectangle occlusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.align.templates import ARCFACE_112
from facexplain.datasets.occlusion import default_region
from facexplain.datasets.warped_occlusion import RectangleWarper, random_rectangles
from facexplain.errors import InvalidArgument
from facexplain.heads.parts import PartsHead, PartsHeadConfig, lmf
from facexplain.losses.diversity import (
    fad_loss,
    fad_mask,
    gaussian_smooth,
    sad_filter_loss,
    sad_response_loss,
)
from facexplain.train.parts import epoch_batches


def test_sad_filter_loss_is_zero_for_orthogonal_filters_and_positive_otherwise() -> None:
    eye = torch.eye(8).reshape(8, 8, 1, 1).repeat(1, 1, 3, 3)  # filter i = e_i at every position
    assert float(sad_filter_loss(eye)) == pytest.approx(0.0, abs=1e-7)
    mixed = eye.clone()
    mixed[1] = eye[0] + 0.5 * eye[1]
    assert float(sad_filter_loss(mixed)) > 0.01
    same = torch.randn(1, 16, 3, 3).repeat(4, 1, 1, 1)  # identical filters: the worst case
    assert float(sad_filter_loss(same)) == pytest.approx(1.0, rel=1e-5)


def test_sad_response_loss_separates_disjoint_from_overlapping_peaks() -> None:
    maps = torch.zeros(1, 3, 10, 10)
    maps[0, 0, 1, 1] = maps[0, 1, 8, 8] = maps[0, 2, 1, 8] = 1.0
    assert float(sad_response_loss(maps, sigma=0.0)) == pytest.approx(0.0, abs=1e-7)
    near = maps.clone()
    near[0, 1] = 0
    near[0, 1, 2, 2] = 1.0  # next to filter 0's peak: only the smoothing makes them overlap
    assert float(sad_response_loss(near, sigma=0.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(sad_response_loss(near, sigma=1.0)) > 0.05


def test_gaussian_smooth_keeps_mass_inside_and_spreads_a_peak() -> None:
    maps = torch.zeros(1, 1, 11, 11)
    maps[0, 0, 5, 5] = 1.0
    out = gaussian_smooth(maps, 1.0)
    assert float(out.sum()) == pytest.approx(1.0, rel=1e-5)
    assert 0 < float(out[0, 0, 5, 6]) < float(out[0, 0, 5, 5]) < 1.0


def test_lmf_zeroes_the_smallest_share_of_each_channel_only() -> None:
    psi = torch.randn(2, 3, 6, 6)
    out = lmf(psi, 0.5)
    for n in range(2):
        for c in range(3):
            kept = out[n, c] != 0
            assert int(kept.sum()) == 18
            smallest_kept = psi[n, c].abs()[kept].min()
            assert bool((psi[n, c].abs()[~kept] <= smallest_kept).all())
            assert torch.equal(out[n, c][kept], psi[n, c][kept])
    assert torch.equal(lmf(psi, 0.0), psi)
    with pytest.raises(InvalidArgument):
        lmf(psi, 1.0)


def test_fad_mask_keeps_the_dimensions_the_occlusion_moved_least() -> None:
    clean = torch.ones(4, 6)
    occluded = clean.clone()
    occluded[:, 2] -= 0.9  # the occluder hits dimensions 2 and 5
    occluded[:, 5] += 0.5
    tau = fad_mask(clean, occluded, keep=4)
    assert tau.tolist() == [1, 1, 0, 1, 1, 0]
    assert fad_mask(clean, occluded, threshold=0.05).tolist() == [1, 1, 0, 1, 1, 0]
    assert float(fad_loss(clean, occluded, tau)) == 0.0  # only the kept dims are pulled together
    assert float(fad_loss(clean, occluded, torch.ones(6))) > 0
    with pytest.raises(InvalidArgument):
        fad_mask(clean, occluded)


def test_fad_gradients_flow_to_both_branches_through_kept_dims_only() -> None:
    clean = torch.randn(8, 5, requires_grad=True)
    occluded = (clean.detach() + torch.tensor([0, 0, 3.0, 0, 0])).requires_grad_()
    tau = fad_mask(clean, occluded, keep=4)
    fad_loss(clean, occluded + 0.1, tau).backward()
    assert occluded.grad is not None and float(occluded.grad[:, 2].abs().sum()) == 0.0
    assert float(occluded.grad[:, 0].abs().sum()) > 0


def test_rectangle_warp_is_exact_on_the_template_and_follows_a_moved_face() -> None:
    template = ARCFACE_112.as_array()
    warper = RectangleWarper(template, 112)
    rects = random_rectangles(6, 112, default_region(112), seed=3)
    for r in rects:
        assert np.allclose(warper.warp(r, template), r, atol=1e-9)
        side = sorted(np.ptp(r, axis=0))
        assert side == pytest.approx([12 * 112 / 96, 32 * 112 / 96])
    shifted = template + np.array([3.0, -2.0])  # a face translated inside the crop
    quad = warper.warp(rects[0], shifted)
    inner = np.abs(rects[0] - template.mean(axis=0)).max() < 25  # corner far from the border
    if inner:
        assert np.allclose(quad - rects[0], [3.0, -2.0], atol=1.5)
    mask = warper.mask(rects[0], template)
    assert abs(int(mask.sum()) - 12 * 32 * (112 / 96) ** 2) < 0.15 * 12 * 32 * (112 / 96) ** 2


def test_batches_share_one_physical_occlusion() -> None:
    rng = np.random.default_rng(0)
    rect_of = rng.integers(4, size=500)
    subset = np.arange(0, 500, 2)
    batches = epoch_batches(subset, rect_of, 32, rng)
    assert batches and all(len(np.unique(rect_of[b])) == 1 for b in batches)
    assert set(np.concatenate(batches)) <= set(subset)


def test_head_shapes_and_lmf_embedding() -> None:
    cfg = PartsHeadConfig(backbone="sface", nodes=("a", "b", "c"), in_channels=(4, 6, 8),
                          grid=14, late_size=7, n_filters=10, branch_channels=5)
    head = PartsHead(cfg).eval()
    psi, f = head(torch.randn(2, 4, 28, 28), torch.randn(2, 6, 14, 14), torch.randn(2, 8, 7, 7))
    assert psi.shape == (2, 10, 14, 14) and f.shape == (2, 10)
    assert torch.allclose(f, lmf(psi, cfg.lmf_drop).mean(dim=(2, 3)))
