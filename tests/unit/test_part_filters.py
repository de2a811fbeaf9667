"""Part-filter analysis and the parts method's arithmetic, on closed-form inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.align.templates import ARCFACE_112
from facexplain.analysis.filters import occlusion_locality, part_rectangles
from facexplain.errors import InvalidArgument
from facexplain.explain.parts import distance_terms, shares_of
from facexplain.heads.parts_readout import cell_to_pixel, part_of, peak_locations, peak_statistics

TEMPLATE = ARCFACE_112.as_array()


def test_peak_locations_find_known_maximum_and_minimum() -> None:
    maps = torch.zeros(2, 3, 5, 6)
    known = {(0, 0): ((1, 2), (4, 5)), (0, 1): ((0, 0), (3, 1)), (0, 2): ((2, 3), (0, 5)),
             (1, 0): ((4, 0), (0, 1)), (1, 1): ((2, 2), (2, 4)), (1, 2): ((3, 5), (1, 1))}
    for (n, k), ((pr, pc), (nr, nc)) in known.items():
        maps[n, k, pr, pc] = 2.0
        maps[n, k, nr, nc] = -1.5
    pos, neg = peak_locations(maps)
    assert pos.shape == neg.shape == (2, 3, 2) and pos.dtype == np.float64
    for (n, k), (p, q) in known.items():
        assert tuple(pos[n, k]) == p
        assert tuple(neg[n, k]) == q
    np_pos, _ = peak_locations(maps.numpy())  # numpy in, same answer
    assert np.array_equal(np_pos, pos)
    with pytest.raises(InvalidArgument):
        peak_locations(torch.zeros(3, 4, 4))


def test_peak_statistics_on_constructed_locations() -> None:
    # filter 0 alternates between (2, 2) and (2, 4): mean (2, 3), every peak 1 cell away
    # filter 1 always at (6, 3): std 0; means (2, 3) and (6, 3) -> centroid (4, 3), spread 2
    loc = np.zeros((4, 2, 2))
    loc[:, 0] = [[2, 2], [2, 4], [2, 2], [2, 4]]
    loc[:, 1] = [6, 3]
    s = peak_statistics(loc, grid=8)
    assert np.allclose(s.mean, [[2, 3], [6, 3]])
    assert np.allclose(s.std, [1.0, 0.0])
    assert s.spread == pytest.approx(2.0)
    assert s.median_std == pytest.approx(0.5)
    assert s.n_images == 4 and s.grid == 8
    # the paper's magnitude weighting: all weight on the first image -> its peak, std 0
    w = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    sw = peak_statistics(loc, grid=8, weights=w)
    assert np.allclose(sw.mean[0], [2, 2]) and sw.std[0] == pytest.approx(0.0)
    assert set(s.to_json()) >= {"spread", "median_std", "mean", "std"}
    with pytest.raises(InvalidArgument):
        peak_statistics(loc, grid=4)  # a location outside the grid


def _cell_at(x: float, y: float, grid: int = 14, size: int = 112) -> np.ndarray:
    """The (row, col) whose cell centre is the pixel (x, y) (fractional cells allowed)."""
    return np.array([(y + 0.5) * grid / size - 0.5, (x + 0.5) * grid / size - 0.5])


def test_part_of_names_the_template_landmarks_and_the_regions_around_them() -> None:
    names = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
    for (x, y), name in zip(TEMPLATE, names, strict=True):
        loc = _cell_at(x, y)
        assert np.allclose(cell_to_pixel(loc, 14, 112), [x, y])
        assert part_of(loc, TEMPLATE, 14, 112) == name
        assert part_of(_cell_at(x + 5, y - 4), TEMPLATE, 14, 112) == name  # close by
    assert part_of(_cell_at(56, 22), TEMPLATE, 14, 112) == "forehead"
    assert part_of(_cell_at(56, 108), TEMPLATE, 14, 112) == "chin"
    assert part_of(_cell_at(26, 75), TEMPLATE, 14, 112) == "left cheek"
    assert part_of(_cell_at(86, 75), TEMPLATE, 14, 112) == "right cheek"
    assert part_of(_cell_at(3, 60), TEMPLATE, 14, 112) == "background/border"
    assert part_of(_cell_at(56, 3), TEMPLATE, 14, 112) == "background/border"


def test_part_rectangles_are_32_by_12_of_a_96_frame_centred_on_the_parts() -> None:
    rects = part_rectangles(TEMPLATE, 112)
    assert set(rects) == {"left eye", "right eye", "nose", "mouth", "forehead", "left cheek",
                          "right cheek"}
    k = 112 / 96
    for name, r in rects.items():
        w, h = r[:, 0].max() - r[:, 0].min(), r[:, 1].max() - r[:, 1].min()
        standing = name == "nose" or name.endswith("cheek")
        expected = (12 * k, 32 * k) if standing else (32 * k, 12 * k)
        assert (w, h) == pytest.approx(expected)
        assert r.min() >= 0 and r.max() <= 111
    assert rects["left eye"].mean(axis=0) == pytest.approx(TEMPLATE[0])
    assert rects["nose"].mean(axis=0) == pytest.approx(TEMPLATE[2])
    centre = {n: r.mean(axis=0) for n, r in rects.items()}
    assert centre["forehead"][1] < centre["left eye"][1]  # above the eyes (y grows downwards)
    assert centre["left cheek"][0] < TEMPLATE[2][0] < centre["right cheek"][0]
    assert TEMPLATE[2][1] < centre["left cheek"][1] < centre["mouth"][1]


def test_occlusion_locality_is_minus_one_when_change_falls_with_distance() -> None:
    """Filters on a line away from the rectangle's centre, changing less the farther they are:
    ρ = -1; the same changes shuffled against distance: ρ near 0; the largest change is read."""
    corners = np.array([[10.0, 10], [20, 10], [20, 14], [10, 14]])
    peaks = np.column_stack([15 + np.arange(40.0), np.full(40, 12.0)])
    change = 1.0 / (1.0 + np.arange(40.0))
    near = occlusion_locality(change, peaks, corners)
    assert near["spearman_change_vs_distance"] == pytest.approx(-1.0)
    assert near["max_abs_change"] == 1.0
    assert near["mean_abs_change"] == pytest.approx(change.mean())
    shuffled = np.random.default_rng(0).permutation(change)
    assert abs(occlusion_locality(shuffled, peaks, corners)["spearman_change_vs_distance"]) < 0.4
    assert occlusion_locality(np.zeros(40), peaks, corners)["spearman_change_vs_distance"] == 0


def test_distance_terms_sum_to_one_minus_cosine() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    terms = distance_terms(a, b)
    cos = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0)
    assert float(terms.sum()) == pytest.approx(1 - float(cos), abs=1e-12)
    assert float(shares_of(terms).sum()) == pytest.approx(1.0)
    assert float(shares_of(distance_terms(a, 3 * a)).sum()) == 0.0  # same direction: no share
    with pytest.raises(InvalidArgument):
        distance_terms(a, b[:10])


def test_a_filter_whose_peak_wanders_is_named_loose() -> None:
    from facexplain.explain.parts import parts_from_meta
    from facexplain.heads.parts import PartsHead, PartsHeadConfig, nodes_for

    head = PartsHead(PartsHeadConfig(backbone="sface", nodes=nodes_for("sface"),
                                     in_channels=(4, 4, 4), grid=14, late_size=7, n_filters=2,
                                     branch_channels=2))
    eye = [6.0, 4.5]  # near the image-left eye of the 112 template on the 14-cell grid
    names = parts_from_meta({"peaks": {"mean": [eye, eye], "std": [0.5, 5.0]}}, head)
    assert names is not None
    assert "loose" not in names[0] and names[1].startswith(names[0]) and "loose" in names[1]
