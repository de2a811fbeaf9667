"""Deletion curves on toy scores with a known best order; AUC; seeded random baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.benchmarks.pair_sets import interleaved, select_heldout_pairs
from facexplain.datasets.lfw import LfwPair
from facexplain.errors import InvalidArgument
from facexplain.metrics.faithfulness import (
    DEFAULT_FRACTIONS,
    curve_auc,
    deletion_curve,
    higher_is_better,
    insertion_curve,
    is_pairwise,
    pixel_curve,
    pixel_curves,
    pixel_ranks,
    random_ranking,
    summarize,
)

H = W = 4  # 16 pixels: fractions of 0.25 remove 4 pixels


def _values(perm_seed: int | None = None) -> torch.Tensor:
    """Pixel values 0..15 (optionally shuffled), as a (4, 4) map."""
    v = torch.arange(16, dtype=torch.float32)
    if perm_seed is not None:
        v = v[torch.randperm(16, generator=torch.Generator().manual_seed(perm_seed))]
    return v.reshape(H, W)


def _pair(va: torch.Tensor, vb: torch.Tensor) -> torch.Tensor:
    """Channel 0 carries the values, the other channels are zero."""
    pair = torch.zeros(2, 3, H, W)
    pair[0, 0], pair[1, 0] = va, vb
    return pair


def _toy_score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(A) + 2·sum(B) over channel 0: removing (zeroing) a pixel lowers it by its value."""
    return a[:, 0].sum(dim=(1, 2)) + 2 * b[:, 0].sum(dim=(1, 2))


def test_per_face_ranking_removes_each_face_top_pixels() -> None:
    va, vb = _values(), _values(perm_seed=1)
    pair = _pair(va, vb)
    ranking = torch.stack([va, vb])  # each face ranked by its own values: the best order
    fr = (0.0, 0.25, 0.5)
    curve = deletion_curve(_toy_score, pair, ranking, torch.zeros(3, H, W), fr)
    total = 120.0 * 3  # sum 0..15 = 120, face B counts twice
    top4, top8 = sum(range(12, 16)), sum(range(8, 16))
    np.testing.assert_allclose(curve, [total, total - 3 * top4, total - 3 * top8])
    # mean of the trapezoid over [0, 0.5]
    expected_auc = ((curve[0] + curve[1]) / 2 * 0.25 + (curve[1] + curve[2]) / 2 * 0.25) / 0.5
    assert curve_auc(fr, curve) == pytest.approx(expected_auc)
    worst = deletion_curve(_toy_score, pair, -ranking, torch.zeros(3, H, W), fr)
    assert curve_auc(fr, curve) < curve_auc(fr, worst)  # faster fall = smaller area


def test_pairwise_ranking_removes_same_positions_in_both_faces() -> None:
    va, vb = _values(), _values(perm_seed=2)
    pair = _pair(va, vb)
    shared = torch.stack([va, va])  # occlusion-style map: rows equal
    assert is_pairwise(shared)
    curve = deletion_curve(_toy_score, pair, shared, torch.zeros(3, H, W), (0.0, 0.25))
    top = va >= 12  # positions of A's four largest values, removed in both faces
    expected = 360.0 - float(va[top].sum()) - 2 * float(vb[top].sum())
    assert curve[1] == pytest.approx(expected)
    per_face = deletion_curve(_toy_score, pair, shared, torch.zeros(3, H, W), (0.0, 0.25),
                              shared=False)
    assert per_face[1] == pytest.approx(expected)  # same map row -> same positions anyway


def test_block_unit_ranks_squares_by_their_mean() -> None:
    va = _values()  # rows 0..3 hold 0-3, 4-7, 8-11, 12-15: the bottom-right 2x2 block is best
    pair = _pair(va, torch.zeros(H, W))
    curve = deletion_curve(_toy_score, pair, torch.stack([va, va]), torch.zeros(3, H, W),
                           (0.0, 0.25, 0.5), block=2)
    bottom_right = float(va[2:, 2:].sum())
    assert curve[1] == pytest.approx(120.0 - bottom_right)
    assert curve[2] == pytest.approx(120.0 - float(va[2:].sum()))  # both bottom blocks
    with pytest.raises(InvalidArgument):
        deletion_curve(_toy_score, pair, torch.stack([va, va]), torch.zeros(3, H, W), block=3)


def test_fill_value_and_no_mutation() -> None:
    pair = _pair(_values(), _values())
    before = pair.clone()
    fill = torch.full((3, H, W), 1.0)
    curve = deletion_curve(_toy_score, pair, torch.stack([_values(), _values()]), fill,
                           (0.0, 1.0))
    assert curve[1] == pytest.approx(16 * 1.0 + 2 * 16 * 1.0)  # every pixel became the fill
    assert torch.equal(pair, before)


