"""Pieces of `benchmark xcos` on tiny inputs: per-fold scoring, occlusion conditions, timing."""

from __future__ import annotations

import numpy as np
import torch

from facexplain.backbones.registry import get_spec
from facexplain.benchmarks.xcos import (
    TEMPLATES,
    PairScores,
    accuracy_row,
    fold_scores,
    occlude,
    time_per_pair,
)
from facexplain.datasets.occlusion import load_mask_templates
from facexplain.heads.xcos import XCosHead, XCosHeadConfig
from tests.unit.test_xcos_explainer import HEAD_CFG, TinyFace


def test_each_pair_is_scored_by_its_own_fold_head() -> None:
    cfg = XCosHeadConfig(in_channels=8, height=4, width=3, grid_channels=6, reduced_channels=4)
    torch.manual_seed(0)
    heads = [XCosHead(cfg).eval() for _ in range(3)]
    maps_a, maps_b = torch.randn(9, 8, 4, 3).half(), torch.randn(9, 8, 4, 3).half()
    folds = np.array([0, 1, 2] * 3)
    got = fold_scores(heads, maps_a, maps_b, folds, chunk=2)
    for i, f in enumerate(folds):
        with torch.no_grad():
            want = heads[f](maps_a[i : i + 1].float(), maps_b[i : i + 1].float(), "L").score
        assert abs(got["L"][i] - float(want)) < 1e-6
    same = np.array([True, False] * 4 + [True])
    row = accuracy_row(PairScores(np.where(same, 0.9, 0.1), got), same, folds)
    assert row["cosine"] == 1.0 and set(row) == {"cosine", "xcos_U", "xcos_P", "xcos_L"}


def test_occlusion_conditions_hide_part_of_the_face() -> None:
    spec = get_spec("sface")
    face = torch.full((3, 112, 112), 200.0)
    templates = [(t, t.load_rgba()) for t in load_mask_templates()[:2]]
    rng = np.random.default_rng(0)
    strokes = occlude(face, "0.3", spec, rng, [], 0.0)
    hidden = (strokes == 0).all(dim=0).float().mean()
    assert 0.15 < float(hidden) < 0.35  # 30% of the face ellipse, which is most of the crop
    masked = occlude(face, TEMPLATES, spec, rng, templates, 0.0)
    assert (masked != face).any() and masked[:, 30, 56].eq(200).all()  # eyes row untouched


def test_time_per_pair_reports_both_paths() -> None:
    model = TinyFace().eval()
    head = XCosHead(HEAD_CFG).eval()
    t = time_per_pair(model, head, "grid", torch.rand(6, 3, 16, 16) * 255, repeats=1)
    assert t["n_pairs"] == 3 and t["cosine_ms"] > 0 and t["xcos_ms"] > 0
    assert t["xcos_and_cosine_ms"] > 0 and t["head_only_ms"] > 0


def test_mean_over_untouched_folds_skips_development_folds() -> None:
    from facexplain.benchmarks.xcos import mean_over_folds

    per_fold = {"cosine": [0.5, 0.6] + [1.0] * 8}
    assert mean_over_folds(per_fold, tuple(range(3, 11))) == {"cosine": 1.0}
    assert abs(mean_over_folds(per_fold, (1, 2))["cosine"] - 0.55) < 1e-12
