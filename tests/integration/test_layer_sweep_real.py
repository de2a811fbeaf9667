"""The per-layer sweep (paper 002) on six real LFW faces with the real SFace model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facexplain.backbones.base import EMBEDDING
from facexplain.benchmarks.layer_sweep import (
    LayerSweepConfig,
    _bit_distance,
    _pairs,
    _pass,
    _selectivity,
    _unit_rates,
    _verification_auc,
    stages_of,
)
from facexplain.pipeline import FacePipeline

pytestmark = pytest.mark.slow

def test_every_stage_is_measured_and_unoccluded_faces_flip_nothing(
        sface_pipe: FacePipeline, six_faces: torch.Tensor) -> None:
    nodes = stages_of(sface_pipe)
    assert nodes[-1] == EMBEDDING and len(nodes) >= 5
    clean, hidden = (_pass(LayerSweepConfig(area=area, batch_size=4, progress=False),
                           sface_pipe, six_faces, nodes) for area in (0.0, 0.4))
    for name in nodes:
        assert np.concatenate(clean[name].flipped).max() == 0.0  # nothing hidden, nothing flips
        assert np.array_equal(np.concatenate(clean[name].bits),
                              np.concatenate(clean[name].hidden_bits))
        flips = np.concatenate(hidden[name].flipped)
        assert (flips > 0).all() and (flips < 0.6).all()
        active = np.concatenate(clean[name].active)
        assert ((active > 0.05) & (active < 0.95)).all()
        assert clean[name].units.size == min(128, clean[name].n_units)  # the embedding's size
    top = np.concatenate(clean[EMBEDDING].sampled)
    with torch.inference_mode():
        want = sface_pipe.model(six_faces).numpy()
    assert np.allclose(top, want[:, clean[EMBEDDING].units], atol=1e-4)


def test_bit_distance_pairs_and_selectivity_on_known_inputs() -> None:
    rng = np.random.default_rng(0)
    on = rng.random((6, 50)) > 0.5
    bits = np.packbits(on, axis=1)
    a, b = np.array([0, 1]), np.array([2, 5])
    assert np.allclose(_bit_distance(bits, 50, a, b), (on[a] != on[b]).mean(axis=1))
    assert np.allclose(_unit_rates(bits, 50, chunk=4), on.mean(axis=0))
    identity = np.array(["x"] * 40 + ["y"] * 40)
    i, j = _pairs(identity, 30, False, rng)
    assert (identity[i] != identity[j]).all()
    i, j = _pairs(identity, 30, True, rng)
    assert (identity[i] == identity[j]).all() and (i != j).all()
    values = rng.normal(size=(80, 5))
    values[:, 3] += np.where(identity == "x", 5.0, -5.0)  # unit 3 tells x from y
    train = np.arange(80) % 2 == 0
    assert _selectivity(values, identity, ["x", "y"], train).min() == 1.0
    assert _verification_auc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert _verification_auc(np.array([0.3]), np.array([0.3])) == 0.5  # a tie counts half