def test_auc_normalised_by_range() -> None:
    assert curve_auc((0.0, 0.5), np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert curve_auc(DEFAULT_FRACTIONS, np.full(11, 0.3)) == pytest.approx(0.3)
    with pytest.raises(InvalidArgument):
        curve_auc((0.0, 0.5), np.array([1.0, 0.0, 2.0]))
    with pytest.raises(InvalidArgument):
        curve_auc((0.5, 0.0), np.array([1.0, 0.0]))


def test_random_ranking_and_ties_are_seeded() -> None:
    r1, r2 = random_ranking(H, W, seed=3), random_ranking(H, W, seed=3)
    assert torch.equal(r1, r2) and is_pairwise(r1)
    assert not torch.equal(r1, random_ranking(H, W, seed=4))
    assert not is_pairwise(random_ranking(H, W, seed=3, shared=False))
    flat = torch.zeros(2, H, W)  # all ties: a seeded shuffle, not raster order
    ranks = pixel_ranks(flat, seed=5)
    assert torch.equal(ranks, pixel_ranks(flat, seed=5))
    assert not torch.equal(ranks[0].flatten(), torch.arange(16))
    assert sorted(ranks[0].flatten().tolist()) == list(range(16))
    pair = _pair(_values(), _values(perm_seed=6))
    c1 = deletion_curve(_toy_score, pair, r1, torch.zeros(3, H, W), seed=1)
    c2 = deletion_curve(_toy_score, pair, r2, torch.zeros(3, H, W), seed=1)
    np.testing.assert_array_equal(c1, c2)


def test_summary_sign_per_kind() -> None:
    fr = (0.0, 0.5)
    rnd = np.array([[0.5, 0.5], [0.5, 0.5]])
    up = np.array([[0.5, 0.9], [0.5, 0.7]])
    s = summarize("m", "difference", fr, up, rnd)
    assert s.gain > 0 and s.better_than_random == 1.0 and s.n_pairs == 2
    s = summarize("m", "similarity", fr, up, rnd)
    assert s.gain < 0 and s.better_than_random == 0.0
    with pytest.raises(InvalidArgument):
        summarize("m", "other", fr, up, rnd)


def test_bad_shapes() -> None:
    pair = _pair(_values(), _values())
    with pytest.raises(InvalidArgument):
        deletion_curve(_toy_score, pair, torch.zeros(2, H + 1, W), torch.zeros(3, H, W))
    with pytest.raises(InvalidArgument):
        deletion_curve(_toy_score, pair[0], torch.zeros(2, H, W), torch.zeros(3, H, W))


def test_heldout_selection_uses_folds_6_to_10_disjoint_from_first_pairs() -> None:
    pairs = [LfwPair(f"p{f}_{i}", i, f"q{f}_{i}" if not same else f"p{f}_{i}", i + 1, same, f)
             for f in range(10) for same in (True, False) for i in range(40)]
    chosen = select_heldout_pairs(pairs, 60, (5, 6, 7, 8, 9))
    assert len(chosen) == 60 and sum(p.same for p in chosen) == 30
    assert {p.fold for p in chosen} == {5, 6, 7, 8, 9}
    assert all(p.index_a >= 40 - 6 for p in chosen)  # from the end of each block
    assert select_heldout_pairs(pairs, 60, (5, 6, 7, 8, 9)) == chosen
    with pytest.raises(InvalidArgument):
        select_heldout_pairs(pairs, 7, (5,))
    # an interrupted long run holds every smaller run's pairs, in the same order
    long, short = (interleaved(select_heldout_pairs(pairs, n, (5, 6, 7, 8, 9))) for n in (60, 20))
    assert long[:20] == short and [p.same for p in short[:4]] == [True, False, True, False]


def test_insertion_restores_top_pixels_from_the_fill() -> None:
    va, vb = _values(), _values(perm_seed=3)
    pair = _pair(va, vb)
    ranking = torch.stack([va, vb])
    fr = (0.0, 0.25, 0.5)
    curve = insertion_curve(_toy_score, pair, ranking, torch.zeros(3, H, W), fr)
    top4, top8 = sum(range(12, 16)), sum(range(8, 16))
    np.testing.assert_allclose(curve, [0.0, 3 * top4, 3 * top8])  # start: all fill (zeros)
    worst = insertion_curve(_toy_score, pair, -ranking, torch.zeros(3, H, W), fr)
    assert curve_auc(fr, curve) > curve_auc(fr, worst)
    assert higher_is_better("similarity", "insertion") and higher_is_better("difference")
    assert not higher_is_better("difference", "insertion")
    with pytest.raises(InvalidArgument):
        insertion_curve(_toy_score, pair, ranking, torch.zeros(3, H, W), fr, mode="other")


def test_batched_curves_equal_one_at_a_time_and_reuse_the_first_score() -> None:
    pair = _pair(_values(), _values(perm_seed=4))
    rankings = [torch.stack([_values(s), _values(s + 9)]) for s in range(5)]
    fill = torch.full((3, H, W), 0.5)
    calls: list[int] = []

    def counting(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(int(a.shape[0]))
        return _toy_score(a, b)

    for mode in ("deletion", "insertion"):
        single = [pixel_curve(_toy_score, pair, r, fill, mode=mode, seed=2) for r in rankings]
        first = single[0][0]
        calls.clear()
        batched = pixel_curves(counting, pair, rankings, fill, mode=mode, seed=2, batch_size=7,
                               first_score=first)
        for a, b in zip(single, batched, strict=True):
            np.testing.assert_allclose(a, b)
        counts = {round(f * H * W) for f in DEFAULT_FRACTIONS} - {0}  # fraction 0 reused,
        assert sum(calls) == 5 * len(counts)  # and a count two fractions round to: once
        assert max(calls) <= 7


def test_summary_gain_follows_the_protocol_direction() -> None:
    fr = (0.0, 0.5)
    low, high = np.array([[0.0, 0.2]]), np.array([[0.0, 0.8]])
    assert summarize("m", "difference", fr, high, low, mode="deletion").gain > 0
    assert summarize("m", "difference", fr, high, low, mode="insertion").gain < 0
    assert summarize("m", "similarity", fr, high, low, mode="insertion").gain > 0
