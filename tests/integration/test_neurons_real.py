"""The neuron study's pieces on a few real LFW faces with the real SFace model (seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facexplain.analysis.robustness import LayerProbe, occlude, robustness_curve
from facexplain.cli.app import main
from facexplain.pipeline import FacePipeline
from facexplain.search.binary import encode, hamming

pytestmark = pytest.mark.slow



def test_probe_shapes_and_sparsity(sface_pipe: FacePipeline, six_faces: torch.Tensor) -> None:
    node = sface_pipe.spec.last_spatial_node
    probe = LayerProbe(sface_pipe.model, node, batch_size=4)
    feats = probe(six_faces)
    assert feats.embedding.shape == (6, 128)
    assert feats.node_bits.n_bits == int(np.prod(probe.node_shape(six_faces)))  # 1024 x 7 x 7
    assert feats.lbp.shape[0] == 6 and np.isfinite(feats.lbp).all()
    # moderately sparse, as DeepID2+ found: neither silent nor saturated
    active = (feats.embedding > 0).mean(axis=1)
    assert ((active > 0.25) & (active < 0.75)).all()
    with torch.inference_mode():
        want = sface_pipe.model(six_faces[:2]).numpy()
    assert np.allclose(feats.embedding[:2], want, atol=1e-4)


def test_sign_codes_keep_identity(sface_pipe: FacePipeline, six_faces: torch.Tensor) -> None:
    """Same person: fewer differing bits than any pair of different people."""
    codes = encode(sface_pipe.embed(six_faces).numpy())
    idx = np.arange(6)
    a, b = np.meshgrid(idx, idx, indexing="ij")
    upper = a < b
    dist = hamming(codes.take(a[upper]), codes.take(b[upper]))
    same = (a[upper] // 3) == (b[upper] // 3)
    assert dist[same].max() < dist[~same].min()


def test_occlusion_flips_bits_and_curve_runs(sface_pipe: FacePipeline,
                                             six_faces: torch.Tensor) -> None:
    occluded, area = occlude(six_faces, 0.3, seed=1)
    assert 0.27 < area < 0.33
    assert not torch.equal(occluded, six_faces)
    assert torch.equal(occlude(six_faces, 0.3, seed=1)[0], occluded)  # same seed, same masks
    probe = LayerProbe(sface_pipe.model, sface_pipe.spec.last_spatial_node, batch_size=6)
    pair_a, pair_b = np.array([0, 0, 3, 3]), np.array([1, 4, 4, 1])
    same, folds = np.array([True, False, True, False]), np.array([0, 0, 1, 1])
    curve = robustness_curve(probe, six_faces, pair_a, pair_b, same, folds, (0.0, 0.3), seed=1)
    clean, hidden = curve.points
    assert clean.flipped == {"top": 0.0, "node": 0.0, "lbp": 0.0}
    assert all(0.0 < v < 0.5 for v in hidden.flipped.values())
    assert 0.0 < curve.impostor_distance["top"] < 1.0


def test_cli_rejects_unknown_layer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old = sys.argv
    sys.argv = ["facexplain", "analyze", "neurons", "--layer", "no_such_node",
                "--out", str(tmp_path)]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    err = capsys.readouterr().err
    assert exc.value.code != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no node 'no_such_node'" in lines[0], err
    assert "conv_14_relu" in lines[0]
