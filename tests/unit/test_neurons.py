"""Sparsity and selectivity on synthetic responses with known answers, and the LBP descriptor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.analysis.lbp import LbpConfig, lbp_features, lbp_histograms
from facexplain.analysis.neurons import (
    SortedColumns,
    balanced_accuracy,
    best_single_neuron,
    constant_neurons,
    linear_probe_accuracy,
    sparsity,
    sparsity_of_codes,
    split_by_group,
    split_within_groups,
)
from facexplain.errors import InvalidArgument
from facexplain.search.binary import encode


def test_sparsity_known_fractions() -> None:
    x = np.array([[1.0, -1.0, 0.0, 2.0], [1.0, 1.0, 1.0, -3.0]])
    s = sparsity(x)
    assert s.per_image.tolist() == [0.5, 0.75]  # 0 is not activated
    assert s.per_neuron.tolist() == [1.0, 0.5, 0.5, 0.5]
    assert s.summary()["always_on_neurons"] == 1


def test_sparsity_of_packed_codes_matches_dense() -> None:
    x = np.random.default_rng(0).standard_normal((37, 150)) + 0.3
    dense, packed = sparsity(x), sparsity_of_codes(encode(x), chunk=8)
    assert np.allclose(dense.per_image, packed.per_image)
    assert np.allclose(dense.per_neuron, packed.per_neuron)


def planted(n: int = 600, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Noise responses with one neuron that is high exactly on the positive class."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.1
    x = rng.standard_normal((n, d))
    neuron = 17
    x[:, neuron] = np.where(y, 2.0, -2.0) + 0.3 * rng.standard_normal(n)
    return x, y, neuron


def test_planted_selective_neuron_is_found() -> None:
    x, y, neuron = planted()
    train = np.arange(x.shape[0]) % 2 == 0
    rule = best_single_neuron(SortedColumns(x[train]), y[train])
    assert rule.neuron == neuron and rule.polarity == 1
    assert -1.0 < rule.threshold < 1.0
    assert rule.train_accuracy == 1.0
    assert balanced_accuracy(rule.predict(x[~train]), y[~train]) == 1.0


def test_planted_inhibited_neuron_gets_negative_polarity() -> None:
    x, y, neuron = planted(seed=1)
    x[:, neuron] *= -1
    rule = best_single_neuron(SortedColumns(x), y)
    assert rule.neuron == neuron and rule.polarity == -1
    assert balanced_accuracy(rule.predict(x), y) == 1.0


def test_best_neuron_score_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    x = np.round(rng.standard_normal((80, 6)), 1)  # ties on purpose
    y = rng.random(80) < 0.3
    rule = best_single_neuron(SortedColumns(x), y)
    best = 0.0
    for j in range(6):
        for t in np.unique(x[:, j]):
            b = balanced_accuracy(x[:, j] > t, y) if (x[:, j] > t).any() else 0.5
            best = max(best, b, 1 - b)
    assert rule.train_accuracy == pytest.approx(best)
    assert balanced_accuracy(rule.predict(x), y) == pytest.approx(best)


def test_constant_neurons() -> None:
    x = np.zeros((10, 3))
    members = np.zeros(10, dtype=bool)
    members[:5] = True
    x[:5, 0] = 1.0        # on for every member: excited
    x[:, 1] = 1.0
    x[:5, 1] = -1.0       # off for every member: inhibited
    x[:, 2] = np.arange(10) % 2  # half and half: neither
    c = constant_neurons(x, members, level=0.9)
    assert c.excited.tolist() == [0] and c.inhibited.tolist() == [1]


def test_balanced_accuracy_needs_both_classes() -> None:
    with pytest.raises(InvalidArgument):
        balanced_accuracy(np.ones(3, dtype=bool), np.ones(3, dtype=bool))


def test_linear_probe_separates_planted_classes() -> None:
    x, y, _ = planted()
    train = np.arange(x.shape[0]) % 2 == 0
    assert linear_probe_accuracy(x[train], y[train], x[~train], y[~train]) > 0.95


def test_splits() -> None:
    rng = np.random.default_rng(3)
    groups = np.repeat(np.array(["a", "b", "c", "d"]), [10, 4, 1, 6])
    within = split_within_groups(groups, rng)
    for g, n in (("a", 10), ("b", 4), ("d", 6)):
        assert within[groups == g].sum() == n // 2
    by_group = split_by_group(groups, rng)
    for g in "abcd":
        assert len(set(by_group[groups == g].tolist())) == 1


def test_lbp_shapes_and_normalisation() -> None:
    cfg = LbpConfig()
    faces = torch.rand(2, 3, 112, 112) * 255
    f = lbp_features(faces, cfg)
    assert f.shape == (2, cfg.dim) and f.dtype == np.float32
    # every cell's histogram sums to 1 before the square root
    assert np.allclose((f**2).sum(axis=1), sum(g * g for g in cfg.grids), atol=1e-3)


def test_lbp_flat_image_has_one_pattern() -> None:
    h = lbp_histograms(np.full((112, 112), 128, dtype=np.uint8))
    assert (h > 0).sum() == sum(g * g for g in LbpConfig().grids)  # one bin per cell
